"""One simulated ArduCopter: boot and EKF, arming rules, modes, commands, missions, failsafes.

It answers the way the recorded ArduCopter 4.7 SITL answered (see
../shared/reference/ardupilot-sitl/ and tests/sitl/): the same mode numbers,
COMMAND_ACK results, STATUSTEXT texts in the same order, boot timings in
simulated seconds, mission protocol and failsafe reactions.

The vehicle is transport-free and clock-free: `handle(msg)` takes a decoded
MAVLink message, `step(dt)` advances simulated time, and what it says is left
in `outbox` (events: ACKs, texts, heartbeats, parameters, mission protocol) or
returned by `telemetry()` (the requested streams, built only when someone is
listening). Packing, signing and sockets are the endpoint's job.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl import telemetry
from sitl.battery import VOLTAGE_V, Battery
from sitl.battery import current as battery_current
from sitl.kinematics import Limits, LocalFrame, Motion, airspeed, stopping_point, wind_vector
from sitl.mission import COMMAND_NAMES, Item, MissionProtocol, MissionStore, Reply, ReplyKind
from sitl.modes import ARMABLE, HOLDS_POSITION, MANUAL_THROTTLE, NEEDS_POSITION, POSITION_CONTROLLED, Mode, is_known
from sitl.navigation import Event, GoalKind, Navigator
from sitl.params import COUNT as PARAM_COUNT
from sitl.params import PARAMS, ParamStore

# --- the recorded boot timeline, simulated seconds after power-on -------------------------------------
T_LINK = 5.0  # MAVLink starts talking (first HEARTBEAT)
T_ACCELS_OK = 13.0  # until then arming says "Accels inconsistent"
T_GYROS_OK = 24.0  # until then "Gyros inconsistent"; AHRS healthy from here
T_ORIGIN = 20.02  # EKF origin and home set
T_GPS = 41.43  # EKF3 IMU0 starts using GPS: armable in GUIDED
IMU1_LAG = 0.2  # IMU1 reports the same 0.2 s later
#: Vehicles started "warm" have been powered this long: everything above has happened.
WARM_START_S = 300.0
#: SITL's copter sits this far above the --home altitude.
GROUND_OFFSET_M = 0.1

# --- periodic behaviour ----------------------------------------------------------------------------
PREARM_PHASE = 0.43  # the 1 Hz arming check runs at this fraction of each second
PREARM_DISPLAY_S = 30.0  # failures are shown when more than this has passed since the last display
STAT_PERIOD_S = 31.0
TIMESYNC_FIRST, TIMESYNC_PERIOD = 10.0, 60.0
#: After touchdown: landing detected (statistics saved), then the motors disarm.
LAND_DETECT_S, LAND_DISARM_S = 1.58, 2.07
YAW_ALIGN_AFTER_LIFTOFF_S = 2.33
#: RTL waits this long at home beyond RTL_LOIT_TIME before descending (the recorded SITL: 6-6.7 s in all).
RTL_SETTLE_S = 1.3
PARAMS_PER_SECOND = 1500.0
GCS_CHECK_PERIOD_S = 1.0 / 3.0  # the ground-station failsafe is checked at 3 Hz  # PARAM_REQUEST_LIST streaming rate (simulated time)

# --- MAVLink constants as ArduCopter reports them ----------------------------------------------------
BASE_MODE = mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mav.MAV_MODE_FLAG_STABILIZE_ENABLED | mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
EKF_FLAGS_BOOT = 0xA7  # attitude, velocities, vertical position, constant-position mode
EKF_FLAGS_GPS = 0x33F  # plus horizontal position (rel, abs, predicted), constant-position mode clear
SENSORS_PRESENT = 1399979055
_SENSORS_ENABLED_BOOT = 1396833327
_SENSORS_HEALTH_BOOT = 1196555311
_AHRS_BIT = mav.MAV_SYS_STATUS_AHRS
_PREARM_BIT = mav.MAV_SYS_STATUS_PREARM_CHECK
_BATTERY_BIT = mav.MAV_SYS_STATUS_SENSOR_BATTERY
_CONTROL_BITS = mav.MAV_SYS_STATUS_SENSOR_Z_ALTITUDE_CONTROL | mav.MAV_SYS_STATUS_SENSOR_XY_POSITION_CONTROL
FORCE_DISARM = 21196
FORCE_ARM = 2989

SEV_CRITICAL, SEV_WARNING, SEV_INFO = mav.MAV_SEVERITY_CRITICAL, mav.MAV_SEVERITY_WARNING, mav.MAV_SEVERITY_INFO


@dataclass
class Faults:
    """Fault injection: what the vehicle should get wrong on purpose."""

    ignore_commands: set[int] = field(default_factory=set)  # never ACK, never act on these MAV_CMDs
    ignore_messages: set[str] = field(default_factory=set)  # drop these message types (e.g. "SET_MODE")
    prearm_failure: str | None = None  # refuse arming with "Arm: <text>", report "PreArm: <text>"
    position_noise_m: float = 0.0  # standard deviation added to reported positions


class SimCopter:
    def __init__(
        self,
        sysid: int,
        home: Any,
        heading: float = 0.0,
        params: dict[str, float] | None = None,
        hover_current_a: float = 28.0,
        warm: bool = False,
        max_airspeed: float = 20.0,
        signing_key: bytes | None = None,
        seed: int | None = None,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        """`home` is anything with lat, lon and alt_amsl (or alt): where the copter stands when powered on."""
        self.sysid = sysid
        self.encoder = mav.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self.params = ParamStore(params)
        self.params.set("MAV_SYSID", sysid)
        self.frame = LocalFrame(float(home.lat), float(home.lon))
        self.ground_amsl = float(getattr(home, "alt_amsl", getattr(home, "alt", 0.0))) + GROUND_OFFSET_M
        self.motion = Motion(heading=float(heading) % 360.0)
        self.max_airspeed = max_airspeed
        self.nav = Navigator()
        self.battery = Battery(hover_current_a=hover_current_a)
        self.mission = MissionStore()
        self.mission_protocol = MissionProtocol(self.mission, running=lambda: self.mode == Mode.AUTO and self.armed and self._mission_running)
        self.faults = Faults()
        self.rng = random.Random(seed if seed is not None else sysid)
        self._unix_time = unix_time
        self._unix_at_boot = unix_time()
        self.outbox: list[Any] = []
        self.statustexts: list[tuple[float, str]] = []
        self.warm = warm
        self.t = WARM_START_S if warm else 0.0
        self._unix_at_boot -= self.t

        self.mode = Mode.STABILIZE
        self.armed = False
        self.home: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
        self.origin_set = False
        self.using_gps = False
        self.ever_armed = False
        self._pos_ctrl_idle = False  # landed and disarmed in a position mode: base_mode loses its guided bit
        self._ground_since = self.t  # armed on the ground since (auto-disarm)
        self._airborne_time = 0.0
        self._yaw_aligned = False
        self._landing_pending: str | None = None

        # guided / auto state
        self.guided_speed: float | None = None
        self.mission_speed: float | None = None
        self.mission_seq = 0
        self._mission_running = False
        self._mission_complete = False
        self._mission_started = False
        self._item_arrived_at: float | None = None
        self._jumps: dict[int, int] = {}
        self._rtl_phase: str | None = None
        self._rtl_alt = 0.0
        self._rtl_until = 0.0

        # failsafes
        self.last_gcs_heartbeat: float | None = None
        self.gcs_failsafe = False
        self.battery_low = False
        self.battery_critical = False

        # timers
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._event_seq = itertools.count()
        self._next_heartbeat = max(self.t, T_LINK)
        self._next_sys_status = self._next_heartbeat
        self._next_timesync = TIMESYNC_FIRST + TIMESYNC_PERIOD * max(0, math.ceil((self.t - TIMESYNC_FIRST) / TIMESYNC_PERIOD))
        self._next_check = math.floor(self.t) + PREARM_PHASE + (1.0 if self.t % 1.0 > PREARM_PHASE else 0.0)
        # the arming check shows failures at 30.43 s after boot and every 31 s after that; statistics likewise
        first = PREARM_PHASE + PREARM_DISPLAY_S
        shown = first + STAT_PERIOD_S * math.floor((self.t - first) / STAT_PERIOD_S) if self.t > first else 0.0
        self._last_prearm_display = shown
        self._report_after_disarm: float | None = None
        self._next_stat = shown + STAT_PERIOD_S if shown else first
        self._home_sent_at = -math.inf
        self._next_gcs_check = self.t
        self._param_queue: list[int] = []
        self._param_budget = 0.0

        # streams: REQUEST_DATA_STREAM group -> Hz, next due; SET_MESSAGE_INTERVAL msgid -> interval (s)
        self.streams: dict[int, float] = {}
        self._stream_due: dict[int, float] = {}
        self.intervals: dict[int, float] = {}
        self._interval_due: dict[int, float] = {}

        self.signing_key: bytes | None = None
        self.signing_changes = 0  # the endpoint re-keys its parsers when this changes
        if signing_key is not None:
            self.set_signing_key(signing_key)

        if warm:
            self.origin_set = True
            self.using_gps = True
            self.set_home_here()
            self.params.set("MIS_TOTAL", self.mission.count)
            self.params.set("BARO_FIELD_ELV", self.ground_amsl)
            self.outbox.clear()  # nobody was listening while it warmed up
            self._home_sent_at = -math.inf

    # =================================================================================================
    # state the rest of the simulator reads
    # =================================================================================================

    @property
    def flying(self) -> bool:
        """In the air (between lift-off and touchdown)."""
        return self.nav.airborne

    @property
    def ekf_ready(self) -> bool:
        return self.using_gps

    @property
    def linked(self) -> bool:
        """MAVLink is up (a cold-booting SITL says nothing for its first seconds)."""
        return self.t >= T_LINK

    def latlon(self) -> tuple[float, float]:
        return self.frame.to_latlon(self.motion.north, self.motion.east)

    @property
    def alt_amsl(self) -> float:
        return self.ground_amsl + self.motion.alt

    @property
    def relative_alt(self) -> float:
        """Altitude above home (what GLOBAL_POSITION_INT.relative_alt reports)."""
        home_amsl = self.home[2] if self.home else self.ground_amsl
        return self.alt_amsl - home_amsl

    @property
    def home_ne(self) -> tuple[float, float]:
        if self.home is None:
            return 0.0, 0.0
        return self.frame.to_ne(self.home[0], self.home[1])

    @property
    def capacity_mah(self) -> float:
        return self.params["BATT_CAPACITY"]

    @property
    def battery_failsafe(self) -> bool:
        return self.battery_low or self.battery_critical

    @property
    def time_boot_ms(self) -> int:
        return int(self.t * 1000.0) & 0xFFFFFFFF

    @property
    def unix_time(self) -> float:
        return self._unix_at_boot + self.t

    def limits(self) -> Limits:
        p = self.params
        return Limits(
            speed=p["WPNAV_SPEED"] / 100.0,
            accel=max(p["WPNAV_ACCEL"], 10.0) / 100.0,
            speed_up=p["WPNAV_SPEED_UP"] / 100.0,
            speed_dn=p["WPNAV_SPEED_DN"] / 100.0,
            accel_z=max(p["WPNAV_ACCEL_Z"], 10.0) / 100.0,
            max_airspeed=self.max_airspeed,
            jerk=max(p["PSC_JERK_XY"], 0.5),
        )

    @property
    def wp_jerk(self) -> float:
        """Mission legs and RTL are S-curves with WPNAV_JERK: slow to get going from a hover."""
        return max(self.params["WPNAV_JERK"], 0.5)

    def wind(self) -> tuple[float, float]:
        return wind_vector(self.params["SIM_WIND_SPD"], self.params["SIM_WIND_DIR"])

    def truth(self) -> dict[str, Any]:
        """Ground truth for tests and the control channel (not what the vehicle reports: no noise)."""
        lat, lon = self.latlon()
        m = self.motion
        return {
            "sysid": self.sysid,
            "t": round(self.t, 3),
            "lat": lat,
            "lon": lon,
            "alt_m": round(self.relative_alt, 3),
            "alt_amsl_m": round(self.alt_amsl, 3),
            "heading_deg": round(m.heading, 2),
            "ground_speed_ms": round(m.ground_speed, 3),
            "climb_ms": round(m.vz, 3),
            "mode": int(self.mode),
            "mode_name": Mode(self.mode).name,
            "armed": self.armed,
            "flying": self.flying,
            "ekf_ready": self.ekf_ready,
            "home": list(self.home) if self.home else None,
            "battery_pct": self.battery.remaining_pct(self.capacity_mah),
            "consumed_mah": round(self.battery.consumed_mah, 2),
            "current_a": round(self.battery.current_a, 2),
            "gcs_failsafe": self.gcs_failsafe,
            "battery_failsafe": self.battery_failsafe,
            "mission_seq": self.mission_seq,
            "mission_count": self.mission.count,
            "wind": [self.params["SIM_WIND_SPD"], self.params["SIM_WIND_DIR"]],
            "signed": self.signing_key is not None,
        }

    # =================================================================================================
    # output helpers
    # =================================================================================================

    def send(self, msg: Any) -> None:
        self.outbox.append(msg)

    def text(self, severity: int, text: str) -> None:
        self.statustexts.append((self.t, text))
        self.send(self.encoder.statustext_encode(severity, text.encode()[:50], 0, 0))

    def ack(self, command: int, result: int, to: tuple[int, int] = (255, 190)) -> None:
        self.send(self.encoder.command_ack_encode(command, result, 0, 0, to[0], to[1]))

    def send_param(self, name: str, index: int = 65535) -> None:
        value = self.params[name]
        self.send(self.encoder.param_value_encode(name.encode(), float(value), self.params.type_of(name), PARAM_COUNT, index))

    def set_param_and_report(self, name: str, value: float) -> None:
        self.params.set(name, value)
        self.send_param(name)

    def heartbeat(self) -> Any:
        return self.encoder.heartbeat_encode(
            mav.MAV_TYPE_QUADROTOR, mav.MAV_AUTOPILOT_ARDUPILOTMEGA, self.base_mode(), int(self.mode), self.system_status(), 3
        )

    def base_mode(self) -> int:
        base = BASE_MODE
        if self.mode in POSITION_CONTROLLED and not self._pos_ctrl_idle:
            base |= mav.MAV_MODE_FLAG_GUIDED_ENABLED
        if self.armed:
            base |= mav.MAV_MODE_FLAG_SAFETY_ARMED
        return base

    def system_status(self) -> int:
        if self.gcs_failsafe or self.battery_failsafe:
            return mav.MAV_STATE_CRITICAL
        if self.armed and self.flying:
            return mav.MAV_STATE_ACTIVE
        return mav.MAV_STATE_STANDBY

    def at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (self.t + delay, next(self._event_seq), action))

    def set_signing_key(self, key: bytes | None) -> None:
        """Sign everything sent from now on with `key` (None or all zeros: stop signing)."""
        if key is not None and not any(key):
            key = None
        self.signing_key = key
        sig = self.encoder.signing
        sig.secret_key = key
        sig.sign_outgoing = key is not None
        sig.link_id = 0
        sig.timestamp = max(sig.timestamp, int((self._unix_time() - 1420070400) * 100000))
        self.signing_changes += 1

    # =================================================================================================
    # incoming messages
    # =================================================================================================

    def handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind in self.faults.ignore_messages:
            return
        if kind == "HEARTBEAT":
            if msg.get_srcSystem() == int(self.params["MAV_GCS_SYSID"]):
                self.last_gcs_heartbeat = self.t
            return
        target = getattr(msg, "target_system", 0)
        if target not in (0, self.sysid):
            return
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, msg)

    @staticmethod
    def _peer(msg: Any) -> tuple[int, int]:
        return msg.get_srcSystem(), msg.get_srcComponent()

    def _on_request_data_stream(self, msg: Any) -> None:
        groups = telemetry.ALL_GROUPS if msg.req_stream_id == mav.MAV_DATA_STREAM_ALL else (msg.req_stream_id,)
        for g in groups:
            if g not in telemetry.GROUPS:
                continue
            if msg.start_stop and msg.req_message_rate > 0:
                self.streams[g] = min(float(msg.req_message_rate), 50.0)
                self._stream_due.setdefault(g, self.t)
            else:
                self.streams.pop(g, None)
                self._stream_due.pop(g, None)
        if self.home is not None and msg.start_stop and self.t - self._home_sent_at > 1.0:
            self._send_home()  # a (re)connecting ground station learns home without waiting for the next change

    def _on_set_mode(self, msg: Any) -> None:
        self.change_mode(msg.custom_mode)

    def _on_command_long(self, msg: Any) -> None:
        p = [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7]
        self._command(msg.command, p, None, self._peer(msg))

    def _on_command_int(self, msg: Any) -> None:
        p = [msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z]
        self._command(msg.command, p, msg.frame, self._peer(msg))

    def _on_param_request_list(self, msg: Any) -> None:
        self._param_queue = list(range(PARAM_COUNT))

    def _on_param_request_read(self, msg: Any) -> None:
        if msg.param_index >= 0:
            if msg.param_index < PARAM_COUNT:
                self.send_param(PARAMS[msg.param_index].name, msg.param_index)
            return
        name = _param_name(msg.param_id)
        if name in self.params:  # an unknown name gets no answer at all
            self.send_param(name)

    def _on_param_set(self, msg: Any) -> None:
        name = _param_name(msg.param_id)
        if name not in self.params:
            return  # ArduCopter answers an unknown name with silence
        if name in ("MIS_TOTAL", "STAT_RUNTIME", "STAT_FLTTIME", "STAT_BOOTCNT"):
            self.send_param(name)  # kept by the vehicle itself
            return
        try:
            self.params.set(name, msg.param_value)
        except ValueError:
            return
        self.send_param(name)

    def _on_timesync(self, msg: Any) -> None:
        if msg.tc1 == 0:  # a request: answer with our clock
            self.send(self.encoder.timesync_encode(int(self.t * 1e9), msg.ts1))

    def _on_setup_signing(self, msg: Any) -> None:
        self.set_signing_key(bytes(msg.secret_key))

    def _on_set_position_target_global_int(self, msg: Any) -> None:
        if self.mode != Mode.GUIDED:
            return
        if msg.type_mask & 0b111:
            return  # only position targets are simulated
        h = self.height_from(msg.alt, msg.coordinate_frame)
        target = (*self.frame.to_ne(msg.lat_int / 1e7, msg.lon_int / 1e7), h)
        self._guided_goto(target)

    # --- mission protocol -------------------------------------------------------------------------

    def _on_mission_count(self, msg: Any) -> None:
        self._mission_replies(self.mission_protocol.count_received(msg.count, msg.mission_type, self.t, self._peer(msg)))

    def _on_mission_item_int(self, msg: Any) -> None:
        item = Item(msg.seq, msg.frame, msg.command, (msg.param1, msg.param2, msg.param3, msg.param4), msg.x, msg.y, msg.z, msg.autocontinue)
        self._mission_replies(self.mission_protocol.item_received(item, msg.mission_type, self.t, self._peer(msg)))

    def _on_mission_item(self, msg: Any) -> None:
        item = Item(
            msg.seq, msg.frame, msg.command, (msg.param1, msg.param2, msg.param3, msg.param4),
            round(msg.x * 1e7), round(msg.y * 1e7), msg.z, msg.autocontinue,
        )
        self._mission_replies(self.mission_protocol.item_received(item, msg.mission_type, self.t, self._peer(msg)))

    def _on_mission_request_list(self, msg: Any) -> None:
        self._mission_replies(self.mission_protocol.request_list(msg.mission_type, self._peer(msg)))

    def _on_mission_request_int(self, msg: Any) -> None:
        self._mission_replies(self.mission_protocol.request_item(msg.seq, msg.mission_type, True, self._peer(msg)))

    def _on_mission_request(self, msg: Any) -> None:
        self._mission_replies(self.mission_protocol.request_item(msg.seq, msg.mission_type, False, self._peer(msg)))

    def _on_mission_clear_all(self, msg: Any) -> None:
        self._mission_replies(self.mission_protocol.clear_all(msg.mission_type, self._peer(msg)))
        if not self.mission.has_mission:
            self._mission_reset()

    def _on_mission_set_current(self, msg: Any) -> None:
        self.set_mission_current(msg.seq)

    def _mission_replies(self, replies: list[Reply]) -> None:
        enc = self.encoder
        for r in replies:
            to_sys, to_comp = r.to
            if r.kind == ReplyKind.REQUEST:
                self.send(enc.mission_request_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.ACK:
                self.send(enc.mission_ack_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.COUNT:
                self.send(enc.mission_count_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.ITEM_INT:
                i = r.item
                assert i is not None
                self.send(enc.mission_item_int_encode(to_sys, to_comp, i.seq, i.frame, i.command, 0, i.autocontinue, *i.params, i.x, i.y, i.z, 0))
            elif r.kind == ReplyKind.ITEM:
                i = r.item
                assert i is not None
                self.send(enc.mission_item_encode(to_sys, to_comp, i.seq, i.frame, i.command, 0, i.autocontinue, *i.params, i.x / 1e7, i.y / 1e7, i.z, 0))
            elif r.kind == ReplyKind.TOTAL:
                self.set_param_and_report("MIS_TOTAL", r.value)
            elif r.kind == ReplyKind.TEXT:
                self.text(SEV_INFO, r.text)

    # =================================================================================================
    # commands
    # =================================================================================================

    def _command(self, command: int, p: list[float], frame: int | None, peer: tuple[int, int]) -> None:
        if command in self.faults.ignore_commands:
            return
        handler = _COMMANDS.get(command)
        if handler is None:
            self.ack(command, mav.MAV_RESULT_UNSUPPORTED, peer)
            return
        # A handler returns the ACK result, or None when it sent the ACK itself (texts must follow the ACK).
        result = handler(self, p, frame, peer)
        if result is not None:
            self.ack(command, result, peer)

    def _cmd_arm_disarm(self, p: list[float], _frame: int | None, peer: tuple[int, int]) -> int | None:
        cmd = mav.MAV_CMD_COMPONENT_ARM_DISARM
        if p[0] >= 0.5:
            if self.armed:
                return mav.MAV_RESULT_ACCEPTED
            failures = [] if int(p[1]) == FORCE_ARM else self.arm_failures(arming=True)
            if failures:
                self.ack(cmd, mav.MAV_RESULT_FAILED, peer)
                for f in failures:
                    self.text(SEV_CRITICAL, f"Arm: {f}")
                return None
            self.ack(cmd, mav.MAV_RESULT_ACCEPTED, peer)
            self.arm()
            return None
        if not self.armed:
            return mav.MAV_RESULT_ACCEPTED
        if self.flying and int(p[1]) != FORCE_DISARM:
            return mav.MAV_RESULT_FAILED
        self.ack(cmd, mav.MAV_RESULT_ACCEPTED, peer)
        self.disarm()
        return None

    def _cmd_takeoff(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        alt = p[6]
        if not self.armed or self.mode != Mode.GUIDED or self.flying or self.nav.goal.kind == GoalKind.SPOOL or alt <= 0:
            return mav.MAV_RESULT_FAILED
        self.nav.takeoff(self.motion, self.height_from(alt, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT), self.t)
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_do_set_mode(self, p: list[float], _frame: int | None, peer: tuple[int, int]) -> int | None:
        mode = int(p[1])
        if not is_known(mode):
            self.ack(mav.MAV_CMD_DO_SET_MODE, mav.MAV_RESULT_FAILED, peer)
            self.text(SEV_WARNING, f"No such mode {mode}")
            return None
        return mav.MAV_RESULT_ACCEPTED if self.change_mode(mode) else mav.MAV_RESULT_FAILED

    def _cmd_return_to_launch(self, _p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        return mav.MAV_RESULT_ACCEPTED if self.change_mode(Mode.RTL) else mav.MAV_RESULT_FAILED

    def _cmd_land(self, _p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        return mav.MAV_RESULT_ACCEPTED if self.change_mode(Mode.LAND) else mav.MAV_RESULT_FAILED

    def _cmd_mission_start(self, p: list[float], _frame: int | None, peer: tuple[int, int]) -> int | None:
        if p[0] != 0 or p[1] != 0:
            return mav.MAV_RESULT_DENIED  # first/last item are not supported, as on ArduCopter
        if not self.armed or not self.change_mode(Mode.AUTO):
            return mav.MAV_RESULT_FAILED
        self.ack(mav.MAV_CMD_MISSION_START, mav.MAV_RESULT_ACCEPTED, peer)
        if not self._mission_running:
            self.mission_start_or_resume()
        return None

    def _cmd_reposition(self, p: list[float], frame: int | None, _peer: tuple[int, int]) -> int:
        change_mode = int(p[1]) & mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
        if self.mode != Mode.GUIDED and not change_mode:
            return mav.MAV_RESULT_DENIED
        lat, lon = p[4], p[5]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            return mav.MAV_RESULT_DENIED
        if self.mode != Mode.GUIDED and not self.change_mode(Mode.GUIDED):
            return mav.MAV_RESULT_FAILED
        h = self.height_from(p[6], frame if frame is not None else mav.MAV_FRAME_GLOBAL_RELATIVE_ALT)
        self._guided_goto((*self.frame.to_ne(lat, lon), h))
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_change_speed(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        speed_type, speed = int(p[0]), p[1]
        if speed_type in (0, 1):
            new = speed if speed > 0 else None
            if self.mode == Mode.AUTO:
                self.mission_speed = new
            else:
                self.guided_speed = new
            self._retarget_speed()
        elif speed_type == 2 and speed > 0:
            self.params.set("WPNAV_SPEED_UP", speed * 100)
        elif speed_type == 3 and speed > 0:
            self.params.set("WPNAV_SPEED_DN", speed * 100)
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_condition_yaw(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        if self.mode not in (Mode.GUIDED, Mode.AUTO):
            return mav.MAV_RESULT_FAILED
        heading = p[0] if p[3] == 0 else self.motion.heading + (p[0] if p[2] >= 0 else -p[0])
        self.motion.heading = heading % 360.0  # turns at once: yaw is not what anyone waits for
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_pause_continue(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        if self.mode not in (Mode.GUIDED, Mode.AUTO) or not self.flying:
            return mav.MAV_RESULT_FAILED
        if p[0] == 0:
            self.nav.hold(self.motion, self.limits(), self.t)
            self._mission_running = False
        elif self.mode == Mode.AUTO:
            self.mission_start_or_resume()
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_set_mission_current(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        return mav.MAV_RESULT_ACCEPTED if self.set_mission_current(int(p[0])) else mav.MAV_RESULT_FAILED

    def _cmd_request_message(self, p: list[float], _frame: int | None, peer: tuple[int, int]) -> int | None:
        msgid = int(p[0])
        if msgid == mav.MAVLINK_MSG_ID_HOME_POSITION or msgid == mav.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN:
            if self.home is None:
                return mav.MAV_RESULT_FAILED
            self.ack(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAV_RESULT_ACCEPTED, peer)
            self._send_home()
            return None
        if msgid == mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            self.ack(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAV_RESULT_ACCEPTED, peer)
            self.send(telemetry.autopilot_version(self))
            return None
        msgs = telemetry.build_one(self, msgid)
        if msgs is None:
            return mav.MAV_RESULT_UNSUPPORTED
        self.ack(mav.MAV_CMD_REQUEST_MESSAGE, mav.MAV_RESULT_ACCEPTED, peer)
        self.outbox.extend(msgs)
        return None

    def _cmd_autopilot_capabilities(self, _p: list[float], _frame: int | None, peer: tuple[int, int]) -> None:
        self.ack(mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, mav.MAV_RESULT_ACCEPTED, peer)
        self.send(telemetry.autopilot_version(self))

    def _cmd_set_message_interval(self, p: list[float], _frame: int | None, _peer: tuple[int, int]) -> int:
        msgid, interval_us = int(p[0]), p[1]
        if not telemetry.can_build(msgid):
            return mav.MAV_RESULT_UNSUPPORTED
        if interval_us == 0:
            self.intervals.pop(msgid, None)  # back to its stream's rate
        elif interval_us < 0:
            self.intervals[msgid] = math.inf  # off
        else:
            self.intervals[msgid] = max(interval_us / 1e6, 0.02)
            self._interval_due[msgid] = self.t
        return mav.MAV_RESULT_ACCEPTED

    def _cmd_get_home_position(self, _p: list[float], _frame: int | None, peer: tuple[int, int]) -> int | None:
        if self.home is None:
            return mav.MAV_RESULT_FAILED
        self.ack(mav.MAV_CMD_GET_HOME_POSITION, mav.MAV_RESULT_ACCEPTED, peer)
        self._send_home()
        return None

    def _cmd_set_home(self, p: list[float], frame: int | None, _peer: tuple[int, int]) -> int:
        if p[0] >= 0.5:
            self.set_home_here()
        else:
            if not (-90 <= p[4] <= 90 and -180 <= p[5] <= 180) or (p[4] == 0 and p[5] == 0):
                return mav.MAV_RESULT_FAILED
            alt = p[6] if frame in (None, mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT) else p[6] + (self.home[2] if self.home else self.ground_amsl)
            self._set_home(p[4], p[5], alt)
        return mav.MAV_RESULT_ACCEPTED

    # =================================================================================================
    # arming
    # =================================================================================================

    def arm_failures(self, arming: bool = False) -> list[str]:
        """Why arming would be refused now, in ArduCopter's words, in its order (empty: it would arm)."""
        out: list[str] = []
        if self.faults.prearm_failure:
            out.append(self.faults.prearm_failure)
        if self.gcs_failsafe:
            out.append("GCS failsafe on")
        if not self.warm:
            if self.t < T_ACCELS_OK:
                out.append("Accels inconsistent")
            elif self.t < T_GYROS_OK:
                out.append("Gyros inconsistent")
        if not self.origin_set:
            out.append("AHRS: waiting for home")
        elif not self.using_gps and self.mode in NEEDS_POSITION:
            out.append("Need Position Estimate")
        if self.battery_low:
            out.append("Battery 1 low capacity failsafe")
        if self.battery_critical:
            out.append("Battery 1 critical capacity failsafe")
        if self.battery_failsafe:
            out.append("Battery failsafe")
        if self.mode == Mode.AUTO and not self.mission.has_mission:
            out.append("Mode requires mission")
        if arming and not out and self.mode not in ARMABLE:
            out.append("Mode not armable")
        return out

    def arm(self) -> None:
        self.armed = True
        self.ever_armed = True
        self._pos_ctrl_idle = False
        self._ground_since = self.t
        self._report_after_disarm = None
        home_added = self.set_home_here()
        self.text(SEV_INFO, "Arming motors")
        if home_added:
            self.set_param_and_report("MIS_TOTAL", self.mission.count)  # after a MISSION_CLEAR_ALL

    def disarm(self) -> None:
        self.armed = False
        if self.flying:
            self.nav.fall(self.t)  # forced disarm in the air: the motors stop
        else:
            self.nav.ground(self.t)
        self._mission_running = False
        self.text(SEV_INFO, "Disarming motors")
        if self._airborne_time > 10.0:
            # the hover throttle learnt in flight, as MOT_HOVER_LEARN saves it
            self.params.set("MOT_THST_HOVER", 0.375 + self.rng.uniform(-0.01, 0.005))
        self.send_param("MOT_THST_HOVER")
        self._report_after_disarm = self.t

    def set_home_here(self) -> bool:
        lat, lon = self.latlon()
        return self._set_home(lat, lon, self.alt_amsl)

    def _set_home(self, lat: float, lon: float, alt_amsl: float) -> bool:
        """Move home (seq 0 of the mission too); True if home had to be added back to an empty mission."""
        self.home = (lat, lon, alt_amsl)
        added = self.mission.set_home(lat, lon, alt_amsl)
        self._send_home()
        return added

    def _send_home(self) -> None:
        if self.home is None:
            return
        self._home_sent_at = self.t
        usec = int(self.t * 1e6)
        lat, lon, alt = self.home
        self.send(self.encoder.gps_global_origin_encode(round(self.frame.lat0 * 1e7), round(self.frame.lon0 * 1e7), round(self.ground_amsl * 1000), usec))
        hn, he = self.frame.to_ne(lat, lon)
        nan = float("nan")
        self.send(
            self.encoder.home_position_encode(
                round(lat * 1e7), round(lon * 1e7), round(alt * 1000), hn, he, -(alt - self.ground_amsl), [nan] * 4, 0.0, 0.0, 0.0, usec
            )
        )

    # =================================================================================================
    # modes
    # =================================================================================================

    def change_mode(self, mode: int) -> bool:
        """Switch flight mode as ArduCopter would; False when refused. A change is announced by HEARTBEAT."""
        if not is_known(mode):
            self.text(SEV_WARNING, f"No such mode {mode}")
            return False
        mode = Mode(mode)
        if mode == self.mode:
            return True
        if self.armed and mode in NEEDS_POSITION and not self.ekf_ready:
            return False
        if self.armed and mode == Mode.AUTO:
            if not self.mission.has_mission:
                return False
            first = self.mission.get(1)
            if not self.flying and (first is None or first.command != mav.MAV_CMD_NAV_TAKEOFF):
                self.text(SEV_CRITICAL, "Auto: Missing Takeoff Cmd")
                return False
        previous = self.mode
        self.mode = mode
        self._pos_ctrl_idle = False
        if previous == Mode.AUTO:
            self._mission_running = False
        self._rtl_phase = None
        self._enter_mode()
        self.send(self.heartbeat())
        return True

    def _enter_mode(self) -> None:
        m, lim, now = self.motion, self.limits(), self.t
        if not self.flying:
            if self.nav.goal.kind == GoalKind.SPOOL and self.mode not in (Mode.GUIDED, Mode.AUTO):
                self.nav.ground(now)  # a takeoff in progress is abandoned
            return
        mode = self.mode
        if mode == Mode.RTL:
            self._start_rtl()
        elif mode == Mode.LAND:
            self.nav.land(now)
        elif mode == Mode.AUTO:
            self.mission_start_or_resume()
        elif mode in MANUAL_THROTTLE:
            self.nav.sink(now)
        elif mode in HOLDS_POSITION:
            self.nav.hold(m, lim, now)
        else:
            self.nav.hold(m, lim, now)

    # --- guided ------------------------------------------------------------------------------------

    def height_from(self, alt: float, frame: int) -> float:
        """Metres above the local ground for an altitude given in a MAVLink frame."""
        if frame in (mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT):
            return alt - self.ground_amsl
        if frame in (mav.MAV_FRAME_GLOBAL_TERRAIN_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT):
            return alt
        home_amsl = self.home[2] if self.home else self.ground_amsl
        return alt + home_amsl - self.ground_amsl

    def _guided_goto(self, target: tuple[float, float, float]) -> None:
        if not self.flying:
            return  # ArduCopter stays on the ground: a position target is no takeoff
        self.nav.goto(target, self.t, speed=self.guided_speed)

    def _retarget_speed(self) -> None:
        g = self.nav.goal
        if g.kind == GoalKind.GOTO and self.mode in (Mode.GUIDED, Mode.AUTO):
            g.speed = self.guided_speed if self.mode == Mode.GUIDED else self.mission_speed

    # --- RTL -------------------------------------------------------------------------------------------

    def _start_rtl(self) -> None:
        """Climb to the return altitude (RTL_ALT, limited by the cone near home), fly home, loiter, land."""
        p, m = self.params, self.motion
        hn, he = self.home_ne
        dist = math.hypot(hn - m.north, he - m.east)
        target = min(p["RTL_ALT"] / 100.0, max(dist * p["RTL_CONE_SLOPE"], p["RTL_ALT_MIN"] / 100.0)) if p["RTL_CONE_SLOPE"] > 0 else p["RTL_ALT"] / 100.0
        current = self.relative_alt
        target = max(target, current + p["RTL_CLIMB_MIN"] / 100.0, current)
        self._rtl_alt = self.height_from(target, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT)
        # ArduCopter first stops (and climbs, if it has to) where it is, then turns for home.
        self._rtl_phase = "climb"
        sn, se, _ = self._stop_point()
        self.nav.goto((sn, se, self._rtl_alt), self.t, yaw_to_travel=False, jerk=self.wp_jerk)

    def _stop_point(self) -> tuple[float, float, float]:
        return stopping_point(self.motion, self.limits())

    def _rtl_return(self) -> None:
        self._rtl_phase = "return"
        hn, he = self.home_ne
        speed = self.params["RTL_SPEED"] / 100.0 or None
        # WP_YAW_BEHAVIOR 2: face the next waypoint except in RTL
        yaw = int(self.params["WP_YAW_BEHAVIOR"]) in (1, 3)
        self.nav.goto((hn, he, self._rtl_alt), self.t, speed=speed, yaw_to_travel=yaw, jerk=self.wp_jerk)

    def _rtl_event(self, event: Event) -> None:
        if event != Event.ARRIVED:
            return
        if self._rtl_phase == "climb":
            self._rtl_return()
        elif self._rtl_phase == "return":
            self._rtl_phase = "loiter"
            self._rtl_until = self.t + RTL_SETTLE_S + self.params["RTL_LOIT_TIME"] / 1000.0

    def _rtl_tick(self) -> None:
        if self._rtl_phase == "loiter" and self.t >= self._rtl_until:
            final = self.params["RTL_ALT_FINAL"] / 100.0
            if final > 0:
                self._rtl_phase = "final"
                hn, he = self.home_ne
                self.nav.goto((hn, he, self.height_from(final, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT)), self.t, yaw_to_travel=False, jerk=self.wp_jerk)
            else:
                self._rtl_phase = "land"
                self.nav.land(self.t)

    # =================================================================================================
    # missions (AUTO)
    # =================================================================================================

    def _mission_reset(self) -> None:
        self.mission_seq = 0
        self._mission_running = False
        self._mission_complete = False
        self._mission_started = False

    def set_mission_current(self, seq: int) -> bool:
        if not 0 < seq < self.mission.count:
            return False
        self.mission_seq = seq
        self._mission_complete = False
        if self.mode == Mode.AUTO and self._mission_running:
            self._start_item(seq)
        return True

    def mission_start_or_resume(self) -> None:
        if not self.mission.has_mission:
            if self.flying:
                self.nav.hold(self.motion, self.limits(), self.t)
            return
        self._mission_running = True
        self._mission_started = True
        if self._mission_complete or self.mission_seq < 1 or self.mission_seq >= self.mission.count:
            self._mission_complete = False
            self._jumps.clear()
            self._start_item(1)
        else:
            self._start_item(self.mission_seq)

    def _start_item(self, seq: int) -> None:
        """Start mission item `seq` (running DO commands at once, up to the next NAV command)."""
        while True:
            item = self.mission.get(seq)
            if item is None:
                self._mission_done()
                return
            self.mission_seq = seq
            self._item_arrived_at = None
            cmd = item.command
            if cmd < mav.MAV_CMD_NAV_LAST:  # a NAV command: the vehicle flies it
                self.text(SEV_INFO, f"Mission: {seq} {COMMAND_NAMES.get(cmd, 'Cmd')}")
                self._start_nav(item)
                return
            if cmd == mav.MAV_CMD_DO_JUMP:
                target, repeat = int(item.params[0]), int(item.params[1])
                done = self._jumps.get(seq, 0)
                if repeat < 0 or done < repeat:
                    self._jumps[seq] = done + 1
                    self.text(SEV_INFO, f"Mission: {seq} Jump")
                    seq = target
                    continue
                seq += 1
                continue
            # A DO/CONDITION command: done at once.
            self.send(self.encoder.mission_item_reached_encode(seq))
            self.text(SEV_INFO, f"Mission: {seq} {COMMAND_NAMES.get(cmd, 'Cmd')}")
            if cmd == mav.MAV_CMD_DO_CHANGE_SPEED:
                speed_type, speed = int(item.params[0]), item.params[1]
                if speed_type in (0, 1):
                    self.mission_speed = speed if speed > 0 else None
            elif cmd == mav.MAV_CMD_DO_SET_HOME:
                if item.params[0] >= 0.5 or not item.has_location:
                    self.set_home_here()
                else:
                    self._set_home(item.lat, item.lon, item.z)
            seq += 1

    def _item_target(self, item: Item) -> tuple[float, float, float]:
        """Where a NAV item goes: no latitude/longitude means here, altitude 0 means the current altitude."""
        m = self.motion
        n, e = self.frame.to_ne(item.lat, item.lon) if item.has_location else (m.north, m.east)
        h = self.height_from(item.z, item.frame) if item.z != 0 else m.alt
        return n, e, h

    def _start_nav(self, item: Item) -> None:
        cmd, now = item.command, self.t
        if cmd == mav.MAV_CMD_NAV_TAKEOFF:
            h = self.height_from(item.z, item.frame)
            if not self.flying:
                self.nav.takeoff(self.motion, h, now)
            else:
                m = self.motion
                self.nav.goto((m.north, m.east, max(h, m.alt)), now, yaw_to_travel=False)
        elif cmd == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._start_rtl()
        elif cmd == mav.MAV_CMD_NAV_LAND:
            if item.has_location:
                n, e, _ = self._item_target(item)
                self._landing_pending = "land"
                self.nav.goto((n, e, self.motion.alt), now, speed=self.mission_speed)
            else:
                self.nav.land(now)
        elif cmd in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LOITER_UNLIM,
                     mav.MAV_CMD_NAV_LOITER_TURNS, mav.MAV_CMD_NAV_SPLINE_WAYPOINT):
            radius = self.params["WPNAV_RADIUS"] / 100.0
            target = self._item_target(item)
            self.nav.goto(target, now, speed=self.mission_speed, radius=max(radius, 0.5), stop=self._stops_at(item, target), jerk=self.wp_jerk)
        elif cmd == mav.MAV_CMD_NAV_DELAY:
            self.nav.hold(self.motion, self.limits(), now)
        elif self.flying:
            self.nav.hold(self.motion, self.limits(), now)

    def _stops_at(self, item: Item, target: tuple[float, float, float]) -> bool:
        """A waypoint is flown through (reached on entering WPNAV_RADIUS) only if a leg elsewhere follows at once."""
        if item.command not in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT) or item.params[0] > 0:
            return True
        seq = item.seq + 1
        while (following := self.mission.get(seq)) is not None and following.command >= mav.MAV_CMD_NAV_LAST:
            seq += 1
        if following is None or following.command not in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT):
            return True
        n, e, _ = self._item_target(following)
        return math.hypot(n - target[0], e - target[1]) < 1.0

    def _mission_event(self, event: Event) -> None:
        item = self.mission.get(self.mission_seq)
        if item is None:
            return
        cmd = item.command
        if cmd == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._rtl_event(event)
            return
        if cmd == mav.MAV_CMD_NAV_TAKEOFF and event == Event.TAKEOFF_DONE:
            self._start_item(self.mission_seq + 1)
        elif cmd == mav.MAV_CMD_NAV_TAKEOFF and event == Event.ARRIVED:
            self._start_item(self.mission_seq + 1)
        elif cmd == mav.MAV_CMD_NAV_LAND and event == Event.ARRIVED and self._landing_pending:
            self._landing_pending = None
            self.nav.land(self.t)
        elif event == Event.ARRIVED and cmd in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT,
                                                mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LOITER_TURNS):
            self._item_arrived_at = self.t

    def _mission_tick(self) -> None:
        """Hold times and loiter times run out here."""
        if not (self.mode == Mode.AUTO and self._mission_running):
            return
        item = self.mission.get(self.mission_seq)
        if item is None:
            return
        if item.command == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._rtl_tick()
            return
        if self._item_arrived_at is None:
            if item.command == mav.MAV_CMD_NAV_DELAY and self.t - self.nav.goal.since >= max(item.params[0], 0.0):
                self._reached_and_next(item)
            return
        wait = item.params[0] if item.command in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME) else 0.0
        if item.command == mav.MAV_CMD_NAV_LOITER_TURNS:
            wait = max(item.params[0], 0.0) * 2 * math.pi * max(abs(item.params[2]), 10.0) / 5.0
        if self.t - self._item_arrived_at >= max(wait, 0.0):
            self._reached_and_next(item)

    def _reached_and_next(self, item: Item) -> None:
        self._item_arrived_at = None
        self.send(self.encoder.mission_item_reached_encode(item.seq))
        self.text(SEV_INFO, f"Reached command #{item.seq}")
        self._start_item(item.seq + 1)

    def _mission_done(self) -> None:
        """Past the last item: ArduCopter holds position (or stays landed) with the mission complete."""
        self._mission_running = False
        self._mission_complete = True
        self.mission_seq = 0
        if self.flying:
            self.nav.hold(self.motion, self.limits(), self.t)

    def mission_state(self) -> int:
        if not self.mission.has_mission:
            return mav.MISSION_STATE_NO_MISSION
        if self._mission_complete:
            return mav.MISSION_STATE_COMPLETE
        if self._mission_running:
            return mav.MISSION_STATE_ACTIVE
        if self._mission_started:
            return mav.MISSION_STATE_PAUSED
        return mav.MISSION_STATE_NOT_STARTED

    # =================================================================================================
    # simulated time
    # =================================================================================================

    def step(self, dt: float) -> None:
        """Advance `dt` simulated seconds: boot, flight, battery, failsafes, periodic messages."""
        self.t += dt
        while self._events and self._events[0][0] <= self.t:
            _, _, action = heapq.heappop(self._events)
            action()
        if not self.warm:
            self._boot_timeline()
        self._fly(dt)
        self._power(dt)
        self._failsafes()
        self._auto_disarm()
        self._periodic(dt)
        if not self.linked:
            self.outbox.clear()

    def _boot_timeline(self) -> None:
        if not self.origin_set and self.t >= T_ORIGIN:
            self.origin_set = True
            self.set_home_here()
            self.text(SEV_INFO, "EKF3 IMU0 origin set")
            self.set_param_and_report("MIS_TOTAL", self.mission.count)
            self.set_param_and_report("BARO1_GND_PRESS", 101325.13)
            self.set_param_and_report("BARO2_GND_PRESS", 101323.59)
            self.params.set("BARO_FIELD_ELV", self.ground_amsl)
            self.text(SEV_INFO, f"Field Elevation Set: {self.ground_amsl:.0f}m")
            self.at(IMU1_LAG, lambda: self.text(SEV_INFO, "EKF3 IMU1 origin set"))
        if not self.using_gps and self.t >= T_GPS:
            self.using_gps = True
            self.text(SEV_INFO, "EKF3 IMU0 is using GPS")
            self.at(IMU1_LAG, lambda: self.text(SEV_INFO, "EKF3 IMU1 is using GPS"))

    def _fly(self, dt: float) -> None:
        was_airborne = self.flying
        land = (
            (self.params["LAND_SPEED_HIGH"] or self.params["WPNAV_SPEED_DN"]) / 100.0,
            max(self.params["LAND_SPEED"], 30.0) / 100.0,
            self.params["LAND_ALT_LOW"] / 100.0,
        )
        events = self.nav.step(self.motion, self.limits(), dt, self.wind(), land)
        if was_airborne:
            self._airborne_time += dt
        for event in events:
            self._on_nav_event(event)
        if self.mode == Mode.RTL:
            self._rtl_tick()
        self._mission_tick()

    def _on_nav_event(self, event: Event) -> None:
        if event == Event.LIFTOFF:
            if not self._yaw_aligned:
                self._yaw_aligned = True
                self.at(YAW_ALIGN_AFTER_LIFTOFF_S, lambda: self.text(SEV_INFO, "EKF3 IMU0 MAG0 in-flight yaw alignment complete"))
                self.at(YAW_ALIGN_AFTER_LIFTOFF_S, lambda: self.text(SEV_INFO, "EKF3 IMU1 MAG0 in-flight yaw alignment complete"))
            return
        if event == Event.TOUCHDOWN:
            self._touchdown()
            return
        if self.mode == Mode.AUTO and self._mission_running:
            self._mission_event(event)
        elif self.mode == Mode.RTL:
            self._rtl_event(event)
        elif event == Event.TAKEOFF_DONE:
            m = self.motion
            self.nav.goto((m.north, m.east, m.alt), self.t, yaw_to_travel=False)  # hold at the takeoff altitude

    def _touchdown(self) -> None:
        speed = self.nav.touchdown_speed
        self.text(SEV_INFO, f"SIM Hit ground at {speed + self.rng.uniform(-0.002, 0.002):f} m/s")
        self._ground_since = self.t
        self.at(LAND_DETECT_S, self._report_stats)
        landing_mode = self.mode in (Mode.LAND, Mode.RTL) or (self.mode == Mode.AUTO and self._mission_running)
        if landing_mode:
            self.at(LAND_DISARM_S, self._landed_disarm)

    def _landed_disarm(self) -> None:
        if not self.armed or self.flying:
            return
        if self.mode == Mode.AUTO and self._mission_running:
            item = self.mission.get(self.mission_seq)
            self.send(self.encoder.mission_item_reached_encode(self.mission_seq))
            if item is not None and item.command == mav.MAV_CMD_NAV_LAND:
                self.text(SEV_INFO, f"Reached command #{self.mission_seq}")
            self._mission_running = False
            self._mission_complete = self.mission.get(self.mission_seq + 1) is None
            if self._mission_complete:
                self.mission_seq = 0
        self.disarm()
        self._pos_ctrl_idle = True
        self._rtl_phase = None

    def _report_stats(self) -> None:
        self.set_param_and_report("STAT_FLTTIME", round(self._airborne_time))
        self.set_param_and_report("STAT_RUNTIME", round(self.t))
        self._next_stat = self.t + STAT_PERIOD_S - 0.7

    def _power(self, dt: float) -> None:
        m = self.motion
        amps = battery_current(
            self.battery.hover_current_a, armed=self.armed, spool=self.nav.spool, airspeed=airspeed(m, self.wind()),
            climb=m.vz if self.flying else 0.0,
        )
        self.battery.step(dt, amps)

    def _failsafes(self) -> None:
        if self.t >= self._next_gcs_check:
            self._next_gcs_check += GCS_CHECK_PERIOD_S
            self._gcs_failsafe_check()
        p = self.params
        capacity = p["BATT_CAPACITY"]
        if capacity > 0 and p["BATT_MONITOR"] > 0:
            left = self.battery.remaining_mah(capacity)
            if not self.battery_critical and p["BATT_CRT_MAH"] > 0 and left < p["BATT_CRT_MAH"]:
                self.battery_critical = True
                self._battery_text("critical")
                self._failsafe_action(int(p["BATT_FS_CRT_ACT"]), gcs=False)
            elif not self.battery_low and not self.battery_critical and p["BATT_LOW_MAH"] > 0 and left < p["BATT_LOW_MAH"]:
                self.battery_low = True
                self._battery_text("low")
                self._failsafe_action(int(p["BATT_FS_LOW_ACT"]), gcs=False)

    def _gcs_failsafe_check(self) -> None:
        """ArduCopter's 3 Hz check: no heartbeat from MAV_GCS_SYSID for FS_GCS_TIMEOUT, once one was seen."""
        p = self.params
        if p["FS_GCS_ENABLE"] > 0 and self.last_gcs_heartbeat is not None:
            silent = self.t - self.last_gcs_heartbeat > p["FS_GCS_TIMEOUT"]
            if silent and not self.gcs_failsafe:
                self.gcs_failsafe = True
                self.text(SEV_WARNING, "GCS Failsafe")
                self._failsafe_action(int(p["FS_GCS_ENABLE"]), gcs=True)
            elif not silent and self.gcs_failsafe:
                self.gcs_failsafe = False
                self.text(SEV_WARNING, "GCS Failsafe Cleared")
        elif self.gcs_failsafe:
            self.gcs_failsafe = False
            self.text(SEV_WARNING, "GCS Failsafe Cleared")

    def _battery_text(self, level: str) -> None:
        self.text(SEV_WARNING, f"Battery 1 is {level} {VOLTAGE_V:.2f}V used {self.battery.consumed_mah:.0f} mAh")
        self.text(SEV_WARNING, "Battery Failsafe")

    def _failsafe_action(self, action: int, gcs: bool) -> None:
        if not self.armed:
            return
        if not self.flying:
            if action > 0:
                self.disarm()  # failsafe on the ground: motors off
            return
        if gcs:
            rtl = action in (1, 2, 3, 6) and not (action == 2 and self.mode == Mode.AUTO)
            land = action in (4, 5)
        else:
            rtl = action in (2, 3)
            land = action in (1, 4)
            if action == 5:
                self.disarm()  # terminate
                return
        if self.mode == Mode.LAND:
            return
        if rtl and self.mode != Mode.RTL:
            if not self.change_mode(Mode.RTL):
                self.change_mode(Mode.LAND)
        elif land:
            self.change_mode(Mode.LAND)

    def _auto_disarm(self) -> None:
        if not self.armed or self.nav.goal.kind != GoalKind.GROUND:
            self._ground_since = self.t
            return
        delay = self.params["DISARM_DELAY"]
        if delay > 0 and self.t - self._ground_since >= delay - 0.1:
            self.disarm()
            if self.mode in POSITION_CONTROLLED and self.ever_armed and self._airborne_time > 0:
                self._pos_ctrl_idle = True

    def _periodic(self, dt: float) -> None:
        if self.t >= self._next_heartbeat:
            self._next_heartbeat += 1.0
            self.send(self.heartbeat())
            if telemetry.EXTENDED_STATUS not in self.streams and self.t >= self._next_sys_status:
                self._next_sys_status = self._next_heartbeat
                self.send(telemetry.sys_status(self))
        if self.t >= self._next_timesync:
            self._next_timesync += TIMESYNC_PERIOD
            self.send(self.encoder.timesync_encode(0, int(self.t * 1e9)))
        if self.t >= self._next_check:
            self._next_check += 1.0
            self._prearm_tick()
        if self.t >= self._next_stat:
            self._next_stat += STAT_PERIOD_S
            if self._airborne_time > 0:
                self.set_param_and_report("STAT_FLTTIME", round(self._airborne_time))
            self.set_param_and_report("STAT_RUNTIME", round(self.t))
        if self.mission_protocol.uploading:
            self._mission_replies(self.mission_protocol.tick(self.t))
        if self._param_queue:
            self._param_budget += PARAMS_PER_SECOND * dt
            n = min(int(self._param_budget), len(self._param_queue))
            self._param_budget -= n
            for i in self._param_queue[:n]:
                self.send_param(PARAMS[i].name, i)
            del self._param_queue[:n]
        else:
            self._param_budget = 0.0

    def _prearm_tick(self) -> None:
        """ArduCopter's 1 Hz arming check: failures are shown every 30 s, and a second after a disarm if failing."""
        now = self.t
        display = round((now - self._last_prearm_display) * 1000) > PREARM_DISPLAY_S * 1000  # whole ms, as ArduPilot counts
        if self._report_after_disarm is not None and now - self._report_after_disarm >= 1.0:
            self._report_after_disarm = None
            if not self.armed and self.arm_failures():
                display = True
        if not display:
            return
        self._last_prearm_display = now
        if self.armed:
            return
        for failure in self.arm_failures():
            self.text(SEV_CRITICAL, f"PreArm: {failure}")

    # =================================================================================================
    # telemetry
    # =================================================================================================

    def telemetry(self) -> list[Any]:
        """The requested stream messages due now (call only when someone listens: they cost CPU)."""
        if not self.linked or (not self.streams and not self.intervals):
            return []
        return telemetry.due(self)

    def sys_sensors(self) -> tuple[int, int, int]:
        """SYS_STATUS sensor bitmasks (present, enabled, healthy) as the recorded SITL reported them."""
        enabled, health = _SENSORS_ENABLED_BOOT, _SENSORS_HEALTH_BOOT
        if self.warm or self.t >= T_GYROS_OK:
            enabled |= _AHRS_BIT
            health |= _AHRS_BIT
        if not self.armed and not self.arm_failures():
            health |= _PREARM_BIT
        elif self.armed:
            health |= _PREARM_BIT
        if self.battery_failsafe:
            health &= ~_BATTERY_BIT
        if not self.base_mode() & mav.MAV_MODE_FLAG_GUIDED_ENABLED:
            enabled &= ~_CONTROL_BITS  # position and altitude controllers idle (as the guided bit says)
            health &= ~_CONTROL_BITS
        return SENSORS_PRESENT, enabled, health

    def ekf_flags(self) -> int:
        return EKF_FLAGS_GPS if self.using_gps else EKF_FLAGS_BOOT

    def reported_position(self) -> tuple[float, float, float]:
        """(lat, lon, alt AMSL) as the vehicle reports it: the truth plus injected position noise."""
        lat, lon = self.latlon()
        sigma = self.faults.position_noise_m
        if sigma <= 0:
            return lat, lon, self.alt_amsl
        g = self.rng.gauss
        lat, lon = self.frame.to_latlon(self.motion.north + g(0.0, sigma), self.motion.east + g(0.0, sigma))
        return lat, lon, self.alt_amsl + g(0.0, sigma)

    def position_target(self) -> tuple[float, float, float] | None:
        """(lat, lon, alt AMSL) of the position controller's target, when ArduCopter reports one."""
        g = self.nav.goal
        if g.kind != GoalKind.GOTO or g.target is None or not self.armed:
            return None
        if self.mode not in (Mode.GUIDED, Mode.AUTO, Mode.RTL):
            return None
        lat, lon = self.frame.to_latlon(g.target[0], g.target[1])
        return lat, lon, self.ground_amsl + g.target[2]


