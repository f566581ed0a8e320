"""Live state of one drone, folded from MAVLink messages.

`Telemetry.apply(msg)` is the single place that knows which message carries
which field; it is a plain method on a plain object so it can be tested with
messages built by pymavlink, no socket needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from controller.fleet.copter import SAFETY_ARMED, ekf_ready


@dataclass(slots=True)
class Telemetry:
    lat: float | None = None
    lon: float | None = None
    alt_amsl_m: float | None = None
    alt_rel_m: float | None = None
    heading_deg: float | None = None
    ground_speed_ms: float | None = None
    climb_ms: float | None = None
    mode: int | None = None
    armed: bool = False
    system_status: int | None = None
    battery_pct: float | None = None
    battery_voltage_v: float | None = None
    battery_current_a: float | None = None
    gps_fix: int | None = None
    satellites: int | None = None
    ekf_flags: int | None = None
    home: tuple[float, float, float] | None = None
    wind_speed_ms: float | None = None
    wind_dir_deg: float | None = None
    mission_seq: int | None = None
    reached_seq: int | None = None
    #: The vehicle's own clock (GLOBAL_POSITION_INT.time_boot_ms): simulated time on a simulator.
    time_boot_ms: int | None = None
    roll_deg: float | None = None
    pitch_deg: float | None = None
    yaw_deg: float | None = None
    #: The camera mount's pitch in degrees (0 level, -90 straight down), from GIMBAL_DEVICE_ATTITUDE_STATUS: how
    #: ArduCopter reports a servo mount (from the autopilot, gimbal_device_id 1) and a MAVLink gimbal reports itself.
    gimbal_pitch_deg: float | None = None
    #: Monotonic time of the last message of each kind, for freshness checks.
    last: dict[str, float] = field(default_factory=dict)
    #: Recent STATUSTEXTs (severity, text), newest last, for the mission timeline and operator.
    texts: list[tuple[int, str]] = field(default_factory=list)
    #: STATUSTEXTs received in all (`texts` keeps only the last 50): a request's reasons are those after its count.
    texts_received: int = 0

    @property
    def ekf_ok(self) -> bool:
        return self.ekf_flags is not None and ekf_ready(self.ekf_flags)

    def apply(self, msg: Any, now: float) -> None:
        kind = msg.get_type()
        self.last[kind] = now
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, msg)

    def snapshot(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lon": self.lon,
            "alt_rel_m": self.alt_rel_m,
            "alt_amsl_m": self.alt_amsl_m,
            "heading_deg": self.heading_deg,
            "ground_speed_ms": self.ground_speed_ms,
            "mode": self.mode,
            "armed": self.armed,
            "battery_pct": self.battery_pct,
            "gps_fix": self.gps_fix,
            "ekf_ok": self.ekf_ok,
            "gimbal_pitch_deg": self.gimbal_pitch_deg,
        }


def _heartbeat(t: Telemetry, m: Any) -> None:
    t.mode = m.custom_mode
    t.armed = bool(m.base_mode & SAFETY_ARMED)
    t.system_status = m.system_status


def _global_position(t: Telemetry, m: Any) -> None:
    t.time_boot_ms = m.time_boot_ms
    t.lat = m.lat / 1e7
    t.lon = m.lon / 1e7
    t.alt_amsl_m = m.alt / 1000.0
    t.alt_rel_m = m.relative_alt / 1000.0
    if m.hdg != 65535:
        t.heading_deg = m.hdg / 100.0


def _vfr_hud(t: Telemetry, m: Any) -> None:
    t.ground_speed_ms = m.groundspeed
    t.heading_deg = float(m.heading)
    t.climb_ms = m.climb


def _sys_status(t: Telemetry, m: Any) -> None:
    if m.battery_remaining >= 0:
        t.battery_pct = float(m.battery_remaining)
    if m.voltage_battery != 65535:
        t.battery_voltage_v = m.voltage_battery / 1000.0
    if m.current_battery >= 0:
        t.battery_current_a = m.current_battery / 100.0


def _battery_status(t: Telemetry, m: Any) -> None:
    if m.battery_remaining >= 0:
        t.battery_pct = float(m.battery_remaining)


def _gps_raw(t: Telemetry, m: Any) -> None:
    t.gps_fix = m.fix_type
    t.satellites = m.satellites_visible


def _ekf(t: Telemetry, m: Any) -> None:
    t.ekf_flags = m.flags


def _home(t: Telemetry, m: Any) -> None:
    t.home = (m.latitude / 1e7, m.longitude / 1e7, m.altitude / 1000.0)


def _wind(t: Telemetry, m: Any) -> None:
    t.wind_speed_ms = m.speed
    t.wind_dir_deg = m.direction


def _attitude(t: Telemetry, m: Any) -> None:
    t.roll_deg = math.degrees(m.roll)
    t.pitch_deg = math.degrees(m.pitch)
    t.yaw_deg = math.degrees(m.yaw) % 360.0


def quaternion_pitch_deg(q: Any) -> float | None:
    """Pitch (degrees, nose/lens up positive) of a MAVLink quaternion [w, x, y, z]; None if it holds NaN."""
    w, x, y, z = (float(v) for v in q)
    if any(math.isnan(v) for v in (w, x, y, z)):
        return None
    return math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * (w * y - z * x)))))


def _gimbal_attitude(t: Telemetry, m: Any) -> None:
    # gimbal_device_id: 0 the sender is the gimbal device itself, 1..6 a gimbal the autopilot drives (its servo
    # mount is 1). Only the first gimbal is the camera's (a second one would need a per-gimbal field).
    if m.gimbal_device_id not in (0, 1):
        return
    pitch = quaternion_pitch_deg(m.q)
    if pitch is not None:
        t.gimbal_pitch_deg = round(pitch, 2)


def _mission_current(t: Telemetry, m: Any) -> None:
    t.mission_seq = m.seq


def _item_reached(t: Telemetry, m: Any) -> None:
    t.reached_seq = m.seq


def _statustext(t: Telemetry, m: Any) -> None:
    text = m.text if isinstance(m.text, str) else m.text.decode("utf-8", "replace")
    t.texts.append((m.severity, text.rstrip("\x00")))
    t.texts_received += 1
    del t.texts[:-50]


_HANDLERS = {
    "HEARTBEAT": _heartbeat,
    "GLOBAL_POSITION_INT": _global_position,
    "VFR_HUD": _vfr_hud,
    "SYS_STATUS": _sys_status,
    "BATTERY_STATUS": _battery_status,
    "GPS_RAW_INT": _gps_raw,
    "EKF_STATUS_REPORT": _ekf,
    "HOME_POSITION": _home,
    "WIND": _wind,
    "ATTITUDE": _attitude,
    "GIMBAL_DEVICE_ATTITUDE_STATUS": _gimbal_attitude,
    "MISSION_CURRENT": _mission_current,
    "MISSION_ITEM_REACHED": _item_reached,
    "STATUSTEXT": _statustext,
}
