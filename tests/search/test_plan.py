"""SearchPlan: progress and hand-over arithmetic, length, and its stored JSON form (old rows included)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from controller import geo
from controller.config import load_config
from controller.search.plan import SearchPlan
from tests import support

FRAME = load_config(support.CONFIGS).frame


def plan(n: int = 10, **kw) -> SearchPlan:
    """n waypoints 100 m apart along a line east of the city centre."""
    wps = tuple(FRAME.to_latlon(100.0 * i, 0.0) for i in range(n))
    return SearchPlan(strip=1, strips=3, waypoints=wps, altitude_m=60.0, speed_ms=8.0, **kw)


# --- progress and hand-over --------------------------------------------------------------------


def test_a_fresh_plan_is_to_be_flown_whole() -> None:
    p = plan()
    assert (p.done, p.end, p.resumed_from, p.split_from) == (0, None, None, None)
    assert p.stop_at == 10
    assert p.remaining == 10
    assert not p.finished


def test_flown_records_progress_in_a_new_plan() -> None:
    p = plan()
    q = p.flown(4)
    assert q.done == 4 and q.remaining == 6 and not q.finished
    assert p.done == 0  # the plan the runner holds never changes under it
    assert q.waypoints == p.waypoints and q.strip == p.strip
    assert p.flown(10).finished and p.flown(10).remaining == 0


def test_plans_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan().done = 3  # type: ignore[misc]


def test_handed_over_at_stops_the_drone_there() -> None:
    p = plan().flown(2)
    q = p.handed_over_at(6)
    assert q.end == 6 and q.stop_at == 6
    assert q.remaining == 4 and not q.finished
    assert q.flown(6).finished  # done at the cut: the rest belongs to the joiner
    assert p.end is None and p.stop_at == 10


# --- length --------------------------------------------------------------------------------------


def test_length_is_the_geodesic_length_of_the_waypoint_path() -> None:
    p = plan(4)
    expected = sum(geo.distance_m(*a, *b) for a, b in zip(p.waypoints, p.waypoints[1:]))
    assert p.length_m() == pytest.approx(expected)
    assert p.length_m() == pytest.approx(300.0, abs=0.5)
    assert p.eta_s() == pytest.approx(p.length_m() / 8.0)


def test_length_of_a_single_waypoint_or_none_is_zero() -> None:
    assert plan(1).length_m() == 0.0
    assert plan(0).length_m() == 0.0


def test_eta_without_speed_is_infinite() -> None:
    assert math.isinf(dataclasses.replace(plan(), speed_ms=0.0).eta_s())


# --- storage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p",
    [
        plan(),
        plan(done=3),
        plan(done=2, end=6),
        plan(resumed_from="M-7"),
        plan(split_from="M-8", done=1),
    ],
    ids=["fresh", "flown", "handed-over", "resumed", "split"],
)
def test_json_round_trip(p: SearchPlan) -> None:
    doc = p.to_json()
    again = SearchPlan.from_json(json.loads(json.dumps(doc)))  # through real JSON text, as the store keeps it
    assert again == p
    assert isinstance(again.waypoints, tuple) and all(isinstance(w, tuple) for w in again.waypoints)


def test_json_leaves_unset_optional_keys_out() -> None:
    doc = plan().to_json()
    assert set(doc) == {"strip", "strips", "waypoints", "done", "altitude_m", "speed_ms"}
    assert doc["waypoints"][0] == list(plan().waypoints[0])
    full = plan(done=2, end=5, resumed_from="M-1", split_from="M-2").to_json()
    assert (full["end"], full["resumed_from"], full["split_from"]) == (5, "M-1", "M-2")


def test_json_keeps_an_end_of_zero() -> None:
    p = plan(end=0)
    assert p.to_json()["end"] == 0
    assert SearchPlan.from_json(p.to_json()) == p


def test_an_old_stored_plan_without_the_newer_keys_loads() -> None:
    old = {
        "strip": "2",
        "strips": 4,
        "waypoints": [[32.01, 118.7], [32.02, 118.71]],
        "altitude_m": 60,
        "speed_ms": 8,
    }
    p = SearchPlan.from_json(old)
    assert p == SearchPlan(
        strip=2, strips=4, waypoints=((32.01, 118.7), (32.02, 118.71)), altitude_m=60.0, speed_ms=8.0,
    )
    assert p is not None and p.stop_at == 2 and p.remaining == 2
    assert SearchPlan.from_json({**old, "end": None}) == p


def test_no_stored_plan_is_none() -> None:
    assert SearchPlan.from_json(None) is None
    assert SearchPlan.from_json({}) is None