def _param_name(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return str(raw).split("\x00", 1)[0]


_HANDLERS: dict[str, Callable[[SimCopter, Any], None]] = {
    "REQUEST_DATA_STREAM": SimCopter._on_request_data_stream,
    "SET_MODE": SimCopter._on_set_mode,
    "COMMAND_LONG": SimCopter._on_command_long,
    "COMMAND_INT": SimCopter._on_command_int,
    "PARAM_REQUEST_LIST": SimCopter._on_param_request_list,
    "PARAM_REQUEST_READ": SimCopter._on_param_request_read,
    "PARAM_SET": SimCopter._on_param_set,
    "TIMESYNC": SimCopter._on_timesync,
    "SETUP_SIGNING": SimCopter._on_setup_signing,
    "SET_POSITION_TARGET_GLOBAL_INT": SimCopter._on_set_position_target_global_int,
    "MISSION_COUNT": SimCopter._on_mission_count,
    "MISSION_ITEM_INT": SimCopter._on_mission_item_int,
    "MISSION_ITEM": SimCopter._on_mission_item,
    "MISSION_REQUEST_LIST": SimCopter._on_mission_request_list,
    "MISSION_REQUEST_INT": SimCopter._on_mission_request_int,
    "MISSION_REQUEST": SimCopter._on_mission_request,
    "MISSION_CLEAR_ALL": SimCopter._on_mission_clear_all,
    "MISSION_SET_CURRENT": SimCopter._on_mission_set_current,
}

_COMMANDS: dict[int, Callable[[SimCopter, list[float], int | None, tuple[int, int]], int | None]] = {
    mav.MAV_CMD_COMPONENT_ARM_DISARM: SimCopter._cmd_arm_disarm,
    mav.MAV_CMD_NAV_TAKEOFF: SimCopter._cmd_takeoff,
    mav.MAV_CMD_DO_SET_MODE: SimCopter._cmd_do_set_mode,
    mav.MAV_CMD_NAV_RETURN_TO_LAUNCH: SimCopter._cmd_return_to_launch,
    mav.MAV_CMD_NAV_LAND: SimCopter._cmd_land,
    mav.MAV_CMD_MISSION_START: SimCopter._cmd_mission_start,
    mav.MAV_CMD_DO_REPOSITION: SimCopter._cmd_reposition,
    mav.MAV_CMD_DO_CHANGE_SPEED: SimCopter._cmd_change_speed,
    mav.MAV_CMD_CONDITION_YAW: SimCopter._cmd_condition_yaw,
    mav.MAV_CMD_DO_PAUSE_CONTINUE: SimCopter._cmd_pause_continue,
    mav.MAV_CMD_DO_SET_MISSION_CURRENT: SimCopter._cmd_set_mission_current,
    mav.MAV_CMD_REQUEST_MESSAGE: SimCopter._cmd_request_message,
    mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES: SimCopter._cmd_autopilot_capabilities,
    mav.MAV_CMD_SET_MESSAGE_INTERVAL: SimCopter._cmd_set_message_interval,
    mav.MAV_CMD_GET_HOME_POSITION: SimCopter._cmd_get_home_position,
    mav.MAV_CMD_DO_SET_HOME: SimCopter._cmd_set_home,
}
