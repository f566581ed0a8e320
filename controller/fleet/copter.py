"""ArduCopter facts the controller relies on: mode numbers, EKF readiness, stream groups.

Numbers are ArduCopter's (HEARTBEAT custom_mode), as recorded from a real
ArduCopter 4.7 SITL in ../shared/reference/ardupilot-sitl/.
"""

from __future__ import annotations

from enum import IntEnum

from pymavlink.dialects.v20 import ardupilotmega as mavlink2


class CopterMode(IntEnum):
    STABILIZE = 0
    AUTO = 3
    GUIDED = 4
    LOITER = 5
    RTL = 6
    CIRCLE = 7
    LAND = 9
    BRAKE = 17


#: EKF_STATUS_REPORT flags that must all be set before GUIDED arming is accepted
#: (attitude, horizontal/vertical velocity, horizontal position rel/abs) ...
EKF_READY_FLAGS = 0x1F
#: ... and this one clear (constant-position mode: no GPS fix used yet).
EKF_CONST_POS_MODE = 0x80

SAFETY_ARMED = mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
CUSTOM_MODE_ENABLED = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED

#: Telemetry the controller asks each drone for (REQUEST_DATA_STREAM id -> Hz), grouped as ArduCopter groups them.
STREAM_RATES_HZ: dict[int, int] = {
    mavlink2.MAV_DATA_STREAM_EXTENDED_STATUS: 2,  # SYS_STATUS, GPS_RAW_INT, MISSION_CURRENT, NAV_CONTROLLER_OUTPUT
    mavlink2.MAV_DATA_STREAM_POSITION: 4,  # GLOBAL_POSITION_INT, LOCAL_POSITION_NED
    mavlink2.MAV_DATA_STREAM_EXTRA1: 4,  # ATTITUDE
    mavlink2.MAV_DATA_STREAM_EXTRA2: 4,  # VFR_HUD
    mavlink2.MAV_DATA_STREAM_EXTRA3: 1,  # BATTERY_STATUS, EKF_STATUS_REPORT, WIND
}


def ekf_ready(flags: int) -> bool:
    return (flags & EKF_READY_FLAGS) == EKF_READY_FLAGS and not flags & EKF_CONST_POS_MODE


ACK_RESULTS = {
    mavlink2.MAV_RESULT_ACCEPTED: "accepted",
    mavlink2.MAV_RESULT_TEMPORARILY_REJECTED: "temporarily rejected",
    mavlink2.MAV_RESULT_DENIED: "denied",
    mavlink2.MAV_RESULT_UNSUPPORTED: "unsupported",
    mavlink2.MAV_RESULT_FAILED: "failed",
    mavlink2.MAV_RESULT_IN_PROGRESS: "in progress",
}
