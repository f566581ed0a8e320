"""The dispatch engine's rules on small hand-checkable layouts (metres in a local frame, no wind unless stated).

Default policy figures used below: launch 20/60/40 s, transit 120 m, scene 60 m, reserve 20 %,
m30t cruise 15 m/s, climb 6 m/s, descent 5 m/s, 41 min; so the vertical legs are
climb 20 s, down to the scene 12 s, back up 10 s, landing 24 s.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from shapely.geometry import Polygon, box

from controller.config import load_config
from controller.config.models import LaunchDelay, Wind
from controller.dispatch import DroneCandidate, IncidentRequest
from controller.dispatch.engine import DispatchEngine
from controller.dispatch.returns import StationSite
from controller.dispatch.nearest_eta import NearestEtaDispatcher
from controller.domain.states import DroneState
from tests import support

CFG = load_config(support.CONFIGS)
#: The rules are tested with launch delays of their own (20/60/40 s), whatever configs/ says today.
CALM = CFG.policy.model_copy(update={"wind": Wind(), "launch_delay_s": LaunchDelay(standby=20, charging=60, landed=40)})
M30T = CFG.drone_models["m30t"]
M3TD = CFG.drone_models["m3td"]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
#: Straight up to the 30 m departure height at 6 m/s; the m30t's 15 m/s cruise gained and lost at 4 m/s².
UP, SPEED_CHANGE = 5.0, 3.75


def drone(id, x, y=0.0, *, model="m30t", state=DroneState.STANDBY, battery=100.0, pilot=True, grade=None):
    return DroneCandidate(
        id=id, station_id=f"S-{id}", model_id=model, model=CFG.drone_models[model], state=state, battery_pct=battery,
        lat=0.0, lon=0.0, x=x, y=y, pilot_on_duty=pilot, mission_id=f"M-{id}" if grade else None, mission_grade=grade,
    )


def incident(id, x, y=0.0, *, grade=2, category="traffic_accident", age_s=0.0, k=1, excluded=()):
    return IncidentRequest(
        id=id, grade=grade, category=category, lat=0.0, lon=0.0, x=x, y=y,
        created_at=NOW - timedelta(seconds=age_s), drones_needed=k, excluded=frozenset(excluded),
    )


def engine(policy=CALM, stations=(), nofly=()):
    return DispatchEngine(policy, stations, nofly, CFG.drone_models)


def decide(incidents, drones, eng=None):
    return {d.incident_id: d for d in (eng or engine()).decide(incidents, drones, NOW)}


# --- time to scene ------------------------------------------------------------------


def test_eta_is_launch_takeoff_cruise_and_speed_changes() -> None:
    (a,) = decide([incident("I", 3000)], [drone("A", 0)])["I"].assignments
    assert a.eta_s == pytest.approx(20 + UP + 3000 / 15 + SPEED_CHANGE)
    assert a.distance_m == pytest.approx(3000)


def test_a_leg_too_short_for_the_climb_to_the_scene_height_takes_the_climb() -> None:
    # 30 m away: 2 s of cruise, but 30 m more to climb (30 -> 60 m at 6 m/s) takes 5 s
    (a,) = decide([incident("I", 30)], [drone("A", 0)])["I"].assignments
    assert a.eta_s == pytest.approx(20 + UP + 5.0 + SPEED_CHANGE)


def test_launch_delay_depends_on_drone_state() -> None:
    for state, delay in ((DroneState.CHARGING, 60), (DroneState.LANDED, 40)):
        (a,) = decide([incident("I", 1500)], [drone("A", 0, state=state)])["I"].assignments
        assert a.eta_s == pytest.approx(delay + UP + 100 + SPEED_CHANGE)


@pytest.mark.parametrize(
    ("from_deg", "target", "ground_speed"),
    [
        (90, (3000, 0), 10.0),  # wind from the east, 5 m/s, flying east: headwind 15 - 5
        (90, (-3000, 0), 20.0),  # flying west: tailwind 15 + 5
        (0, (3000, 0), 12.0),  # 9 m/s from the north, flying east: crab, sqrt(15^2 - 9^2)
    ],
)
def test_wind_triangle_sets_ground_speed(from_deg, target, ground_speed) -> None:
    speed = 9.0 if from_deg == 0 else 5.0
    eng = engine(CALM.model_copy(update={"wind": Wind(speed_ms=speed, from_deg=from_deg)}))
    (a,) = decide([incident("I", *target)], [drone("A", 0)], eng)["I"].assignments
    assert a.eta_s == pytest.approx(20 + UP + 3000 / ground_speed + SPEED_CHANGE)


def test_wind_above_the_models_limit_rules_the_drone_out() -> None:
    eng = engine(CALM.model_copy(update={"wind": Wind(speed_ms=13, from_deg=0)}))  # m3td limit 12, m30t 15
    out = decide([incident("I", 500)], [drone("dock", 0, model="m3td"), drone("big", 4000)], eng)["I"]
    assert out.assignments[0].drone_id == "big"
    assert out.ruled_out["dock"] == "wind 13 m/s above the model's 12 m/s limit"


# --- no-fly detour ----------------------------------------------------------------


def test_path_goes_around_a_no_fly_zone_not_through() -> None:
    # Square 1000..3000 x -1000..1000 between drone (0,0) and scene (4000,0); buffered 150 m the outline
    # corners are (850, 1150) and (3150, 1150): path = 2 * hypot(850, 1150) + 2300.
    zone = box(1000, -1000, 3000, 1000)
    (a,) = decide([incident("I", 4000)], [drone("A", 0)], engine(nofly=[zone]))["I"].assignments
    expected = 2 * np.hypot(850, 1150) + 2300
    assert a.distance_m == pytest.approx(expected, rel=1e-6)
    assert a.eta_s == pytest.approx(20 + UP + expected / 15 + SPEED_CHANGE, rel=1e-6)
    # A leg that misses the zone stays straight.
    (b,) = decide([incident("J", 0, 4000)], [drone("A", 0)], engine(nofly=[zone]))["J"].assignments
    assert b.distance_m == pytest.approx(4000)


def test_detour_can_make_another_drone_first() -> None:
    # Wall 100 m thick and 8 km long between A and the scene: A must fly ~8 km round; B is 3 km away in the open.
    wall = box(900, -4000, 1000, 4000)
    out = decide([incident("I", 2000)], [drone("A", 0), drone("B", 2000, 3000)], engine(nofly=[wall]))["I"]
    assert out.assignments[0].drone_id == "B"


def test_scene_inside_a_no_fly_zone_is_refused_with_reason() -> None:
    zone = Polygon([(1000, -500), (2000, -500), (2000, 500), (1000, 500)])
    out = decide([incident("I", 1500)], [drone("A", 0)], engine(nofly=[zone]))["I"]
    assert out.assignments == ()
    assert out.ruled_out["A"] == "scene inside a no-fly zone"


# --- battery ------------------------------------------------------------------------


def test_battery_refusal_counts_the_return_to_the_nearest_station() -> None:
    # 80 % battery, 20 % reserve: 60 % of 2460 s = 1476 s of flight allowed. Out 9 km = 600 s, take-off,
    # speed changes, climb back to the return height and landing 43 s, on scene 600 s; flying home again
    # (600 s) makes 1843 s: refused.
    home_only = [StationSite("S-A", 0, 0, frozenset({"m30t"}))]
    out = decide([incident("I", 9000)], [drone("A", 0, battery=80)], engine(stations=home_only))["I"]
    assert out.assignments == ()
    assert out.ruled_out["A"] == "battery: has 80%, needs 75% + 20% reserve"
    assert out.ruled_out_counts == {"battery": 1}
    # A station 1 km past the scene that takes the model: back in 67 s, 1310 s in all: accepted.
    near = [*home_only, StationSite("S-B", 10_000, 0, frozenset({"m30t"}))]
    assert decide([incident("I", 9000)], [drone("A", 0, battery=80)], engine(stations=near))["I"].assignments
    # ... but not if that station cannot receive this model.
    dock = [*home_only, StationSite("S-B", 10_000, 0, frozenset({"m3td"}))]
    assert not decide([incident("I", 9000)], [drone("A", 0, battery=80)], engine(stations=dock))["I"].assignments


def test_time_on_scene_by_category_changes_the_battery_verdict() -> None:
    drones = [drone("A", 0, battery=75.0)]
    assert decide([incident("T", 5000, category="traffic_accident")], drones)["T"].assignments
    out = decide([incident("M", 5000, category="missing_person")], drones)["M"]
    assert not out.assignments and out.ruled_out["A"].startswith("battery")


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"state": DroneState.MAINTENANCE}, "in maintenance"),
        ({"state": DroneState.LOST_LINK}, "link lost"),
        ({"state": DroneState.RETURNING}, "busy (returning)"),
        ({"pilot": False}, "no pilot on duty"),
    ],
)
def test_unavailable_drones_are_skipped_with_reason(kw, reason) -> None:
    out = decide([incident("I", 100)], [drone("X", 0, **kw), drone("Y", 5000)])["I"]
    assert out.assignments[0].drone_id == "Y"
    assert out.ruled_out["X"] == reason
    assert out.ruled_out_counts[reason] == 1


# --- joint assignment, k drones, priorities -------------------------------------------------


def test_burst_is_assigned_jointly_not_first_come() -> None:
    # A at 0, B at 5000. I1 (older) at 2400, I2 at -1000. First-come greedy gives I1 the nearer A
    # (2.4 km) and leaves I2 with B (6 km); jointly I1 takes B (2.6 km) and I2 takes A (1 km).
    drones = [drone("A", 0), drone("B", 5000)]
    incidents = [incident("I1", 2400, age_s=5), incident("I2", -1000)]
    joint = decide(incidents, drones)
    assert joint["I1"].assignments[0].drone_id == "B"
    assert joint["I2"].assignments[0].drone_id == "A"
    greedy = {d.incident_id: d for d in NearestEtaDispatcher(CALM).decide(incidents, drones, NOW)}
    assert greedy["I1"].assignments[0].drone_id == "A"
    total = sum(d.assignments[0].eta_s for d in joint.values())
    assert total == pytest.approx(2 * (20 + UP + SPEED_CHANGE) + (2600 + 1000) / 15)
    assert joint["I1"].ruled_out["A"] == "assigned to another incident"


def test_grade_one_is_never_left_waiting_for_lower_grades() -> None:
    out = decide([incident("g3", 500, grade=3, age_s=60), incident("g1", 2000, grade=1)], [drone("A", 0)])
    assert out["g1"].assignments[0].drone_id == "A"
    assert out["g3"].assignments == () and out["g3"].ruled_out["A"] == "assigned to another incident"


def test_same_grade_older_call_first() -> None:
    out = decide([incident("second", 100, age_s=1), incident("first", 100, age_s=5)], [drone("A", 0)])
    assert out["first"].assignments and not out["second"].assignments


def test_search_gets_k_drones() -> None:
    drones = [drone("A", 0), drone("B", 1000), drone("C", 3000), drone("D", 9000)]
    out = decide([incident("S", 0, category="fire", k=3)], drones)["S"]
    assert [a.drone_id for a in out.assignments] == ["A", "B", "C"]


def test_k_drone_search_and_a_burst_share_the_fleet() -> None:
    drones = [drone(n, x) for n, x in (("A", 0), ("B", 500), ("C", 1000), ("D", 20_000))]
    out = decide([incident("S", 0, grade=1, category="missing_person", k=2), incident("T", 19_000, grade=2)], drones)
    assert {a.drone_id for a in out["S"].assignments} == {"A", "B"}
    assert out["T"].assignments[0].drone_id == "D"


# --- preemption -------------------------------------------------------------------------


@pytest.mark.parametrize(("free_at", "preempts"), [(3000, True), (2000, True), (1500, False)])
def test_preemption_only_when_it_saves_more_than_the_margin(free_at, preempts) -> None:
    # P flies a grade-3 mission 1 km from the grade-1 scene: 1000/15 + 3.75 = 70.4 s (no launch, no climb).
    # Free F at 3000 m: 228.75 s (saves 158 s); at 2000 m: 162.1 s (saves 91.7 s); at 1500 m: 128.75 s (saves 58 s < 90).
    drones = [drone("P", 1000, state=DroneState.ENROUTE, grade=3), drone("F", -free_at + 2000)]
    out = decide([incident("I", 2000, grade=1)], drones)["I"]
    (a,) = out.assignments
    if preempts:
        assert a.drone_id == "P" and a.preempts == "M-P"
        assert a.eta_s == pytest.approx(1000 / 15 + SPEED_CHANGE)
        assert "sooner than the best free drone" in a.preempt_reason
    else:
        assert a.drone_id == "F" and a.preempts is None
        assert "preemption margin" in out.ruled_out["P"]


def test_only_grade_one_preempts_and_only_low_grade_missions_yield() -> None:
    drones = [drone("P", 1000, state=DroneState.ENROUTE, grade=3), drone("F", -5000)]
    assert decide([incident("I", 2000, grade=2)], drones)["I"].assignments[0].drone_id == "F"
    drones = [drone("P", 1000, state=DroneState.ENROUTE, grade=2), drone("F", -5000)]
    assert decide([incident("I", 2000, grade=1)], drones)["I"].assignments[0].drone_id == "F"


def test_preemption_when_no_free_drone_can_go() -> None:
    drones = [drone("P", 1000, state=DroneState.ON_SCENE, grade=4, battery=90)]
    (a,) = decide([incident("I", 4000, grade=1)], drones)["I"].assignments
    assert a.drone_id == "P" and "no free drone" in a.preempt_reason
    assert a.eta_s == pytest.approx(3000 / 15 + SPEED_CHANGE)  # climbs, if at all, while it flies


# --- incremental passes and pruning ---------------------------------------------------------


def _random_layout(rng, n_drones=30, n_incidents=12):
    drones = [
        drone(f"D{i}", rng.uniform(-20_000, 20_000), rng.uniform(-20_000, 20_000),
              state=rng.choice([DroneState.STANDBY, DroneState.STANDBY, DroneState.ENROUTE]), battery=rng.uniform(30, 100))
        for i in range(n_drones)
    ]
    incidents = [incident(f"I{i}", rng.uniform(-25_000, 25_000), rng.uniform(-25_000, 25_000),
                          grade=rng.randint(2, 4), age_s=rng.uniform(0, 100), k=rng.choice([1, 1, 2])) for i in range(n_incidents)]
    return drones, incidents


def test_incremental_and_full_pass_agree_on_offers() -> None:
    rng = random.Random(3)
    eng = engine(nofly=[box(-3000, -3000, 3000, 3000)])
    for _ in range(15):
        drones, incidents = _random_layout(rng)
        freed = frozenset(d.id for d in drones if d.state is DroneState.STANDBY)
        full = {d.incident_id: d.assignments for d in eng.decide(incidents, drones, NOW)}
        part = {d.incident_id: d.assignments for d in eng.decide(incidents, drones, NOW, freed=freed)}
        assert {k: v for k, v in full.items() if v} == {k: v for k, v in part.items() if v}


def test_lower_bound_pruning_loses_nothing() -> None:
    """Evaluating only the certified candidates gives the same plan cost as evaluating every drone."""
    rng = random.Random(11)
    pruned = engine(nofly=[box(-3000, -3000, 3000, 3000)])
    exhaustive = engine(nofly=[box(-3000, -3000, 3000, 3000)])
    exhaustive._candidates = lambda rows, fleet, usable, wanted, drones: exhaustive._evaluate(  # type: ignore[method-assign]
        rows, fleet, np.flatnonzero(usable), drones
    )

    def cost(out):
        return sum(CALM.engine.weight(int(d.incident_id and g[d.incident_id])) * a.eta_s for d in out for a in d.assignments)

    for _ in range(15):
        drones, incidents = _random_layout(rng)
        g = {inc.id: inc.grade for inc in incidents}
        a, b = pruned.decide(incidents, drones, NOW), exhaustive.decide(incidents, drones, NOW)
        assert [len(d.assignments) for d in a] == [len(d.assignments) for d in b]
        assert cost(a) == pytest.approx(cost(b))


def test_battery_bound_pruning_keeps_plans_and_counts() -> None:
    """Drones certified short of battery without routing: same offers and same reason counts as routing all."""
    rng = random.Random(12)
    sites = [StationSite(f"S{i}", rng.uniform(-20_000, 20_000), rng.uniform(-20_000, 20_000), frozenset({"m30t"}))
             for i in range(8)]
    zone = [box(-3000, -3000, 3000, 3000)]
    pruned = engine(stations=sites, nofly=zone)
    exhaustive = engine(stations=sites, nofly=zone)
    exhaustive._candidates = lambda rows, fleet, usable, wanted, drones: exhaustive._evaluate(  # type: ignore[method-assign]
        rows, fleet, np.flatnonzero(usable), drones
    )
    short_seen = 0
    for _ in range(15):
        drones, incidents = _random_layout(rng)
        a = {d.incident_id: d for d in pruned.decide(incidents, drones, NOW)}
        b = {d.incident_id: d for d in exhaustive.decide(incidents, drones, NOW)}
        for k in a:
            assert a[k].assignments == b[k].assignments
            # A drone short even for the straight flight is reported as battery, also when it has no route.
            refused = ("battery", "no flyable route (wind or no-fly zones)", "no station reachable after the scene")
            assert sum(a[k].ruled_out_counts.get(r, 0) for r in refused) == sum(b[k].ruled_out_counts.get(r, 0) for r in refused)
            assert a[k].ruled_out_counts.get("battery", 0) >= b[k].ruled_out_counts.get("battery", 0)
            assert set(a[k].ruled_out) == set(b[k].ruled_out)
            short_seen += a[k].ruled_out_counts.get("battery", 0)
    assert short_seen > 20  # the layouts really exercise the battery bound
