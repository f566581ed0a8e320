"""The camera mount: a servo tilt gimbal as ArduCopter 4.7 drives and reports it (MNT1_TYPE=1, SERVO9 mount tilt).

What the real SITL with that gimbal showed (tests/sitl/transcripts/pilot_commands.jsonl):
- with no mount (MNT1_TYPE=0) MAV_CMD_DO_MOUNT_CONTROL is FAILED; with one it is ACCEPTED, and
  |pitch| > 90 (or roll > 180, yaw > 360) is FAILED with "Mount: invalid angle targets" (at most
  once in 30 s);
- the mount starts in MNT1_DEFLT_MODE (3, RC targeting): with the sticks centred that is the middle
  of MNT1_PITCH_MIN..MAX (-45 degrees for -90..0);
- MAVLINK_TARGETING holds an earth-frame pitch; a region of interest (DO_SET_ROI_LOCATION, CIRCLE's
  ROI_AT_CENTER) points it at the location (GPS point mode); DO_SET_ROI_NONE goes back to the
  default mode;
- it is reported only by GIMBAL_DEVICE_ATTITUDE_STATUS (stream EXTRA3): the servo's angle, i.e.
  the earth-frame target less the vehicle's own pitch, within the pitch limits; roll and yaw 0;
  flags roll lock, pitch lock, yaw in vehicle frame (44), plus yaw lock while pointing at a
  location (60); gimbal_device_id 1.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.kinematics import LocalFrame, Motion
from sitl.params import ParamStore

if TYPE_CHECKING:
    pass

WARNING_INTERVAL_S = 30.0
FLAGS = mav.GIMBAL_DEVICE_FLAGS_ROLL_LOCK | mav.GIMBAL_DEVICE_FLAGS_PITCH_LOCK | mav.GIMBAL_DEVICE_FLAGS_YAW_IN_VEHICLE_FRAME
ACCEPTED, FAILED = mav.MAV_RESULT_ACCEPTED, mav.MAV_RESULT_FAILED


class MountHost(Protocol):
    t: float
    params: ParamStore
    motion: Motion
    frame: LocalFrame
    ground_amsl: float

    @property
    def alt_amsl(self) -> float: ...
    def text(self, severity: int, text: str) -> None: ...


class Mount:
    """The mount's mode and targets; its reported angle comes from them and the vehicle's pitch."""

    def __init__(self, host: MountHost) -> None:
        self._v = host
        self._mode: int | None = None  # None: MNT1_DEFLT_MODE
        self.pitch_target = 0.0  # degrees, earth frame (MAVLINK_TARGETING)
        self.roi: tuple[float, float, float] | None = None  # (north, east, height above the local ground) (GPS point)
        self._warned_at = -math.inf

    @property
    def present(self) -> bool:
        return int(self._v.params.get("MNT1_TYPE", 0)) != 0

    @property
    def mode(self) -> int:
        return self._mode if self._mode is not None else int(self._v.params.get("MNT1_DEFLT_MODE", 3))

    def _limits(self) -> tuple[float, float]:
        p = self._v.params
        return p.get("MNT1_PITCH_MIN", -90.0), p.get("MNT1_PITCH_MAX", 20.0)

    # --- commands -----------------------------------------------------------------------------------

    def control(self, pitch: float, roll: float, yaw: float, mode: int) -> int:
        """MAV_CMD_DO_MOUNT_CONTROL (param1 pitch, param2 roll, param3 yaw, param7 mode)."""
        if not self.present:
            return FAILED
        if mode in (mav.MAV_MOUNT_MODE_RETRACT, mav.MAV_MOUNT_MODE_NEUTRAL, mav.MAV_MOUNT_MODE_RC_TARGETING,
                    mav.MAV_MOUNT_MODE_HOME_LOCATION):
            self._mode = mode
            return ACCEPTED
        if mode == mav.MAV_MOUNT_MODE_MAVLINK_TARGETING:
            if abs(pitch) > 90 or abs(roll) > 180 or abs(yaw) > 360:
                self._warn("invalid angle targets")
                return FAILED
            self._mode = mode
            self.pitch_target = pitch
            return ACCEPTED
        return FAILED

    def set_roi(self, target: tuple[float, float, float]) -> None:
        self.roi = target
        self._mode = mav.MAV_MOUNT_MODE_GPS_POINT

    def clear_roi(self) -> None:
        """Back to the default mode (as AP_Mount's clear_roi_target does when it was pointing at a location)."""
        self.roi = None
        if self._mode == mav.MAV_MOUNT_MODE_GPS_POINT:
            self._mode = None

    def _warn(self, text: str) -> None:
        v = self._v
        if v.t - self._warned_at >= WARNING_INTERVAL_S:
            self._warned_at = v.t
            v.text(mav.MAV_SEVERITY_WARNING, f"Mount: {text}")

    # --- state --------------------------------------------------------------------------------------

    def earth_pitch(self) -> float:
        """The pitch the mount aims for (degrees, earth frame)."""
        lo, hi = self._limits()
        mode = self.mode
        if mode == mav.MAV_MOUNT_MODE_MAVLINK_TARGETING:
            return self.pitch_target
        if mode == mav.MAV_MOUNT_MODE_GPS_POINT and self.roi is not None:
            m = self._v.motion
            dist = math.hypot(self.roi[0] - m.north, self.roi[1] - m.east)
            return math.degrees(math.atan2(self.roi[2] - m.alt, dist))
        if mode == mav.MAV_MOUNT_MODE_RC_TARGETING:
            return (lo + hi) / 2.0  # the pitch stick centred
        return 0.0  # neutral, retracted

    def reported_pitch(self, vehicle_pitch_deg: float) -> float:
        """What the servo is at: the earth-frame target less the vehicle's pitch, within the limits."""
        lo, hi = self._limits()
        return max(lo, min(hi, self.earth_pitch() - vehicle_pitch_deg))

    def flags(self) -> int:
        if self.mode == mav.MAV_MOUNT_MODE_GPS_POINT:
            return FLAGS | mav.GIMBAL_DEVICE_FLAGS_YAW_LOCK
        return FLAGS

    def status(self, encoder: Any, time_boot_ms: int, vehicle_pitch_deg: float) -> Any | None:
        """GIMBAL_DEVICE_ATTITUDE_STATUS, or None with no mount."""
        if not self.present:
            return None
        half = math.radians(self.reported_pitch(vehicle_pitch_deg)) / 2.0
        nan = float("nan")
        q = [math.cos(half), 0.0, math.sin(half), 0.0]
        return encoder.gimbal_device_attitude_status_encode(0, 0, time_boot_ms, self.flags(), q, nan, nan, nan, 0, nan, nan, 1)
