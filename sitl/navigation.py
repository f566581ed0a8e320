"""What the copter is doing right now, one goal at a time, and the events it reports (an explicit state machine).

Goals: on the ground; a takeoff (motors spool up, then the climb); fly to a
point (and hold there); land; sink with the throttle low; fall with the motors
off. Each `Navigator.step` moves the `Motion` by the kinematics and returns the
events the flight modes react to: lift-off, takeoff complete, arrived,
touchdown (with the vertical speed at contact, which SITL announces).

Timings come from the recorded ArduCopter 4.7 SITL: 3.3 s from the takeoff
command to lift-off, then WPNAV_ACCEL_Z up to WPNAV_SPEED_UP, braking softly
onto the target altitude; landings at WPNAV_SPEED_DN above LAND_ALT_LOW and
LAND_SPEED below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from sitl.circle import Orbit
from sitl.kinematics import (
    GRAVITY,
    Limits,
    Motion,
    bearing_deg,
    descend,
    fly_towards,
    land_rate,
    stopping_point,
    turn_towards,
)

#: Takeoff command to lift-off: arming spin, spool-up and the takeoff ramp of the recorded SITL.
SPOOL_UP_S = 3.3
#: A takeoff is complete this close to its altitude.
TAKEOFF_DONE_M = 0.1
#: A leg that ends in a stop is complete this close to its end, nearly at rest.
ARRIVED_M = 0.5
#: Sinking speed with the throttle at minimum in a manual mode.
SINK_RATE = 2.5


class GoalKind(Enum):
    GROUND = "ground"
    SPOOL = "spool"  # takeoff accepted, motors spooling up
    CLIMB = "climb"  # takeoff climb
    GOTO = "goto"  # fly to target (and hold there)
    CIRCLE = "circle"  # fly round an orbit (CIRCLE mode)
    LAND = "land"
    SINK = "sink"
    FALL = "fall"


class Event(Enum):
    LIFTOFF = "liftoff"
    TAKEOFF_DONE = "takeoff_done"
    ARRIVED = "arrived"
    TOUCHDOWN = "touchdown"


@dataclass
class Goal:
    kind: GoalKind
    target: tuple[float, float, float] | None = None
    speed: float | None = None  # horizontal speed override (m/s)
    yaw_to_travel: bool = True
    radius: float = 2.0  # arrival radius (m) when passing through
    stop: bool = True  # arrive only once stopped there (else: on entering `radius`)
    jerk: float | None = None  # horizontal jerk limit for this leg (m/s^3)
    since: float = 0.0
    arrived: bool = False
    orbit: Orbit | None = None


class Navigator:
    def __init__(self) -> None:
        self.goal = Goal(GoalKind.GROUND)
        self.touchdown_speed = 0.0
        #: A point (north, east) the nose points at instead of where the goal would turn it (a region of interest).
        self.face: tuple[float, float] | None = None

    @property
    def airborne(self) -> bool:
        return self.goal.kind not in (GoalKind.GROUND, GoalKind.SPOOL)

    @property
    def spool(self) -> float:
        """0 at idle on the ground .. 1 in flight (for current draw, throttle and PWM)."""
        g = self.goal
        if g.kind == GoalKind.GROUND:
            return 0.0
        if g.kind == GoalKind.SPOOL:
            return min(1.0, self._spool_elapsed / SPOOL_UP_S)
        if g.kind == GoalKind.FALL:
            return 0.0
        return 1.0

    _spool_elapsed = 0.0

    def set(self, goal: Goal, now: float) -> None:
        goal.since = now
        self.goal = goal
        if goal.kind == GoalKind.SPOOL:
            self._spool_elapsed = 0.0

    def ground(self, now: float) -> None:
        self.set(Goal(GoalKind.GROUND), now)

    def takeoff(self, m: Motion, alt: float, now: float) -> None:
        self.set(Goal(GoalKind.SPOOL, (m.north, m.east, alt)), now)

    def goto(self, target: tuple[float, float, float], now: float, speed: float | None = None, yaw_to_travel: bool = True,
             radius: float = 2.0, stop: bool = True, jerk: float | None = None) -> None:
        self.set(Goal(GoalKind.GOTO, target, speed, yaw_to_travel, radius, stop, jerk), now)

    def hold(self, m: Motion, lim: Limits, now: float) -> None:
        """Brake and hold where the copter comes to rest."""
        self.goto(stopping_point(m, lim), now, yaw_to_travel=False)

    def circle(self, orbit: Orbit, now: float) -> None:
        self.set(Goal(GoalKind.CIRCLE, (orbit.north, orbit.east, orbit.alt), yaw_to_travel=False, orbit=orbit), now)

    def land(self, now: float) -> None:
        self.set(Goal(GoalKind.LAND), now)

    def sink(self, now: float) -> None:
        self.set(Goal(GoalKind.SINK), now)

    def fall(self, now: float) -> None:
        self.set(Goal(GoalKind.FALL), now)

    def step(
        self,
        m: Motion,
        lim: Limits,
        dt: float,
        wind: tuple[float, float],
        land: tuple[float, float, float],
    ) -> list[Event]:
        """Advance `dt`. `land` is (speed above LAND_ALT_LOW, LAND_SPEED, LAND_ALT_LOW) in m/s, m/s, m."""
        g = self.goal
        kind = g.kind
        if kind == GoalKind.GROUND:
            m.vn = m.ve = m.vz = m.an = m.ae = 0.0
            return []
        if kind == GoalKind.SPOOL:
            self._spool_elapsed += dt
            if self._spool_elapsed >= SPOOL_UP_S:
                assert g.target is not None
                self.set(Goal(GoalKind.CLIMB, g.target, yaw_to_travel=False), g.since + SPOOL_UP_S)
                return [Event.LIFTOFF]
            return []
        if kind == GoalKind.CLIMB:
            assert g.target is not None
            _, dz = fly_towards(m, g.target, lim, dt, wind)
            if abs(dz) <= TAKEOFF_DONE_M and not g.arrived:
                g.arrived = True
                return [Event.TAKEOFF_DONE]
            return []
        if kind == GoalKind.GOTO:
            assert g.target is not None
            if g.jerk is not None:
                lim = replace(lim, jerk=g.jerk)
            dh, dz = fly_towards(m, g.target, lim, dt, wind, g.speed)
            if self.face is not None:
                self._face(m, dt)
            elif g.yaw_to_travel and dh > 2.0 and m.ground_speed > 1.0:
                m.heading = turn_towards(m.heading, bearing_deg(g.target[0] - m.north, g.target[1] - m.east), dt)
            if g.arrived:
                return []
            if g.stop:
                arrived = dh <= ARRIVED_M and abs(dz) <= ARRIVED_M and m.ground_speed < 0.2 and abs(m.vz) < 0.2
            else:
                arrived = dh <= g.radius and abs(dz) <= 0.5
            if arrived:
                g.arrived = True
                if g.stop:
                    m.an = m.ae = 0.0  # at rest: the next leg builds its acceleration up from zero
                return [Event.ARRIVED]
            return []
        if kind == GoalKind.CIRCLE:
            assert g.orbit is not None
            yaw = g.orbit.step(m, lim, dt, wind)
            if self.face is not None:
                self._face(m, dt)
            else:
                m.heading = turn_towards(m.heading, yaw, dt)
            return []
        if kind == GoalKind.LAND:
            descend(m, land_rate(m.alt, land[0], land[1], land[2]), lim, dt)
        elif kind == GoalKind.SINK:
            descend(m, SINK_RATE, lim, dt)
        elif kind == GoalKind.FALL:
            m.vz -= GRAVITY * dt
            m.north += m.vn * dt
            m.east += m.ve * dt
            m.alt += m.vz * dt
        if m.alt <= 0.0:
            self.touchdown_speed = abs(m.vz)
            m.alt = 0.0
            m.vn = m.ve = m.vz = m.an = m.ae = 0.0
            self.set(Goal(GoalKind.GROUND), g.since)
            return [Event.TOUCHDOWN]
        return []

    def _face(self, m: Motion, dt: float) -> None:
        assert self.face is not None
        dn, de = self.face[0] - m.north, self.face[1] - m.east
        if math.hypot(dn, de) > 1.0:
            m.heading = turn_towards(m.heading, bearing_deg(dn, de), dt)

    def target(self) -> tuple[float, float, float] | None:
        g = self.goal
        return g.target if g.kind in (GoalKind.GOTO, GoalKind.CLIMB, GoalKind.SPOOL) else None

    def distance_to_target(self, m: Motion) -> float:
        t = self.target()
        return 0.0 if t is None else math.hypot(t[0] - m.north, t[1] - m.east)
