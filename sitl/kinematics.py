"""Copter motion as ArduCopter's position controller produces it, seen from outside: pure functions.

What the recorded ArduCopter 4.7 SITL shows, and what these functions reproduce:
- a waypoint leg is a straight line in 3D: horizontal speed up to WPNAV_SPEED,
  climb up to WPNAV_SPEED_UP, descent up to WPNAV_SPEED_DN, whichever binds
  first (800 m north while climbing 30 m: 10 m/s across, 0.37 m/s up);
- speed changes at most WPNAV_ACCEL across and WPNAV_ACCEL_Z vertically; the
  horizontal acceleration itself builds up at a limited jerk (WPNAV_JERK on
  mission legs and RTL, PSC_JERK_XY for guided targets), which is why a leg
  flown from a hover starts slowly; the copter brakes so as to stop on the
  target (v <= sqrt(2 a d), with a softer braking curve than the
  acceleration, as the S-curves give);
- wind: the copter holds its track up to its maximum airspeed, so a headwind
  lowers the ground speed (and raises the power drawn);
- the nose turns towards the direction of travel at a limited yaw rate.

Positions are metres north/east of a local origin and metres up from the
ground there, in a local tangent plane (`LocalFrame`): exact enough for a
city-sized area and exactly invertible, so a commanded latitude/longitude is
reached exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: WGS-84
_A = 6378137.0
_E2 = 6.69437999014e-3
GRAVITY = 9.80665
#: Yaw rate when turning towards the direction of travel (deg/s).
YAW_RATE_DPS = 60.0
#: Braking is softer than accelerating (ArduCopter's jerk-limited S-curves): fraction of the acceleration limit.
BRAKE_FRACTION_XY = 0.8
BRAKE_FRACTION_Z = 0.55
#: Stopping a climb or descent is harder than starting one (an RTL from a climbing takeoff overshoots 1.8 m at 2.5 m/s).
VERTICAL_BRAKE_BOOST = 1.7
#: Lean needed to hold an airspeed: tan(pitch) = DRAG_LEAN * v^2 (29 degrees at 10 m/s in the recording).
DRAG_LEAN = math.tan(math.radians(29.0)) / 100.0


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """A local tangent plane at (lat0, lon0): metres north/east <-> degrees."""

    lat0: float
    lon0: float

    @property
    def _radii(self) -> tuple[float, float]:
        s = math.sin(math.radians(self.lat0))
        w = 1.0 - _E2 * s * s
        meridian = _A * (1.0 - _E2) / w**1.5  # north-south radius of curvature
        normal = _A / math.sqrt(w)  # east-west radius of curvature
        return meridian, normal * math.cos(math.radians(self.lat0))

    def to_latlon(self, north: float, east: float) -> tuple[float, float]:
        m, n = self._radii
        return self.lat0 + math.degrees(north / m), self.lon0 + math.degrees(east / n)

    def to_ne(self, lat: float, lon: float) -> tuple[float, float]:
        m, n = self._radii
        return math.radians(lat - self.lat0) * m, math.radians(lon - self.lon0) * n


@dataclass(slots=True)
class Motion:
    """The copter's true state: position (m) in its local frame, velocity (m/s), heading (deg)."""

    north: float = 0.0
    east: float = 0.0
    alt: float = 0.0  # metres above the ground at the origin
    vn: float = 0.0
    ve: float = 0.0
    vz: float = 0.0  # up
    heading: float = 0.0
    an: float = 0.0  # last horizontal acceleration (for the attitude)
    ae: float = 0.0

    @property
    def ground_speed(self) -> float:
        return math.hypot(self.vn, self.ve)

    @property
    def course(self) -> float:
        return math.degrees(math.atan2(self.ve, self.vn)) % 360.0


@dataclass(frozen=True, slots=True)
class Limits:
    speed: float  # m/s horizontal
    accel: float  # m/s^2 horizontal
    speed_up: float  # m/s
    speed_dn: float  # m/s
    accel_z: float  # m/s^2
    max_airspeed: float = 20.0
    jerk: float = 5.0  # m/s^3, how fast the horizontal acceleration may build up


