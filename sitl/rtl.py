"""Return to launch, flown the way ArduCopter 4.7 flies it: climb, return, loiter, descend, land.

Used by RTL mode and by a mission's NAV_RETURN_TO_LAUNCH item. The return
altitude is RTL_ALT, lowered near home by the cone (RTL_CONE_SLOPE, RTL_ALT_MIN)
and never below the current altitude plus RTL_CLIMB_MIN; the copter first stops
(and climbs) where it is, then flies home at RTL_SPEED, waits RTL_LOIT_TIME
(plus the recorded settling time), and lands, or first descends to
RTL_ALT_FINAL if that is set.
"""

from __future__ import annotations

import math
from typing import Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.kinematics import Limits, Motion, stopping_point
from sitl.navigation import Event, Navigator
from sitl.params import ParamStore

#: RTL waits this long at home beyond RTL_LOIT_TIME before descending (the recorded SITL: 6-6.7 s in all).
RTL_SETTLE_S = 1.3

REL_ALT = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT


class RtlHost(Protocol):
    """What RTL needs of its vehicle."""

    t: float
    params: ParamStore
    motion: Motion
    nav: Navigator

    @property
    def home_ne(self) -> tuple[float, float]: ...
    @property
    def relative_alt(self) -> float: ...
    @property
    def wp_jerk(self) -> float: ...
    def limits(self) -> Limits: ...
    def height_from(self, alt: float, frame: int) -> float: ...


class ReturnToLaunch:
    """The phase of a return in progress ("climb", "return", "loiter", "final", "land"; None: none)."""

    def __init__(self, host: RtlHost) -> None:
        self._v = host
        self.phase: str | None = None
        self._alt = 0.0  # metres above the local ground
        self._until = 0.0

    def cancel(self) -> None:
        self.phase = None

    def start(self) -> None:
        """Climb to the return altitude (RTL_ALT, limited by the cone near home), fly home, loiter, land."""
        v = self._v
        p, m = v.params, v.motion
        hn, he = v.home_ne
        dist = math.hypot(hn - m.north, he - m.east)
        if p["RTL_CONE_SLOPE"] > 0:
            target = min(p["RTL_ALT"] / 100.0, max(dist * p["RTL_CONE_SLOPE"], p["RTL_ALT_MIN"] / 100.0))
        else:
            target = p["RTL_ALT"] / 100.0
        current = v.relative_alt
        target = max(target, current + p["RTL_CLIMB_MIN"] / 100.0, current)
        self._alt = v.height_from(target, REL_ALT)
        # ArduCopter first stops (and climbs, if it has to) where it is, then turns for home.
        self.phase = "climb"
        sn, se, _ = stopping_point(m, v.limits())
        v.nav.goto((sn, se, self._alt), v.t, yaw_to_travel=False, jerk=v.wp_jerk)

    def _return(self) -> None:
        v = self._v
        self.phase = "return"
        hn, he = v.home_ne
        speed = v.params["RTL_SPEED"] / 100.0 or None
        # WP_YAW_BEHAVIOR 2: face the next waypoint except in RTL
        yaw = int(v.params["WP_YAW_BEHAVIOR"]) in (1, 3)
        v.nav.goto((hn, he, self._alt), v.t, speed=speed, yaw_to_travel=yaw, jerk=v.wp_jerk)

    def on_event(self, event: Event) -> None:
        if event != Event.ARRIVED:
            return
        if self.phase == "climb":
            self._return()
        elif self.phase == "return":
            self.phase = "loiter"
            self._until = self._v.t + RTL_SETTLE_S + self._v.params["RTL_LOIT_TIME"] / 1000.0

    def tick(self) -> None:
        """After the loiter at home: descend to RTL_ALT_FINAL, or land."""
        v = self._v
        if self.phase == "loiter" and v.t >= self._until:
            final = v.params["RTL_ALT_FINAL"] / 100.0
            if final > 0:
                self.phase = "final"
                hn, he = v.home_ne
                v.nav.goto((hn, he, v.height_from(final, REL_ALT)), v.t, yaw_to_travel=False, jerk=v.wp_jerk)
            else:
                self.phase = "land"
                v.nav.land(v.t)
