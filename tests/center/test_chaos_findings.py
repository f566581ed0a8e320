"""Cases the chaos benchmark found (restarts and recalls at awkward moments), each repaired and kept repaired."""

from __future__ import annotations

from pathlib import Path

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.entities import Incident, Mission
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.reports import VehicleReport
from controller.runtime import Runtime
from tests import support
from tests.conftest import build_runtime

CMD = Principal(Role.COMMANDER, "cmd")


def pilot(station_id: str) -> Principal:
    return Principal(Role.PILOT, f"p-{station_id}", station_id)


class Observer:
    """Stands in for the flight layer: records what it is told, flies nothing."""

    def __init__(self) -> None:
        self.recalled: list[str] = []

    def mission_accepted(self, mission: Mission, incident: Incident) -> None:
        pass

    def mission_recalled(self, mission: Mission, reason: str) -> None:
        self.recalled.append(mission.id)


async def accepted(rt: Runtime, north_m: float = 600.0) -> tuple[Incident, Mission]:
    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    inc, _ = await rt.center.create_incident(NewIncident(grade=2, category="traffic_accident", lat=lat, lon=lon), CMD)
    (m,) = [m for m in rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
    await rt.center.accept(m.id, pilot(m.station_id))
    return inc, m


async def test_an_accepted_drone_found_flying_home_is_repaired_through_the_missed_states(runtime: Runtime) -> None:
    """Killed right after an accept; the vehicle took off, then its GCS failsafe brought it home (bug A)."""
    inc, m = await accepted(runtime)
    drone = runtime.center.drones[m.drone_id]
    assert (drone.state, m.state) == (DroneState.PREFLIGHT, MissionState.ACCEPTED)
    rtl = VehicleReport(armed=True, alt_rel_m=35.0, mode=int(CopterMode.RTL), lat=inc.lat, lon=inc.lon, battery_pct=80.0)
    result = await runtime.center.reports.reconcile({drone.id: rtl}, why="start-up")
    assert (drone.state, m.state) == (DroneState.RETURNING, MissionState.RETURNING)
    assert [x.id for x, _ in result.resume] == [m.id]  # its runner follows it down
    db = runtime.db
    timeline = await db.read(lambda c: db.timeline(c, "mission", m.id))
    assert [t["to"] for t in timeline][-2:] == ["launched", "returning"]
    assert inc.status in (IncidentStatus.QUEUED, IncidentStatus.OFFERED), "its incident gets another drone"


async def test_a_drone_recalled_in_preflight_stays_unavailable_until_the_flight_layer_has_it_down(runtime: Runtime) -> None:
    """Closing an incident while its drone lifts off must not show the drone on standby (bug D)."""
    observer = Observer()
    runtime.center.observers.append(observer)
    inc, m = await accepted(runtime)
    drone = runtime.center.drones[m.drone_id]
    await runtime.center.close_incident(inc.id, CMD, resolved=False, reason="false alarm")
    assert m.state is MissionState.ABORTED and observer.recalled == [m.id]
    assert drone.state is DroneState.PREFLIGHT and drone.mission_id is None  # not offered while it may be lifting
    s = runtime.config.station(support.STATION_B)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, 300.0)
    other, _ = await runtime.center.create_incident(NewIncident(grade=2, category="fire", lat=lat, lon=lon), CMD)
    assert all(x.drone_id != drone.id for x in runtime.center.incident_missions(other.id))
    await runtime.center.reports.flight_landed(drone.id, "stood down on the ground")
    assert drone.state in (DroneState.STANDBY, DroneState.OFFERED)


async def test_a_landing_report_does_not_take_a_drone_out_of_maintenance(runtime: Runtime) -> None:
    inc, m = await accepted(runtime)
    drone = runtime.center.drones[m.drone_id]
    await runtime.center.reports.flight_failed(m.id, "arming refused: compass", to_maintenance=True)
    assert drone.state is DroneState.MAINTENANCE
    await runtime.center.reports.flight_landed(drone.id, "stood down on the ground")
    assert drone.state is DroneState.MAINTENANCE


async def test_a_redirect_offer_dies_when_its_drone_lands_and_its_expiry_frees_nothing(tmp_path: Path) -> None:
    """A grade-1 call takes a drone flying a grade-3 mission (preemption); the drone lands before its pilot
    answers and is offered another call. The redirect must neither stay open for ever nor, when its timer
    fires, free the drone from the other offer (bug C: IllegalTransition, the expiry never saved)."""
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, engine={"preempt_margin_s": 10})
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        s = rt.config.station(support.STATION_A)
        lat, lon = geo.destination(s.lat, s.lon, 0.0, 400.0)
        low, _ = await rt.center.create_incident(NewIncident(grade=3, category="other", lat=lat, lon=lon), CMD)
        (m,) = [x for x in rt.center.incident_missions(low.id) if x.state is MissionState.OFFERED]
        await rt.center.accept(m.id, pilot(m.station_id))
        await rt.center.reports.flight_launched(m.id)
        drone = rt.center.drones[m.drone_id]
        far = geo.destination(s.lat, s.lon, 0.0, 2500.0)
        rt.center.reports.telemetry(drone.id, *geo.destination(*far, 180.0, 250.0), 120.0, 95.0)
        urgent, _ = await rt.center.create_incident(NewIncident(grade=1, category="violent_crime", lat=far[0], lon=far[1]), CMD)
        (redirect,) = [x for x in rt.center.incident_missions(urgent.id) if x.drone_id == drone.id]
        assert redirect.state is MissionState.OFFERED and drone.state is DroneState.RETURNING

        await rt.center.reports.flight_landed(drone.id)  # home before the pilot answered
        assert redirect.state is MissionState.ABORTED and "landed before its pilot accepted" in (redirect.reason or "")
        assert drone.mission_id != redirect.id
        await rt.center.commands.expire_offer(redirect.id)  # a late timer: nothing happens, nothing raises
        assert urgent.is_open and urgent.status in (IncidentStatus.QUEUED, IncidentStatus.OFFERED)
    finally:
        await rt.stop()
