"""The mission runner under a pilot's commands, against the fake vehicle of tests/fleet (no sockets).

A command stops the controller's own behaviour (no more targets of its own), the runner then watches the
pilot's flight (mode, battery, arrival); refusals send nothing; search drones pause their AUTO sweep and pick
it up where they left off.
"""

from __future__ import annotations

import asyncio

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.control.commands import (
    Altitude, CommandRefused, Direction, FlyTo, Hold, Land, Orbit, Resume, Return, Roi,
)
from controller.domain.alerts import AlertKind
from controller.fleet.copter import CopterMode
from controller.fleet.mission_runner import MODE_REPORT_S, PILOT_WATCH_S, MissionRunner, Phase
from tests.fleet.fake_vehicle import FakeVehicle, RecordingReports
from tests.fleet.test_mission_runner import (  # noqa: F401  (fly: the fixture)
    HOME, SIMPLE, Fly, fly, has, in_order, incident, latlon, mission, sweep_plan, vehicle_at,
)

REPOSITION = mavlink2.MAV_CMD_DO_REPOSITION
BY = "pilot pilot-a"


async def until(pred, timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def en_route(fly: Fly, speed_ms: float = 400.0) -> tuple[FakeVehicle, RecordingReports, MissionRunner]:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME, speed_ms=speed_ms)
    runner = fly(vehicle, reports, mission(), incident(2500.0, 0.0), SIMPLE.context(HOME))
    await until(lambda: runner.phase is Phase.EN_ROUTE and vehicle.targets, what="en route")
    return vehicle, reports, runner


