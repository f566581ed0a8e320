"""Dispatch v1 on small hand-checkable layouts (positions in metres in a local frame)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.config import load_config
from controller.config.models import LaunchDelay
from controller.dispatch import DroneCandidate, IncidentRequest
from controller.dispatch.nearest_eta import NearestEtaDispatcher
from controller.domain.states import DroneState
from tests import support

CFG = load_config(support.CONFIGS)
POLICY = CFG.policy.model_copy(update={"launch_delay_s": LaunchDelay(standby=20, charging=60, landed=40)})  # transit 120 m, reserve 20 %
M30T = CFG.drone_models["m30t"]  # cruise 15 m/s, climb 6 m/s
M3TD = CFG.drone_models["m3td"]  # cruise 12 m/s, climb 6 m/s
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def drone(id: str, x: float, y: float = 0.0, *, model=M30T, state=DroneState.STANDBY, battery=100.0, pilot=True):
    return DroneCandidate(
        id=id, station_id=f"S-{id}", model_id="m", model=model, state=state, battery_pct=battery,
        lat=0.0, lon=0.0, x=x, y=y, pilot_on_duty=pilot,
    )


def incident(id: str, x: float, y: float = 0.0, *, grade=2, category="traffic_accident", age_s=0.0, k=1, excluded=()):
    return IncidentRequest(
        id=id, grade=grade, category=category, lat=0.0, lon=0.0, x=x, y=y,
        created_at=NOW - timedelta(seconds=age_s), drones_needed=k, excluded=frozenset(excluded),
    )


def decide(incidents, drones):
    return {d.incident_id: d for d in NearestEtaDispatcher(POLICY).decide(incidents, drones, NOW)}


def test_eta_is_launch_plus_climb_plus_cruise() -> None:
    out = decide([incident("I", 3000)], [drone("A", 0)])["I"]
    (a,) = out.assignments
    assert a.drone_id == "A"
    assert a.distance_m == pytest.approx(3000)
    assert a.eta_s == pytest.approx(20 + 120 / 6 + 3000 / 15)


def test_faster_drone_further_away_beats_slower_nearer_one() -> None:
    # A (m3td, 12 m/s) is 3.6 km away: 20+20+300 = 340 s; B (m30t, 15 m/s) is 4.5 km: 20+20+300 = 340 s, tie
    # so move B 300 m closer: 4.2 km -> 320 s wins although it is farther than A.
    out = decide([incident("I", 0)], [drone("A", 3600, model=M3TD), drone("B", -4200)])["I"]
    assert out.assignments[0].drone_id == "B"
    assert out.ruled_out["A"] == "slower than the chosen drone"


def test_hot_standby_beats_a_charging_drone_at_the_same_place() -> None:
    out = decide([incident("I", 1000)], [drone("C", 0, state=DroneState.CHARGING), drone("S", 0)])["I"]
    assert out.assignments[0].drone_id == "S"
    assert out.assignments[0].eta_s == pytest.approx(20 + 20 + 1000 / 15)


def test_battery_refusal_keeps_its_reason() -> None:
    # 8 km out and back at 15 m/s + 600 s on scene + climb/descent ~ 1710 s = 69.5 % of 41 min; 80 % battery - 69.5 < 20.
    out = decide([incident("I", 8000)], [drone("A", 0, battery=80.0)])["I"]
    assert out.assignments == ()
    assert out.ruled_out["A"].startswith("battery: has 80%, needs 70% + 20% reserve")
    assert out.ruled_out_counts == {"battery": 1}
    # The same drone with a full battery can go.
    assert decide([incident("I", 8000)], [drone("A", 0, battery=100.0)])["I"].assignments[0].drone_id == "A"


def test_missing_person_search_needs_more_battery_than_a_traffic_call() -> None:
    drones = [drone("A", 0, battery=75.0)]
    assert decide([incident("T", 5000, category="traffic_accident")], drones)["T"].assignments
    out = decide([incident("M", 5000, category="missing_person")], drones)["M"]
    assert not out.assignments and out.ruled_out["A"].startswith("battery")


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"state": DroneState.MAINTENANCE}, "in maintenance"),
        ({"state": DroneState.LOST_LINK}, "link lost"),
        ({"state": DroneState.ENROUTE}, "busy (enroute)"),
        ({"state": DroneState.OFFERED}, "busy (offered)"),
        ({"pilot": False}, "no pilot on duty"),
    ],
)
def test_unavailable_drones_are_skipped_with_reason(kw, reason) -> None:
    out = decide([incident("I", 100)], [drone("X", 0, **kw), drone("Y", 5000)])["I"]
    assert out.assignments[0].drone_id == "Y"
    assert out.ruled_out["X"] == reason


def test_declined_drone_is_not_offered_again() -> None:
    out = decide([incident("I", 100, excluded={"X"})], [drone("X", 0), drone("Y", 5000)])["I"]
    assert out.assignments[0].drone_id == "Y"
    assert out.ruled_out["X"] == "declined or expired for this incident"


def test_most_urgent_incident_is_served_first() -> None:
    # One drone, two incidents: the grade-1 call takes it even though it arrived later and is farther.
    out = decide(
        [incident("old-g3", 500, grade=3, age_s=60), incident("new-g1", 2000, grade=1)],
        [drone("A", 0)],
    )
    assert out["new-g1"].assignments[0].drone_id == "A"
    assert out["old-g3"].assignments == ()
    assert out["old-g3"].ruled_out["A"] == "offered to a more urgent incident"


def test_same_grade_first_come_first_served() -> None:
    out = decide([incident("second", 100, age_s=1), incident("first", 100, age_s=5)], [drone("A", 0)])
    assert out["first"].assignments and not out["second"].assignments


def test_k_drones_for_a_search() -> None:
    drones = [drone("A", 0), drone("B", 1000), drone("C", 3000), drone("D", 9000)]
    out = decide([incident("S", 0, category="fire", k=3)], drones)["S"]
    assert [a.drone_id for a in out.assignments] == ["A", "B", "C"]


def test_no_drones_at_all() -> None:
    out = decide([incident("I", 0)], [])["I"]
    assert out.assignments == () and out.ruled_out_counts


def test_freed_filter_keeps_only_incidents_a_freed_drone_could_serve() -> None:
    # Q-near can use the freed drone F; Q-far is out of F's range; Q-must is decided whatever happens.
    drones = [drone("F", 0), drone("B", 50_000, state=DroneState.ENROUTE)]
    incidents = [incident("Q-near", 2000), incident("Q-far", 40_000), incident("Q-must", 45_000)]
    out = NearestEtaDispatcher(POLICY).decide(incidents, drones, NOW, freed=frozenset({"F"}), must=frozenset({"Q-must"}))
    assert {d.incident_id for d in out} == {"Q-near", "Q-must"}
    assert next(d for d in out if d.incident_id == "Q-near").assignments[0].drone_id == "F"


def test_freed_filter_respects_exclusions() -> None:
    drones = [drone("F", 0)]
    out = NearestEtaDispatcher(POLICY).decide([incident("Q", 100, excluded={"F"})], drones, NOW, freed=frozenset({"F"}))
    assert out == []


def test_incremental_and_full_pass_agree_on_offers() -> None:
    """Leaving out incidents no freed drone can serve never changes who gets a drone."""
    import random

    rng = random.Random(3)
    for _ in range(30):
        drones = [
            drone(f"D{i}", rng.uniform(-20_000, 20_000), rng.uniform(-20_000, 20_000),
                  state=rng.choice([DroneState.STANDBY, DroneState.ENROUTE]), battery=rng.uniform(30, 100))
            for i in range(25)
        ]
        incidents = [incident(f"I{i}", rng.uniform(-25_000, 25_000), rng.uniform(-25_000, 25_000),
                              grade=rng.randint(1, 4), age_s=rng.uniform(0, 100)) for i in range(15)]
        freed = frozenset(d.id for d in drones if d.state is DroneState.STANDBY)
        full = {d.incident_id: d.assignments for d in NearestEtaDispatcher(POLICY).decide(incidents, drones, NOW)}
        part = {d.incident_id: d.assignments for d in NearestEtaDispatcher(POLICY).decide(incidents, drones, NOW, freed=freed)}
        assert {k: v for k, v in full.items() if v} == {k: v for k, v in part.items() if v}
