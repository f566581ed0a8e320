"""The dispatch centre's rules: offers, decline and expiry to the next drone, queueing, merging, closing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.errors import Conflict, Forbidden
from controller.domain.state_machine import IllegalTransition
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.runtime import Runtime
from tests import support
from tests.conftest import build_runtime

CMD = Principal(Role.COMMANDER, "cmd")


def near(rt: Runtime, station_id: str, north_m: float = 500.0) -> tuple[float, float]:
    s = rt.config.station(station_id)
    return geo.destination(s.lat, s.lon, 0.0, north_m)


def pilot(station_id: str) -> Principal:
    return Principal(Role.PILOT, f"p-{station_id}", station_id)


def offered(rt: Runtime, incident_id: str):
    return [m for m in rt.center.incident_missions(incident_id) if m.state is MissionState.OFFERED]


async def new_incident(rt: Runtime, station=support.STATION_A, category="traffic_accident", grade=2, north=500.0, **kw):
    lat, lon = near(rt, station, north)
    inc, merged = await rt.center.create_incident(NewIncident(grade=grade, category=category, lat=lat, lon=lon, **kw), CMD)
    return inc, merged


async def test_offer_goes_to_the_nearest_station(runtime: Runtime) -> None:
    inc, merged = await new_incident(runtime)
    assert not merged and inc.status is IncidentStatus.OFFERED
    (m,) = offered(runtime, inc.id)
    assert m.station_id == support.STATION_A
    assert runtime.center.drones[m.drone_id].state is DroneState.OFFERED
    assert m.pilot_id is not None and m.pilot_id.startswith(support.STATION_A)
    assert (m.expires_at - m.offered_at).total_seconds() == pytest.approx(30)


async def test_decline_offers_the_next_best_drone(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (first,) = offered(runtime, inc.id)
    await runtime.center.decline(first.id, pilot(first.station_id), "battery swap")
    assert first.state is MissionState.DECLINED and first.reason == "battery swap"
    assert runtime.center.drones[first.drone_id].state is DroneState.STANDBY
    (second,) = offered(runtime, inc.id)
    assert second.drone_id != first.drone_id
    assert inc.status is IncidentStatus.OFFERED
    # Declining again never comes back to the first drone.
    await runtime.center.decline(second.id, pilot(second.station_id))
    (third,) = offered(runtime, inc.id)
    assert third.drone_id not in {first.drone_id, second.drone_id}


async def test_expiry_offers_the_next_drone(tmp_path: Path) -> None:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, offer_timeout_s=0.3)
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        inc, _ = await new_incident(rt)
        (first,) = offered(rt, inc.id)
        await asyncio.sleep(0.6)
        assert first.state is MissionState.EXPIRED
        assert first.reason == "no answer within 0.3 s"
        assert rt.center.drones[first.drone_id].state is DroneState.STANDBY
        nxt = [m for m in rt.center.incident_missions(inc.id) if m.id != first.id]
        assert nxt and nxt[0].drone_id != first.drone_id
        # The expired offer cannot be accepted any more.
        with pytest.raises(IllegalTransition):
            await rt.center.accept(first.id, pilot(first.station_id))
    finally:
        await rt.stop()


async def test_accept_moves_mission_drone_and_incident(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    await runtime.center.accept(m.id, pilot(m.station_id))
    assert m.state is MissionState.ACCEPTED and m.decided_by == f"pilot:p-{m.station_id}"
    assert runtime.center.drones[m.drone_id].state is DroneState.PREFLIGHT
    assert inc.status is IncidentStatus.DISPATCHED


async def test_pilot_of_another_station_is_refused_and_nothing_changes(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    with pytest.raises(Forbidden):
        await runtime.center.accept(m.id, pilot("NJ-GC-01"))
    assert m.state is MissionState.OFFERED and inc.status is IncidentStatus.OFFERED


async def test_illegal_transition_changes_nothing(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    p = pilot(m.station_id)
    await runtime.center.decline(m.id, p)
    seq_before = runtime.center.bus.last_published_seq
    with pytest.raises(IllegalTransition):
        await runtime.center.accept(m.id, p)
    assert m.state is MissionState.DECLINED
    assert runtime.center.bus.last_published_seq == seq_before


async def test_no_feasible_drone_queues_until_one_frees_up(tmp_path: Path) -> None:
    # Everyone but stations A's and B's drones is in maintenance; they take two incidents, the third waits.
    rt = build_runtime(tmp_path, support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER))
    await rt.start()
    try:
        admin = Principal(Role.ADMIN, "admin")
        keep = {d.id for sid in (support.STATION_A, support.STATION_B) for d in rt.config.station(sid).drones}
        for drone_id in list(rt.center.drones):
            if drone_id not in keep:
                await rt.center.set_maintenance(drone_id, True, admin)
        a, _ = await new_incident(rt, category="fire")
        b, _ = await new_incident(rt, category="violent_crime")
        c, _ = await new_incident(rt, category="other")
        assert a.status is IncidentStatus.OFFERED and b.status is IncidentStatus.OFFERED
        assert c.status is IncidentStatus.QUEUED
        assert c.queue_reasons and all(r.startswith(("busy", "in maintenance")) for r in c.queue_reasons.values())
        # Cancelling a frees its drone: c is offered that drone at once.
        (ma,) = offered(rt, a.id)
        await rt.center.close_incident(a.id, CMD, resolved=False, reason="false alarm")
        assert c.status is IncidentStatus.OFFERED
        (mc,) = offered(rt, c.id)
        assert mc.drone_id == ma.drone_id
    finally:
        await rt.stop()


async def test_repeat_calls_merge_and_are_not_dispatched_twice(runtime: Runtime) -> None:
    first, _ = await new_incident(runtime, category="fire", north=500)
    again, merged = await new_incident(runtime, category="fire", north=650, caller="13800000000")
    assert merged and again.id == first.id and first.callers == 2
    assert len(runtime.center.incident_missions(first.id)) == 1
    # A more urgent repeat call raises the grade.
    _, merged = await new_incident(runtime, category="fire", grade=1, north=520)
    assert merged and first.grade == 1 and first.callers == 3


async def test_merge_rules_category_radius(runtime: Runtime) -> None:
    first, _ = await new_incident(runtime, category="fire", north=500)
    other_kind, merged = await new_incident(runtime, category="traffic_accident", north=500)
    assert not merged and other_kind.id != first.id
    far, merged = await new_incident(runtime, category="fire", north=500 + 301 + 20)
    assert not merged and far.id != first.id


async def test_merge_window(tmp_path: Path) -> None:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, duplicate_merge={"radius_m": 300, "window_s": 0.2})
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        first, _ = await new_incident(rt, category="fire")
        await asyncio.sleep(0.3)
        later, merged = await new_incident(rt, category="fire")
        assert not merged and later.id != first.id
    finally:
        await rt.stop()


async def test_cancel_withdraws_the_offer(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    await runtime.center.close_incident(inc.id, CMD, resolved=False, reason="caller withdrew")
    assert inc.status is IncidentStatus.CANCELLED and inc.close_reason == "caller withdrew"
    assert m.state is MissionState.ABORTED
    assert runtime.center.drones[m.drone_id].state is DroneState.STANDBY
    with pytest.raises(Conflict):
        await runtime.center.close_incident(inc.id, CMD, resolved=True, reason="")


async def test_abort_an_accepted_mission_redispatches(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    await runtime.center.accept(m.id, pilot(m.station_id))
    await runtime.center.abort(m.id, CMD, "rotor fault")
    assert m.state is MissionState.ABORTED
    assert runtime.center.drones[m.drone_id].state is DroneState.STANDBY
    (replacement,) = offered(runtime, inc.id)
    assert replacement.drone_id != m.drone_id


async def test_every_transition_is_timestamped_and_stored(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (m,) = offered(runtime, inc.id)
    await runtime.center.accept(m.id, pilot(m.station_id))
    db = runtime.db
    mission_tl = await db.read(lambda c: db.timeline(c, "mission", m.id))
    assert [(t["from"], t["to"]) for t in mission_tl] == [(None, "offered"), ("offered", "accepted")]
    incident_tl = await db.read(lambda c: db.timeline(c, "incident", inc.id))
    assert [t["to"] for t in incident_tl] == ["queued", "offered", "dispatched"]
    drone_tl = await db.read(lambda c: db.timeline(c, "drone", m.drone_id))
    assert [t["to"] for t in drone_tl][-2:] == ["offered", "preflight"]
    assert all(t["at"] is not None for t in mission_tl + incident_tl + drone_tl)


async def test_periodic_sweep_picks_up_changes_no_command_announced(tmp_path: Path) -> None:
    """A charging battery raises no command; the sweep notices the drone can now go."""
    rt = build_runtime(tmp_path, support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER))
    await rt.start()
    try:
        admin = Principal(Role.ADMIN, "admin")
        keep = rt.config.station(support.STATION_A).drones[0].id
        for drone_id in list(rt.center.drones):
            if drone_id != keep:
                await rt.center.set_maintenance(drone_id, True, admin)
        rt.center.drones[keep].battery_pct = 25.0  # too low for anything
        rt.center.touch(keep)
        inc, _ = await new_incident(rt, category="fire")
        assert inc.status is IncidentStatus.QUEUED
        assert inc.queue_reasons[keep].startswith("battery: has 25%")
        rt.center.drones[keep].battery_pct = 95.0  # charged, silently
        rt.center.touch(keep)
        await rt.center.sweep()
        assert inc.status is IncidentStatus.OFFERED
    finally:
        await rt.stop()


async def test_queue_entry_is_announced_once(runtime: Runtime) -> None:
    """Re-evaluating a queued incident on every pass must not flood the stream."""
    far = (32.05, 119.85)  # about 100 km east: beyond every drone
    inc, _ = await runtime.center.create_incident(NewIncident(grade=3, category="other", lat=far[0], lon=far[1]), CMD)
    for _ in range(3):
        other, _ = await new_incident(runtime, category="fire")
        await runtime.center.close_incident(other.id, CMD, resolved=False, reason="")
        await runtime.center.sweep()
    db = runtime.db
    events = await db.read(lambda c: db.events_after(c, 0))
    assert sum(1 for e in events if e.type == "incident.queued" and e.incident_id == inc.id) == 1


async def test_grade_one_takes_a_low_grade_drone_in_flight_and_the_displaced_call_is_requeued(tmp_path: Path) -> None:
    """Preemption through the centre: the grade-3 mission is aborted with the reason, its pilot alerted,
    its incident re-queued (and offered another drone), and the flying drone offered to the grade-1 call."""
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, engine={"preempt_margin_s": 10})
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        low, _ = await new_incident(rt, grade=3, north=400)
        (m,) = offered(rt, low.id)
        await rt.center.accept(m.id, pilot(m.station_id))
        await rt.center.reports.flight_launched(m.id)
        drone = rt.center.drones[m.drone_id]
        assert drone.state is DroneState.ENROUTE
        # The drone is now right over a spot 250 m from a new grade-1 call; every free drone must launch and climb.
        lat, lon = near(rt, m.station_id, 2500)
        rt.center.reports.telemetry(drone.id, *geo.destination(lat, lon, 180.0, 250.0), 120.0, 95.0)
        seq = rt.center.bus.last_published_seq
        urgent, _ = await rt.center.create_incident(NewIncident(grade=1, category="violent_crime", lat=lat, lon=lon), CMD)

        assert m.state is MissionState.ABORTED and "redirected to grade-1" in (m.reason or "")
        (redirect,) = offered(rt, urgent.id)
        assert redirect.drone_id == drone.id and drone.mission_id == redirect.id
        assert drone.state is DroneState.RETURNING  # heads home until the pilot accepts the redirect
        assert drone.id not in low.excluded_drones  # the displaced call may have it back later
        (other,) = offered(rt, low.id)  # the displaced call was re-queued and offered another drone at once
        assert other.drone_id != drone.id
        events = rt.center.bus.replay_from_memory(seq) or []
        kinds = [e.type for e in events]
        assert "mission.preempted" in kinds
        alert = next(e for e in events if e.type == "alert" and e.mission_id == m.id)
        assert alert.station_id == m.station_id and "re-queued" in alert.data["text"]

        await rt.center.accept(redirect.id, pilot(redirect.station_id))
        assert redirect.state is MissionState.ACCEPTED and drone.state is DroneState.ENROUTE
    finally:
        await rt.stop()
