"""Battery drain and the failsafes a ground station sees: lost ground station, low and critical battery.

ArduCopter checks the ground-station heartbeat at 3 Hz (FS_GCS_ENABLE,
FS_GCS_TIMEOUT, MAV_GCS_SYSID) and the battery against BATT_LOW_MAH and
BATT_CRT_MAH; a trip is announced ("GCS Failsafe", "Battery 1 is low ...",
"Battery Failsafe") and acted on (RTL, LAND, disarm on the ground, terminate)
as the FS_*/BATT_FS_* actions say. This module keeps those flags, and they
change nowhere else.
"""

from __future__ import annotations

from typing import Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.battery import VOLTAGE_V, Battery
from sitl.battery import current as battery_current
from sitl.kinematics import Motion, airspeed
from sitl.modes import Mode
from sitl.navigation import Navigator
from sitl.params import ParamStore

#: The ground-station failsafe is checked at 3 Hz.
GCS_CHECK_PERIOD_S = 1.0 / 3.0

SEV_WARNING = mav.MAV_SEVERITY_WARNING


class FailsafeHost(Protocol):
    """What the failsafes need of their vehicle."""

    t: float
    params: ParamStore
    battery: Battery
    motion: Motion
    nav: Navigator

    @property
    def armed(self) -> bool: ...
    @property
    def flying(self) -> bool: ...
    @property
    def mode(self) -> Mode: ...
    def wind(self) -> tuple[float, float]: ...
    def text(self, severity: int, text: str) -> None: ...
    def disarm(self) -> None: ...
    def change_mode(self, mode: int) -> bool: ...


class Failsafes:
    """The failsafe flags and the battery drain; `step(dt)` after each flight step."""

    def __init__(self, host: FailsafeHost) -> None:
        self._v = host
        self.last_gcs_heartbeat: float | None = None  # simulated time of the last MAV_GCS_SYSID heartbeat
        self.gcs = False
        self.battery_low = False
        self.battery_critical = False
        self._next_gcs_check = host.t

    @property
    def battery(self) -> bool:
        return self.battery_low or self.battery_critical

    def heartbeat_from(self, sysid: int) -> None:
        """A HEARTBEAT arrived from `sysid`: the one from MAV_GCS_SYSID keeps the ground-station failsafe away."""
        if sysid == int(self._v.params["MAV_GCS_SYSID"]):
            self.last_gcs_heartbeat = self._v.t

    def battery_recharged(self) -> None:
        """The battery was set by hand (fault injection): clear the levels it is back above."""
        v = self._v
        left = v.battery.remaining_mah(v.params["BATT_CAPACITY"])
        if self.battery_low and left >= v.params["BATT_LOW_MAH"]:
            self.battery_low = False
        if self.battery_critical and left >= v.params["BATT_CRT_MAH"]:
            self.battery_critical = False

    # --- simulated time ---------------------------------------------------------------------------

    def drain(self, dt: float) -> None:
        """Draw current for `dt` seconds: idle, spooling or flying (hover, forward flight and climb cost more)."""
        v = self._v
        m = v.motion
        flying = v.flying
        amps = battery_current(
            v.battery.hover_current_a, armed=v.armed, spool=v.nav.spool, airspeed=airspeed(m, v.wind()),
            climb=m.vz if flying else 0.0,
        )
        v.battery.step(dt, amps)

    def step(self) -> None:
        v = self._v
        if v.t >= self._next_gcs_check:
            self._next_gcs_check += GCS_CHECK_PERIOD_S
            self._gcs_check()
        p = v.params
        capacity = p["BATT_CAPACITY"]
        if capacity > 0 and p["BATT_MONITOR"] > 0:
            left = v.battery.remaining_mah(capacity)
            if not self.battery_critical and p["BATT_CRT_MAH"] > 0 and left < p["BATT_CRT_MAH"]:
                self.battery_critical = True
                self._battery_text("critical")
                self._action(int(p["BATT_FS_CRT_ACT"]), gcs=False)
            elif not self.battery_low and not self.battery_critical and p["BATT_LOW_MAH"] > 0 and left < p["BATT_LOW_MAH"]:
                self.battery_low = True
                self._battery_text("low")
                self._action(int(p["BATT_FS_LOW_ACT"]), gcs=False)

    def _gcs_check(self) -> None:
        """ArduCopter's 3 Hz check: no heartbeat from MAV_GCS_SYSID for FS_GCS_TIMEOUT, once one was seen."""
        v = self._v
        p = v.params
        if p["FS_GCS_ENABLE"] > 0 and self.last_gcs_heartbeat is not None:
            silent = v.t - self.last_gcs_heartbeat > p["FS_GCS_TIMEOUT"]
            if silent and not self.gcs:
                self.gcs = True
                v.text(SEV_WARNING, "GCS Failsafe")
                self._action(int(p["FS_GCS_ENABLE"]), gcs=True)
            elif not silent and self.gcs:
                self.gcs = False
                v.text(SEV_WARNING, "GCS Failsafe Cleared")
        elif self.gcs:
            self.gcs = False
            v.text(SEV_WARNING, "GCS Failsafe Cleared")

    def _battery_text(self, level: str) -> None:
        v = self._v
        v.text(SEV_WARNING, f"Battery 1 is {level} {VOLTAGE_V:.2f}V used {v.battery.consumed_mah:.0f} mAh")
        v.text(SEV_WARNING, "Battery Failsafe")

    def _action(self, action: int, gcs: bool) -> None:
        """Carry out an FS_GCS_ENABLE (gcs) or BATT_FS_*_ACT action."""
        v = self._v
        if not v.armed:
            return
        if not v.flying:
            if action > 0:
                v.disarm()  # failsafe on the ground: motors off
            return
        if gcs:
            rtl = action in (1, 2, 3, 6) and not (action == 2 and v.mode == Mode.AUTO)
            land = action in (4, 5)
        else:
            rtl = action in (2, 3)
            land = action in (1, 4)
            if action == 5:
                v.disarm()  # terminate
                return
        if v.mode == Mode.LAND:
            return
        if rtl and v.mode != Mode.RTL:
            if not v.change_mode(Mode.RTL):
                v.change_mode(Mode.LAND)
        elif land:
            v.change_mode(Mode.LAND)
