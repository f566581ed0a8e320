"""A grade-1 call takes a drone from a grade-3 mission in flight: the drone turns round in the air, flies the
grade-1 mission, and the displaced incident is re-queued with its pilot told why."""

from __future__ import annotations

import pytest

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, IncidentStatus, MissionState
from tests.e2e.conftest import World

pytestmark = [pytest.mark.sitl, pytest.mark.slow]
CMD = Principal(Role.COMMANDER, "cmd")
ADMIN = Principal(Role.ADMIN, "admin")


async def test_grade_one_redirects_a_grade_three_drone_in_flight(world: World) -> None:
    w = world
    center = w.rt.center
    s = w.rt.config.stations[2]
    flying = s.drones[0].id
    # Every other drone is in maintenance, so the only drone that can help the grade-1 call is the one in the air.
    for d in list(center.drones.values()):
        if d.id != flying and d.state in (DroneState.STANDBY, DroneState.CHARGING, DroneState.LANDED):
            await center.set_maintenance(d.id, True, ADMIN, "test")
    lat, lon = geo.destination(s.lat, s.lon, 90.0, 1500.0)
    low, _ = await center.create_incident(NewIncident(grade=3, category="other", lat=lat, lon=lon), CMD)
    (m3,) = center.incident_missions(low.id)
    await center.accept(m3.id, Principal(Role.PILOT, "p", s.id))
    await w.until(lambda: center.drones[flying].state is DroneState.ENROUTE and m3.state is MissionState.LAUNCHED, 90, "grade 3 airborne")
    await w.until(lambda: (w.rt.fleet.links[flying].telemetry.alt_rel_m or 0) > 20, 60, "climbing out")

    lat1, lon1 = geo.destination(s.lat, s.lon, 0.0, 800.0)
    seq = center.bus.last_published_seq
    urgent, _ = await center.create_incident(NewIncident(grade=1, category="violent_crime", lat=lat1, lon=lon1), CMD)
    assert m3.state is MissionState.ABORTED
    (m1,) = [m for m in center.incident_missions(urgent.id) if m.state is MissionState.OFFERED]
    assert m1.drone_id == flying
    events = [e for e in center.bus.replay_from_memory(seq) or [] if e.type == "mission.preempted"]
    assert events and events[0].data["for_incident_id"] == urgent.id and events[0].station_id == s.id
    assert center.incidents[low.id].status is IncidentStatus.QUEUED  # re-queued (no other drone is free)

    await center.accept(m1.id, Principal(Role.PILOT, "p", s.id))
    await w.until(lambda: m1.state is MissionState.ON_SCENE, 120, "the redirected drone on the grade-1 scene")
    db = w.rt.db
    steps = [r["step"] for r in await db.read(lambda c: db.mission_steps(c, m1.id))]
    assert "redirected in flight" in steps and "takeoff" not in steps and "failed" not in steps
    t = w.rt.fleet.links[flying].telemetry
    assert geo.distance_m(t.lat, t.lon, lat1, lon1) < 40
    # the old mission's supervision let go: no landing was reported for the drone while it serves the grade-1 call
    assert center.drones[flying].state is DroneState.ON_SCENE
    await center.close_incident(urgent.id, CMD, resolved=True, reason="done")
    await w.until(lambda: m1.state is MissionState.COMPLETED, 180, "home and landed")
