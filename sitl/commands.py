"""Commands from a ground station: COMMAND_LONG / COMMAND_INT (one table of MAV_CMD handlers), SET_MODE, GUIDED targets.

Every command is answered with the COMMAND_ACK result ArduCopter 4.7 gives
(ACCEPTED, FAILED, DENIED, UNSUPPORTED) and, where it says more, with its
STATUSTEXTs after the ACK ("Arm: ...", "No such mode N"). A handler returns
the ACK result, or None when it sent the ACK itself because something must
follow it. The commands act through the vehicle's parts; they keep no state.
"""

from __future__ import annotations

import math
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
    from sitl.mount import Mount
    from sitl.pilot import Pilot
    from sitl.streams import StreamScheduler
    from sitl.vehicle import Faults

FORCE_DISARM = 21196
FORCE_ARM = 2989

SEV_CRITICAL, SEV_WARNING = mav.MAV_SEVERITY_CRITICAL, mav.MAV_SEVERITY_WARNING
ACCEPTED, FAILED = mav.MAV_RESULT_ACCEPTED, mav.MAV_RESULT_FAILED
DENIED, UNSUPPORTED = mav.MAV_RESULT_DENIED, mav.MAV_RESULT_UNSUPPORTED
GLOBAL_FRAMES = (None, mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT)
#: Frames a location in a command may come in (mavlink_coordinate_frame_to_location_alt_frame); others are DENIED.
LOCATION_FRAMES = frozenset(
    {mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
     mav.MAV_FRAME_GLOBAL_TERRAIN_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT}
)
#: The highest altitude (m) ArduPilot's Location can hold (LOCATION_ALT_MAX_M).
LOCATION_ALT_MAX_M = 83000.0


def _latlon_ok(lat: float, lon: float) -> bool:
    return -90 <= lat <= 90 and -180 <= lon <= 180

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
    mount: Mount
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
    def at(self, delay: float, action: Callable[[], None]) -> None: ...


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
        """DO_REPOSITION, as ArduCopter's handle_command_int_do_reposition: a GUIDED destination (param1 speed and
        param4 yaw are not used by Copter); CHANGE_MODE in param2 switches to GUIDED first."""
        v = self._v
        if frame is None:
            return UNSUPPORTED  # a location command Copter has no frame for as COMMAND_LONG
        change_mode = int(p[1]) & mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE
        if v.mode != Mode.GUIDED and not change_mode:
            return DENIED
        lat, lon = p[4], p[5]
        if not _latlon_ok(lat, lon):
            return DENIED
        if not self._location_frame_ok(frame, p[6]):
            return DENIED
        if (lat == 0 and lon == 0) or (p[6] == 0 and frame not in GLOBAL_FRAMES):
            return DENIED  # Location::sanitize would put in the current position or altitude: refused
        if v.mode != Mode.GUIDED and not v.change_mode(Mode.GUIDED):
            return FAILED
        h = v.height_from(p[6], frame)
        v.pilot.guided_goto((*v.frame.to_ne(lat, lon), h))
        return ACCEPTED

    def _location_frame_ok(self, frame: int, alt: float) -> bool:
        """GCS_MAVLINK::location_from_command_t: a global frame and a finite altitude ArduPilot can store."""
        if math.isnan(alt) or abs(alt) > LOCATION_ALT_MAX_M:
            return False
        if frame not in LOCATION_FRAMES:
            v = self._v  # ArduPilot's text queue sends it after the ACK
            v.at(0.0, lambda: v.text(mav.MAV_SEVERITY_INFO, f"Unknown mavlink coordinate frame {frame}"))
            return False
        return True

    # --- camera mount and regions of interest ----------------------------------------------------

    def set_roi(self, p: list[float], frame: int | None, _peer: Peer) -> int:
        """DO_SET_ROI_LOCATION / DO_SET_ROI: the nose (GUIDED, AUTO, CIRCLE) and the mount point at it; 0,0,0 clears."""
        v = self._v
        if frame is None:
            frame = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT  # Copter's frame for this command as COMMAND_LONG
        lat, lon, alt = p[4], p[5], p[6]
        if not self._location_frame_ok(frame, alt):
            return DENIED
        if not _latlon_ok(lat, lon):
            return FAILED
        if lat == 0 and lon == 0 and alt == 0:
            return self.roi_none(p, frame, _peer)
        n, e = v.frame.to_ne(lat, lon)
        if v.mode in (Mode.GUIDED, Mode.AUTO, Mode.CIRCLE):
            v.pilot.set_roi(n, e)
        if v.mount.present:
            v.mount.set_roi((n, e, v.height_from(alt, frame)))
        return ACCEPTED

    def roi_none(self, _p: list[float], _frame: int | None, _peer: Peer) -> int:
        v = self._v
        v.pilot.clear_roi()
        v.mount.clear_roi()
        return ACCEPTED

    def mount_control(self, p: list[float], _frame: int | None, _peer: Peer) -> int:
        """DO_MOUNT_CONTROL: param1 pitch, param2 roll, param3 yaw (degrees), param7 MAV_MOUNT_MODE."""
        v = self._v
        mode = int(p[6]) if not math.isnan(p[6]) else -1
        return v.mount.control(p[0], p[1], p[2], mode)

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
    mav.MAV_CMD_DO_SET_ROI_LOCATION: Commands.set_roi,
    mav.MAV_CMD_DO_SET_ROI: Commands.set_roi,
    mav.MAV_CMD_DO_SET_ROI_NONE: Commands.roi_none,
    mav.MAV_CMD_DO_MOUNT_CONTROL: Commands.mount_control,
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
