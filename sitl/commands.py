"""Commands from a ground station: COMMAND_LONG / COMMAND_INT (one table of MAV_CMD handlers), SET_MODE, GUIDED targets.

Every command is answered with the COMMAND_ACK result ArduCopter 4.7 gives
(ACCEPTED, FAILED, DENIED, UNSUPPORTED) and, where it says more, with its
STATUSTEXTs after the ACK ("Arm: ...", "No such mode N"). A handler returns
the ACK result, or None when it sent the ACK itself because something must
follow it. The commands act through the vehicle's parts; they keep no state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl import telemetry
from sitl.kinematics import Limits, LocalFrame, Motion
from sitl.modes import Mode, is_known
from sitl.navigation import GoalKind, Navigator
from sitl.params import ParamStore
from sitl.protocol import peer_of

if TYPE_CHECKING:
    from sitl.auto import MissionRunner
    from sitl.pilot import Pilot
    from sitl.streams import StreamScheduler
    from sitl.vehicle import Faults

FORCE_DISARM = 21196
FORCE_ARM = 2989

SEV_CRITICAL, SEV_WARNING = mav.MAV_SEVERITY_CRITICAL, mav.MAV_SEVERITY_WARNING
ACCEPTED, FAILED = mav.MAV_RESULT_ACCEPTED, mav.MAV_RESULT_FAILED
DENIED, UNSUPPORTED = mav.MAV_RESULT_DENIED, mav.MAV_RESULT_UNSUPPORTED
GLOBAL_FRAMES = (None, mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT)

Peer = tuple[int, int]


class CommandHost(Protocol):
    """What the command handlers need of their vehicle."""

    t: float
    params: ParamStore
    nav: Navigator
    motion: Motion
    frame: LocalFrame
    ground_amsl: float
    faults: Faults
    pilot: Pilot
    auto: MissionRunner
    streams: StreamScheduler
    home: tuple[float, float, float] | None

    @property
    def armed(self) -> bool: ...
    @property
    def flying(self) -> bool: ...
    @property
    def mode(self) -> Mode: ...
    def ack(self, command: int, result: int, to: Peer = (255, 190)) -> None: ...
    def text(self, severity: int, text: str) -> None: ...
    def send(self, msg: Any) -> None: ...
    def arm_failures(self, arming: bool = False) -> list[str]: ...
    def arm(self) -> None: ...
    def disarm(self) -> None: ...
    def change_mode(self, mode: int) -> bool: ...
    def limits(self) -> Limits: ...
    def height_from(self, alt: float, frame: int) -> float: ...
    def set_home_here(self, announce: bool = True) -> bool: ...
    def set_home(self, lat: float, lon: float, alt_amsl: float) -> bool: ...
    def send_home(self) -> None: ...
    def build_message(self, msgid: int) -> list[Any] | None: ...


Handler = Callable[["Commands", list[float], "int | None", Peer], "int | None"]


class Commands:
    """COMMAND_LONG/COMMAND_INT dispatch (`COMMANDS` below), SET_MODE and SET_POSITION_TARGET_GLOBAL_INT."""

    def __init__(self, host: CommandHost) -> None:
        self._v = host

    # --- messages -------------------------------------------------------------------------------

    def on_command_long(self, msg: Any) -> None:
        p = [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6, msg.param7]
        self.run(msg.command, p, None, peer_of(msg))

    def on_command_int(self, msg: Any) -> None:
        p = [msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z]
        self.run(msg.command, p, msg.frame, peer_of(msg))

    def on_set_mode(self, msg: Any) -> None:
        self._v.change_mode(msg.custom_mode)

    def on_set_position_target_global_int(self, msg: Any) -> None:
        v = self._v
        if v.mode != Mode.GUIDED:
            return
        if msg.type_mask & 0b111:
            return  # only position targets are simulated
        h = v.height_from(msg.alt, msg.coordinate_frame)
        target = (*v.frame.to_ne(msg.lat_int / 1e7, msg.lon_int / 1e7), h)
        v.pilot.guided_goto(target)

    def run(self, command: int, p: list[float], frame: int | None, peer: Peer) -> None:
        """Carry out one MAV_CMD (params 5-7 as lat/lon/alt for COMMAND_INT) and ACK it."""
        v = self._v
        if command in v.faults.ignore_commands:
            return
        handler = COMMANDS.get(command)
        if handler is None:
            v.ack(command, UNSUPPORTED, peer)
            return
        # A handler returns the ACK result, or None when it sent the ACK itself (texts must follow the ACK).
        result = handler(self, p, frame, peer)
        if result is not None:
            v.ack(command, result, peer)

    # --- arming and modes -----------------------------------------------------------------------

    def arm_disarm(self, p: list[float], _frame: int | None, peer: Peer) -> int | None:
        v = self._v
        cmd = mav.MAV_CMD_COMPONENT_ARM_DISARM
        if p[0] >= 0.5:
            if v.armed:
                return ACCEPTED
            failures = [] if int(p[1]) == FORCE_ARM else v.arm_failures(arming=True)
            if failures:
                v.ack(cmd, FAILED, peer)
                for f in failures:
                    v.text(SEV_CRITICAL, f"Arm: {f}")
                return None
            v.ack(cmd, ACCEPTED, peer)
            v.arm()
            return None
        if not v.armed:
            return ACCEPTED
        if v.flying and int(p[1]) != FORCE_DISARM:
            return FAILED
        v.ack(cmd, ACCEPTED, peer)
        v.disarm()
        return None

    def takeoff(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        alt = p[6]
        if not v.armed or v.mode != Mode.GUIDED or v.flying or v.nav.goal.kind == GoalKind.SPOOL or alt <= 0:
            return FAILED
        v.nav.takeoff(v.motion, v.height_from(alt, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT), v.t)
        return ACCEPTED

    def do_set_mode(self, p: list[float], _frame: int | None, peer: Peer) -> int | None:
        v = self._v
        mode = int(p[1])
        if not is_known(mode):
            v.ack(mav.MAV_CMD_DO_SET_MODE, FAILED, peer)
            v.text(SEV_WARNING, f"No such mode {mode}")
            return None
        return ACCEPTED if v.change_mode(mode) else FAILED

    def return_to_launch(self, _p: list[float], _frame: int | None, _peer: Peer) -> int:
        return ACCEPTED if self._v.change_mode(Mode.RTL) else FAILED

    def land(self, _p: list[float], _frame: int | None, _peer: Peer) -> int:
        return ACCEPTED if self._v.change_mode(Mode.LAND) else FAILED

    # --- flying ---------------------------------------------------------------------------------

    def mission_start(self, p: list[float], _frame: int | None, peer: Peer) -> int | None:
        v = self._v
        if p[0] != 0 or p[1] != 0:
            return DENIED  # first/last item are not supported, as on ArduCopter
        if not v.armed or not v.change_mode(Mode.AUTO):
            return FAILED
        v.ack(mav.MAV_CMD_MISSION_START, ACCEPTED, peer)
        if not v.auto.running:
            v.auto.start_or_resume()
        return None

    def reposition(self, p: list[float], frame: int | None, _peer: Peer) -> int:
        v = self._v
        change_mode = int(p[1]) & mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
        if v.mode != Mode.GUIDED and not change_mode:
            return DENIED
        lat, lon = p[4], p[5]
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
            return DENIED
        if v.mode != Mode.GUIDED and not v.change_mode(Mode.GUIDED):
            return FAILED
        h = v.height_from(p[6], frame if frame is not None else mav.MAV_FRAME_GLOBAL_RELATIVE_ALT)
        v.pilot.guided_goto((*v.frame.to_ne(lat, lon), h))
        return ACCEPTED

    def change_speed(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        speed_type, speed = int(p[0]), p[1]
        if speed_type in (0, 1):
            v.pilot.change_speed(speed if speed > 0 else None)
        elif speed_type == 2 and speed > 0:
            v.params.set("WPNAV_SPEED_UP", speed * 100)
        elif speed_type == 3 and speed > 0:
            v.params.set("WPNAV_SPEED_DN", speed * 100)
        return ACCEPTED

    def condition_yaw(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        if v.mode not in (Mode.GUIDED, Mode.AUTO):
            return FAILED
        heading = p[0] if p[3] == 0 else v.motion.heading + (p[0] if p[2] >= 0 else -p[0])
        v.motion.heading = heading % 360.0  # turns at once: yaw is not what anyone waits for
        return ACCEPTED

    def pause_continue(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        if v.mode not in (Mode.GUIDED, Mode.AUTO) or not v.flying:
            return FAILED
        if p[0] == 0:
            v.nav.hold(v.motion, v.limits(), v.t)
            v.auto.interrupt()
        elif v.mode == Mode.AUTO:
            v.auto.start_or_resume()
        return ACCEPTED

    def set_mission_current(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        return ACCEPTED if self._v.auto.set_current(int(p[0])) else FAILED

    # --- asking for messages --------------------------------------------------------------------

    def request_message(self, p: list[float], _frame: int | None, peer: Peer) -> int | None:
        v = self._v
        msgid = int(p[0])
        if msgid == mav.MAVLINK_MSG_ID_HOME_POSITION or msgid == mav.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN:
            if v.home is None:
                return FAILED
            v.ack(mav.MAV_CMD_REQUEST_MESSAGE, ACCEPTED, peer)
            v.send_home()
            return None
        msgs = v.build_message(msgid)
        if msgs is None:
            return UNSUPPORTED
        v.ack(mav.MAV_CMD_REQUEST_MESSAGE, ACCEPTED, peer)
        for msg in msgs:
            v.send(msg)
        return None

    def autopilot_capabilities(self, _p: list[float], _frame: int | None, peer: Peer) -> None:
        v = self._v
        v.ack(mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES, ACCEPTED, peer)
        for msg in v.build_message(mav.MAVLINK_MSG_ID_AUTOPILOT_VERSION) or ():
            v.send(msg)

    def set_message_interval(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        msgid, interval_us = int(p[0]), p[1]
        if not telemetry.can_build(msgid):
            return UNSUPPORTED
        v.streams.set_message_interval(msgid, interval_us, v.t)
        return ACCEPTED

    # --- home -----------------------------------------------------------------------------------

    def get_home_position(self, _p: list[float], _frame: int | None, peer: Peer) -> int | None:
        v = self._v
        if v.home is None:
            return FAILED
        v.ack(mav.MAV_CMD_GET_HOME_POSITION, ACCEPTED, peer)
        v.send_home()
        return None

    def set_home(self, p: list[float], frame: int | None, _peer: Peer) -> int:
        v = self._v
        if p[0] >= 0.5:
            v.set_home_here()
        else:
            if not (-90 <= p[4] <= 90 and -180 <= p[5] <= 180) or (p[4] == 0 and p[5] == 0):
                return FAILED
            alt = p[6] if frame in GLOBAL_FRAMES else p[6] + (v.home[2] if v.home else v.ground_amsl)
            v.set_home(p[4], p[5], alt)
        return ACCEPTED


#: MAV_CMD -> handler; anything else is answered UNSUPPORTED.
COMMANDS: dict[int, Handler] = {
    mav.MAV_CMD_COMPONENT_ARM_DISARM: Commands.arm_disarm,
    mav.MAV_CMD_NAV_TAKEOFF: Commands.takeoff,
    mav.MAV_CMD_DO_SET_MODE: Commands.do_set_mode,
    mav.MAV_CMD_NAV_RETURN_TO_LAUNCH: Commands.return_to_launch,
    mav.MAV_CMD_NAV_LAND: Commands.land,
    mav.MAV_CMD_MISSION_START: Commands.mission_start,
    mav.MAV_CMD_DO_REPOSITION: Commands.reposition,
    mav.MAV_CMD_DO_CHANGE_SPEED: Commands.change_speed,
    mav.MAV_CMD_CONDITION_YAW: Commands.condition_yaw,
    mav.MAV_CMD_DO_PAUSE_CONTINUE: Commands.pause_continue,
    mav.MAV_CMD_DO_SET_MISSION_CURRENT: Commands.set_mission_current,
    mav.MAV_CMD_REQUEST_MESSAGE: Commands.request_message,
    mav.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES: Commands.autopilot_capabilities,
    mav.MAV_CMD_SET_MESSAGE_INTERVAL: Commands.set_message_interval,
    mav.MAV_CMD_GET_HOME_POSITION: Commands.get_home_position,
    mav.MAV_CMD_DO_SET_HOME: Commands.set_home,
}
