"""Reconciliation applied to live state: missions closed or resumed, incidents following, every decision recorded."""

from __future__ import annotations

from pathlib import Path

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.reports import VehicleReport
from controller.runtime import Runtime
from tests import support
from tests.conftest import build_runtime

CMD = Principal(Role.COMMANDER, "cmd")


def pilot(station_id: str) -> Principal:
    return Principal(Role.PILOT, f"p-{station_id}", station_id)


def at_home(rt: Runtime, drone_id: str, **kw: object) -> VehicleReport:
    s = rt.config.station(rt.center.drones[drone_id].station_id)
    fields = {"armed": False, "alt_rel_m": 0.1, "mode": int(CopterMode.GUIDED), "lat": s.lat, "lon": s.lon, "battery_pct": 80.0}
    fields.update(kw)
    return VehicleReport(**fields)  # type: ignore[arg-type]


async def on_scene(rt: Runtime, north_m: float = 600.0, grade: int = 2, category: str = "traffic_accident"):
    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    inc, _ = await rt.center.create_incident(NewIncident(grade=grade, category=category, lat=lat, lon=lon), CMD)
    (m,) = [m for m in rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
    await rt.center.accept(m.id, pilot(m.station_id))
    await rt.center.reports.flight_launched(m.id)
    await rt.center.reports.flight_on_scene(m.id)
    return inc, m


async def test_a_drone_found_landed_closes_its_mission_and_the_incident_is_dispatched_again(runtime: Runtime) -> None:
    inc, m = await on_scene(runtime)
    drone = runtime.center.drones[m.drone_id]
    assert inc.status is IncidentStatus.ON_SCENE and drone.state is DroneState.ON_SCENE

    result = await runtime.center.reports.reconcile({drone.id: at_home(runtime, drone.id)}, why="start-up")

    assert m.state is MissionState.ABORTED and "landed while nobody supervised it" in (m.reason or "")
    assert result.resume == () and result.bring_home == ()
    db = runtime.db
    timeline = await db.read(lambda c: db.timeline(c, "drone", drone.id))
    assert [t["to"] for t in timeline if t["actor"] == "reconcile"] == ["landed", "standby"]  # available again ...
    # the incident is not left on scene: it is offered again at once (the same drone may take it again)
    assert inc.is_open and inc.status is IncidentStatus.OFFERED
    (again,) = [x for x in runtime.center.incident_missions(inc.id) if x.state is MissionState.OFFERED]
    assert again.id != m.id and again.drone_id == drone.id  # ... and the nearest, so offered the same call again
    steps = await db.read(lambda c: db.mission_steps(c, m.id))
    assert steps[-1]["step"] == "reconciled" and "start-up" in steps[-1]["detail"]
    timeline = await db.read(lambda c: db.timeline(c, "incident", inc.id))
    assert any(t["actor"] == "reconcile" and m.id in t["reason"] for t in timeline)
    assert [t["to"] for t in timeline if t["actor"] == "reconcile"][-1] == "queued"  # re-queued, then offered
    events = await db.read(lambda c: db.events_after(c, 0))
    assert any(e.type == "alert" and e.drone_id == drone.id and "reconciled" in e.data["text"] for e in events)
    assert runtime.center.reconciler.stats()["repairs"] >= 1


async def test_a_vehicle_still_flying_the_mission_is_resumed_unchanged(runtime: Runtime) -> None:
    inc, m = await on_scene(runtime)
    drone = runtime.center.drones[m.drone_id]
    flying = at_home(runtime, drone.id, armed=True, alt_rel_m=80.0, lat=inc.lat, lon=inc.lon)
    seq = runtime.center.bus.last_published_seq
    result = await runtime.center.reports.reconcile({drone.id: flying}, why="start-up")
    assert [x.id for x, _ in result.resume] == [m.id]
    assert m.state is MissionState.ON_SCENE and drone.state is DroneState.ON_SCENE
    assert inc.status is IncidentStatus.ON_SCENE
    events = runtime.center.bus.replay_from_memory(seq) or []
    assert not any(e.type == "alert" for e in events), "nothing to repair, nothing to alert"


async def test_a_restart_finds_the_drones_of_closed_incidents_and_no_link_is_lost_link(tmp_path: Path, config_dir: Path) -> None:
    """The issue's restart: one mission on scene, one drone flying home for a resolved incident; the controller
    stops; meanwhile the first drone lands (failsafe), the second's link is gone. After the restart: no ghosts."""
    rt = build_runtime(tmp_path, config_dir)
    await rt.start()
    inc1, m1 = await on_scene(rt, north_m=600.0)
    inc2, m2 = await on_scene(rt, north_m=-700.0, category="fire")
    await rt.center.close_incident(inc2.id, CMD, resolved=True, reason="fire out")
    assert m2.state is MissionState.RETURNING and rt.center.drones[m2.drone_id].state is DroneState.RETURNING
    d1, d2 = m1.drone_id, m2.drone_id
    await rt.stop()

    rt = build_runtime(tmp_path, config_dir)
    await rt.start()
    try:
        assert rt.center.view.incident(inc2.id) is not None, "a closed incident a drone still flies for is loaded"
        await rt.center.reports.reconcile({d1: at_home(rt, d1), d2: None}, why="start-up")
        drones = rt.center.drones
        assert drones[d1].state is DroneState.OFFERED and drones[d1].mission_id != m1.id  # available, offered again
        assert drones[d2].state is DroneState.LOST_LINK, "no link is lost_link, not returning"
        m1 = rt.center.missions[m1.id]
        assert m1.state is MissionState.ABORTED
        assert rt.center.incidents[inc1.id].status in (IncidentStatus.QUEUED, IncidentStatus.OFFERED)

        # the second drone's link comes back: it landed at home meanwhile, its mission completes
        await rt.center.reports.reconcile({d2: at_home(rt, d2, battery_pct=45.0)}, why="link restored")
        assert drones[d2].state is DroneState.CHARGING
        db = rt.db
        stored = await db.read(lambda c: db.get_mission(c, m2.id))
        assert stored is not None and stored.state is MissionState.COMPLETED
        assert rt.center.view.incident(inc2.id) is None, "forgotten once its last drone is down"
    finally:
        await rt.stop()


async def test_the_continuous_check_waits_out_the_grace_then_names_the_contradiction(runtime: Runtime) -> None:
    inc, m = await on_scene(runtime)
    rec = runtime.center.reconciler
    clock = [1000.0]
    rec.monotonic = lambda: clock[0]
    report = at_home(runtime, m.drone_id)
    assert rec.check(m.drone_id, report) is None  # first sight: within the grace
    clock[0] += 4.0
    assert rec.check(m.drone_id, report) is None
    clock[0] += 1.5
    why = rec.check(m.drone_id, report)
    assert why is not None and "on the ground" in why
    # a consistent report clears the suspicion
    flying = at_home(runtime, m.drone_id, armed=True, alt_rel_m=70.0)
    assert rec.check(m.drone_id, flying) is None and rec.stats()["suspect_now"] == 0


# --- repeat calls --------------------------------------------------------------------------------------


async def test_a_repeat_call_merges_only_into_an_incident_being_served_or_waiting(runtime: Runtime) -> None:
    inc, m = await on_scene(runtime)
    near = NewIncident(grade=2, category="traffic_accident", lat=inc.lat + 0.0002, lon=inc.lon)
    same, merged = await runtime.center.create_incident(near, CMD)
    assert merged and same.id == inc.id  # its drone is over the scene
    await runtime.center.reports.block_incident(inc.id, "test: nothing may fly there")
    await runtime.center.reports.flight_returning(m.id, "test: battery")
    other, merged = await runtime.center.create_incident(near, CMD)
    assert not merged and other.id != inc.id, "nothing will fly for the first any more: the call gets a drone"
    assert other.status is IncidentStatus.OFFERED