def wind_vector(speed: float, from_deg: float) -> tuple[float, float]:
    """Velocity of the air (north, east) for a wind of `speed` blowing FROM `from_deg` (SIM_WIND_DIR)."""
    to = math.radians(from_deg + 180.0)
    return speed * math.cos(to), speed * math.sin(to)


def bearing_deg(dn: float, de: float) -> float:
    return math.degrees(math.atan2(de, dn)) % 360.0


def reachable_ground_speed(ux: float, uy: float, wind: tuple[float, float], max_airspeed: float) -> float:
    """Fastest ground speed along unit direction (ux, uy) with this wind, not exceeding `max_airspeed` through the air."""
    wn, we = wind
    along = wn * ux + we * uy
    cross = -wn * uy + we * ux
    return along + math.sqrt(max(max_airspeed * max_airspeed - cross * cross, 0.0))


def stopping_point(m: Motion, lim: Limits) -> tuple[float, float, float]:
    """Where the copter comes to rest if it brakes now (ArduCopter holds there, not where it was)."""
    a = max(lim.accel * BRAKE_FRACTION_XY, 0.1)
    az = max(lim.accel_z * BRAKE_FRACTION_Z, 0.1)
    k = 1.0 / (2.0 * a)
    return m.north + m.vn * m.ground_speed * k, m.east + m.ve * m.ground_speed * k, m.alt + m.vz * abs(m.vz) / (2.0 * az)


def fly_towards(
    m: Motion,
    target: tuple[float, float, float],
    lim: Limits,
    dt: float,
    wind: tuple[float, float] = (0.0, 0.0),
    speed: float | None = None,
) -> tuple[float, float]:
    """Advance `dt` along the straight 3D line to `target`; returns the remaining (horizontal, vertical) distance.

    `speed` overrides the horizontal speed limit (a DO_CHANGE_SPEED or a reposition speed).
    """
    tn, te, th = target
    dn, de, dh = tn - m.north, te - m.east, th - m.alt
    dist_h = math.hypot(dn, de)
    dist = math.sqrt(dist_h * dist_h + dh * dh)
    v_h = speed if speed and speed > 0 else lim.speed
    v_z = lim.speed_up if dh > 0 else lim.speed_dn
    if dist < 1e-3:
        want_n = want_e = want_z = 0.0
    else:
        # Speed along the line such that neither the horizontal nor the vertical limit is exceeded.
        s = math.inf
        if dist_h > 1e-6:
            ux, uy = dn / dist_h, de / dist_h
            ground_cap = min(v_h, max(reachable_ground_speed(ux, uy, wind, lim.max_airspeed), 0.0))
            s = min(s, ground_cap * dist / dist_h)
            s = min(s, math.sqrt(2.0 * lim.accel * BRAKE_FRACTION_XY * dist_h) * dist / dist_h)
        if abs(dh) > 1e-6:
            s = min(s, v_z * dist / abs(dh))
            s = min(s, math.sqrt(2.0 * lim.accel_z * BRAKE_FRACTION_Z * abs(dh)) * dist / abs(dh))
        k = s / dist
        want_n, want_e, want_z = dn * k, de * k, dh * k
    _accelerate(m, want_n, want_e, want_z, lim, dt)
    if dist < 0.01 and abs(m.vn) + abs(m.ve) + abs(m.vz) < 0.02:
        m.north, m.east, m.alt = tn, te, th  # settled on the target
        m.vn = m.ve = m.vz = m.an = m.ae = 0.0
        return 0.0, 0.0
    # No snapping: a copter arriving too fast (a target moved under it) overshoots and comes back.
    m.north += m.vn * dt
    m.east += m.ve * dt
    m.alt += m.vz * dt
    return math.hypot(tn - m.north, te - m.east), th - m.alt


#: Position error (m) to corrective speed (m/s) when following a moving target (PSC_POSXY_P).
POS_P = 1.0


