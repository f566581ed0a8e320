"""Incident to landing over MAVLink, for many drones at once, and the failure paths."""

from __future__ import annotations

import asyncio
import re

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.fleet.copter import CopterMode
from tests.e2e.conftest import NOFLY_STATION, World

CMD = Principal(Role.COMMANDER, "cmd")
pytestmark = [pytest.mark.sitl, pytest.mark.slow]


def pilot(station_id: str) -> Principal:
    return Principal(Role.PILOT, f"p-{station_id}", station_id)


async def open_near(w: World, station_index: int, north_m: float = 400.0, category: str = "traffic_accident"):
    s = w.rt.config.stations[station_index]
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    inc, merged = await w.rt.center.create_incident(NewIncident(grade=2, category=category, lat=lat, lon=lon), CMD)
    assert not merged
    (m,) = [m for m in w.rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
    return inc, m


async def steps(w: World, mission_id: str) -> list[str]:
    db = w.rt.db
    return [s["step"] for s in await db.read(lambda c: db.mission_steps(c, mission_id))]


async def test_ten_concurrent_missions_fly_and_come_home(world: World) -> None:
    w = world
    pairs = [await open_near(w, i) for i in range(10)]
    assert len({m.drone_id for _, m in pairs}) == 10
    for inc, m in pairs:
        await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: all(inc.status is IncidentStatus.ON_SCENE for inc, _ in pairs), 120, "all ten on scene")
    for inc, m in pairs:
        drone = w.rt.center.drones[m.drone_id]
        assert drone.state is DroneState.ON_SCENE
        assert geo.distance_m(drone.lat, drone.lon, inc.lat, inc.lon) < 30
        assert drone.alt_m == pytest.approx(40.0, abs=3.0)
    for inc, _ in pairs:
        await w.rt.center.close_incident(inc.id, CMD, resolved=True, reason="handled")
    await w.until(lambda: all(m.state is MissionState.COMPLETED for _, m in pairs), 180, "all ten landed")
    for _, m in pairs:
        drone = w.rt.center.drones[m.drone_id]
        assert drone.state in (DroneState.STANDBY, DroneState.CHARGING) and drone.mission_id is None
        recorded = await steps(w, m.id)
        for step in ("preflight", "mode", "armed", "takeoff", "target sent", "on scene", "RTL", "landed"):
            assert step in recorded, (m.id, step, recorded)
    db = w.rt.db
    timeline = await db.read(lambda c: db.timeline(c, "mission", pairs[0][1].id))
    assert [t["to"] for t in timeline] == ["offered", "accepted", "launched", "on_scene", "returning", "completed"]


async def test_commander_abort_in_flight_brings_the_drone_home_and_redispatches(world: World) -> None:
    w = world
    inc, m = await open_near(w, 0, north_m=600)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: w.rt.center.drones[m.drone_id].state is DroneState.ENROUTE, 60, "airborne")
    await w.rt.center.abort(m.id, CMD, "helicopter took over")
    assert m.state is MissionState.ABORTED
    await w.until(lambda: w.rt.center.drones[m.drone_id].state in (DroneState.STANDBY, DroneState.CHARGING), 120, "back and landed")
    replacement = [x for x in w.rt.center.incident_missions(inc.id) if x.id != m.id]
    assert replacement and replacement[0].drone_id != m.drone_id


#: The refusal each backend gives when told to refuse arming (sitl/faults.py): the simulator reports the pre-arm
#: failure it was given; ArduCopter fails its battery arming check (BATT_ARM_VOLT above the pack's voltage), and
#: its periodic "PreArm:" report of the same check may arrive while the ARM command is answered.
ARM_REFUSAL = {
    "sim": re.escape("arming refused: Arm: PreArm: Compass not calibrated"),
    "ardupilot": "arming refused: (PreArm: Battery 1 below minimum arming voltage; )?"
    "Arm: Battery 1 below minimum arming voltage",
}


async def test_arming_refused(world: World) -> None:
    w = world
    inc, m = await open_near(w, 1)
    await w.faults.refuse_arming(m.drone_id)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: m.state is MissionState.ABORTED, 30, "mission aborted")
    assert re.search(ARM_REFUSAL[w.backend], m.reason), m.reason
    assert w.rt.center.drones[m.drone_id].state is DroneState.MAINTENANCE
    await w.until(lambda: len(w.rt.center.incident_missions(inc.id)) == 2, 10, "next drone offered")


