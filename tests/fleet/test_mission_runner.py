"""MissionRunner against a fake vehicle (tests/fleet/fake_vehicle.py): no sockets, real config, real return rule.

Layouts are drawn in the city's local metres (config.frame) and converted to
lat/lon for the vehicle; no-fly zones are built once as GeoJSON (for the
runner's NoFlyGuard) and the same ring, read back into metres, goes to the
DispatchEngine, exactly as `DispatchEngine.from_config` does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from shapely.geometry import Polygon

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.config import load_config
from controller.config.models import FlightProfile, NoFlyCollection
from controller.dispatch.base import DroneCandidate, IncidentRequest
from controller.dispatch.engine import DispatchEngine
from controller.dispatch.returns import StationSite
from controller.domain.alerts import AlertKind
from controller.domain.entities import Incident, Mission
from controller.domain.states import DroneState, MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.mission_runner import FlightContext, MissionRunner
from controller.fleet.nofly import NoFlyGuard
from controller.fleet.sweep import SweepMission
from controller.search.plan import SearchPlan
from tests import support
from tests.fleet.fake_vehicle import ARM, MISSION_START, TAKEOFF, FakeVehicle, RecordingReports

CFG = load_config(support.CONFIGS)
FRAME = CFG.frame
MODEL_ID = next(iter(CFG.drone_models))
MODEL = CFG.drone_models[MODEL_ID]
TRANSIT = CFG.policy.transit_altitude_m
SCENE = CFG.policy.engine.scene_altitude_m
RESERVE = CFG.policy.battery_reserve_pct
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
#: The configured profile with timeouts short enough for a fake vehicle that flies kilometres in a blink.
PROFILE: FlightProfile = CFG.flight.model_copy(
    update={
        "arm_ready_timeout_s": 5.0,
        "takeoff_timeout_s": 5.0,
        "target_resend_s": 0.5,
        "command_timeout_s": 0.2,
        "command_retries": 1,
        "on_scene": "hold",
    }
)
MARGIN = PROFILE.battery_return_margin_pct


def latlon(x: float, y: float) -> tuple[float, float]:
    return FRAME.to_latlon(x, y)


def zones_geojson(zones: dict[str, Sequence[tuple[float, float]]]) -> NoFlyCollection:
    """A FeatureCollection shaped like configs/nofly.geojson from rings given in local metres."""
    features = []
    for zone_id, ring in zones.items():
        closed = [*ring, ring[0]]
        coords = [[lon, lat] for lat, lon in (latlon(x, y) for x, y in closed)]
        features.append(
            {
                "type": "Feature",
                "properties": {"id": zone_id, "name": f"test zone {zone_id}", "reason": "test"},
                "geometry": {"type": "Polygon", "coordinates": [coords]},
            }
        )
    return NoFlyCollection.model_validate({"type": "FeatureCollection", "features": features})


class World:
    """Stations and no-fly zones in local metres, with the guard and the engine built from the same rings."""

    def __init__(self, stations: dict[str, tuple[float, float]], zones: dict[str, Sequence[tuple[float, float]]]) -> None:
        self.sites = [StationSite(sid, x, y, frozenset({MODEL_ID})) for sid, (x, y) in stations.items()]
        self.nofly = zones_geojson(zones)
        self.guard = NoFlyGuard(self.nofly, FRAME)
        polygons = [Polygon(FRAME.ring_to_xy(f.geometry.coordinates[0])) for f in self.nofly.features]
        self.engine = DispatchEngine(CFG.policy, self.sites, polygons, CFG.drone_models)

    def station(self, station_id: str) -> StationSite:
        return next(s for s in self.sites if s.id == station_id)

    def station_latlon(self, station_id: str) -> tuple[float, float]:
        s = self.station(station_id)
        return latlon(s.x, s.y)

    def context(self, home: str, profile: FlightProfile = PROFILE) -> FlightContext:
        return FlightContext(
            profile=profile,
            model_id=MODEL_ID,
            model=MODEL,
            policy=CFG.policy,
            guard=self.guard,
            returns=self.engine.returns,
            frame=FRAME,
            station=(home, *self.station_latlon(home)),
        )


#: The everyday layout: the drone's station at the origin, another station 6 km east, and a zone (a square
#: 1 km across) 3-4 km north, clear of the flights unless a test aims at it.
HOME = "S-HOME"
SIMPLE = World(
    {HOME: (0.0, 0.0), "S-EAST": (6000.0, 0.0)},
    {"square": [(-500.0, 3000.0), (500.0, 3000.0), (500.0, 4000.0), (-500.0, 4000.0)]},
)


def incident(x: float, y: float, *, category: str = "traffic_accident", **kw) -> Incident:
    lat, lon = latlon(x, y)
    return Incident.new("INC-1", at=NOW, grade=2, category=category, lat=lat, lon=lon, created_by="test", **kw)


def mission(state: MissionState = MissionState.ACCEPTED, plan: SearchPlan | None = None, station: str = HOME) -> Mission:
    return Mission.new(
        "M-1", at=NOW, state=state, incident_id="INC-1", drone_id="D-1", station_id=station, expires_at=NOW,
        eta_s=100.0, distance_m=1000.0, drone_prior_state=DroneState.STANDBY, plan=plan,
    )


def vehicle_at(world: World, station: str, **kw) -> FakeVehicle:
    return FakeVehicle("D-1", *world.station_latlon(station), **kw)


Fly = Callable[..., MissionRunner]


@pytest.fixture
async def fly() -> AsyncIterator[Fly]:
    """Start a fake vehicle and a runner on it; both are stopped when the test ends."""
    made: list[tuple[FakeVehicle, MissionRunner]] = []

    def start(vehicle: FakeVehicle, reports: RecordingReports, m: Mission, inc: Incident, ctx: FlightContext,
              resume: bool = False) -> MissionRunner:
        vehicle.start()
        runner = MissionRunner(vehicle, reports, m, inc, ctx)  # type: ignore[arg-type]
        runner.start(resume=resume)
        made.append((vehicle, runner))
        return runner

    yield start
    for vehicle, runner in made:
        await runner.stop()
        await vehicle.stop()


def has(*names: str) -> Callable[[RecordingReports], bool]:
    return lambda r: all(n in r.timeline() for n in names)


def in_order(timeline: list[str], expected: Sequence[str]) -> bool:
    """`expected` appears in `timeline` as a subsequence."""
    it = iter(timeline)
    return all(any(x == e for x in it) for e in expected)


def assert_legs_clear(guard: NoFlyGuard, vehicle: FakeVehicle) -> None:
    for sent in vehicle.targets:
        assert guard.zone_at(*sent.target) is None, f"target {sent.target} inside a zone"
        assert guard.zone_crossed(sent.origin, sent.target) is None, f"leg {sent.origin} -> {sent.target} crosses a zone"


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return geo.distance_m(a[0], a[1], b[0], b[1])


# --- a normal mission -----------------------------------------------------------------------------


async def test_normal_mission_reports_every_step_in_order(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME, ready_after_s=0.2, arm_refusals=[["PreArm: Need Position Estimate"]])
    inc = incident(1500.0, 800.0)
    runner = fly(vehicle, reports, mission(), inc, SIMPLE.context(HOME))
    await reports.wait_until(has("flight_on_scene"))

    assert reports.timeline() == [
        "step:preflight", "step:mode", "step:armed", "step:takeoff", "flight_launched", "step:departure height",
        "step:target sent", "step:on scene", "flight_on_scene",
    ]
    steps = reports.steps()
    assert steps["mode"] == ("GUIDED", True)
    assert steps["armed"][0] == "after 2 attempt(s)"  # the transient refusal was retried
    assert all(c[1] == "M-1" for c in reports.calls if c[0] != "flight_landed")
    assert reports.of("flight_on_scene") == [("flight_on_scene", "M-1", False)]
    # what the vehicle was told: GUIDED (acknowledged DO_SET_MODE), arm twice, straight up to the departure
    # height only, then a leg climbing to transit height on the way (1.7 km is long enough for climbing there
    # and down again to cost nothing), a descent point, and the scene at the scene height
    (set_mode,) = vehicle.sent(mavlink2.MAV_CMD_DO_SET_MODE)
    assert set_mode[1] == CopterMode.GUIDED and vehicle.modes == []
    assert vehicle.sent(ARM) == [(1.0,), (1.0,)]
    (takeoff,) = vehicle.sent(TAKEOFF)
    assert takeoff[6] == CFG.policy.departure_altitude_m
    descent_point, over_scene = vehicle.targets
    assert descent_point.alt == TRANSIT and descent_point.mode == CopterMode.GUIDED
    descent_m = MODEL.cruise_speed_ms * (TRANSIT - SCENE) / MODEL.descent_rate_ms
    assert metres(descent_point.target, (inc.lat, inc.lon)) == pytest.approx(descent_m, abs=1.0)
    assert over_scene.target == (inc.lat, inc.lon) and over_scene.alt == SCENE
    assert metres(vehicle.position, (inc.lat, inc.lon)) <= PROFILE.arrival_radius_m
    assert vehicle.telemetry.armed
    assert not runner.finished.is_set()  # holding over the scene until recalled


async def test_flight_to_the_scene_detours_around_a_zone(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME)
    inc = incident(0.0, 6000.0)  # due north, beyond the square
    fly(vehicle, reports, mission(), inc, SIMPLE.context(HOME))
    await reports.wait_until(has("flight_on_scene"))

    assert "turning points around a no-fly zone" in reports.steps()["detour"][0]
    assert len(vehicle.targets) >= 2
    assert vehicle.targets[-1].target == (inc.lat, inc.lon)
    assert_legs_clear(SIMPLE.guard, vehicle)


# --- recall, refusals, no-fly ---------------------------------------------------------------------


async def test_recall_in_flight_brings_the_drone_home_with_rtl(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME, speed_ms=400.0)  # slow enough to be caught on the way
    home = vehicle.position
    runner = fly(vehicle, reports, mission(), incident(3000.0, 1000.0), SIMPLE.context(HOME))
    await reports.wait_until(has("step:target sent"))
    while metres(vehicle.position, home) < 200:
        await asyncio.sleep(0.02)
    runner.recall("incident closed by command")
    await reports.wait_until(has("flight_landed"))

    tl = reports.timeline()
    assert "flight_on_scene" not in tl
    assert tl[tl.index("step:recalled"):] == ["step:recalled", "flight_returning", "step:RTL", "step:landed", "flight_landed"]
    assert reports.of("flight_returning") == [("flight_returning", "M-1", "incident closed by command")]
    assert reports.of("flight_landed") == [("flight_landed", "D-1", "landed")]
    assert vehicle.modes[-1] == CopterMode.RTL
    assert vehicle.on_ground and metres(vehicle.position, home) < 1.0
    await runner.finished.wait()


async def test_permanent_arm_refusal_fails_the_flight_to_maintenance(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME, arm_refusals=[["PreArm: Compass not calibrated"]])
    runner = fly(vehicle, reports, mission(), incident(1500.0, 800.0), SIMPLE.context(HOME))
    await reports.wait_until(has("flight_failed"))
    await runner.finished.wait()

    ((_, mission_id, reason, to_maintenance),) = reports.of("flight_failed")
    assert mission_id == "M-1" and to_maintenance is True
    assert "Compass not calibrated" in reason
    # ... and the drone on the ground is reported down (the centre keeps it in maintenance)
    assert reports.timeline() == ["step:preflight", "step:mode", "step:failed", "flight_failed", "flight_landed"]
    assert reports.steps()["failed"][1] is False
    assert vehicle.sent(ARM) == [(1.0,)]  # a permanent refusal is not retried
    assert vehicle.sent(TAKEOFF) == [] and vehicle.targets == []
    assert vehicle.on_ground


async def test_transient_refusals_that_never_clear_fail_after_the_attempts(fly: Fly) -> None:
    reports = RecordingReports()
    refusal = ["PreArm: Need Position Estimate"]
    vehicle = vehicle_at(SIMPLE, HOME, arm_refusals=[refusal, refusal])
    ctx = SIMPLE.context(HOME, PROFILE.model_copy(update={"arm_attempts": 1}))
    runner = fly(vehicle, reports, mission(), incident(1500.0, 800.0), ctx)
    await runner.finished.wait()

    ((_, _, reason, to_maintenance),) = reports.of("flight_failed")
    assert to_maintenance is True
    assert reason == "arming refused 1 times: PreArm: Need Position Estimate"
    assert vehicle.sent(TAKEOFF) == []


async def test_scene_in_a_no_fly_zone_blocks_the_incident_and_sends_no_target(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME)
    inc = incident(0.0, 3500.0)  # the middle of the square
    runner = fly(vehicle, reports, mission(), inc, SIMPLE.context(HOME))
    await runner.finished.wait()

    assert reports.timeline() == ["step:preflight", "step:no-fly", "block_incident", "flight_failed", "flight_landed"]
    ((_, incident_id, why),) = reports.of("block_incident")
    assert incident_id == "INC-1" and "square" in why
    ((_, _, reason, to_maintenance),) = reports.of("flight_failed")
    assert reason.startswith("refused:") and to_maintenance is False
    assert vehicle.targets == [] and vehicle.commands == [] and vehicle.modes == []
    assert vehicle.on_ground


# --- search ---------------------------------------------------------------------------------------


def sweep_plan(start: tuple[float, float], legs: int = 3, length: float = 400.0, spacing: float = 60.0) -> SearchPlan:
    x0, y0 = start
    wps = []
    for i in range(legs):
        a, b = (x0, y0 + i * spacing), (x0 + length, y0 + i * spacing)
        wps += [a, b] if i % 2 == 0 else [b, a]
    return SearchPlan(
        strip=1, strips=3, waypoints=tuple(latlon(x, y) for x, y in wps),
        altitude_m=CFG.policy.search.altitude_m, speed_ms=CFG.policy.search.speed_ms,
    )


async def test_search_uploads_the_sweep_and_reports_progress(fly: Fly) -> None:
    plan = sweep_plan((800.0, 200.0))  # more than SEARCH_TRANSIT_M away: flown to in GUIDED first
    reports = RecordingReports([plan])
    vehicle = vehicle_at(SIMPLE, HOME, auto_step_s=0.25)
    inc = incident(1000.0, 260.0, category="missing_person")
    m = mission()
    fly(vehicle, reports, m, inc, SIMPLE.context(HOME))
    await reports.wait_until(has("flight_landed"), 15)

    sweep = SweepMission(plan)
    assert vehicle.missions == [sweep.items()]
    assert [p[1] for p in vehicle.sent(mavlink2.MAV_CMD_DO_SET_MODE)] == [CopterMode.GUIDED]
    assert vehicle.modes == [CopterMode.AUTO]
    assert vehicle.sent(MISSION_START) == [(0.0, 0.0)]
    assert vehicle.targets[-1].target == plan.waypoints[0]  # the transit to the first waypoint
    tl = reports.timeline()
    assert in_order(tl, [
        "flight_launched", "search_plan", "step:at the search area", "step:search plan uploaded", "flight_on_scene",
        "step:searching", "search_progress", "step:search pattern complete", "flight_returning", "step:landed",
        "flight_landed",
    ])
    assert reports.of("flight_on_scene") == [("flight_on_scene", "M-1", True)]
    assert "6 waypoints" in reports.steps()["search plan uploaded"][0]
    progress = [c[2] for c in reports.of("search_progress")]
    assert progress == sorted(progress) and progress[-1] == len(plan.waypoints)
    assert any(0 < p < len(plan.waypoints) for p in progress), progress  # reported while sweeping, not only at the end
    assert reports.of("flight_returning") == [("flight_returning", "M-1", "search pattern complete")]
    assert_legs_clear(SIMPLE.guard, vehicle)
    assert vehicle.on_ground


# --- the battery ----------------------------------------------------------------------------------


async def test_battery_below_the_return_floor_raises_a_return(fly: Fly) -> None:
    reports = RecordingReports()
    vehicle = vehicle_at(SIMPLE, HOME)
    runner = fly(vehicle, reports, mission(), incident(1500.0, 800.0), SIMPLE.context(HOME))
    await reports.wait_until(has("flight_on_scene"))
    opts = runner.return_options()
    assert opts.site is not None and opts.site[0] == HOME
    floor = opts.site_pct + RESERVE + MARGIN

    vehicle.telemetry.battery_pct = floor + 1.0  # above the floor: keeps holding
    await asyncio.sleep(1.3)
    assert "step:battery reserve" not in reports.timeline()

    vehicle.telemetry.battery_pct = floor - 1.0
    await reports.wait_until(has("flight_landed"))
    tl = reports.timeline()
    assert tl[tl.index("step:battery reserve"):] == [
        "step:battery reserve", "flight_returning", "step:RTL", "step:landed", "flight_landed",
    ]
    detail, ok = reports.steps()["battery reserve"]
    assert ok is False and detail.startswith(f"{floor - 1.0:.0f}% left")
    assert reports.of("flight_returning")[0][2].startswith("battery reserve:")
    assert vehicle.modes[-1] == CopterMode.RTL and vehicle.on_ground
    assert reports.alerts == [("M-1", AlertKind.BATTERY_LOW)]  # people are told, not only the log


# --- THE KEY TEST: the runner diverts to the station the engine planned with ---------------------------
#
# Local metres, the drone hovering over the scene S at the origin:
#
#          A (home, 12 km north: out of reach)
#
#                         |Z|      Z: a no-fly zone 200 m wide, 12 km long
#   C  . . . . . . .  S   |Z|   B
# (-3.5 km)               |Z|  (+2 km)
#
# B is the nearest station in a straight line, but the zone lies between: routed, B is ~13 km.
# C is farther in a straight line but clear: routed, it is the quickest. The runner must land at C.

DIVERT = World(
    {"A": (0.0, 12_000.0), "B": (2000.0, 0.0), "C": (-3500.0, 0.0)},
    {"wall": [(900.0, -6000.0), (1100.0, -6000.0), (1100.0, 6000.0), (900.0, 6000.0)]},
)
SCENE_XY = (0.0, 0.0)


def divert_setup(**vehicle_kw) -> tuple[FakeVehicle, Mission, Incident, float]:
    """A drone from A resumed ON_SCENE over S in GUIDED, with its battery just under the return floor for C."""
    returns = DIVERT.engine.returns
    cruise = MODEL.cruise_speed_ms
    site = returns.site(*SCENE_XY, MODEL_ID, cruise)
    assert site is not None
    floor_c = returns.need_pct(site.flight_s, TRANSIT, MODEL) + RESERVE + MARGIN
    battery = floor_c - 0.5
    vehicle = FakeVehicle(
        "D-1", *latlon(*SCENE_XY), alt_rel_m=TRANSIT, armed=True, mode=CopterMode.GUIDED, battery_pct=battery,
        home=DIVERT.station_latlon("A"), **vehicle_kw,
    )
    m = mission(MissionState.ON_SCENE, station="A")
    return vehicle, m, incident(*SCENE_XY), battery


async def test_runner_diverts_to_the_station_the_engine_planned_for(fly: Fly) -> None:
    """Acceptance: on a layout where the straight-line rule and the routed rule disagree, the runner diverts
    to the same station the engine's feasibility planned the flight with."""
    returns = DIVERT.engine.returns
    cruise = MODEL.cruise_speed_ms
    sx, sy = SCENE_XY
    # the premise: straight line says B, routed says C, and home A is far beyond the battery
    straight = {s.id: math.hypot(s.x - sx, s.y - sy) for s in DIVERT.sites}
    routed = {s.id: returns.flight_time_to(sx, sy, s.x, s.y, cruise) for s in DIVERT.sites}
    assert min(straight, key=straight.get) == "B"
    assert min(routed, key=routed.get) == "C"
    assert routed["B"] > 2 * routed["C"]
    site = returns.site(sx, sy, MODEL_ID, cruise)
    assert site is not None and site.station_id == "C"
    assert site.flight_s == pytest.approx(routed["C"])

    # the engine's own feasibility for a drone sent from A counts on the return to C
    ax, ay = DIVERT.station("A").x, DIVERT.station("A").y
    check = DIVERT.engine.check_pair(
        IncidentRequest("INC-1", 2, "traffic_accident", *latlon(sx, sy), sx, sy, NOW),
        DroneCandidate("D-1", "A", MODEL_ID, MODEL, DroneState.STANDBY, 100.0, *latlon(ax, ay), ax, ay, True),
    )
    assert check.refused is None
    airborne_s = check.need_pct / 100.0 * MODEL.endurance_min * 60.0
    back_s = airborne_s - (check.eta_s - check.launch_s) - CFG.policy.on_scene_seconds("traffic_accident") \
        - check.scene_climb_s - check.land_s
    assert back_s == pytest.approx(routed["C"], abs=0.5)
    assert float(returns.flight_times(np.array([sx]), np.array([sy]), MODEL_ID, cruise)[0]) == pytest.approx(routed["C"])

    vehicle, m, inc, battery = divert_setup()
    home_need = returns.need_pct(routed["A"], TRANSIT, MODEL)
    assert battery < home_need  # A cannot be reached at all
    reports = RecordingReports()
    # the fake reaches C within one target re-send; test_a_diversion_longer_than_one_target_resend_still_lands covers longer ones
    profile = PROFILE.model_copy(update={"target_resend_s": 2.0})
    runner = fly(vehicle, reports, m, inc, DIVERT.context("A", profile), resume=True)
    await reports.wait_until(has("flight_landed"))
    await runner.finished.wait()

    assert reports.timeline() == [
        "step:resumed", "step:battery reserve", "flight_returning", "step:divert", "step:LAND", "step:landed",
        "flight_landed",
    ]
    steps = reports.steps()
    assert "landing at C" in steps["divert"][0]
    assert steps["LAND"][0] == "at C"
    assert vehicle.modes[-1] == CopterMode.LAND
    assert vehicle.targets, "no position target was flown"
    assert_legs_clear(DIVERT.guard, vehicle)
    c = DIVERT.station_latlon("C")
    assert vehicle.targets[-1].target == pytest.approx(c)
    assert metres(vehicle.position, c) <= PROFILE.arrival_radius_m
    assert vehicle.on_ground
    assert metres(vehicle.position, DIVERT.station_latlon("B")) > 5000


async def test_a_diversion_longer_than_one_target_resend_still_lands(fly: Fly) -> None:
    # realistic use: the battery drains as the drone flies (m30t: a full battery is 41 min at 15 m/s)
    drain = 100.0 / (MODEL.endurance_min * 60.0 * MODEL.cruise_speed_ms)
    vehicle, m, inc, _ = divert_setup(speed_ms=2500.0, drain_pct_per_m=drain)
    profile = PROFILE.model_copy(update={"target_resend_s": 0.3})
    reports = RecordingReports()
    runner = fly(vehicle, reports, m, inc, DIVERT.context("A", profile), resume=True)
    await runner.finished.wait()

    assert "step:LAND" in reports.timeline()
    assert vehicle.modes[-1] == CopterMode.LAND
    assert metres(vehicle.position, DIVERT.station_latlon("C")) <= PROFILE.arrival_radius_m