async def test_fly_to_takes_the_flight_over_and_the_controller_sends_nothing_more(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    target = latlon(-800.0, 600.0)
    result = await runner.command(FlyTo(*target, 70.0), BY)
    assert runner.piloted and runner.phase is Phase.PILOT
    assert "70 m" in result.detail
    ((p1, p2, _, _, lat, lon, alt),) = vehicle.sent(REPOSITION)
    assert (p1, p2, alt) == (-1.0, 1.0, 70.0) and (lat, lon) == pytest.approx(target)
    targets_then = len(vehicle.targets)
    await until(lambda: geo.distance_m(*vehicle.position, *target) < 1.0, what="at the pilot's target")
    await asyncio.sleep(1.0)  # the controller's re-sends would come every 0.5 s
    assert len(vehicle.targets) == targets_then, "the controller kept sending its own targets"
    assert "step:pilot in control" in reports.timeline()
    assert "flight_on_scene" not in reports.timeline()  # the pilot took it elsewhere


async def test_taken_over_en_route_it_is_on_scene_when_the_pilot_flies_it_there(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly, speed_ms=400.0)
    await runner.command(Hold(), BY)
    assert reports.of("flight_on_scene") == []
    await runner.command(FlyTo(*latlon(2500.0, 10.0), 60.0), BY)
    await reports.wait_until(has("flight_on_scene"), 10)
    assert reports.steps()["on scene"][0] == f"flown there by {BY}"


async def test_a_refused_command_sends_nothing_and_leaves_the_controller_flying(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    before = list(vehicle.commands)
    with pytest.raises(CommandRefused) as info:
        await runner.command(FlyTo(*latlon(0.0, 3500.0), 60.0), BY)  # inside the square zone
    assert info.value.status == 409 and "square" in info.value.detail
    with pytest.raises(CommandRefused) as info:
        await runner.command(FlyTo(*latlon(100.0, 100.0), 500.0), BY)
    assert (info.value.status, info.value.field) == (422, "alt_m")
    assert vehicle.commands == before and not runner.piloted
    await reports.wait_until(has("flight_on_scene"), 10)  # the controller flew on to the scene


async def test_no_flight_command_before_it_is_airborne_on_its_way(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME, ready_after_s=2.0)
    runner = fly(vehicle, reports, mission(), incident(2500.0, 0.0), SIMPLE.context(HOME))
    await asyncio.sleep(0.2)
    with pytest.raises(CommandRefused) as info:
        await runner.command(FlyTo(*latlon(100.0, 100.0), 60.0), BY)
    assert info.value.status == 409 and "preflight" in info.value.detail
    assert vehicle.sent(REPOSITION) == []
    with pytest.raises(CommandRefused):
        await runner.command(Resume(), BY)


async def test_orbit_flies_to_the_centre_then_circles_and_a_circle_is_not_a_failsafe(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    centre = latlon(1000.0, 500.0)
    await runner.command(Orbit(*centre, 80.0, Direction.CCW, 6.0), BY)
    assert vehicle.params == {"CIRCLE_RADIUS": 8000.0, "CIRCLE_RATE": pytest.approx(-4.297, abs=1e-3), "CIRCLE_OPTIONS": 12.0}
    await until(lambda: vehicle.telemetry.mode == CopterMode.CIRCLE, what="CIRCLE")
    assert geo.distance_m(*vehicle.position, *centre) < 5.0
    assert [p[1] for p in vehicle.sent(mavlink2.MAV_CMD_DO_SET_MODE)][-1] == CopterMode.CIRCLE
    await asyncio.sleep(1.5)
    assert "step:failsafe" not in reports.timeline() and runner.piloted
    assert "step:orbiting" in reports.timeline()


async def test_a_camera_command_does_not_take_the_flight_over(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    await runner.command(Roi(*latlon(0.0, 3500.0)), BY)  # looking into a zone is fine
    assert vehicle.sent(mavlink2.MAV_CMD_DO_SET_ROI_LOCATION) and not runner.piloted
    await reports.wait_until(has("flight_on_scene"), 10)


async def test_a_mode_the_pilot_did_not_set_is_a_failsafe(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    await runner.command(Hold(), BY)
    await asyncio.sleep(1.6)  # past the mode report grace
    vehicle.telemetry.mode = int(CopterMode.RTL)
    await reports.wait_until(has("step:failsafe"), 5)
    assert "RTL" in reports.steps()["failsafe"][0]
    await reports.wait_until(has("flight_returning"), 5)
    assert [kind for _, kind in reports.alerts] == [AlertKind.FAILSAFE]


async def test_battery_low_under_the_pilot_brings_it_home(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    await runner.command(Hold(), BY)
    vehicle.telemetry.battery_pct = 5.0
    await reports.wait_until(has("step:battery reserve", "flight_landed"), 10)
    assert in_order(reports.timeline(), ["step:pilot in control", "step:battery reserve", "flight_returning", "flight_landed"]), reports.timeline()


async def test_land_here_ends_the_mission_landed_there_by_whom(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    with pytest.raises(CommandRefused) as info:
        await runner.command(Land(confirm=False), BY)
    assert info.value.field == "confirm" and vehicle.telemetry.mode == CopterMode.GUIDED
    await runner.command(Land(confirm=True), BY)
    await reports.wait_until(has("flight_landed"), 10)
    assert vehicle.on_ground
    assert reports.of("flight_returning") == [("flight_returning", "M-1", f"landing here by {BY}")]
    assert reports.of("flight_landed") == [("flight_landed", "D-1", f"landed here by {BY}")]
    assert "step:failsafe" not in reports.timeline()


async def test_return_takes_the_existing_way_home(fly: Fly) -> None:
    vehicle, reports, runner = await en_route(fly)
    result = await runner.command(Return(), BY)
    assert "returning" in result.detail
    await reports.wait_until(has("flight_landed"), 10)
    assert reports.of("flight_returning") == [("flight_returning", "M-1", f"returned by {BY}")]
    assert CopterMode.RTL in vehicle.modes
    with pytest.raises(CommandRefused):
        await runner.command(Hold(), BY)


async def test_a_search_drone_pauses_its_sweep_and_resumes_where_it_left_off(fly: Fly) -> None:
    plan = sweep_plan((100.0, 100.0), legs=4)
    reports = RecordingReports([plan])
    vehicle = vehicle_at(SIMPLE, HOME, auto_step_s=0.3, speed_ms=500.0)
    runner = fly(vehicle, reports, mission(), incident(300.0, 150.0, category="missing_person"), SIMPLE.context(HOME))
    await until(lambda: runner.phase is Phase.SEARCHING and (vehicle.telemetry.mission_seq or 0) >= 3, what="sweeping")
    result = await runner.command(Hold(), BY)
    assert runner.pilot is not None and runner.pilot.paused_sweep
    assert vehicle.telemetry.mode == CopterMode.GUIDED
    seq = vehicle.telemetry.mission_seq
    await asyncio.sleep(1.0)
    assert vehicle.telemetry.mission_seq == seq, "the sweep went on while paused"
    assert "step:failsafe" not in reports.timeline()
    progress_then = [c[2] for c in reports.of("search_progress")]
    await runner.command(FlyTo(*latlon(200.0, 400.0), 60.0), BY)
    await runner.command(Resume(), BY)
    assert not runner.piloted and runner.phase is Phase.SEARCHING
    assert vehicle.telemetry.mode == CopterMode.AUTO
    await reports.wait_until(has("step:search pattern complete", "flight_landed"), 15)
    progress = [c[2] for c in reports.of("search_progress")]
    assert progress == sorted(progress) and progress[-1] == len(plan.waypoints)
    assert progress[: len(progress_then)] == progress_then  # counted on from where it was, not from the start
    assert len(vehicle.missions) == 1, "the sweep was not uploaded again"
    assert result.detail == "hold position"


# --- the command and the watcher: the mode the runner expects changes with the decision to send ---------------
#
# `dronefleet bench control` (issue 17): a flight command sent while the drone orbits (CIRCLE) or sweeps (AUTO)
# switches the vehicle as soon as it accepts it; the runner's watcher ran between that and the answer, saw the new
# mode, declared a failsafe and sent the drone home; the command then hit an assert (HTTP 500) or answered 200
# "accepted" while the drone turned home. The fake vehicle's delays open the same window deterministically.

#: Longer than the watcher's period, so it looks at the vehicle at least once while the command is in flight.
SLOW_S = PILOT_WATCH_S * 2.5


async def orbiting(fly: Fly) -> tuple[FakeVehicle, RecordingReports, MissionRunner]:
    """A drone circling a pilot's orbit centre, past the mode report grace of its switch to CIRCLE."""
    vehicle, reports, runner = await en_route(fly)
    await runner.command(Orbit(*latlon(1000.0, 500.0), 80.0, Direction.CW, 6.0), BY)
    await reports.wait_until(has("step:orbiting"), 10)
    assert vehicle.telemetry.mode == CopterMode.CIRCLE
    await asyncio.sleep(MODE_REPORT_S + 0.1)
    return vehicle, reports, runner


async def no_failsafe_for(reports: RecordingReports, runner: MissionRunner, seconds: float) -> None:
    await asyncio.sleep(seconds)
    assert "step:failsafe" not in reports.timeline(), reports.steps().get("failsafe")
    assert reports.of("flight_returning") == []


async def test_altitude_while_orbiting_answered_after_the_switch_to_guided_is_not_a_failsafe(fly: Fly) -> None:
    """Bench run 2, MSN-000005: `altitude` while orbiting -> 500 (assert) and the drone flew home."""
    vehicle, reports, runner = await orbiting(fly)
    vehicle.ack_delay_s = SLOW_S  # GUIDED shows at once, the ACK comes after the watcher looked
    result = await runner.command(Altitude(70.0), BY)
    assert "70 m" in result.detail and "CIRCLE once over the centre" in result.detail
    assert runner.piloted and runner.pilot is not None and runner.pilot.orbit is not None
    await no_failsafe_for(reports, runner, MODE_REPORT_S + 0.5)
    # the orbit is flown again at the new height: CIRCLE again once over the centre
    await until(lambda: vehicle.telemetry.mode == CopterMode.CIRCLE and abs(vehicle.telemetry.alt_rel_m - 70.0) < 1.0,
                what="orbiting again at 70 m")
    assert runner.piloted


async def test_hold_while_orbiting_answered_after_the_switch_to_guided_is_not_a_failsafe(fly: Fly) -> None:
    """Bench run 2, MSN-000011: `hold` while orbiting answered 200 while the runner sent the drone home."""
    vehicle, reports, runner = await orbiting(fly)
    vehicle.ack_delay_s = SLOW_S
    result = await runner.command(Hold(), BY)
    assert result.detail == "hold position"
    await no_failsafe_for(reports, runner, MODE_REPORT_S + 0.5)
    assert runner.piloted and vehicle.telemetry.mode == CopterMode.GUIDED
    assert runner.pilot is not None and runner.pilot.orbit is None


@pytest.mark.parametrize("trouble", ["vehicle failsafe", "battery"])
async def test_the_flight_taken_back_while_a_command_is_sent_answers_409_with_why(fly: Fly, trouble: str) -> None:
    """A real failsafe (the vehicle's own RTL, the battery reserve) during the send: the drone goes home and the
    pilot is told so (409), not 200 "accepted" and not a 500."""
    vehicle, reports, runner = await orbiting(fly)
    vehicle.ack_delay_s = SLOW_S
    sent = asyncio.create_task(runner.command(Hold(), BY))
    await until(lambda: vehicle.sent(REPOSITION)[-1:] and vehicle.telemetry.mode == CopterMode.GUIDED
                and len(vehicle.sent(REPOSITION)) == 2, what="the hold accepted")
    if trouble == "battery":
        vehicle.telemetry.battery_pct = 5.0
    else:
        vehicle.telemetry.mode = int(CopterMode.RTL)
    with pytest.raises(CommandRefused) as info:
        await sent
    assert info.value.status == 409
    assert ("battery reserve" if trouble == "battery" else "vehicle switched to RTL") in info.value.detail
    assert not runner.piloted
    await reports.wait_until(has("flight_returning"), 5)


async def test_hold_while_sweeping_not_yet_accepted_is_not_a_failsafe(fly: Fly) -> None:
    """Taken out of its AUTO sweep: until the vehicle accepts the command it is still in AUTO, and that is fine."""
    plan = sweep_plan((100.0, 100.0), legs=10)  # long enough to be still sweeping after the slow answers
    reports = RecordingReports([plan])
    vehicle = vehicle_at(SIMPLE, HOME, auto_step_s=0.3, speed_ms=500.0)
    runner = fly(vehicle, reports, mission(), incident(300.0, 150.0, category="missing_person"), SIMPLE.context(HOME))
    await until(lambda: runner.phase is Phase.SEARCHING and (vehicle.telemetry.mission_seq or 0) >= 3, what="sweeping")
    await asyncio.sleep(MODE_REPORT_S + 0.1)
    vehicle.accept_delay_s = SLOW_S  # still AUTO while the watcher looks
    await runner.command(Hold(), BY)
    vehicle.accept_delay_s, vehicle.ack_delay_s = 0.0, SLOW_S
    await asyncio.sleep(MODE_REPORT_S + 0.1)
    await runner.command(Resume(), BY)  # AUTO shows at once, the ACK comes after the watcher looked
    assert runner.phase is Phase.SEARCHING and not runner.piloted
    await reports.wait_until(has("step:search pattern complete", "flight_landed"), 15)
    assert "step:failsafe" not in reports.timeline(), reports.steps().get("failsafe")


async def test_land_here_answered_after_the_switch_to_land_is_not_a_failsafe(fly: Fly) -> None:
    vehicle, reports, runner = await orbiting(fly)
    vehicle.ack_delay_s = SLOW_S
    await runner.command(Land(confirm=True), BY)
    await reports.wait_until(has("flight_landed"), 10)
    assert reports.of("flight_landed") == [("flight_landed", "D-1", f"landed here by {BY}")]
    assert "step:failsafe" not in reports.timeline(), reports.steps().get("failsafe")


async def test_a_new_command_supersedes_a_pending_orbit(fly: Fly) -> None:
    """On its way to an orbit's centre, a new command arrives: the old orbit is not entered in the middle of it."""
    vehicle, reports, runner = await en_route(fly, speed_ms=100.0)
    centre = latlon(2000.0, 0.0)
    await runner.command(Orbit(*centre, 80.0, Direction.CW, 6.0), BY)
    assert runner.pilot is not None and runner.pilot.orbit_pending and runner.pilot.target is not None
    alt = runner.pilot.target.alt_m
    # the new target is the old centre itself: the drone is over it while the fly-to is still being answered
    vehicle.speed_ms, vehicle.ack_delay_s = 20_000.0, SLOW_S
    await runner.command(FlyTo(*centre, alt), BY)
    assert runner.pilot is not None and not runner.pilot.orbit_pending and runner.pilot.orbit is None
    await no_failsafe_for(reports, runner, MODE_REPORT_S + 0.5)
    assert vehicle.telemetry.mode == CopterMode.GUIDED and runner.piloted
    assert CopterMode.CIRCLE not in [CopterMode(int(p[1])) for p in vehicle.sent(mavlink2.MAV_CMD_DO_SET_MODE)]
    assert "step:orbiting" not in reports.timeline()


async def test_a_command_the_vehicle_refuses_leaves_the_orbit_as_it_was(fly: Fly) -> None:
    vehicle, reports, runner = await orbiting(fly)
    vehicle.refuse = {REPOSITION}
    with pytest.raises(CommandRefused) as info:
        await runner.command(Hold(), BY)
    assert info.value.status == 502
    assert runner.piloted and runner.pilot is not None and runner.pilot.orbit is not None
    await no_failsafe_for(reports, runner, MODE_REPORT_S + 0.5)
    assert vehicle.telemetry.mode == CopterMode.CIRCLE