async def test_command_never_acknowledged(world: World) -> None:
    w = world
    inc, m = await open_near(w, 2)
    await w.faults.drop_command(m.drone_id, mavlink2.MAV_CMD_NAV_TAKEOFF)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: m.state is MissionState.ABORTED, 30, "mission aborted")
    assert "takeoff: no answer after 3 attempts" in m.reason
    # the drone was armed on the ground: the runner disarms it, and it is held for inspection
    await w.eventually(lambda: w.faults.armed(m.drone_id), lambda armed: not armed, 10, "disarmed")
    assert w.rt.center.drones[m.drone_id].state is DroneState.MAINTENANCE
    assert inc.status in (IncidentStatus.OFFERED, IncidentStatus.QUEUED)


async def test_link_lost_in_flight_and_recovered(world: World) -> None:
    w = world
    inc, m = await open_near(w, 3, north_m=500)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: inc.status is IncidentStatus.ON_SCENE, 60, "on scene")
    await w.faults.cut_link(m.drone_id, 3.0)
    await w.until(lambda: w.rt.center.drones[m.drone_id].state is DroneState.LOST_LINK, 3.5, "lost link detected within 3 s")
    db = w.rt.db

    async def alerts() -> list[str]:
        events = await db.read(lambda c: db.events_after(c, 0))
        return [e.data["text"] for e in events if e.type == "alert" and e.drone_id == m.drone_id]

    await w.eventually(alerts, lambda texts: any("link lost" in t for t in texts), 2, "the link-lost alert in the event log")
    await w.until(lambda: w.rt.center.drones[m.drone_id].state is DroneState.ON_SCENE, 10, "link restored, back on scene")
    assert m.state is MissionState.ON_SCENE
    assert await w.faults.flying(m.drone_id)  # a 3 s cut is shorter than the GCS failsafe: it stayed on station


async def test_battery_low_on_scene_returns_and_is_replaced(world: World) -> None:
    w = world
    inc, m = await open_near(w, 4)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: inc.status is IncidentStatus.ON_SCENE, 60, "on scene")
    await w.faults.drain_battery(m.drone_id, 24)  # 24 % left: the return home needs more than the reserve allows
    await w.until(lambda: m.state is MissionState.RETURNING, 20, "returning for battery")
    await w.eventually(lambda: steps(w, m.id), lambda s: "battery reserve" in s, 2, "the battery-reserve step in the timeline")
    await w.until(lambda: len([x for x in w.rt.center.incident_missions(inc.id) if x.state is MissionState.OFFERED]) == 1, 10, "replacement offered")
    await w.until(lambda: m.state is MissionState.COMPLETED, 120, "landed")
    assert w.rt.center.drones[m.drone_id].state is DroneState.CHARGING


async def test_no_fly_target_is_refused(world: World) -> None:
    w = world
    # An incident inside the test zone 400 m north of station NOFLY_STATION: no drone may fly there, so none is offered.
    s = w.rt.config.stations[NOFLY_STATION]
    lat, lon = geo.destination(s.lat, s.lon, 0.0, 400.0)
    inc, _ = await w.rt.center.create_incident(NewIncident(grade=2, category="fire", lat=lat, lon=lon), CMD)
    assert w.rt.center.incident_missions(inc.id) == []
    assert inc.status is IncidentStatus.QUEUED
    reasons = inc.queue_decision.ruled_out_counts
    # every drone with a link was ruled out because of the zone (the rest of the roster has no simulator here)
    assert reasons.get("scene inside a no-fly zone") == w.rt.fleet.configured, reasons
    # the flight layer refuses such a target too, whoever asks (defence in depth)
    with pytest.raises(Exception, match="no-fly zone test-zone"):
        w.rt.fleet.guard.route((s.lat, s.lon), (lat, lon))


async def test_flight_detours_around_a_no_fly_zone(world: World) -> None:
    w = world
    center = w.rt.center
    s = w.rt.config.stations[NOFLY_STATION]
    drone = s.drones[0].id
    for d in list(center.drones.values()):  # only the drone south of the zone may fly
        if d.id != drone and d.state in (DroneState.STANDBY, DroneState.CHARGING, DroneState.LANDED):
            await center.set_maintenance(d.id, True, Principal(Role.ADMIN, "admin"), "test")
    lat, lon = geo.destination(s.lat, s.lon, 0.0, 800.0)  # beyond the zone: the straight leg crosses it
    guard = w.rt.fleet.guard
    assert guard.zone_crossed((s.lat, s.lon), (lat, lon)) is not None
    inc, _ = await center.create_incident(NewIncident(grade=2, category="fire", lat=lat, lon=lon), CMD)
    (m,) = center.incident_missions(inc.id)
    assert m.drone_id == drone
    await center.accept(m.id, pilot(m.station_id))
    link = w.rt.fleet.links[drone]
    inside = 0
    deadline = asyncio.get_running_loop().time() + 120
    while m.state is not MissionState.ON_SCENE:
        assert asyncio.get_running_loop().time() < deadline, "never reached the scene"
        t = link.telemetry
        if t.lat is not None and guard.zone_at(t.lat, t.lon) is not None:
            inside += 1
        await asyncio.sleep(0.05)
    assert inside == 0, "the drone entered the no-fly zone"
    assert "detour" in await steps(w, m.id)


