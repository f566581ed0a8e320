"""Arming rules and the motors' state: pre-arm checks, arm and disarm, landing, auto-disarm, flight statistics.

ArduCopter refuses to arm with reasons in a fixed order ("Arm: ..."), shows
failing checks every 30 s ("PreArm: ...") and a second after a disarm, detects
a landing and disarms a little later in LAND/RTL/AUTO, disarms on the ground
after DISARM_DELAY, learns its hover throttle in flight (MOT_THST_HOVER) and
saves STAT_FLTTIME/STAT_RUNTIME every 31 s and after each landing. The numbers
are the recorded SITL's; the armed flag changes only here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.mission import MissionStore
from sitl.modes import ARMABLE, NEEDS_POSITION, POSITION_CONTROLLED, Mode
from sitl.navigation import GoalKind, Navigator
from sitl.params import ParamStore

if TYPE_CHECKING:
    from sitl.auto import MissionRunner
    from sitl.boot import Boot
    from sitl.pilot import Pilot
    from sitl.rtl import ReturnToLaunch
    from sitl.vehicle import Faults

PREARM_PHASE = 0.43  # the 1 Hz arming check runs at this fraction of each second
PREARM_DISPLAY_S = 30.0  # failures are shown when more than this has passed since the last display
STAT_PERIOD_S = 31.0
#: After touchdown: landing detected (statistics saved), then the motors disarm.
LAND_DETECT_S, LAND_DISARM_S = 1.58, 2.07
#: MOT_HOVER_LEARN saves the hover throttle after this much flying.
HOVER_LEARN_AFTER_S = 10.0

SEV_CRITICAL, SEV_INFO = mav.MAV_SEVERITY_CRITICAL, mav.MAV_SEVERITY_INFO


class ArmingHost(Protocol):
    """What the arming rules need of their vehicle."""

    t: float
    params: ParamStore
    nav: Navigator
    mission: MissionStore
    rng: random.Random
    faults: Faults
    boot: Boot
    pilot: Pilot
    auto: MissionRunner
    rtl: ReturnToLaunch

    @property
    def mode(self) -> Mode: ...
    @property
    def flying(self) -> bool: ...
    @property
    def gcs_failsafe(self) -> bool: ...
    @property
    def battery_low(self) -> bool: ...
    @property
    def battery_critical(self) -> bool: ...
    def text(self, severity: int, text: str) -> None: ...
    def at(self, delay: float, action: Callable[[], None]) -> None: ...
    def send_param(self, name: str, index: int = 65535) -> None: ...
    def set_param_and_report(self, name: str, value: float) -> None: ...
    def set_home_here(self, announce: bool = True) -> bool: ...


class Arming:
    """The motors (armed or not), the 1 Hz pre-arm check, landing detection and the flight statistics."""

    def __init__(self, host: ArmingHost) -> None:
        self._v = host
        t = host.t
        self.armed = False
        self.ever_armed = False
        self.airborne_time = 0.0  # seconds flown since power-on (STAT_FLTTIME)
        self._ground_since = t  # armed on the ground since (auto-disarm)
        self._report_after_disarm: float | None = None
        self._next_check = math.floor(t) + PREARM_PHASE + (1.0 if t % 1.0 > PREARM_PHASE else 0.0)
        # the arming check shows failures at 30.43 s after boot and every 31 s after that; statistics likewise
        first = PREARM_PHASE + PREARM_DISPLAY_S
        shown = first + STAT_PERIOD_S * math.floor((t - first) / STAT_PERIOD_S) if t > first else 0.0
        self._last_prearm_display = shown
        self._next_stat = shown + STAT_PERIOD_S if shown else first

    # --- the rules --------------------------------------------------------------------------------

    def failures(self, arming: bool = False) -> list[str]:
        """Why arming would be refused now, in ArduCopter's words, in its order (empty: it would arm)."""
        v = self._v
        mode, low, critical = v.mode, v.battery_low, v.battery_critical
        out: list[str] = []
        if v.faults.prearm_failure:
            out.append(v.faults.prearm_failure)
        if v.gcs_failsafe:
            out.append("GCS failsafe on")
        out.extend(v.boot.sensor_failures())
        if not v.boot.origin_set:
            out.append("AHRS: waiting for home")
        elif not v.boot.using_gps and mode in NEEDS_POSITION:
            out.append("Need Position Estimate")
        if low:
            out.append("Battery 1 low capacity failsafe")
        if critical:
            out.append("Battery 1 critical capacity failsafe")
        if low or critical:
            out.append("Battery failsafe")
        if mode == Mode.AUTO and not v.mission.has_mission:
            out.append("Mode requires mission")
        if arming and not out and mode not in ARMABLE:
            out.append("Mode not armable")
        return out

    # --- arm and disarm -------------------------------------------------------------------------

    def arm(self) -> None:
        v = self._v
        self.armed = True
        self.ever_armed = True
        v.pilot.wake_controller()
        self._ground_since = v.t
        self._report_after_disarm = None
        home_added = v.set_home_here()
        v.text(SEV_INFO, "Arming motors")
        if home_added:
            v.set_param_and_report("MIS_TOTAL", v.mission.count)  # after a MISSION_CLEAR_ALL

    def disarm(self) -> None:
        v = self._v
        self.armed = False
        if v.flying:
            v.nav.fall(v.t)  # forced disarm in the air: the motors stop
        else:
            v.nav.ground(v.t)
        v.auto.interrupt()
        v.text(SEV_INFO, "Disarming motors")
        if self.airborne_time > HOVER_LEARN_AFTER_S:
            # the hover throttle learnt in flight, as MOT_HOVER_LEARN saves it
            v.params.set("MOT_THST_HOVER", 0.375 + v.rng.uniform(-0.01, 0.005))
        v.send_param("MOT_THST_HOVER")
        self._report_after_disarm = v.t

    # --- flight ---------------------------------------------------------------------------------

    def flew(self, dt: float) -> None:
        """`dt` more seconds in the air."""
        self.airborne_time += dt

    def touchdown(self) -> None:
        """The copter hit the ground: landing detected, and in a landing mode the motors disarm shortly after."""
        v = self._v
        speed = v.nav.touchdown_speed
        v.text(SEV_INFO, f"SIM Hit ground at {speed + v.rng.uniform(-0.002, 0.002):f} m/s")
        self._ground_since = v.t
        v.at(LAND_DETECT_S, self._report_stats)
        landing_mode = v.mode in (Mode.LAND, Mode.RTL) or (v.mode == Mode.AUTO and v.auto.running)
        if landing_mode:
            v.at(LAND_DISARM_S, self._landed_disarm)

    def _landed_disarm(self) -> None:
        v = self._v
        if not self.armed or v.flying:
            return
        if v.mode == Mode.AUTO and v.auto.running:
            v.auto.landed()
        self.disarm()
        v.pilot.idle_controller()
        v.rtl.cancel()

    def auto_disarm(self) -> None:
        """Disarm after DISARM_DELAY armed on the ground."""
        v = self._v
        if not self.armed or v.nav.goal.kind != GoalKind.GROUND:
            self._ground_since = v.t
            return
        delay = v.params["DISARM_DELAY"]
        if delay > 0 and v.t - self._ground_since >= delay - 0.1:
            self.disarm()
            if v.mode in POSITION_CONTROLLED and self.ever_armed and self.airborne_time > 0:
                v.pilot.idle_controller()

    # --- periodic -------------------------------------------------------------------------------

    def periodic(self) -> None:
        """The 1 Hz pre-arm check and the 31 s statistics, when due."""
        v = self._v
        if v.t >= self._next_check:
            self._next_check += 1.0
            self._prearm_tick()
        if v.t >= self._next_stat:
            self._next_stat += STAT_PERIOD_S
            if self.airborne_time > 0:
                v.set_param_and_report("STAT_FLTTIME", round(self.airborne_time))
            v.set_param_and_report("STAT_RUNTIME", round(v.t))

    def _report_stats(self) -> None:
        v = self._v
        v.set_param_and_report("STAT_FLTTIME", round(self.airborne_time))
        v.set_param_and_report("STAT_RUNTIME", round(v.t))
        self._next_stat = v.t + STAT_PERIOD_S - 0.7

    def _prearm_tick(self) -> None:
        """ArduCopter's 1 Hz arming check: failures are shown every 30 s, and a second after a disarm if failing."""
        v = self._v
        now = v.t
        display = round((now - self._last_prearm_display) * 1000) > PREARM_DISPLAY_S * 1000  # whole ms, as ArduPilot counts
        if self._report_after_disarm is not None and now - self._report_after_disarm >= 1.0:
            self._report_after_disarm = None
            if not self.armed and self.failures():
                display = True
        if not display:
            return
        self._last_prearm_display = now
        if self.armed:
            return
        for failure in self.failures():
            v.text(SEV_CRITICAL, f"PreArm: {failure}")
