"""Power-on to armable: the recorded ArduCopter 4.7 SITL boot timeline, and what the EKF reports meanwhile.

A cold-booting SITL says nothing for its first seconds, refuses arming while its
IMUs settle ("Accels inconsistent", then "Gyros inconsistent"), sets the EKF
origin and home, and only later starts using GPS (from then on it can arm in
GUIDED). The times are simulated seconds after power-on, as recorded in
../shared/reference/ardupilot-sitl/. A "warm" vehicle has been powered long
enough that all of it has happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.mission import MissionStore
from sitl.params import ParamStore

# --- the recorded boot timeline, simulated seconds after power-on -------------------------------------
T_LINK = 5.0  # MAVLink starts talking (first HEARTBEAT)
T_ACCELS_OK = 13.0  # until then arming says "Accels inconsistent"
T_GYROS_OK = 24.0  # until then "Gyros inconsistent"; AHRS healthy from here
T_ORIGIN = 20.02  # EKF origin and home set
T_GPS = 41.43  # EKF3 IMU0 starts using GPS: armable in GUIDED
IMU1_LAG = 0.2  # IMU1 reports the same 0.2 s later
#: The compass yaw is aligned in flight, this long after the first lift-off.
YAW_ALIGN_AFTER_LIFTOFF_S = 2.33

EKF_FLAGS_BOOT = 0xA7  # attitude, velocities, vertical position, constant-position mode
EKF_FLAGS_GPS = 0x33F  # plus horizontal position (rel, abs, predicted), constant-position mode clear

SEV_INFO = mav.MAV_SEVERITY_INFO


@dataclass(frozen=True)
class BootTimeline:
    """When each boot milestone happens (simulated seconds after power-on)."""

    link: float = T_LINK
    accels_ok: float = T_ACCELS_OK
    gyros_ok: float = T_GYROS_OK
    origin: float = T_ORIGIN
    gps: float = T_GPS
    imu1_lag: float = IMU1_LAG


class BootHost(Protocol):
    """What the boot sequence needs of its vehicle."""

    t: float
    params: ParamStore
    ground_amsl: float
    mission: MissionStore

    def text(self, severity: int, text: str) -> None: ...
    def at(self, delay: float, action: Callable[[], None]) -> None: ...
    def set_home_here(self, announce: bool = True) -> bool: ...
    def set_param_and_report(self, name: str, value: float) -> None: ...


class Boot:
    """The boot milestones reached so far; `step()` reaches the next ones as simulated time passes."""

    def __init__(self, host: BootHost, timeline: BootTimeline, warm: bool) -> None:
        self._v = host
        self.timeline = timeline
        self.warm = warm
        self.origin_set = warm
        self.using_gps = warm
        self._yaw_aligned = False

    @property
    def linked(self) -> bool:
        """MAVLink is up (a cold-booting SITL says nothing for its first seconds)."""
        return self._v.t >= self.timeline.link

    @property
    def ahrs_healthy(self) -> bool:
        return self.warm or self._v.t >= self.timeline.gyros_ok

    def ekf_flags(self) -> int:
        """EKF_STATUS_REPORT flags: no horizontal position until GPS is in use."""
        return EKF_FLAGS_GPS if self.using_gps else EKF_FLAGS_BOOT

    def sensor_failures(self) -> list[str]:
        """The IMU arming failures of the first seconds, in ArduCopter's words."""
        if self.warm:
            return []
        t = self._v.t
        if t < self.timeline.accels_ok:
            return ["Accels inconsistent"]
        if t < self.timeline.gyros_ok:
            return ["Gyros inconsistent"]
        return []

    def step(self) -> None:
        """Reach the milestones now due, saying what the recorded SITL said."""
        if self.warm:
            return
        v, tl = self._v, self.timeline
        if not self.origin_set and v.t >= tl.origin:
            self.origin_set = True
            v.set_home_here()
            v.text(SEV_INFO, "EKF3 IMU0 origin set")
            v.set_param_and_report("MIS_TOTAL", v.mission.count)
            v.set_param_and_report("BARO1_GND_PRESS", 101325.13)
            v.set_param_and_report("BARO2_GND_PRESS", 101323.59)
            v.params.set("BARO_FIELD_ELV", v.ground_amsl)
            v.text(SEV_INFO, f"Field Elevation Set: {v.ground_amsl:.0f}m")
            v.at(tl.imu1_lag, lambda: v.text(SEV_INFO, "EKF3 IMU1 origin set"))
        if not self.using_gps and v.t >= tl.gps:
            self.using_gps = True
            v.text(SEV_INFO, "EKF3 IMU0 is using GPS")
            v.at(tl.imu1_lag, lambda: v.text(SEV_INFO, "EKF3 IMU1 is using GPS"))

    def lifted_off(self) -> None:
        """The first lift-off since power-on: the EKF aligns its yaw in flight and says so (once per IMU)."""
        if self._yaw_aligned:
            return
        self._yaw_aligned = True
        v = self._v
        v.at(YAW_ALIGN_AFTER_LIFTOFF_S, lambda: v.text(SEV_INFO, "EKF3 IMU0 MAG0 in-flight yaw alignment complete"))
        v.at(YAW_ALIGN_AFTER_LIFTOFF_S, lambda: v.text(SEV_INFO, "EKF3 IMU1 MAG0 in-flight yaw alignment complete"))
