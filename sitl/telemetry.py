"""The telemetry streams a ground station asks for, grouped and timed the way ArduCopter does.

REQUEST_DATA_STREAM sets a rate (simulated Hz) per group; SET_MESSAGE_INTERVAL
overrides one message. Which message is due when is decided by the vehicle's
StreamScheduler (streams.py) alone; this module says what each group carries
and builds the messages. Field values follow what the recorded SITL sent (EKF
flags, sensor bitmasks, GPS fix 6 with 10 satellites, battery at 12.6 V,
POSITION_TARGET_GLOBAL_INT in frame 0 with type mask 0xFDF8, ...).

Builders read the vehicle and return pymavlink message objects; they run only
for vehicles someone is connected to.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.battery import VOLTAGE_V
from sitl.kinematics import airspeed, attitude, bearing_deg

if TYPE_CHECKING:
    from sitl.vehicle import SimCopter

RAW_SENSORS = mav.MAV_DATA_STREAM_RAW_SENSORS
EXTENDED_STATUS = mav.MAV_DATA_STREAM_EXTENDED_STATUS
RC_CHANNELS = mav.MAV_DATA_STREAM_RC_CHANNELS
POSITION = mav.MAV_DATA_STREAM_POSITION
EXTRA1 = mav.MAV_DATA_STREAM_EXTRA1
EXTRA2 = mav.MAV_DATA_STREAM_EXTRA2
EXTRA3 = mav.MAV_DATA_STREAM_EXTRA3
ALL_GROUPS = (RAW_SENSORS, EXTENDED_STATUS, RC_CHANNELS, POSITION, EXTRA1, EXTRA2, EXTRA3)

POSITION_TARGET_TYPE_MASK = 0xFDF8  # position only, as ArduCopter reports its target
NAN4 = [math.nan] * 4

Builder = Callable[["SimCopter"], Any]


# --- builders -------------------------------------------------------------------------------------


def heartbeat(v: SimCopter) -> Any:
    return v.heartbeat()


def sys_status(v: SimCopter) -> Any:
    present, enabled, health = v.sys_sensors()
    b = v.battery
    return v.encoder.sys_status_encode(
        present, enabled, health, 0, int(VOLTAGE_V * 1000), int(b.current_a * 100), b.remaining_pct(v.capacity_mah), 0, 0, 0, 0, 0, 0
    )


def power_status(v: SimCopter) -> Any:
    return v.encoder.power_status_encode(5000, 0, 0)


def meminfo(v: SimCopter) -> Any:
    return v.encoder.meminfo_encode(0, 65535, 524288)


def mission_current(v: SimCopter) -> Any:
    total = max(v.mission.count - 1, 0)
    return v.encoder.mission_current_encode(v.mission_seq, total, v.mission_state(), 1 if v.mode == 3 else 0)


def gps_raw_int(v: SimCopter) -> Any:
    m = v.motion
    lat, lon, alt = v.reported_position()
    gps_us = int(math.floor(v.t * 5.0) / 5.0 * 1e6)  # 5 Hz GPS
    alt_mm = round(alt * 1000)
    return v.encoder.gps_raw_int_encode(
        gps_us, mav.GPS_FIX_TYPE_RTK_FIXED, round(lat * 1e7), round(lon * 1e7), alt_mm, 121, 200,
        round(m.ground_speed * 100), round(m.course * 100) % 36000 if m.ground_speed > 0.2 else 0, 10,
        alt_mm, 300, 300, 0, 0, 0,
    )


def nav_controller_output(v: SimCopter) -> Any:
    m = v.motion
    target = v.nav.target()
    roll, pitch = attitude(m, v.wind())
    if target is None:
        dist, target_bearing, alt_error = 0, 0, 0.0
    else:
        dn, de = target[0] - m.north, target[1] - m.east
        dist = min(round(math.hypot(dn, de)), 65535)
        target_bearing = round(bearing_deg(dn, de)) if dist > 0 else 0
        alt_error = target[2] - m.alt
    nav_bearing = round(m.heading) if m.heading <= 180 else round(m.heading - 360)
    if target_bearing > 180:
        target_bearing -= 360
    return v.encoder.nav_controller_output_encode(
        math.degrees(roll), math.degrees(pitch), nav_bearing, target_bearing, dist, alt_error, 0.0, 0.0
    )


def position_target_global_int(v: SimCopter) -> Any | None:
    target = v.position_target()
    if target is None:
        return None
    lat, lon, alt = target
    return v.encoder.position_target_global_int_encode(
        v.time_boot_ms, mav.MAV_FRAME_GLOBAL, POSITION_TARGET_TYPE_MASK, round(lat * 1e7), round(lon * 1e7), alt,
        0, 0, 0, 0, 0, 0, 0, 0,
    )


def global_position_int(v: SimCopter) -> Any:
    m = v.motion
    lat, lon, alt = v.reported_position()
    home_amsl = v.home[2] if v.home else v.ground_amsl
    return v.encoder.global_position_int_encode(
        v.time_boot_ms, round(lat * 1e7), round(lon * 1e7), round(alt * 1000), round((alt - home_amsl) * 1000),
        round(m.vn * 100), round(m.ve * 100), round(-m.vz * 100), round(m.heading * 100) % 36000,
    )


def local_position_ned(v: SimCopter) -> Any:
    m = v.motion
    return v.encoder.local_position_ned_encode(v.time_boot_ms, m.north, m.east, -m.alt, m.vn, m.ve, -m.vz)


def _attitude_angles(v: SimCopter) -> tuple[float, float, float]:
    roll, pitch = attitude(v.motion, v.wind())
    yaw = math.radians(v.motion.heading)
    if yaw > math.pi:
        yaw -= 2 * math.pi
    return roll, pitch, yaw


def attitude_msg(v: SimCopter) -> Any:
    roll, pitch, yaw = _attitude_angles(v)
    return v.encoder.attitude_encode(v.time_boot_ms, roll, pitch, yaw, 0.0, 0.0, 0.0)


def ahrs2(v: SimCopter) -> Any:
    roll, pitch, yaw = _attitude_angles(v)
    lat, lon = v.latlon()
    return v.encoder.ahrs2_encode(roll, pitch, yaw, v.relative_alt, round(lat * 1e7), round(lon * 1e7))


def vfr_hud(v: SimCopter) -> Any:
    m = v.motion
    wind = v.wind()
    air = airspeed(m, wind)
    spool = v.nav.spool
    throttle = round(spool * (39 + 0.3 * air + (4.0 * m.vz if m.vz > 0 else 2.0 * m.vz))) if v.armed else 0
    return v.encoder.vfr_hud_encode(air, m.ground_speed, round(m.heading) % 360, max(0, min(100, throttle)), v.alt_amsl, m.vz)


def raw_imu(v: SimCopter) -> Any:
    return v.encoder.raw_imu_encode(int(v.t * 1e6), 0, 0, -1001, 0, 0, 0, 329, -35, 375, 0, 2554)


def scaled_pressure(v: SimCopter) -> Any:
    press = 1013.25 * (1.0 - 2.25577e-5 * v.alt_amsl) ** 5.25588
    return v.encoder.scaled_pressure_encode(v.time_boot_ms, press, 0.0, 2791, 0)


def servo_output_raw(v: SimCopter) -> Any:
    if not v.armed:
        pwm = 1000
    else:
        pwm = round(1100 + 450 * v.nav.spool)
    return v.encoder.servo_output_raw_encode(int(v.t * 1e6) & 0xFFFFFFFF, 0, pwm, pwm, pwm, pwm, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def rc_channels(v: SimCopter) -> Any:
    return v.encoder.rc_channels_encode(
        v.time_boot_ms, 8, 1500, 1500, 1000, 1500, 1800, 1000, 1000, 1800, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255
    )


def ahrs(v: SimCopter) -> Any:
    return v.encoder.ahrs_encode(0.0, 0.0, 0.0, 0.0, 0.0, 0.0002, 0.05)


def gimbal_device_attitude_status(v: SimCopter) -> Any | None:
    """The mount's angle (only with a mount: MNT1_TYPE set)."""
    if not v.mount.present:
        return None
    _, pitch, _ = _attitude_angles(v)
    return v.mount.status(v.encoder, v.time_boot_ms, math.degrees(pitch))


