"""Copter motion, simplified the way ArduCopter's position controller behaves from outside.

Horizontal: fly straight at the target, accelerating at most WPNAV_ACCEL up to
the speed limit and braking so as to stop on it (v <= sqrt(2 a d)); wind is
compensated up to the airframe's maximum airspeed, so a strong headwind lowers
the ground speed. Vertical: climb at WPNAV_SPEED_UP, descend at WPNAV_SPEED_DN,
and the last LAND_ALT_LOW metres of a landing at LAND_SPEED. The nose turns
towards the direction of travel at a limited yaw rate.

Positions are metres north/east of home and metres above it; `to_latlon` and
`from_latlon` convert with a local equirectangular frame at home.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

M_PER_DEG_LAT = 111_132.954
YAW_RATE_DPS = 90.0
#: Fastest the simulated airframe can fly through the air (lean-angle limit).
MAX_AIRSPEED_MS = 20.0


@dataclass(frozen=True, slots=True)
class Home:
    lat: float
    lon: float
    alt_amsl: float

    def to_latlon(self, north: float, east: float) -> tuple[float, float]:
        k = M_PER_DEG_LAT * math.cos(math.radians(self.lat))
        return self.lat + north / M_PER_DEG_LAT, self.lon + east / k

    def from_latlon(self, lat: float, lon: float) -> tuple[float, float]:
        k = M_PER_DEG_LAT * math.cos(math.radians(self.lat))
        return (lat - self.lat) * M_PER_DEG_LAT, (lon - self.lon) * k


@dataclass(slots=True)
class Motion:
    north: float = 0.0
    east: float = 0.0
    alt: float = 0.0  # above home, m
    vn: float = 0.0
    ve: float = 0.0
    vz: float = 0.0  # up, m/s
    heading: float = 0.0

    @property
    def ground_speed(self) -> float:
        return math.hypot(self.vn, self.ve)


@dataclass(frozen=True, slots=True)
class Limits:
    speed: float  # m/s horizontal
    accel: float  # m/s2 horizontal
    speed_up: float
    speed_dn: float
    land_speed: float
    land_alt_low: float
    accel_z: float = 1.0  # m/s2 vertical


def wind_components(wind_speed: float, wind_from_deg: float) -> tuple[float, float]:
    """Velocity of the air (north, east) for a wind blowing FROM `wind_from_deg`."""
    to = math.radians(wind_from_deg + 180.0)
    return wind_speed * math.cos(to), wind_speed * math.sin(to)


def horizontal_step(m: Motion, tn: float, te: float, lim: Limits, dt: float, wind: tuple[float, float]) -> float:
    """Advance towards (tn, te); returns the remaining distance."""
    dn, de = tn - m.north, te - m.east
    dist = math.hypot(dn, de)
    if dist < 0.05 and m.ground_speed < 0.1:
        m.north, m.east, m.vn, m.ve = tn, te, 0.0, 0.0
        return 0.0
    ux, uy = (dn / dist, de / dist) if dist > 1e-9 else (0.0, 0.0)
    # The fastest ground speed along track the airframe can hold against this wind.
    wn, we = wind
    along = wn * ux + we * uy
    cross = -wn * uy + we * ux
    reachable = math.sqrt(max(MAX_AIRSPEED_MS**2 - cross**2, 0.0)) + along
    want = min(lim.speed, max(reachable, 0.5), math.sqrt(2 * lim.accel * dist))
    dvn, dve = want * ux - m.vn, want * uy - m.ve
    dv = math.hypot(dvn, dve)
    if dv > lim.accel * dt:
        scale = lim.accel * dt / dv
        dvn, dve = dvn * scale, dve * scale
    m.vn += dvn
    m.ve += dve
    step = math.hypot(m.vn, m.ve) * dt
    if step >= dist:
        m.north, m.east = tn, te
        return 0.0
    m.north += m.vn * dt
    m.east += m.ve * dt
    if m.ground_speed > 1.0:
        turn_towards(m, math.degrees(math.atan2(m.ve, m.vn)) % 360.0, dt)
    return math.hypot(tn - m.north, te - m.east)


def brake(m: Motion, lim: Limits, dt: float) -> None:
    speed = m.ground_speed
    if speed <= lim.accel * dt:
        m.vn = m.ve = 0.0
        return
    scale = (speed - lim.accel * dt) / speed
    m.vn *= scale
    m.ve *= scale
    m.north += m.vn * dt
    m.east += m.ve * dt


def vertical_step(m: Motion, target_alt: float, lim: Limits, dt: float, landing: bool = False) -> float:
    """Climb or descend towards target_alt (accelerating at most accel_z, braking to stop on it);
    returns the remaining height difference."""
    diff = target_alt - m.alt
    if diff > 0:
        rate = lim.speed_up
    else:
        rate = lim.land_speed if landing and m.alt <= lim.land_alt_low else lim.speed_dn
    if not landing:
        rate = min(rate, math.sqrt(2 * lim.accel_z * abs(diff)))
    want = math.copysign(rate, diff)
    dv = max(-lim.accel_z * dt, min(lim.accel_z * dt, want - m.vz))
    m.vz += dv
    move = m.vz * dt
    if abs(move) >= abs(diff) or (move * diff) < 0 and abs(diff) < 0.05:
        m.alt = target_alt
        m.vz = 0.0
        return 0.0
    m.alt += move
    return target_alt - m.alt


def turn_towards(m: Motion, bearing: float, dt: float) -> None:
    delta = (bearing - m.heading + 540.0) % 360.0 - 180.0
    limit = YAW_RATE_DPS * dt
    m.heading = (m.heading + max(-limit, min(limit, delta))) % 360.0