def follow(
    m: Motion,
    target: tuple[float, float, float],
    target_vel: tuple[float, float],
    lim: Limits,
    dt: float,
    wind: tuple[float, float] = (0.0, 0.0),
) -> None:
    """Advance `dt` after a target moving at `target_vel` (north, east): its velocity plus a correction towards it.

    The correction is the position controller's: POS_P per metre, no more than a stop on the target allows,
    the whole within the horizontal speed limit (a CIRCLE's target point; the copter flies out to it first).
    """
    tn, te, th = target
    dn, de, dh = tn - m.north, te - m.east, th - m.alt
    d = math.hypot(dn, de)
    want_n, want_e = target_vel
    if d > 1e-6:
        corr = min(POS_P * d, math.sqrt(2.0 * lim.accel * BRAKE_FRACTION_XY * d), lim.speed)
        want_n += corr * dn / d
        want_e += corr * de / d
    s = math.hypot(want_n, want_e)
    cap = lim.speed
    if s > 1e-6:
        cap = min(cap, max(reachable_ground_speed(want_n / s, want_e / s, wind, lim.max_airspeed), 0.0))
    if s > cap:
        want_n, want_e = want_n * cap / s, want_e * cap / s
    v_z = lim.speed_up if dh > 0 else lim.speed_dn
    want_z = math.copysign(min(v_z, math.sqrt(2.0 * lim.accel_z * BRAKE_FRACTION_Z * abs(dh)), POS_P * abs(dh)), dh)
    _accelerate(m, want_n, want_e, want_z, lim, dt)
    m.north += m.vn * dt
    m.east += m.ve * dt
    m.alt += m.vz * dt


def _accelerate(m: Motion, want_n: float, want_e: float, want_z: float, lim: Limits, dt: float) -> None:
    dvn, dve = want_n - m.vn, want_e - m.ve
    dv = math.hypot(dvn, dve)
    if math.hypot(want_n, want_e) + 0.05 < m.ground_speed:
        accel = lim.accel  # braking (the braking curve already allows for it)
    else:
        # S-curve: the acceleration builds up at the jerk limit and eases off as the speed is reached
        accel = min(lim.accel, math.hypot(m.an, m.ae) + lim.jerk * dt, math.sqrt(2.0 * lim.jerk * dv))
        accel = max(accel, lim.jerk * dt)
    cap = accel * dt
    if dv > cap:
        dvn, dve = dvn * cap / dv, dve * cap / dv
    m.vn += dvn
    m.ve += dve
    m.an, m.ae = dvn / dt, dve / dt
    dvz = want_z - m.vz
    braking_z = want_z * m.vz < 0 or abs(want_z) < abs(m.vz)
    cap_z = lim.accel_z * (VERTICAL_BRAKE_BOOST if braking_z else 1.0) * dt
    m.vz += max(-cap_z, min(cap_z, dvz))


def descend(m: Motion, rate: float, lim: Limits, dt: float) -> None:
    """Brake horizontally to a stop and sink at `rate` m/s (a landing, or low throttle in a manual mode)."""
    _accelerate(m, 0.0, 0.0, -rate, lim, dt)
    m.north += m.vn * dt
    m.east += m.ve * dt
    m.alt += m.vz * dt


def land_rate(alt: float, speed_high: float, speed_low: float, alt_low: float) -> float:
    """ArduCopter's landing: WPNAV_SPEED_DN (or LAND_SPEED_HIGH) down to LAND_ALT_LOW, then LAND_SPEED."""
    return speed_low if alt <= alt_low else speed_high


def turn_towards(heading: float, bearing: float, dt: float, rate_dps: float = YAW_RATE_DPS) -> float:
    delta = (bearing - heading + 540.0) % 360.0 - 180.0
    limit = rate_dps * dt
    return (heading + max(-limit, min(limit, delta))) % 360.0


def attitude(m: Motion, wind: tuple[float, float]) -> tuple[float, float]:
    """(roll, pitch) in radians: the lean that holds the airspeed against drag, plus the lean that accelerates."""
    an_air, ae_air = m.vn - wind[0], m.ve - wind[1]
    air = math.hypot(an_air, ae_air)
    h = math.radians(m.heading)
    c, s = math.cos(h), math.sin(h)
    fwd_air, right_air = an_air * c + ae_air * s, -an_air * s + ae_air * c
    fwd_acc, right_acc = m.an * c + m.ae * s, -m.an * s + m.ae * c
    pitch = -math.atan(DRAG_LEAN * fwd_air * air + fwd_acc / GRAVITY)
    roll = math.atan(DRAG_LEAN * right_air * air + right_acc / GRAVITY)
    return roll, pitch


def airspeed(m: Motion, wind: tuple[float, float]) -> float:
    return math.hypot(m.vn - wind[0], m.ve - wind[1])