def system_time(v: SimCopter) -> Any:
    return v.encoder.system_time_encode(int(v.unix_time * 1e6), v.time_boot_ms)


def wind(v: SimCopter) -> Any:
    speed, from_deg = v.params["SIM_WIND_SPD"], v.params["SIM_WIND_DIR"]
    direction = (from_deg + 180.0) % 360.0 - 180.0
    return v.encoder.wind_encode(direction, speed, 0.0)


def battery_status(v: SimCopter) -> Any:
    b = v.battery
    cap = v.capacity_mah
    if v.battery_critical:
        charge = mav.MAV_BATTERY_CHARGE_STATE_CRITICAL
    elif v.battery_low:
        charge = mav.MAV_BATTERY_CHARGE_STATE_LOW
    else:
        charge = mav.MAV_BATTERY_CHARGE_STATE_OK
    return v.encoder.battery_status_encode(
        0, mav.MAV_BATTERY_FUNCTION_UNKNOWN, mav.MAV_BATTERY_TYPE_UNKNOWN, 32767, [int(VOLTAGE_V * 1000)] + [65535] * 9,
        int(b.current_a * 100), int(b.consumed_mah), b.energy_hj, b.remaining_pct(cap), 0, charge, [0, 0, 0, 0], 0, 0,
    )