async def test_gps_lost_on_scene_lands_there_and_is_replaced(world: World) -> None:
    """The only GPS of a drone holding over the scene stops. ArduCopter's EKF loses its horizontal position about
    7 simulated seconds later, and a second after that its EKF failsafe (FS_EKF_ACTION 1, the default) switches
    a mode that needs a position to LAND: the drone comes down where it is, not at a station."""
    w = world
    inc, m = await open_near(w, 5)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: inc.status is IncidentStatus.ON_SCENE, 60, "on scene")
    link = w.rt.fleet.links[m.drone_id]
    await w.faults.lose_gps(m.drone_id)
    await w.until(lambda: not link.telemetry.ekf_ok, 10, "the EKF without a position")
    await w.until(lambda: link.telemetry.mode == CopterMode.LAND, 10, "the vehicle's EKF failsafe: LAND")
    assert any(text == "EKF Failsafe: changed to LAND Mode" for _, text in link.telemetry.texts)
    # the runner sees the failsafe at its next check and leaves the flight to the vehicle; another drone is offered
    await w.until(lambda: m.state is MissionState.RETURNING, 5, "the failsafe seen by the runner")
    await w.eventually(lambda: steps(w, m.id), lambda s: "failsafe" in s, 2, "the failsafe step in the timeline")
    await w.until(
        lambda: any(x.state is MissionState.OFFERED and x.drone_id != m.drone_id for x in w.rt.center.incident_missions(inc.id)),
        10, "another drone offered",
    )
    # down at the scene, away from any station: the mission ended there (not "completed" as if it came home),
    # the drone is out of service until someone recovers it, and commanders are told where it is
    await w.until(lambda: m.state is MissionState.ABORTED, 60, "landed")
    assert "landed away from any station" in (m.reason or "")
    drone = w.rt.center.drones[m.drone_id]
    assert drone.state is DroneState.MAINTENANCE
    assert geo.distance_m(drone.lat, drone.lon, inc.lat, inc.lon) < 30
    assert not await w.faults.armed(m.drone_id)
    assert (await steps(w, m.id))[-2:] == ["failsafe", "landed"]

    async def alerts() -> list[str]:
        db = w.rt.db
        return [e.data["text"] for e in await db.read(lambda c: db.events_after(c, 0)) if e.type == "alert"]

    texts = await w.eventually(alerts, lambda t: any("landed away from any station" in x for x in t), 5, "the alert")
    assert any("EKF Failsafe" in x for x in texts), "the failsafe alert says what the vehicle said"



async def test_link_cut_longer_than_the_gcs_failsafe_the_vehicle_comes_home_by_itself(world: World) -> None:
    """The connection drops and cannot be re-opened for 8 s: longer than FS_GCS_TIMEOUT (5 s in wall time here).
    The vehicle hears no ground station, and its own GCS failsafe takes it home in RTL; when the link returns the
    controller finds it so, follows it down, and another drone is offered for the incident."""
    w = world
    inc, m = await open_near(w, 9)
    drone = w.rt.center.drones[m.drone_id]
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: inc.status is IncidentStatus.ON_SCENE, 60, "on scene")
    await w.faults.cut_link(m.drone_id, 8.0, "close")
    await w.until(lambda: drone.state is DroneState.LOST_LINK, 5, "lost link detected")
    # seen from the vehicle's side of the cut: no ground-station heartbeat for FS_GCS_TIMEOUT, RTL
    await w.eventually(lambda: w.faults.mode(m.drone_id), lambda mode: mode == CopterMode.RTL, 8, "the vehicle's GCS failsafe")
    await w.until(lambda: m.state is MissionState.RETURNING, 30, "the link back and the failsafe seen")
    await w.until(
        lambda: any(x.state is MissionState.OFFERED and x.drone_id != m.drone_id for x in w.rt.center.incident_missions(inc.id)),
        10, "another drone offered",
    )
    await w.until(lambda: m.state is MissionState.COMPLETED, 120, "home and landed")
    assert drone.state in (DroneState.STANDBY, DroneState.CHARGING)
    recorded = await steps(w, m.id)
    assert recorded.index("link lost") < recorded.index("link restored") < recorded.index("failsafe") < recorded.index("landed")
    assert recorded[-1] == "landed"
