"""One simulated ArduCopter: boot and EKF, arming rules, modes, commands, missions, failsafes, telemetry.

Behaviour follows what a real ArduCopter 4.7 SITL was recorded doing (see
../shared/reference/ardupilot-sitl/): the same mode numbers, COMMAND_ACK
results, STATUSTEXT texts and their order, boot timings in simulated seconds,
mission protocol and failsafe reactions. The vehicle is transport-free: it
takes decoded MAVLink messages (`handle`), advances with simulated time
(`step`), and leaves the messages it sends in `outbox` for the endpoint to
pack and deliver.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from sitl.battery import VOLTAGE_V, Battery
from sitl.copter_params import ParamStore
from sitl.kinematics import Home, Limits, Motion, horizontal_step, turn_towards, vertical_step, wind_components, brake
from sitl.mission_store import Item, MissionStore

# ArduCopter flight modes (HEARTBEAT custom_mode).
STABILIZE, ALT_HOLD, AUTO, GUIDED, LOITER, RTL, CIRCLE, LAND, POSHOLD, BRAKE = 0, 2, 3, 4, 5, 6, 7, 9, 16, 17
MODES = {
    0: "STABILIZE", 1: "ACRO", 2: "ALT_HOLD", 3: "AUTO", 4: "GUIDED", 5: "LOITER", 6: "RTL", 7: "CIRCLE",
    9: "LAND", 11: "DRIFT", 13: "SPORT", 14: "FLIP", 15: "AUTOTUNE", 16: "POSHOLD", 17: "BRAKE",
    18: "THROW", 19: "AVOID_ADSB", 20: "GUIDED_NOGPS", 21: "SMART_RTL", 22: "FLOWHOLD", 23: "FOLLOW",
    24: "ZIGZAG", 25: "SYSTEMID", 26: "AUTOROTATE", 27: "AUTO_RTL", 28: "TURTLE",
}

# Boot timeline of a cold start, in simulated seconds (from the recorded transcripts).
T_ORIGIN = 20.0  # EKF origin and home set
T_ACCELS_CONSISTENT = 13.0  # before this an arm attempt hears "Accels inconsistent" ...
T_IMU_CONSISTENT = 25.0  # ... then "Gyros inconsistent" until this
T_GPS = 41.2  # EKF starts using GPS: armable
PREARM_PERIOD = 30.0
STAT_PERIOD = 31.0
GROUND_CONTACT_DISARM_S = 2.0  # after "SIM Hit ground": "Disarming motors"
#: SITL's barometer/GPS put the vehicle on the ground 0.1 m above the --home altitude (10.1 m for home 10 m).
GROUND_OFFSET_M = 0.1

EKF_BOOT_FLAGS = 167  # attitude, velocities, vertical position, constant-position mode
EKF_GPS_FLAGS = 831  # plus horizontal position (rel/abs, predicted), constant-position mode clear

SENSORS_PRESENT = 1399979055
SENSORS_ENABLED = 1396833327
SENSORS_HEALTH = 1196555311

BASE_STABILIZE = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink2.MAV_MODE_FLAG_STABILIZE_ENABLED | mavlink2.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
ARMED = mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
GUIDED_FLAG = mavlink2.MAV_MODE_FLAG_GUIDED_ENABLED

ALL_STREAMS = (1, 2, 3, 6, 10, 11, 12)


@dataclass
class Faults:
    """Fault injection: what the vehicle should get wrong on purpose."""

    ignore_commands: set[int] = field(default_factory=set)
    prearm_failure: str | None = None


class SimCopter:
    def __init__(
        self,
        sysid: int,
        home: Home,
        heading: float = 0.0,
        params: dict[str, float] | None = None,
        hover_current_a: float = 28.0,
        warm: bool = False,
    ) -> None:
        self.sysid = sysid
        self.encoder = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self.params = ParamStore(params)
        self.params.set("SYSID_THISMAV", sysid)
        self.params.set("MAV_SYSID", sysid)
        self.launch = home
        self.home = home
        self.origin_set = False
        self.motion = Motion(heading=heading)
        self.battery = Battery(hover_current_a=hover_current_a)
        self.mission = MissionStore()
        self.faults = Faults()
        self.outbox: list[Any] = []
        self.t = 60.0 if warm else 0.0
        self._boot_done = warm
        self.mode = STABILIZE
        self.guided_flag = False
        self.armed = False
        self.flying = False
        self.landing = False
        self.system_status = mavlink2.MAV_STATE_STANDBY
        self._armed_at = 0.0
        self._touchdown_at: float | None = None
        self._arm_attempts = 0
        self.target: tuple[float, float, float] | None = None  # north, east, alt
        self.takeoff_alt: float | None = None
        self._rtl_phase: str | None = None
        self._rtl_loiter_until = 0.0
        self.mission_seq = 0
        self._loiter_until: float | None = None
        self._speed_override: float | None = None
        self._spool_until = 0.0
        self.streams: dict[int, float] = {}  # stream group -> Hz
        self._next_due: dict[int, float] = {}
        self._next_heartbeat = self.t
        self._next_sys_status = self.t
        self._next_prearm = self.t + PREARM_PERIOD
        self._next_stat = self.t + STAT_PERIOD
        self._flight_time = 0.0
        self.last_gcs_heartbeat: float | None = None
        self.gcs_failsafe = False
        self.battery_failsafe = False
        self._param_send: list[int] = []
        self.statustexts: list[tuple[float, str]] = []
        if warm:
            self.origin_set = True
            self.home = Home(home.lat, home.lon, home.alt_amsl + GROUND_OFFSET_M)
            self.mission.set_home(self.home.lat, self.home.lon, self.home.alt_amsl)

    # --- helpers ---------------------------------------------------------------------

    def send(self, msg: Any) -> None:
        self.outbox.append(msg)

    def text(self, severity: int, text: str) -> None:
        self.statustexts.append((self.t, text))
        self.send(self.encoder.statustext_encode(severity, text.encode()[:50], 0, 0))

    def ack(self, command: int, result: int) -> None:
        self.send(self.encoder.command_ack_encode(command, result, 0, 0, 255, 190))

    @property
    def time_boot_ms(self) -> int:
        return int(self.t * 1000) & 0xFFFFFFFF

    @property
    def ekf_ready(self) -> bool:
        return self._boot_done or self.t >= T_GPS

    def latlon(self) -> tuple[float, float]:
        return self.home_frame().to_latlon(self.motion.north, self.motion.east)

    def home_frame(self) -> Home:
        return self.launch

    def limits(self) -> Limits:
        p = self.params
        speed = self._speed_override or p["WPNAV_SPEED"] / 100.0
        return Limits(
            speed=speed,
            accel=p["WPNAV_ACCEL"] / 100.0,
            speed_up=p["WPNAV_SPEED_UP"] / 100.0,
            speed_dn=p["WPNAV_SPEED_DN"] / 100.0,
            land_speed=p["LAND_SPEED"] / 100.0,
            land_alt_low=p["LAND_ALT_LOW"] / 100.0,
            accel_z=p["WPNAV_ACCEL_Z"] / 100.0,
        )

    def wind(self) -> tuple[float, float]:
        return wind_components(self.params["SIM_WIND_SPD"], self.params["SIM_WIND_DIR"])

    # --- incoming -------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            if msg.type == mavlink2.MAV_TYPE_GCS:
                self.last_gcs_heartbeat = self.t
            return
        target = getattr(msg, "target_system", None)
        if target not in (None, 0, self.sysid):
            return
        handler = getattr(self, f"_on_{kind.lower()}", None)
        if handler is not None:
            handler(msg)

    def _on_request_data_stream(self, msg: Any) -> None:
        groups = ALL_STREAMS if msg.req_stream_id == 0 else (msg.req_stream_id,)
        for g in groups:
            if msg.start_stop and msg.req_message_rate > 0:
                self.streams[g] = float(msg.req_message_rate)
                self._next_due.setdefault(g, self.t)
            else:
                self.streams.pop(g, None)

    def _on_set_mode(self, msg: Any) -> None:
        self.change_mode(msg.custom_mode, via_command=False)

    def _on_command_long(self, msg: Any) -> None:
        self._command(msg.command, [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7], None)

    def _on_command_int(self, msg: Any) -> None:
        params = [msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z]
        self._command(msg.command, params, msg.frame)

    def _command(self, command: int, p: list[float], frame: int | None) -> None:
        if command in self.faults.ignore_commands:
            return
        # A handler returns the ACK result, or None when it sent its own ACK (texts must follow the ACK).
        handlers: dict[int, Callable[[list[float], int | None], int | None]] = {
            mavlink2.MAV_CMD_COMPONENT_ARM_DISARM: self._cmd_arm,
            mavlink2.MAV_CMD_NAV_TAKEOFF: self._cmd_takeoff,
            mavlink2.MAV_CMD_DO_SET_MODE: self._cmd_set_mode,
            mavlink2.MAV_CMD_MISSION_START: self._cmd_mission_start,
            mavlink2.MAV_CMD_DO_REPOSITION: self._cmd_reposition,
            mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH: lambda _p, _f: (self.change_mode(RTL), mavlink2.MAV_RESULT_ACCEPTED)[1],
            mavlink2.MAV_CMD_NAV_LAND: lambda _p, _f: (self.change_mode(LAND), mavlink2.MAV_RESULT_ACCEPTED)[1],
            mavlink2.MAV_CMD_DO_CHANGE_SPEED: self._cmd_change_speed,
            mavlink2.MAV_CMD_REQUEST_MESSAGE: self._cmd_request_message,
            mavlink2.MAV_CMD_SET_MESSAGE_INTERVAL: lambda _p, _f: mavlink2.MAV_RESULT_ACCEPTED,
        }
        handler = handlers.get(command)
        if handler is None:
            self.ack(command, mavlink2.MAV_RESULT_UNSUPPORTED)
            return
        result = handler(p, frame)
        if result is not None:
            self.ack(command, result)

    # --- arming ------------------------------------------------------------------------

    def arm_refusals(self) -> list[str]:
        """Why arming would be refused now, in ArduCopter's words (empty when it would succeed)."""
        if self.faults.prearm_failure:
            return [self.faults.prearm_failure]
        out: list[str] = []
        if not self._boot_done:
            if self.t < T_IMU_CONSISTENT:
                out.append("Accels inconsistent" if self.t < T_ACCELS_CONSISTENT else "Gyros inconsistent")
            if self.t < T_ORIGIN:
                out.append("AHRS: waiting for home")
            elif self.t < T_GPS:
                out.append("Need Position Estimate")
        if out:
            return out
        if self.gcs_failsafe:
            return ["GCS failsafe on"]
        if self.battery_failsafe:
            return ["Battery 1 low capacity failsafe"]
        if self.mode == AUTO and self.mission.total <= 1:
            return ["Mode requires mission"]
        return []

    def _cmd_arm(self, p: list[float], _frame: int | None) -> int | None:
        if p[0] >= 0.5:
            if self.armed:
                return mavlink2.MAV_RESULT_ACCEPTED
            refusals = self.arm_refusals()
            self._arm_attempts += 1
            if refusals:
                self.ack(mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, mavlink2.MAV_RESULT_FAILED)
                for r in refusals:
                    self.text(mavlink2.MAV_SEVERITY_CRITICAL, f"Arm: {r}")
                return None
            self.ack(mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, mavlink2.MAV_RESULT_ACCEPTED)
            self._arm()
            return None
        if not self.armed:
            return mavlink2.MAV_RESULT_ACCEPTED
        if self.flying and int(p[1]) != 21196:
            return mavlink2.MAV_RESULT_FAILED
        self.ack(mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, mavlink2.MAV_RESULT_ACCEPTED)
        self._disarm()
        return None

    def _arm(self) -> None:
        self.armed = True
        self._armed_at = self.t
        lat, lon = self.latlon()
        self.home = Home(lat, lon, self.launch.alt_amsl + GROUND_OFFSET_M - 0.01 + self.motion.alt)
        self.mission.set_home(self.home.lat, self.home.lon, self.home.alt_amsl)
        self._send_home()
        self.text(mavlink2.MAV_SEVERITY_INFO, "Arming motors")

    def _disarm(self) -> None:
        self.armed = False
        self.flying = False
        self.landing = False
        self.target = None
        self.takeoff_alt = None
        self._rtl_phase = None
        self.motion.vn = self.motion.ve = self.motion.vz = 0.0
        self.text(mavlink2.MAV_SEVERITY_INFO, "Disarming motors")
        self.send_param("MOT_THST_HOVER")
        self.guided_flag = False

    # --- modes ---------------------------------------------------------------------------

    def change_mode(self, mode: int, via_command: bool = False) -> bool:
        if mode not in MODES:
            self.text(mavlink2.MAV_SEVERITY_WARNING, f"No such mode {mode}")
            return False
        if mode == self.mode:
            return True
        self.mode = mode
        self.guided_flag = True
        self._loiter_until = None
        if mode == RTL:
            self._start_rtl()
        elif mode == LAND:
            self.landing = True
            self.target = None
        elif mode == GUIDED:
            self.target = (self.motion.north, self.motion.east, self.motion.alt) if self.flying else None
        elif mode in (LOITER, BRAKE, POSHOLD, ALT_HOLD, STABILIZE):
            self.target = (self.motion.north, self.motion.east, self.motion.alt) if self.flying else None
        elif mode == AUTO and self.armed and self.flying:
            self._start_mission_item(max(self.mission_seq, 1))
        return True

    def _cmd_set_mode(self, p: list[float], _frame: int | None) -> int:
        ok = self.change_mode(int(p[1]), via_command=True)
        return mavlink2.MAV_RESULT_ACCEPTED if ok else mavlink2.MAV_RESULT_FAILED

    # --- guided -----------------------------------------------------------------------

    def _cmd_takeoff(self, p: list[float], _frame: int | None) -> int:
        alt = p[6]
        if not self.armed or self.mode != GUIDED or alt <= 0 or self.flying:
            return mavlink2.MAV_RESULT_FAILED
        self._begin_takeoff(alt)
        return mavlink2.MAV_RESULT_ACCEPTED

    def _begin_takeoff(self, alt: float) -> None:
        self.takeoff_alt = alt
        self.flying = True
        self.target = (self.motion.north, self.motion.east, alt)
        self._spool_until = self.t + self.params["TKOFF_SLEW_TIME"]  # motors spool up before the climb

    def _on_set_position_target_global_int(self, msg: Any) -> None:
        if self.mode != GUIDED or not self.armed or not self.flying:
            return
        if msg.type_mask & 0b111:  # position ignored
            return
        north, east = self.home.from_latlon(msg.lat_int / 1e7, msg.lon_int / 1e7)
        north, east = self._home_to_launch(north, east)
        self.target = (north, east, self._alt_rel(msg.alt, msg.coordinate_frame))
        self.takeoff_alt = None

    def _cmd_reposition(self, p: list[float], frame: int | None) -> int:
        if not self.armed or not self.flying:
            return mavlink2.MAV_RESULT_FAILED
        if self.mode != GUIDED:
            self.change_mode(GUIDED)
        north, east = self._home_to_launch(*self.home.from_latlon(p[4], p[5]))
        self.target = (north, east, self._alt_rel(p[6], frame if frame is not None else 6))
        if p[0] > 0:
            self._speed_override = p[0]
        self.takeoff_alt = None
        return mavlink2.MAV_RESULT_ACCEPTED

    def _home_to_launch(self, north: float, east: float) -> tuple[float, float]:
        """Positions are kept relative to the launch point; `home` may have moved by centimetres at arming."""
        hn, he = self.launch.from_latlon(self.home.lat, self.home.lon)
        return north + hn, east + he

    def _alt_rel(self, alt: float, frame: int) -> float:
        if frame in (mavlink2.MAV_FRAME_GLOBAL, mavlink2.MAV_FRAME_GLOBAL_INT):
            return alt - self.home.alt_amsl
        return alt

    def _cmd_change_speed(self, p: list[float], _frame: int | None) -> int:
        if p[1] > 0:
            self._speed_override = p[1]
        return mavlink2.MAV_RESULT_ACCEPTED

    def _cmd_request_message(self, p: list[float], _frame: int | None) -> int:
        if int(p[0]) == mavlink2.MAVLINK_MSG_ID_HOME_POSITION and self.origin_set:
            self._send_home()
        return mavlink2.MAV_RESULT_ACCEPTED

    # --- RTL and landing ---------------------------------------------------------------

    def _start_rtl(self) -> None:
        self.landing = False
        if not self.flying:
            self._rtl_phase = None
            return
        rtl_alt = max(self.params["RTL_ALT"] / 100.0, self.motion.alt)
        self._rtl_phase = "climb"
        hn, he = self._home_to_launch(0.0, 0.0)
        self.target = (self.motion.north, self.motion.east, rtl_alt)
        self._rtl_home = (hn, he, rtl_alt)

    def _touchdown(self) -> None:
        self.flying = False
        self.landing = False
        self.motion.alt = 0.0
        self.motion.vz = 0.0
        self.motion.vn = self.motion.ve = 0.0
        self.text(mavlink2.MAV_SEVERITY_INFO, "SIM Hit ground at 0.500210 m/s")
        self._touchdown_at = self.t

    # --- missions -----------------------------------------------------------------------

    def _on_mission_count(self, msg: Any) -> None:
        if getattr(msg, "mission_type", 0) != mavlink2.MAV_MISSION_TYPE_MISSION:
            self._mission_ack(mavlink2.MAV_MISSION_UNSUPPORTED, msg.mission_type)
            return
        seq = self.mission.begin_upload(msg.count, self.t)
        if seq is None:
            self._mission_ack(mavlink2.MAV_MISSION_ACCEPTED)
            self.send_param("MIS_TOTAL", self.mission.total)
        else:
            self.send(self.encoder.mission_request_encode(255, 190, seq, 0))

    def _on_mission_item_int(self, msg: Any) -> None:
        item = Item(msg.seq, msg.frame, msg.command, (msg.param1, msg.param2, msg.param3, msg.param4), msg.x, msg.y, msg.z)
        what, value = self.mission.receive(item, self.t)
        if what == "request":
            self.send(self.encoder.mission_request_encode(255, 190, value, 0))
        elif what == "ack":
            self._mission_ack(value)
            if value == mavlink2.MAV_MISSION_ACCEPTED and not self.mission.uploading and msg.seq == len(self.mission.items) - 1:
                self.text(mavlink2.MAV_SEVERITY_INFO, "Flight plan received")
                self.send_param("MIS_TOTAL", self.mission.total)

    def _on_mission_request_list(self, msg: Any) -> None:
        self.send(self.encoder.mission_count_encode(255, 190, self.mission.total, 0))

    def _on_mission_request_int(self, msg: Any) -> None:
        item = self.mission.get(msg.seq)
        if item is None:
            self._mission_ack(mavlink2.MAV_MISSION_INVALID_SEQUENCE)
            return
        self.send(
            self.encoder.mission_item_int_encode(
                255, 190, item.seq, item.frame, item.command, 0, 1, *item.params, item.x, item.y, item.z, 0
            )
        )

    _on_mission_request = _on_mission_request_int

    def _on_mission_clear_all(self, msg: Any) -> None:
        self.mission.clear()
        self._mission_ack(mavlink2.MAV_MISSION_ACCEPTED)
        self.send_param("MIS_TOTAL", 0)

    def _on_mission_set_current(self, msg: Any) -> None:
        if 0 < msg.seq < self.mission.total:
            self.mission_seq = msg.seq

    def _mission_ack(self, result: int, mission_type: int = 0) -> None:
        self.send(self.encoder.mission_ack_encode(255, 190, result, mission_type))

    def _cmd_mission_start(self, p: list[float], _frame: int | None) -> int | None:
        if self.mode != AUTO or not self.armed or self.mission.total <= 1:
            return mavlink2.MAV_RESULT_FAILED
        self.ack(mavlink2.MAV_CMD_MISSION_START, mavlink2.MAV_RESULT_ACCEPTED)
        self._start_mission_item(1)
        return None

    def _start_mission_item(self, seq: int) -> None:
        item = self.mission.get(seq)
        self.mission_seq = seq
        if item is None:
            self.target = (self.motion.north, self.motion.east, self.motion.alt)
            return
        cmd = item.command
        names = {
            mavlink2.MAV_CMD_NAV_TAKEOFF: "Takeoff",
            mavlink2.MAV_CMD_NAV_WAYPOINT: "WP",
            mavlink2.MAV_CMD_DO_CHANGE_SPEED: "ChangeSpeed",
            mavlink2.MAV_CMD_NAV_LOITER_TIME: "LoitTime",
            mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH: "RTL",
            mavlink2.MAV_CMD_NAV_LAND: "Land",
        }
        if cmd == mavlink2.MAV_CMD_DO_CHANGE_SPEED:
            self.send(self.encoder.mission_item_reached_encode(seq))
        self.text(mavlink2.MAV_SEVERITY_INFO, f"Mission: {seq} {names.get(cmd, 'Cmd')}")
        if cmd == mavlink2.MAV_CMD_NAV_TAKEOFF:
            self._begin_takeoff(item.z)
        elif cmd in (mavlink2.MAV_CMD_NAV_WAYPOINT, mavlink2.MAV_CMD_NAV_LOITER_TIME):
            north, east = self._home_to_launch(*self.home.from_latlon(item.lat, item.lon))
            alt = item.z - self.home.alt_amsl if item.frame == mavlink2.MAV_FRAME_GLOBAL else item.z
            self.target = (north, east, alt) if (item.x or item.y) else (self.motion.north, self.motion.east, alt)
            self._loiter_until = None
        elif cmd == mavlink2.MAV_CMD_DO_CHANGE_SPEED:
            if item.params[1] > 0:
                self._speed_override = item.params[1]
            self._start_mission_item(seq + 1)
        elif cmd == mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._start_rtl()
        elif cmd == mavlink2.MAV_CMD_NAV_LAND:
            self.landing = True
            self.target = None
        else:
            self._start_mission_item(seq + 1)

    def _mission_progress(self, arrived: bool) -> None:
        item = self.mission.get(self.mission_seq)
        if item is None or not arrived:
            return
        cmd = item.command
        if cmd == mavlink2.MAV_CMD_NAV_TAKEOFF:
            self.takeoff_alt = None
            self._start_mission_item(self.mission_seq + 1)
        elif cmd == mavlink2.MAV_CMD_NAV_WAYPOINT:
            self._reached(self.mission_seq)
            self._start_mission_item(self.mission_seq + 1)
        elif cmd == mavlink2.MAV_CMD_NAV_LOITER_TIME:
            if self._loiter_until is None:
                self._loiter_until = self.t + item.params[0]
            elif self.t >= self._loiter_until:
                self._loiter_until = None
                self._reached(self.mission_seq)
                self._start_mission_item(self.mission_seq + 1)

    def _reached(self, seq: int) -> None:
        self.send(self.encoder.mission_item_reached_encode(seq))
        self.text(mavlink2.MAV_SEVERITY_INFO, f"Reached command #{seq}")

    # --- parameters ---------------------------------------------------------------------

    def _on_param_request_list(self, msg: Any) -> None:
        self._param_send = list(range(self.params.count()))

    def _on_param_request_read(self, msg: Any) -> None:
        from sitl.copter_params import PARAMS

        if msg.param_index >= 0:
            if msg.param_index < len(PARAMS):
                self.send_param(PARAMS[msg.param_index].name, index=msg.param_index)
            return
        name = _param_name(msg.param_id)
        if name in self.params:
            self.send_param(name)

    def _on_param_set(self, msg: Any) -> None:
        name = _param_name(msg.param_id)
        if name not in self.params:
            return  # ArduCopter answers an unknown name with silence
        self.params.set(name, msg.param_value)
        self.send_param(name)

    def send_param(self, name: str, value: float | None = None, index: int | None = None) -> None:
        from sitl.copter_params import PARAM_INDEX

        if value is None:
            value = self.params[name]
        if name == "MIS_TOTAL":
            self.params.set("MIS_TOTAL", value)
        idx = PARAM_INDEX[name] if index is not None else 65535
        self.send(self.encoder.param_value_encode(name.encode(), float(value), self.params.type_of(name), self.params.count(), idx))

    # --- simulated time -------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance `dt` simulated seconds: boot, physics, battery, failsafes, telemetry."""
        self.t += dt
        self._boot_events()
        self._physics(dt)
        self._failsafes()
        self._periodic()
        self._stream_params()

    def _boot_events(self) -> None:
        if self._boot_done:
            return
        if not self.origin_set and self.t >= T_ORIGIN:
            self.origin_set = True
            self.home = Home(self.launch.lat, self.launch.lon, self.launch.alt_amsl + GROUND_OFFSET_M)
            self.mission.set_home(self.home.lat, self.home.lon, self.home.alt_amsl)
            self._send_home()
            self.text(mavlink2.MAV_SEVERITY_INFO, "EKF3 IMU0 origin set")
            self.send_param("MIS_TOTAL", self.mission.total)
            self.send_param("BARO1_GND_PRESS", 101325.13)
            self.send_param("BARO2_GND_PRESS", 101323.59)
            self.text(mavlink2.MAV_SEVERITY_INFO, f"Field Elevation Set: {round(self.launch.alt_amsl)}m")
            self.text(mavlink2.MAV_SEVERITY_INFO, "EKF3 IMU1 origin set")
        if self.t >= T_GPS:
            self._boot_done = True
            self.text(mavlink2.MAV_SEVERITY_INFO, "EKF3 IMU0 is using GPS")
            self.text(mavlink2.MAV_SEVERITY_INFO, "EKF3 IMU1 is using GPS")

    def _physics(self, dt: float) -> None:
        m = self.motion
        lim = self.limits()
        wind = self.wind()
        if self.flying:
            self._flight_time += dt
            self._fly(dt, lim, wind)
        elif self.armed and self._touchdown_at is None and self.t - self._armed_at > self.params["DISARM_DELAY"] > 0:
            self._disarm()  # armed on the ground and never took off
        if self._touchdown_at is not None and self.t - self._touchdown_at >= GROUND_CONTACT_DISARM_S:
            self._touchdown_at = None
            if self.armed:
                if self.mode == AUTO:  # the mission's RTL/LAND item ends on the ground
                    self.send(self.encoder.mission_item_reached_encode(self.mission_seq))
                self._disarm()
        air = math.hypot(m.vn - wind[0], m.ve - wind[1])
        self.battery.step(dt, self.armed, self.flying, air)

    def _fly(self, dt: float, lim: Limits, wind: tuple[float, float]) -> None:
        m = self.motion
        if self.landing:
            brake(m, lim, dt)
            vertical_step(m, -1.0, lim, dt, landing=True)
            if m.alt <= 0.0:
                self._touchdown()
            return
        if self._rtl_phase is not None:
            self._rtl_step(dt, lim, wind)
            return
        if self.target is None:
            brake(m, lim, dt)
            return
        tn, te, talt = self.target
        if self.takeoff_alt is not None:
            if self.t < self._spool_until:
                return
            left = vertical_step(m, talt, lim, dt)
            arrived = abs(left) < 0.1
            if arrived and self.mode != AUTO:
                self.takeoff_alt = None
        else:
            remaining = horizontal_step(m, tn, te, lim, dt, wind)
            left = vertical_step(m, talt, lim, dt)
            arrived = remaining <= self.params["WPNAV_RADIUS"] / 100.0 and abs(left) < 0.5
        if self.mode == AUTO:
            self._mission_progress(arrived)

    def _rtl_step(self, dt: float, lim: Limits, wind: tuple[float, float]) -> None:
        m = self.motion
        hn, he, rtl_alt = self._rtl_home
        if self._rtl_phase == "climb":
            brake(m, lim, dt)
            if abs(vertical_step(m, rtl_alt, lim, dt)) < 0.1:
                self._rtl_phase = "return"
        elif self._rtl_phase == "return":
            if horizontal_step(m, hn, he, lim, dt, wind) <= 0.5:
                self._rtl_phase = "loiter"
                self._rtl_loiter_until = self.t + self.params["RTL_LOIT_TIME"] / 1000.0
        elif self._rtl_phase == "loiter":
            brake(m, lim, dt)
            if self.t >= self._rtl_loiter_until:
                self._rtl_phase = None
                self.landing = True

    def _failsafes(self) -> None:
        p = self.params
        if p["FS_GCS_ENABLE"] > 0 and self.last_gcs_heartbeat is not None:
            silent = self.t - self.last_gcs_heartbeat > p["FS_GCS_TIMEOUT"]
            if silent and not self.gcs_failsafe:
                self.gcs_failsafe = True
                self.text(mavlink2.MAV_SEVERITY_WARNING, "GCS Failsafe")
                if self.armed and self.flying and self.mode not in (RTL, LAND):
                    self.change_mode(RTL)
            elif not silent and self.gcs_failsafe:
                self.gcs_failsafe = False
                self.text(mavlink2.MAV_SEVERITY_WARNING, "GCS Failsafe Cleared")
        low = p["BATT_LOW_MAH"]
        capacity = p["BATT_CAPACITY"]
        if low > 0 and not self.battery_failsafe and self.battery.remaining_mah(capacity) < low:
            self.battery_failsafe = True
            used = round(self.battery.consumed_mah)
            self.text(mavlink2.MAV_SEVERITY_WARNING, f"Battery 1 is low {VOLTAGE_V:.2f}V used {used} mAh")
            self.text(mavlink2.MAV_SEVERITY_WARNING, "Battery Failsafe")
            action = int(p["BATT_FS_LOW_ACT"])
            if self.armed and self.flying:
                if action in (2, 3, 4) and self.mode not in (RTL, LAND):
                    self.change_mode(RTL)
                elif action == 1 and self.mode != LAND:
                    self.change_mode(LAND)
        if self.gcs_failsafe or self.battery_failsafe:
            self.system_status = mavlink2.MAV_STATE_CRITICAL
        elif self.armed and (self.flying or self.t - self._armed_at > 0.5):
            self.system_status = mavlink2.MAV_STATE_ACTIVE
        else:
            self.system_status = mavlink2.MAV_STATE_STANDBY

    def _periodic(self) -> None:
        if self.t >= self._next_prearm:
            self._next_prearm += PREARM_PERIOD
            if not self.armed:
                reasons = self.arm_refusals()
                if self.battery_failsafe:
                    reasons = ["Battery 1 low capacity failsafe", "Battery failsafe"]
                for r in reasons:
                    if r not in ("Accels inconsistent", "Gyros inconsistent", "AHRS: waiting for home"):
                        self.text(mavlink2.MAV_SEVERITY_CRITICAL, f"PreArm: {r}")
        if self.t >= self._next_stat:
            self._next_stat += STAT_PERIOD
            if self._flight_time > 0:
                self.send_param("STAT_FLTTIME", round(self._flight_time))
            self.send_param("STAT_RUNTIME", round(self.t))
        up = self.mission.upload_tick(self.t)
        if up is not None:
            what, value = up
            if what == "request":
                self.send(self.encoder.mission_request_encode(255, 190, value, 0))
            else:
                self._mission_ack(value)

    def _stream_params(self) -> None:
        """Send a parameter download a slice at a time, as ArduPilot does, not all in one burst."""
        from sitl.copter_params import PARAMS

        for _ in range(min(len(self._param_send), 40)):
            i = self._param_send.pop(0)
            self.send_param(PARAMS[i].name, index=i)

    def _send_home(self) -> None:
        h = self.home
        usec = int(self.t * 1e6)
        origin_alt = self.launch.alt_amsl + GROUND_OFFSET_M
        self.send(self.encoder.gps_global_origin_encode(round(self.launch.lat * 1e7), round(self.launch.lon * 1e7), round(origin_alt * 1000), usec))
        nan = float("nan")
        self.send(
            self.encoder.home_position_encode(
                round(h.lat * 1e7), round(h.lon * 1e7), round(h.alt_amsl * 1000), 0.0, 0.0, 0.0, [nan] * 4, 0.0, 0.0, 0.0, usec
            )
        )

    # --- telemetry ---------------------------------------------------------------------

    def base_mode(self) -> int:
        base = BASE_STABILIZE | (GUIDED_FLAG if self.guided_flag else 0)
        return base | (ARMED if self.armed else 0)

    def telemetry(self) -> list[Any]:
        """Messages due at the current simulated time (heartbeat, defaults, requested streams)."""
        out: list[Any] = []
        enc = self.encoder
        if self.t >= self._next_heartbeat:
            self._next_heartbeat += 1.0
            out.append(enc.heartbeat_encode(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA, self.base_mode(), self.mode, self.system_status, 3))
        if self.t >= self._next_sys_status and 2 not in self.streams:
            self._next_sys_status += 1.0
            out.append(self._sys_status())
        for group, hz in self.streams.items():
            due = self._next_due.get(group, self.t)
            if self.t + 1e-9 >= due:
                self._next_due[group] = max(due + 1.0 / hz, self.t)
                out.extend(self._group(group))
        return out

    def _sys_status(self) -> Any:
        cap = self.params["BATT_CAPACITY"]
        health = SENSORS_HEALTH | (1 << 21 if self.ekf_ready else 0)
        return self.encoder.sys_status_encode(
            SENSORS_PRESENT, SENSORS_ENABLED, health, 0, int(VOLTAGE_V * 1000), int(self.battery.current_a * 100),
            self.battery.remaining_pct(cap), 0, 0, 0, 0, 0, 0,
        )

    def _group(self, group: int) -> list[Any]:
        enc, m = self.encoder, self.motion
        lat, lon = self.latlon()
        amsl = self.launch.alt_amsl + GROUND_OFFSET_M + m.alt
        if group == 2:
            msgs = [
                self._sys_status(),
                enc.gps_raw_int_encode(
                    int(self.t * 1e6), 6, round(lat * 1e7), round(lon * 1e7), round(amsl * 1000), 121, 200,
                    round(m.ground_speed * 100), round(m.heading * 100) % 36000, 10,
                ),
                enc.mission_current_encode(self.mission_seq),
                enc.nav_controller_output_encode(0.0, 0.0, round(m.heading), round(m.heading), round(self._wp_dist()), 0.0, 0.0, 0.0),
            ]
            if self.mode == GUIDED and self.target is not None:
                tlat, tlon = self.launch.to_latlon(self.target[0], self.target[1])
                msgs.append(
                    enc.position_target_global_int_encode(
                        self.time_boot_ms, 6, 0b0000111111111000, round(tlat * 1e7), round(tlon * 1e7), self.target[2],
                        0, 0, 0, 0, 0, 0, 0, 0,
                    )
                )
            return msgs
        if group == 6:
            return [
                enc.global_position_int_encode(
                    self.time_boot_ms, round(lat * 1e7), round(lon * 1e7), round(amsl * 1000), round(m.alt * 1000),
                    round(m.vn * 100), round(m.ve * 100), round(-m.vz * 100), round(m.heading * 100) % 36000,
                ),
                enc.local_position_ned_encode(self.time_boot_ms, m.north, m.east, -m.alt, m.vn, m.ve, -m.vz),
            ]
        if group == 10:
            pitch = -math.radians(min(25.0, m.ground_speed * 1.5)) if m.ground_speed > 0.2 else 0.0
            return [enc.attitude_encode(self.time_boot_ms, 0.0, pitch, math.radians(m.heading), 0.0, 0.0, 0.0)]
        if group == 11:
            throttle = 39 if self.flying else 0
            return [enc.vfr_hud_encode(m.ground_speed, m.ground_speed, round(m.heading) % 360, throttle, amsl, m.vz)]
        if group == 12:
            cap = self.params["BATT_CAPACITY"]
            flags = EKF_GPS_FLAGS if self.ekf_ready else EKF_BOOT_FLAGS
            return [
                enc.system_time_encode(int(self.t * 1e6), self.time_boot_ms),
                enc.wind_encode(self.params["SIM_WIND_DIR"], self.params["SIM_WIND_SPD"], 0.0),
                enc.battery_status_encode(
                    0, 0, 0, 32767, [int(VOLTAGE_V * 1000)] + [65535] * 9, int(self.battery.current_a * 100),
                    round(self.battery.consumed_mah), round(self.battery.energy_wh * 36), self.battery.remaining_pct(cap),
                ),
                enc.ekf_status_report_encode(flags, 0.02, 0.01, 0.01, 0.02, 0.0, 0.0),
                enc.vibration_encode(int(self.t * 1e6), 0.01, 0.01, 0.01, 0, 0, 0),
            ]
        if group == 1:
            return [
                enc.raw_imu_encode(int(self.t * 1e6), 0, 0, -1000, 0, 0, 0, 200, 0, -400),
                enc.scaled_pressure_encode(self.time_boot_ms, 1013.25 - m.alt * 0.12, 0.0, 3100),
            ]
        if group == 3:
            pwm = [1500 if self.flying else (1100 if self.armed else 1000)] * 4 + [0] * 4
            return [
                enc.servo_output_raw_encode(int(self.t * 1e6) & 0xFFFFFFFF, 0, *pwm),
                enc.rc_channels_encode(self.time_boot_ms, 16, *([1500] * 18), 255),
            ]
        return []

    def _wp_dist(self) -> float:
        if self.target is None:
            return 0.0
        return math.hypot(self.target[0] - self.motion.north, self.target[1] - self.motion.east)


def _param_name(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return raw.rstrip("\x00")