def ekf_status_report(v: SimCopter) -> Any:
    return v.encoder.ekf_status_report_encode(v.ekf_flags(), 0.004, 0.001, 0.0001, 0.01, 0.0, 0.0)


def vibration(v: SimCopter) -> Any:
    return v.encoder.vibration_encode(int(v.t * 1e6), 0.0029, 0.0028, 0.0027, 0, 0, 0)


def autopilot_version(v: SimCopter) -> Any:
    caps = (
        mav.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT | mav.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
        | mav.MAV_PROTOCOL_CAPABILITY_MISSION_INT | mav.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
        | mav.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT | mav.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
        | mav.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION | mav.MAV_PROTOCOL_CAPABILITY_MAVLINK2
        | mav.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE | mav.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY
    )
    version = (4 << 24) | (7 << 16) | (0 << 8) | mav.FIRMWARE_VERSION_TYPE_DEV
    return v.encoder.autopilot_version_encode(caps, version, 0, 0, 0, [0] * 8, [0] * 8, [0] * 8, 0x1209, 0x5741, v.sysid, [0] * 18)


#: Stream group -> the messages it carries (ArduCopter's grouping; the heaviest raw-sensor extras left out).
GROUPS: dict[int, tuple[tuple[int, Builder], ...]] = {
    RAW_SENSORS: (
        (mav.MAVLINK_MSG_ID_RAW_IMU, raw_imu),
        (mav.MAVLINK_MSG_ID_SCALED_PRESSURE, scaled_pressure),
    ),
    EXTENDED_STATUS: (
        (mav.MAVLINK_MSG_ID_SYS_STATUS, sys_status),
        (mav.MAVLINK_MSG_ID_POWER_STATUS, power_status),
        (mav.MAVLINK_MSG_ID_MEMINFO, meminfo),
        (mav.MAVLINK_MSG_ID_NAV_CONTROLLER_OUTPUT, nav_controller_output),
        (mav.MAVLINK_MSG_ID_MISSION_CURRENT, mission_current),
        (mav.MAVLINK_MSG_ID_GPS_RAW_INT, gps_raw_int),
        (mav.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT, position_target_global_int),
    ),
    RC_CHANNELS: (
        (mav.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW, servo_output_raw),
        (mav.MAVLINK_MSG_ID_RC_CHANNELS, rc_channels),
    ),
    POSITION: (
        (mav.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, global_position_int),
        (mav.MAVLINK_MSG_ID_LOCAL_POSITION_NED, local_position_ned),
    ),
    EXTRA1: (
        (mav.MAVLINK_MSG_ID_ATTITUDE, attitude_msg),
        (mav.MAVLINK_MSG_ID_AHRS2, ahrs2),
    ),
    EXTRA2: ((mav.MAVLINK_MSG_ID_VFR_HUD, vfr_hud),),
    EXTRA3: (
        (mav.MAVLINK_MSG_ID_AHRS, ahrs),
        (mav.MAVLINK_MSG_ID_SYSTEM_TIME, system_time),
        (mav.MAVLINK_MSG_ID_WIND, wind),
        (mav.MAVLINK_MSG_ID_BATTERY_STATUS, battery_status),
        (mav.MAVLINK_MSG_ID_GIMBAL_DEVICE_ATTITUDE_STATUS, gimbal_device_attitude_status),
        (mav.MAVLINK_MSG_ID_EKF_STATUS_REPORT, ekf_status_report),
        (mav.MAVLINK_MSG_ID_VIBRATION, vibration),
    ),
}

#: Stream group -> its message ids, in sending order (what the stream scheduler needs to know).
GROUP_MESSAGES: dict[int, tuple[int, ...]] = {group: tuple(msgid for msgid, _ in members) for group, members in GROUPS.items()}

BUILDERS: dict[int, Builder] = {msgid: b for group in GROUPS.values() for msgid, b in group}
BUILDERS[mav.MAVLINK_MSG_ID_HEARTBEAT] = heartbeat


def can_build(msgid: int) -> bool:
    return msgid in BUILDERS or msgid in (mav.MAVLINK_MSG_ID_HOME_POSITION, mav.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN, mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION)


def build_one(v: SimCopter, msgid: int) -> list[Any] | None:
    """One message on request (MAV_CMD_REQUEST_MESSAGE); None if the simulator cannot produce it."""
    if msgid == mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
        return [autopilot_version(v)]
    builder = BUILDERS.get(msgid)
    if builder is None:
        return None
    msg = builder(v)
    return [] if msg is None else [msg]


def due(v: SimCopter) -> list[Any]:
    """The stream messages due at the vehicle's current time (its stream scheduler says which, and advances)."""
    out: list[Any] = []
    builders = BUILDERS
    for msgid in v.streams.due(v.t):
        builder = builders.get(msgid)  # an interval set for a message sent only on request builds nothing
        if builder is not None:
            msg = builder(v)
            if msg is not None:
                out.append(msg)
    return out
