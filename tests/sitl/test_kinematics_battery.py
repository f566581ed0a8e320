"""Pure models of the simulator: motion limits, wind, battery accounting, parameter store."""

from __future__ import annotations

import math

import pytest

from sitl.battery import Battery
from sitl.copter_params import PARAMS, ParamStore
from sitl.kinematics import Home, Limits, Motion, horizontal_step, vertical_step, wind_components

LIM = Limits(speed=10.0, accel=2.5, speed_up=2.5, speed_dn=1.5, land_speed=0.5, land_alt_low=10.0, accel_z=1.0)


def fly(target: tuple[float, float], wind=(0.0, 0.0), dt=0.05, limit_s=600.0) -> tuple[float, float]:
    m = Motion()
    t, top = 0.0, 0.0
    while horizontal_step(m, *target, LIM, dt, wind) > 0 and t < limit_s:
        t += dt
        top = max(top, m.ground_speed)
    return t, top


def test_cruise_speed_and_acceleration_limit() -> None:
    t, top = fly((1000.0, 0.0))
    assert top == pytest.approx(10.0, abs=0.01)
    # 1 km at 10 m/s plus accelerating and braking at 2.5 m/s2: 100 s + 4 s
    assert t == pytest.approx(104.0, abs=1.0)


def test_headwind_beyond_the_airframe_slows_the_ground_speed() -> None:
    calm, _ = fly((1000.0, 0.0))
    strong_head = wind_components(15.0, 0.0)  # blowing from the north, we fly north
    slow, top = fly((1000.0, 0.0), wind=strong_head)
    assert top == pytest.approx(5.0, abs=0.1)  # 20 m/s airspeed - 15 m/s headwind
    assert slow > 1.8 * calm
    assert fly((1000.0, 0.0), wind=wind_components(15.0, 180.0))[0] == pytest.approx(calm, abs=1.0)  # tailwind capped by the speed limit


def test_wind_direction_convention() -> None:
    vn, ve = wind_components(10.0, 270.0)  # from the west: air moves east
    assert vn == pytest.approx(0.0, abs=1e-9) and ve == pytest.approx(10.0)


def test_climb_with_vertical_acceleration() -> None:
    m = Motion()
    t = 0.0
    while vertical_step(m, 20.0, LIM, 0.05) != 0 and t < 60:
        t += 0.05
    assert m.alt == 20.0
    assert 8.0 < t < 12.0  # 20 m at 2.5 m/s, plus ramping at 1 m/s2


def test_landing_slows_to_land_speed_below_land_alt_low() -> None:
    m = Motion(alt=12.0)
    speeds = []
    while m.alt > 0:
        vertical_step(m, -1.0, LIM, 0.05, landing=True)
        speeds.append((m.alt, -m.vz))
    # it brakes at WPNAV_ACCEL_Z from 1.5 to 0.5 m/s as it passes LAND_ALT_LOW, then descends at LAND_SPEED
    assert max(v for alt, v in speeds if alt < 8.5) <= 0.5 + 1e-9
    assert max(v for alt, v in speeds if alt > 10.5) == 1.5


def test_home_frame_round_trip() -> None:
    home = Home(32.06, 118.79, 10.0)
    lat, lon = home.to_latlon(800.0, -300.0)
    n, e = home.from_latlon(lat, lon)
    assert (n, e) == (pytest.approx(800.0), pytest.approx(-300.0))
    assert math.isclose(lat, 32.06 + 800 / 111_132.954, rel_tol=1e-12)


def test_battery_hover_consumption_matches_the_transcript() -> None:
    b = Battery(hover_current_a=28.0)
    for _ in range(260):  # 26 s of hover
        b.step(0.1, armed=True, flying=True, airspeed_ms=0.0)
    assert b.consumed_mah == pytest.approx(202.2, abs=1.0)  # the real SITL: 201 mAh after ~26 s
    assert b.remaining_pct(500) == 60
    b.step(1.0, armed=False, flying=False, airspeed_ms=0.0)
    assert b.current_a == 0.0


def test_parameter_store() -> None:
    names = [p.name for p in PARAMS]
    assert names == sorted(names) and len(names) > 250
    store = ParamStore({"WPNAV_SPEED": 1500})
    assert store["WPNAV_SPEED"] == 1500.0 and store["FS_GCS_TIMEOUT"] == 5.0
    assert store.set("BATT_FS_LOW_ACT", 2.4) == 2.0  # integer parameters round
    with pytest.raises(KeyError):
        ParamStore({"NO_SUCH_PARAM": 1})
