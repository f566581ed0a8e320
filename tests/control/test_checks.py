"""The pure checks a pilot's command passes before anything is sent (controller/control/checks.py).

Layouts come from the mission runner tests: the drone's station at the origin of the city's local frame, a
second station 6 km east, and a square no-fly zone 1 km across, 3-4 km north.
"""

from __future__ import annotations

import pytest

from controller.control import checks
from controller.control.commands import (
    Altitude, CommandRefused, Direction, FlyTo, Gimbal, Hold, Land, Orbit, Return, Roi,
)
from tests.fleet.test_mission_runner import CFG, HOME, SIMPLE, latlon

CTX = SIMPLE.context(HOME)
LIMITS = CFG.policy.control
BUFFER = CFG.policy.engine.nofly_buffer_m


def at(x: float, y: float, alt: float = 60.0, battery: float | None = 90.0) -> checks.Situation:
    lat, lon = latlon(x, y)
    return checks.Situation(checks.Point3(lat, lon, alt), battery, latlon(0.0, 0.0))


def refused(cmd, s: checks.Situation) -> CommandRefused:
    with pytest.raises(CommandRefused) as info:
        checks.check(cmd, s, CTX)
    return info.value


def test_a_clear_target_passes_and_says_where_it_flies() -> None:
    to = checks.check(FlyTo(*latlon(1000.0, 1000.0), 80.0), at(0.0, 500.0), CTX)
    assert to is not None and to.alt_m == 80.0
    assert (to.lat, to.lon) == pytest.approx(latlon(1000.0, 1000.0))


def test_without_a_height_the_target_keeps_the_current_one() -> None:
    to = checks.check(FlyTo(*latlon(1000.0, 1000.0)), at(0.0, 500.0, alt=47.0), CTX)
    assert to is not None and to.alt_m == 47.0


@pytest.mark.parametrize(
    ("cmd", "field"),
    [
        (FlyTo(*latlon(100.0, 100.0), 121.0), "alt_m"),
        (FlyTo(*latlon(100.0, 100.0), 5.0), "alt_m"),
        (Altitude(130.0), "alt_m"),
        (Orbit(*latlon(100.0, 100.0), 5000.0, Direction.CW, 5.0), "radius_m"),
        (Orbit(*latlon(100.0, 100.0), 5.0, Direction.CW, 5.0), "radius_m"),
        (Orbit(*latlon(100.0, 100.0), 100.0, Direction.CW, 99.0), "speed_ms"),
        (Gimbal(10.0), "pitch_deg"),
        (Land(confirm=False), "confirm"),
    ],
)
def test_values_outside_the_limits_are_422_naming_the_field(cmd, field: str) -> None:
    r = refused(cmd, at(0.0, 0.0))
    assert (r.status, r.field) == (422, field)
    assert field in r.detail


def test_the_legal_ceiling_is_enforced_by_the_config_too() -> None:
    from pydantic import ValidationError

    from controller.config.models import ControlPolicy

    with pytest.raises(ValidationError):
        ControlPolicy(max_alt_m=150.0)
    assert LIMITS.max_alt_m <= 120.0


def test_a_target_inside_a_zone_is_refused_naming_it() -> None:
    r = refused(FlyTo(*latlon(0.0, 3500.0), 60.0), at(0.0, 1000.0, battery=100.0))
    assert r.status == 409
    assert "inside no-fly zone square" in r.detail


def test_a_target_in_the_routing_buffer_is_refused() -> None:
    # 100 m south of the zone's edge: outside the polygon, inside the 150 m buffer
    r = refused(FlyTo(*latlon(0.0, 2900.0), 60.0), at(0.0, 1000.0, battery=100.0))
    assert r.status == 409
    assert "m from no-fly zone square" in r.detail and f"{BUFFER:.0f} m routing buffer" in r.detail
    # just outside the buffer it passes
    assert checks.check(FlyTo(*latlon(0.0, 3000.0 - BUFFER - 10.0), 60.0), at(0.0, 1000.0, battery=100.0), CTX) is not None


def test_a_straight_leg_through_a_zone_is_refused() -> None:
    # from west of the zone to east of it, at its height: both ends clear, the line cuts through it
    r = refused(FlyTo(*latlon(1500.0, 3500.0), 60.0), at(-1500.0, 3500.0, battery=100.0))
    assert r.status == 409 and "straight flight" in r.detail and "square" in r.detail


def test_an_orbit_whose_circle_reaches_a_zone_is_refused() -> None:
    # centre 400 m south of the zone (clear of the buffer), radius 350 m: the circle comes within 50 m
    r = refused(Orbit(*latlon(0.0, 2600.0), 350.0, Direction.CW, 5.0), at(0.0, 2000.0, battery=100.0))
    assert r.status == 409 and "orbit" in r.detail and "square" in r.detail
    assert checks.check(Orbit(*latlon(0.0, 2600.0), 100.0, Direction.CCW, 5.0), at(0.0, 2000.0, battery=100.0), CTX) is not None


def test_outside_the_geofence_is_refused() -> None:
    far = LIMITS.geofence.radius_m + 200.0
    r = refused(FlyTo(*latlon(-far, 0.0), 60.0), at(-far + 1000.0, 0.0, battery=100.0))
    assert r.status == 409 and "geofence" in r.detail
    # an orbit's radius counts: its centre inside, its circle out
    r = refused(Orbit(*latlon(-(LIMITS.geofence.radius_m - 50.0), 0.0), 100.0, Direction.CW, 5.0), at(-7000.0, 0.0, battery=100.0))
    assert "geofence" in r.detail


def test_battery_that_cannot_get_there_and_home_is_refused_with_both_figures() -> None:
    s = at(0.0, 0.0, battery=100.0)
    target = FlyTo(*latlon(-6000.0, -3000.0), 60.0)
    to = checks.check(target, s, CTX)
    assert to is not None
    need = checks.battery_need_pct(CTX, s, to)
    assert need > CFG.policy.battery_reserve_pct
    low = at(0.0, 0.0, battery=need - 1.0)
    r = refused(target, low)
    assert r.status == 409
    assert f"needs {need:.0f}%" in r.detail and f"has {need - 1:.0f}%" in r.detail
    assert checks.check(target, at(0.0, 0.0, battery=need + 1.0), CTX) is not None


def test_the_farther_target_needs_more_battery() -> None:
    s = at(0.0, 0.0, battery=100.0)
    near = checks.battery_need_pct(CTX, s, checks.Point3(*latlon(-500.0, 0.0), 60.0))
    far = checks.battery_need_pct(CTX, s, checks.Point3(*latlon(-5000.0, 0.0), 60.0))
    assert far > near


def test_altitude_changes_keep_the_current_target() -> None:
    s = checks.Situation(checks.Point3(*latlon(0.0, 0.0), 60.0), 90.0, None, checks.Point3(*latlon(800.0, 0.0), 60.0))
    to = checks.check(Altitude(100.0), s, CTX)
    assert to is not None and to.alt_m == 100.0 and (to.lat, to.lon) == pytest.approx(latlon(800.0, 0.0))


@pytest.mark.parametrize("cmd", [Hold(), Return(), Roi(*latlon(0.0, 3500.0)), Land(confirm=True)])
def test_commands_that_fly_nowhere_new_are_not_refused_by_zones_or_battery(cmd) -> None:
    # looking at a no-fly zone is allowed; hold, return and land are always allowed
    assert checks.check(cmd, at(0.0, 0.0, battery=1.0), CTX) is None
