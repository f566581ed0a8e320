"""CIRCLE mode's orbit, as ArduCopter 4.7's AC_Circle flies it (libraries/AC_WPNav/AC_Circle.cpp).

- The centre: the stopping point, moved CIRCLE_RADIUS ahead along the heading unless
  CIRCLE_OPTIONS has INIT_AT_CENTER (4), when it is the stopping point itself.
- A target point runs round the centre at CIRCLE_RADIUS; its angle starts opposite the heading
  (so without INIT_AT_CENTER the copter is on the circle already, with it the target jumps out
  behind the copter and the copter flies out to it). Positive CIRCLE_RATE (deg/s) turns
  clockwise seen from above (north to east).
- The angular speed ramps up at max(WPNAV_ACCEL / r, 2 deg/s^2) to CIRCLE_RATE, capped so the
  speed round the circle stays within WPNAV_SPEED and sqrt(0.5 * WPNAV_ACCEL * r).
- The copter keeps the altitude it had (no pilot throttle: see sitl.roster.SITL_NO_RC_PARAMS),
  and faces the centre (or along its path with FACE_DIRECTION_OF_TRAVEL, 2).
- CIRCLE_RADIUS and CIRCLE_RATE changed in flight take effect at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sitl.kinematics import Limits, Motion, bearing_deg, follow, stopping_point

FACE_DIRECTION_OF_TRAVEL = 2
INIT_AT_CENTER = 4
ROI_AT_CENTER = 8
ANGULAR_ACCEL_MIN_DEG = 2.0
RADIUS_MAX_M = 2000.0


@dataclass
class Orbit:
    north: float  # centre
    east: float
    alt: float  # metres above the local ground
    radius: float  # m
    rate_deg: float  # deg/s, + clockwise
    options: int
    angle: float = 0.0  # rad, of the target point from north, clockwise
    angular_vel: float = 0.0  # rad/s

    @classmethod
    def start(cls, m: Motion, lim: Limits, radius_cm: float, rate_deg: float, options: int) -> Orbit:
        """AC_Circle::init: centre from the stopping point and heading; the target starts opposite the heading."""
        sn, se, sh = stopping_point(m, lim)
        radius = max(0.0, min(radius_cm / 100.0, RADIUS_MAX_M))
        yaw = math.radians(m.heading)
        cn, ce = sn, se
        if not options & INIT_AT_CENTER:
            cn += radius * math.cos(yaw)
            ce += radius * math.sin(yaw)
        angle = yaw - math.pi if radius > 0 else yaw
        return cls(cn, ce, sh, radius, rate_deg, int(options), angle=angle)

    def update_params(self, radius_cm: float, rate_deg: float) -> None:
        self.radius = max(0.0, min(radius_cm / 100.0, RADIUS_MAX_M))
        self.rate_deg = rate_deg

    def _limits(self, lim: Limits) -> tuple[float, float]:
        """(maximum angular velocity, angular acceleration) in rad/s, rad/s^2 (AC_Circle::calc_velocities)."""
        if self.radius <= 0:
            w_max = math.radians(self.rate_deg)
            return w_max, max(abs(w_max), math.radians(ANGULAR_ACCEL_MIN_DEG))
        v_max = min(lim.speed, math.sqrt(0.5 * lim.accel * self.radius))
        w_cap = v_max / self.radius
        w_max = max(-w_cap, min(w_cap, math.radians(self.rate_deg)))
        return w_max, max(lim.accel / self.radius, math.radians(ANGULAR_ACCEL_MIN_DEG))

    def target(self) -> tuple[float, float]:
        return self.north + self.radius * math.cos(self.angle), self.east + self.radius * math.sin(self.angle)

    def step(self, m: Motion, lim: Limits, dt: float, wind: tuple[float, float]) -> float:
        """Advance the target point and fly after it; returns the heading the copter should face (deg)."""
        w_max, w_acc = self._limits(lim)
        if self.angular_vel < w_max:
            self.angular_vel = min(self.angular_vel + w_acc * dt, w_max)
        elif self.angular_vel > w_max:
            self.angular_vel = max(self.angular_vel - w_acc * dt, w_max)
        self.angle = math.remainder(self.angle + self.angular_vel * dt, 2 * math.pi)
        tn, te = self.target()
        speed = self.angular_vel * self.radius
        vel = (-speed * math.sin(self.angle), speed * math.cos(self.angle))
        follow(m, (tn, te, self.alt), vel, lim, dt, wind)
        if self.radius <= 0:
            return math.degrees(self.angle) % 360.0
        yaw = bearing_deg(self.north - tn, self.east - te)  # from the target point to the centre
        if self.options & FACE_DIRECTION_OF_TRAVEL:
            yaw += -90.0 if self.rate_deg > 0 else 90.0
        return yaw % 360.0
