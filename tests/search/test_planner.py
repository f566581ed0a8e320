"""SearchPlanner with the real configuration: strips, lawnmower waypoints, and who sweeps what when drones come and go."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from shapely import LineString, Point, unary_union

from controller.config import load_config
from controller.domain.entities import Incident, Mission
from controller.domain.states import DroneState, MissionState
from controller.search.coverage_plan import Footprint, covered_share, split_equal_area
from controller.search.plan import SearchPlan
from controller.search.planner import MIN_SPLIT_WAYPOINTS, PlannedShare, SearchPlanner
from tests import support

CFG = load_config(support.CONFIGS)
FRAME = CFG.frame
SEARCH = CFG.policy.search
MODEL = CFG.drone_models["m30t"]
PLANNER = SearchPlanner(CFG)
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
#: The last-known position, in the city's local metres.
LKP = (2000.0, 1000.0)
#: A polygon search area (an irregular quadrilateral, ~1.4 km across) as [lon, lat] positions, closed.
POLY_XY = [(1000.0, 0.0), (2400.0, 300.0), (2200.0, 1400.0), (900.0, 1100.0)]
POLYGON = [[lon, lat] for lat, lon in (FRAME.to_latlon(x, y) for x, y in [*POLY_XY, POLY_XY[0]])]
#: Waypoints are rounded to 1e-7 degrees (about 1 cm): geometry checks allow this much.
TOL_M = 1.0


def search(k: int = 3, area: dict | None = None, at: tuple[float, float] = LKP) -> Incident:
    lat, lon = FRAME.to_latlon(*at)
    return Incident.new(
        "INC-S", at=NOW, grade=1, category="missing_person", lat=lat, lon=lon, created_by="test",
        drones_requested=k, search_area=area,
    )


def mission(n: int, state: MissionState = MissionState.ACCEPTED, plan: SearchPlan | None = None) -> Mission:
    return Mission.new(
        f"M-{n}", at=NOW, state=state, incident_id="INC-S", drone_id=f"D-{n}", station_id="S", expires_at=NOW,
        eta_s=60.0, distance_m=1000.0, drone_prior_state=DroneState.STANDBY, plan=plan,
    )


#: Legal paths from ACCEPTED (missions are made accepted) to each state a test puts a mission in.
_PATHS = {
    MissionState.LAUNCHED: [MissionState.LAUNCHED],
    MissionState.ON_SCENE: [MissionState.LAUNCHED, MissionState.ON_SCENE],
    MissionState.RETURNING: [MissionState.LAUNCHED, MissionState.ON_SCENE, MissionState.RETURNING],
    MissionState.COMPLETED: [MissionState.LAUNCHED, MissionState.ON_SCENE, MissionState.RETURNING, MissionState.COMPLETED],
    MissionState.ABORTED: [MissionState.LAUNCHED, MissionState.ON_SCENE, MissionState.ABORTED],
}


def move(m: Mission, state: MissionState) -> None:
    """Walk an accepted mission through legal transitions to `state`."""
    assert m.state is MissionState.ACCEPTED
    for s in _PATHS[state]:
        m.machine.advance(s, NOW)


def share(inc: Incident, missions: Sequence[Mission], m: Mission, at: tuple[float, float] = LKP) -> PlannedShare:
    """Plan `m` among `missions` (m included, as the centre passes them) and store the plan on it."""
    out = PLANNER.plan(inc, [*missions, m] if m not in missions else missions, m, at, MODEL)
    m.plan = out.plan
    return out


def xy(plan: SearchPlan) -> list[tuple[float, float]]:
    return [FRAME.to_xy(lat, lon) for lat, lon in plan.waypoints]


AREAS = {
    "radius-default": None,
    "radius-800": {"radius_m": 800.0},
    "polygon": {"polygon": POLYGON},
}


# --- the area and its strips -----------------------------------------------------------------------


def test_area_is_a_circle_around_the_last_known_position() -> None:
    default = PLANNER.area(search())
    assert default.area == pytest.approx(math.pi * SEARCH.default_radius_m**2, rel=0.01)
    assert default.centroid.distance(Point(LKP)) < 1.0
    assert PLANNER.area(search(area={"radius_m": 800.0})).area == pytest.approx(math.pi * 800.0**2, rel=0.01)


def test_polygon_area_is_the_polygon_in_local_metres() -> None:
    area = PLANNER.area(search(area={"polygon": POLYGON}))
    for x, y in POLY_XY:
        assert Point(x, y).distance(area.exterior) < TOL_M
    assert area.is_valid and area.area > 1e6


def test_spacing_is_the_thermal_footprint_less_the_overlap() -> None:
    width = 2 * SEARCH.altitude_m * math.tan(math.radians(MODEL.cameras.thermal.hfov_deg) / 2)
    assert PLANNER.spacing(MODEL) == pytest.approx(width * (1 - SEARCH.overlap))
    assert Footprint(MODEL.cameras.thermal.hfov_deg, SEARCH.altitude_m).width_m == pytest.approx(width)


@pytest.mark.parametrize("area", AREAS.values(), ids=AREAS.keys())
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_k_drones_get_k_distinct_strips_of_equal_area_covering_the_area(area, k) -> None:
    inc = search(k, area)
    region = PLANNER.area(inc)
    strips = split_equal_area(region, k)
    assert len(strips) == k
    for s in strips:
        assert s.area == pytest.approx(region.area / k, rel=1e-3)
    union = unary_union(strips)
    assert union.symmetric_difference(region).area < 1e-6 * region.area
    for a in range(k):  # strips do not overlap
        for b in range(a + 1, k):
            assert strips[a].intersection(strips[b]).area < 1e-6 * region.area

    missions: list[Mission] = []
    for n in range(k):
        m = mission(n)
        missions.append(m)
        out = share(inc, missions, m)
        assert out.donor_stops is None
        assert out.plan.strips == k
        assert out.plan.resumed_from is None and out.plan.split_from is None
        assert out.plan.altitude_m == SEARCH.altitude_m and out.plan.speed_ms == SEARCH.speed_ms
    assert sorted(m.plan.strip for m in missions) == list(range(k))
    # every plan stays on its own strip, and together their camera swaths see (nearly) the whole area
    for m in missions:
        strip = strips[m.plan.strip].buffer(TOL_M)
        assert all(strip.contains(Point(p)) for p in xy(m.plan))
    swath = Footprint(MODEL.cameras.thermal.hfov_deg, SEARCH.altitude_m).width_m
    assert covered_share(region, [xy(m.plan) for m in missions], swath) > 0.95


def _unseen_inside(inc: Incident) -> float:
    """Ground (m²) more than a footprint inside the area's edge that no drone's camera sweeps over."""
    k = inc.drones_requested
    missions: list[Mission] = []
    for n in range(k):
        m = mission(n)
        missions.append(m)
        share(inc, missions, m)
    swath = Footprint(MODEL.cameras.thermal.hfov_deg, SEARCH.altitude_m).width_m
    seen = unary_union([LineString(xy(m.plan)).buffer(swath / 2, cap_style="flat") for m in missions])
    region = PLANNER.area(inc)
    return region.buffer(-swath).difference(seen).area


@pytest.mark.parametrize("area", AREAS.values(), ids=AREAS.keys())
def test_one_drone_sees_all_of_the_area_but_its_edge(area) -> None:
    assert _unseen_inside(search(1, area)) < 1.0


@pytest.mark.parametrize(("k", "area"), [(3, None), (2, {"polygon": POLYGON})], ids=["default-3-drones", "polygon-2"])
def test_neighbouring_strips_leave_no_unseen_band_between_them(k, area) -> None:
    assert _unseen_inside(search(k, area)) < 1.0


@pytest.mark.parametrize("area", AREAS.values(), ids=AREAS.keys())
def test_waypoints_are_inside_the_area_on_parallel_sweeps_at_most_one_spacing_apart(area) -> None:
    inc = search(2, area)
    region = PLANNER.area(inc).buffer(TOL_M)
    spacing = PLANNER.spacing(MODEL)
    m = mission(1)
    pts = xy(share(inc, [m], m).plan)
    assert len(pts) >= 4 and len(pts) % 2 == 0
    assert all(region.contains(Point(p)) for p in pts)
    sweeps = [(pts[i], pts[i + 1]) for i in range(0, len(pts), 2)]
    (ax, ay), (bx, by) = sweeps[0]
    ux, uy = (bx - ax) / math.hypot(bx - ax, by - ay), (by - ay) / math.hypot(bx - ax, by - ay)
    offsets = []
    for a, b in sweeps:
        dx, dy = b[0] - a[0], b[1] - a[1]
        assert abs(dx * uy - dy * ux) < TOL_M, "sweeps are parallel"
        offsets.append((a[0] - ax) * -uy + (a[1] - ay) * ux)  # across-track position of each sweep
    gaps = [abs(q - p) for p, q in zip(offsets, offsets[1:])]
    # evenly spread, never farther apart than the spacing, and no more tracks than that needs
    assert gaps == pytest.approx([gaps[0]] * len(gaps), abs=TOL_M)
    assert gaps[0] <= spacing + TOL_M
    assert gaps[0] * len(sweeps) / (len(sweeps) - 1) > spacing - TOL_M
    # boustrophedon: each sweep starts at the end nearest where the last one finished
    for (_, end), (start, far) in zip(sweeps, sweeps[1:]):
        assert math.dist(end, start) <= math.dist(end, far)


def test_the_sweep_starts_on_the_side_nearest_the_last_known_position() -> None:
    inc = search(3)
    lkp = FRAME.to_xy(inc.lat, inc.lon)
    for n in range(3):
        m = mission(n)
        pts = xy(PLANNER.plan(inc, [m], m, (2000.0 + 800.0 * (n - 1), 1000.0), MODEL).plan)
        first = LineString(pts[:2]).distance(Point(lkp))
        last = LineString(pts[-2:]).distance(Point(lkp))
        assert first <= last + TOL_M


# --- drones joining -----------------------------------------------------------------------------


def test_a_second_drone_gets_the_nearest_free_strip() -> None:
    inc = search(3)
    strips = split_equal_area(PLANNER.area(inc), 3)
    c = [(s.centroid.x, s.centroid.y) for s in strips]
    m1 = mission(1)
    first = share(inc, [m1], m1, at=c[0])
    assert first.plan.strip == 0  # the strip nearest the drone
    m2 = mission(2)
    second = share(inc, [m1, m2], m2, at=c[0])  # standing at the same place: strip 0 is taken
    assert second.plan.strip != 0
    free = [1, 2]
    assert second.plan.strip == min(free, key=lambda i: math.dist(c[i], c[0]))
    assert second.plan.waypoints != first.plan.waypoints
    m3 = mission(3)
    assert share(inc, [m1, m2, m3], m3, at=c[0]).plan.strip == ({0, 1, 2} - {0, second.plan.strip}).pop()


def test_later_changes_to_the_requested_drones_do_not_reshuffle_the_strips() -> None:
    inc = search(3)
    m1 = mission(1)
    share(inc, [m1], m1)
    inc.drones_requested = 5  # command asked for more drones after the search started
    m2 = mission(2)
    assert share(inc, [m1, m2], m2).plan.strips == 3


@pytest.mark.parametrize("state", [MissionState.ABORTED, MissionState.RETURNING])
@pytest.mark.parametrize("done", [0, 1, 5])
def test_a_drone_leaving_early_has_its_remainder_resumed_by_the_next(state, done) -> None:
    inc = search(2)
    left, other = mission(1), mission(2)
    share(inc, [left], left, at=(1500.0, 1000.0))
    share(inc, [left, other], other)
    assert left.plan is not None and other.plan is not None
    full = left.plan
    left.plan = full.flown(done)
    move(left, state)  # the drone went home (battery) or was aborted mid-sweep
    joiner = mission(3)
    out = share(inc, [left, other, joiner], joiner, at=(2600.0, 1000.0))  # nearer the other strip: still resumes
    assert out.donor_stops is None
    assert out.plan.resumed_from == left.id and out.plan.split_from is None
    assert out.plan.strip == full.strip and out.plan.strips == 2
    assert out.plan.waypoints == full.waypoints[max(0, done - 1):]
    assert out.plan.done == 0


def test_a_resumed_handed_over_share_stops_where_the_leaver_was_to_stop() -> None:
    inc = search(2)
    left, other = mission(1), mission(2)
    share(inc, [left], left)
    share(inc, [left, other], other)
    assert left.plan is not None
    full = left.plan
    left.plan = full.handed_over_at(8).flown(3)
    move(left, MissionState.ABORTED)
    joiner = mission(3)
    out = share(inc, [left, other, joiner], joiner)
    assert out.plan.waypoints == full.waypoints[2:8]


def test_a_strip_taken_by_a_working_drone_is_not_resumed() -> None:
    inc = search(1)
    left = mission(1)
    share(inc, [left], left)
    assert left.plan is not None
    left.plan = left.plan.flown(3)
    move(left, MissionState.ABORTED)
    resumer = mission(2)
    share(inc, [left, resumer], resumer)
    move(resumer, MissionState.LAUNCHED)
    # a third drone: the leftover is being flown; it must split the resumer's sweep, not resume again
    joiner = mission(3)
    out = share(inc, [left, resumer, joiner], joiner)
    assert out.plan.resumed_from is None
    assert out.plan.split_from == resumer.id


def test_when_every_strip_is_taken_a_joiner_takes_the_far_half_of_the_largest_remaining_sweep() -> None:
    inc = search(2)
    a, b = mission(1), mission(2)
    share(inc, [a], a)
    share(inc, [a, b], b)
    assert a.plan is not None and b.plan is not None
    move(a, MissionState.ON_SCENE)
    move(b, MissionState.LAUNCHED)
    a.plan = a.plan.flown(2)
    b.plan = b.plan.flown(len(b.plan.waypoints) - MIN_SPLIT_WAYPOINTS)  # still enough left, but less than a's
    assert a.plan.remaining > b.plan.remaining
    joiner = mission(3)
    out = share(inc, [a, b, joiner], joiner)
    cut = a.plan.done + a.plan.remaining // 2
    assert out.donor_stops == (a.id, cut)
    assert out.plan.split_from == a.id and out.plan.resumed_from is None
    assert out.plan.strip == a.plan.strip
    # the joiner starts at the donor's last waypoint, so the leg between the halves is swept too
    assert out.plan.waypoints == a.plan.waypoints[cut - 1:]
    donor = a.plan.handed_over_at(cut)
    assert donor.stop_at == cut and donor.remaining + len(out.plan.waypoints) - 1 == a.plan.remaining


def test_a_joiner_splits_a_sweep_already_handed_over_only_up_to_its_stop() -> None:
    inc = search(1)
    a = mission(1)
    share(inc, [a], a)
    assert a.plan is not None
    move(a, MissionState.ON_SCENE)
    n = len(a.plan.waypoints)
    a.plan = a.plan.handed_over_at(n - 2).flown(0)
    joiner = mission(2)
    out = share(inc, [a, joiner], joiner)
    cut = (n - 2) // 2
    assert out.donor_stops == (a.id, cut)
    assert out.plan.waypoints == a.plan.waypoints[cut - 1 : n - 2]


def test_with_nothing_left_to_split_a_joiner_sweeps_the_nearest_strip_again() -> None:
    inc = search(2)
    a, b = mission(1), mission(2)
    share(inc, [a], a)
    share(inc, [a, b], b)
    assert a.plan is not None and b.plan is not None
    move(a, MissionState.ON_SCENE)
    move(b, MissionState.ON_SCENE)
    a.plan = a.plan.flown(len(a.plan.waypoints) - (MIN_SPLIT_WAYPOINTS - 1))
    b.plan = b.plan.flown(len(b.plan.waypoints) - 1)
    strips = split_equal_area(PLANNER.area(inc), 2)
    near_b = (strips[b.plan.strip].centroid.x, strips[b.plan.strip].centroid.y)
    joiner = mission(3)
    out = share(inc, [a, b, joiner], joiner, at=near_b)
    assert out.donor_stops is None and out.plan.split_from is None and out.plan.resumed_from is None
    assert out.plan.strip == b.plan.strip and out.plan.done == 0
    assert len(out.plan.waypoints) > 1


# --- finished shares ------------------------------------------------------------------------------


def _two_strips_one_finished(state: MissionState) -> tuple[Incident, Mission, Mission]:
    inc = search(2)
    done, busy = mission(1), mission(2)
    share(inc, [done], done, at=(1500.0, 1000.0))
    share(inc, [done, busy], busy)
    assert done.plan is not None and busy.plan is not None
    done.plan = done.plan.flown(len(done.plan.waypoints))
    assert done.plan.finished
    move(done, state)
    move(busy, MissionState.ON_SCENE)
    return inc, done, busy


def test_a_finished_share_of_a_landed_drone_is_not_flown_again() -> None:
    inc, done, busy = _two_strips_one_finished(MissionState.COMPLETED)
    strips = split_equal_area(PLANNER.area(inc), 2)
    assert done.plan is not None
    here = (strips[done.plan.strip].centroid.x, strips[done.plan.strip].centroid.y)  # right over the swept strip
    joiner = mission(3)
    out = share(inc, [done, busy, joiner], joiner, at=here)
    assert out.plan.resumed_from is None
    assert out.plan.split_from == busy.id  # helps with the sweep still under way instead


@pytest.mark.parametrize("state", [MissionState.RETURNING, MissionState.ABORTED])
def test_a_finished_share_of_a_drone_on_its_way_home_is_not_flown_again(state) -> None:
    inc, done, busy = _two_strips_one_finished(state)
    assert done.plan is not None
    strips = split_equal_area(PLANNER.area(inc), 2)
    here = (strips[done.plan.strip].centroid.x, strips[done.plan.strip].centroid.y)
    joiner = mission(3)
    out = share(inc, [done, busy, joiner], joiner, at=here)
    assert out.plan.strip != done.plan.strip or out.plan.split_from == busy.id


def test_a_remainder_resumed_and_finished_by_a_replacement_is_not_flown_again() -> None:
    inc = search(2)
    left, busy = mission(1), mission(2)
    share(inc, [left], left, at=(1500.0, 1000.0))
    share(inc, [left, busy], busy)
    assert left.plan is not None
    left.plan = left.plan.flown(3)
    move(left, MissionState.ABORTED)
    move(busy, MissionState.ON_SCENE)
    resumer = mission(3)
    out = share(inc, [left, busy, resumer], resumer)
    assert out.plan.resumed_from == left.id
    assert resumer.plan is not None
    resumer.plan = resumer.plan.flown(len(resumer.plan.waypoints))  # swept the whole remainder ...
    move(resumer, MissionState.COMPLETED)  # ... and landed
    joiner = mission(4)
    again = share(inc, [left, busy, resumer, joiner], joiner)
    assert again.plan.resumed_from is None  # nothing of strip `left` is left unswept
