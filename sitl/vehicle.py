"""One simulated ArduCopter: the vehicle's shared state, its public face, and the parts it is made of.

It answers the way the recorded ArduCopter 4.7 SITL answered (see
../shared/reference/ardupilot-sitl/ and tests/sitl/): the same mode numbers,
COMMAND_ACK results, STATUSTEXT texts in the same order, boot timings in
simulated seconds, mission protocol and failsafe reactions.

The vehicle is transport-free and clock-free: `handle(msg)` takes a decoded
MAVLink message, `step(dt)` advances simulated time, and what it says is left
in `outbox` (events: ACKs, texts, heartbeats, parameters, mission protocol) or
returned by `telemetry()` (the requested streams, built only when someone is
listening). Packing, signing and sockets are the endpoint's job.

`SimCopter` holds what every part reads (clock, position, parameters, battery,
mission, home) and routes messages; each concern is a part it owns, and only
that part changes its own state:

    boot.py       Boot              power-on timeline, EKF state
    arming.py     Arming            pre-arm checks, arm/disarm, landing, auto-disarm, statistics
    pilot.py      Pilot             flight mode, GUIDED targets, the flight step
    rtl.py        ReturnToLaunch    the RTL phases
    auto.py       MissionRunner     AUTO mission execution
    commands.py   Commands          COMMAND_LONG/INT dispatch, SET_MODE, position targets, ROI, mount control
    circle.py     Orbit             CIRCLE mode's orbit (flown by the navigator)
    mount.py      Mount             the camera's servo tilt gimbal (with MNT1_TYPE set) and its report
    protocol.py   ParamService,     parameter and mission transfer protocols
                  MissionTransfer
    failsafes.py  Failsafes         battery drain, GCS and battery failsafes
    streams.py    StreamScheduler   requested stream rates and due times (telemetry.py builds the messages)
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
from sitl.arming import Arming
from sitl.auto import MissionRunner
from sitl.battery import Battery
from sitl.boot import IMU1_LAG, T_ACCELS_OK, T_GPS, T_GYROS_OK, T_LINK, T_ORIGIN, Boot, BootTimeline
from sitl.commands import Commands
from sitl.failsafes import Failsafes
from sitl.kinematics import Limits, LocalFrame, Motion, wind_vector
from sitl.mission import MissionStore
from sitl.modes import POSITION_CONTROLLED, Mode
from sitl.mount import Mount
from sitl.navigation import GoalKind, Navigator
from sitl.params import COUNT as PARAM_COUNT
from sitl.params import ParamStore
from sitl.pilot import Pilot
from sitl.protocol import MissionTransfer, ParamService
from sitl.rtl import ReturnToLaunch
from sitl.streams import StreamScheduler

__all__ = ["PARAM_COUNT", "T_ACCELS_OK", "T_GPS", "T_GYROS_OK", "T_LINK", "T_ORIGIN", "IMU1_LAG", "Faults", "SimCopter"]

#: Vehicles started "warm" have been powered this long: the whole boot timeline has happened.
WARM_START_S = 300.0
#: SITL's copter sits this far above the --home altitude.
GROUND_OFFSET_M = 0.1
TIMESYNC_FIRST, TIMESYNC_PERIOD = 10.0, 60.0

# --- MAVLink constants as ArduCopter reports them ----------------------------------------------------
BASE_MODE = mav.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mav.MAV_MODE_FLAG_STABILIZE_ENABLED | mav.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
SENSORS_PRESENT = 1399979055
_SENSORS_ENABLED_BOOT = 1396833327
_SENSORS_HEALTH_BOOT = 1196555311
_AHRS_BIT = mav.MAV_SYS_STATUS_AHRS
_PREARM_BIT = mav.MAV_SYS_STATUS_PREARM_CHECK
_BATTERY_BIT = mav.MAV_SYS_STATUS_SENSOR_BATTERY
_CONTROL_BITS = mav.MAV_SYS_STATUS_SENSOR_Z_ALTITUDE_CONTROL | mav.MAV_SYS_STATUS_SENSOR_XY_POSITION_CONTROL


@dataclass
class Faults:
    """Fault injection: what the vehicle should get wrong on purpose."""

    ignore_commands: set[int] = field(default_factory=set)  # never ACK, never act on these MAV_CMDs
    ignore_messages: set[str] = field(default_factory=set)  # drop these message types (e.g. "SET_MODE")
    prearm_failure: str | None = None  # refuse arming with "Arm: <text>", report "PreArm: <text>"
    position_noise_m: float = 0.0  # standard deviation added to reported positions


def _timeline() -> BootTimeline:
    """The boot timeline from this module's T_* names, read when a vehicle is made (so a test can move one)."""
    return BootTimeline(link=T_LINK, accels_ok=T_ACCELS_OK, gyros_ok=T_GYROS_OK, origin=T_ORIGIN, gps=T_GPS, imu1_lag=IMU1_LAG)


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
        self.faults = Faults()
        self.rng = random.Random(seed if seed is not None else sysid)
        self.outbox: list[Any] = []
        self.statustexts: list[tuple[float, str]] = []
        self.warm = warm
        self.t = WARM_START_S if warm else 0.0
        self._unix_time = unix_time
        self._unix_at_boot = unix_time() - self.t
        self.home: tuple[float, float, float] | None = None  # lat, lon, alt AMSL
        self._home_sent_at = -math.inf
        self._events: list[tuple[float, int, Callable[[], None]]] = []  # one-shot actions at a simulated time
        self._event_seq = itertools.count()

        # the parts, each owning its own state
        self.boot = Boot(self, _timeline(), warm)
        self.failsafes = Failsafes(self)
        self.arming = Arming(self)
        self.mount = Mount(self)
        self.pilot = Pilot(self)
        self.rtl = ReturnToLaunch(self)
        self.auto = MissionRunner(self)
        self.commands = Commands(self)
        self.param_service = ParamService(self)
        self.mission_transfer = MissionTransfer(self)
        self.streams = StreamScheduler(telemetry.GROUP_MESSAGES)

        # periodic announcements (whether or not any stream is requested)
        self._next_heartbeat = max(self.t, self.boot.timeline.link)
        self._next_sys_status = self._next_heartbeat
        self._next_timesync = TIMESYNC_FIRST + TIMESYNC_PERIOD * max(0, math.ceil((self.t - TIMESYNC_FIRST) / TIMESYNC_PERIOD))

        self.signing_key: bytes | None = None
        self.signing_changes = 0  # the endpoint re-keys its parsers when this changes
        if signing_key is not None:
            self.set_signing_key(signing_key)

        self._routes: dict[str, Callable[[Any], None]] = {
            "REQUEST_DATA_STREAM": self._on_request_data_stream,
            "SET_MODE": self.commands.on_set_mode,
            "COMMAND_LONG": self.commands.on_command_long,
            "COMMAND_INT": self.commands.on_command_int,
            "PARAM_REQUEST_LIST": self.param_service.on_request_list,
            "PARAM_REQUEST_READ": self.param_service.on_request_read,
            "PARAM_SET": self.param_service.on_set,
            "TIMESYNC": self._on_timesync,
            "SETUP_SIGNING": self._on_setup_signing,
            "SET_POSITION_TARGET_GLOBAL_INT": self.commands.on_set_position_target_global_int,
            "MISSION_COUNT": self.mission_transfer.on_count,
            "MISSION_ITEM_INT": self.mission_transfer.on_item_int,
            "MISSION_ITEM": self.mission_transfer.on_item,
            "MISSION_REQUEST_LIST": self.mission_transfer.on_request_list,
            "MISSION_REQUEST_INT": self.mission_transfer.on_request_int,
            "MISSION_REQUEST": self.mission_transfer.on_request,
            "MISSION_CLEAR_ALL": self.mission_transfer.on_clear_all,
            "MISSION_SET_CURRENT": self.mission_transfer.on_set_current,
        }

        if warm:  # powered long ago: home and the boot parameters are set, and nobody heard it happen
            self.set_home_here(announce=False)
            self.params.set("MIS_TOTAL", self.mission.count)
            self.params.set("BARO_FIELD_ELV", self.ground_amsl)

    # =================================================================================================
    # state the rest of the simulator reads
    # =================================================================================================

    @property
    def flying(self) -> bool:
        """In the air (between lift-off and touchdown)."""
        return self.nav.airborne

    @property
    def mode(self) -> Mode:
        return self.pilot.mode

    @property
    def armed(self) -> bool:
        return self.arming.armed

    @property
    def ekf_ready(self) -> bool:
        return self.boot.using_gps

    @property
    def linked(self) -> bool:
        """MAVLink is up (a cold-booting SITL says nothing for its first seconds)."""
        return self.boot.linked

    @property
    def gcs_failsafe(self) -> bool:
        return self.failsafes.gcs

    @property
    def battery_low(self) -> bool:
        return self.failsafes.battery_low

    @property
    def battery_critical(self) -> bool:
        return self.failsafes.battery_critical

    @property
    def battery_failsafe(self) -> bool:
        return self.failsafes.battery

    @property
    def mission_seq(self) -> int:
        return self.auto.seq

    def mission_state(self) -> int:
        return self.auto.state()

    def mission_running(self) -> bool:
        """The mission is being flown (MissionProtocol refuses some changes then)."""
        return self.mode == Mode.AUTO and self.armed and self.auto.running

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

    def height_from(self, alt: float, frame: int) -> float:
        """Metres above the local ground for an altitude given in a MAVLink frame."""
        if frame in (mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT):
            return alt - self.ground_amsl
        if frame in (mav.MAV_FRAME_GLOBAL_TERRAIN_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT):
            return alt
        home_amsl = self.home[2] if self.home else self.ground_amsl
        return alt + home_amsl - self.ground_amsl

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
    # what the parts ask of each other (kept here so each part sees one narrow vehicle)
    # =================================================================================================

    def arm_failures(self, arming: bool = False) -> list[str]:
        """Why arming would be refused now, in ArduCopter's words, in its order (empty: it would arm)."""
        return self.arming.failures(arming)

    def arm(self) -> None:
        self.arming.arm()

    def disarm(self) -> None:
        self.arming.disarm()

    def change_mode(self, mode: int) -> bool:
        """Switch flight mode as ArduCopter would; False when refused. A change is announced by HEARTBEAT."""
        return self.pilot.change_mode(mode)

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Run `action` `delay` simulated seconds from now (at the start of that step)."""
        heapq.heappush(self._events, (self.t + delay, next(self._event_seq), action))

    # =================================================================================================
    # output
    # =================================================================================================

    def send(self, msg: Any) -> None:
        """Queue an event message; before MAVLink is up (cold boot) nobody hears it, so it is not queued."""
        if self.boot.linked:
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
        if self.mode in POSITION_CONTROLLED and not self.pilot.controller_idle:
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

    # --- home ------------------------------------------------------------------------------------

    def set_home_here(self, announce: bool = True) -> bool:
        lat, lon = self.latlon()
        return self.set_home(lat, lon, self.alt_amsl, announce)

    def set_home(self, lat: float, lon: float, alt_amsl: float, announce: bool = True) -> bool:
        """Move home (seq 0 of the mission too); True if home had to be added back to an empty mission."""
        self.home = (lat, lon, alt_amsl)
        added = self.mission.set_home(lat, lon, alt_amsl)
        if announce:
            self.send_home()
        return added

    def send_home(self) -> None:
        """GPS_GLOBAL_ORIGIN and HOME_POSITION (on a change, on request, to a ground station that starts streams)."""
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
    # incoming messages
    # =================================================================================================

    def handle(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind in self.faults.ignore_messages:
            return
        if kind == "HEARTBEAT":
            self.failsafes.heartbeat_from(msg.get_srcSystem())
            return
        target = getattr(msg, "target_system", 0)
        if target not in (0, self.sysid):
            return
        if target == self.sysid and getattr(msg, "target_component", 0) not in (0, 1):
            return  # for another component of this vehicle (a camera): ArduPilot only routes it on
        handler = self._routes.get(kind)
        if handler is not None:
            handler(msg)

    def _on_request_data_stream(self, msg: Any) -> None:
        self.streams.request_data_stream(msg.req_stream_id, msg.req_message_rate, msg.start_stop, self.t)
        if self.home is not None and msg.start_stop and self.t - self._home_sent_at > 1.0:
            self.send_home()  # a (re)connecting ground station learns home without waiting for the next change

    def _on_timesync(self, msg: Any) -> None:
        if msg.tc1 == 0:  # a request: answer with our clock
            self.send(self.encoder.timesync_encode(int(self.t * 1e9), msg.ts1))

    def _on_setup_signing(self, msg: Any) -> None:
        self.set_signing_key(bytes(msg.secret_key))

    # =================================================================================================
    # simulated time
    # =================================================================================================

    def step(self, dt: float) -> None:
        """Advance `dt` simulated seconds: boot, flight, battery, failsafes, periodic messages."""
        self.t += dt
        while self._events and self._events[0][0] <= self.t:
            _, _, action = heapq.heappop(self._events)
            action()
        self.boot.step()
        self.pilot.fly(dt)
        self.failsafes.drain(dt)
        self.failsafes.step()
        self.arming.auto_disarm()
        self._periodic(dt)

    def _periodic(self, dt: float) -> None:
        if self.t >= self._next_heartbeat:
            self._next_heartbeat += 1.0
            self.send(self.heartbeat())
            if not self.streams.streaming(telemetry.EXTENDED_STATUS) and self.t >= self._next_sys_status:
                self._next_sys_status = self._next_heartbeat
                self.send(telemetry.sys_status(self))
        if self.t >= self._next_timesync:
            self._next_timesync += TIMESYNC_PERIOD
            self.send(self.encoder.timesync_encode(0, int(self.t * 1e9)))
        self.arming.periodic()
        self.mission_transfer.tick()
        self.param_service.tick(dt)

    # =================================================================================================
    # telemetry
    # =================================================================================================

    def telemetry(self) -> list[Any]:
        """The requested stream messages due now (call only when someone listens: they cost CPU)."""
        if not self.streams.active or not self.boot.linked:
            return []
        return telemetry.due(self)

    def build_message(self, msgid: int) -> list[Any] | None:
        """One message on request (MAV_CMD_REQUEST_MESSAGE); None if the simulator cannot produce it."""
        return telemetry.build_one(self, msgid)

    def sys_sensors(self) -> tuple[int, int, int]:
        """SYS_STATUS sensor bitmasks (present, enabled, healthy) as the recorded SITL reported them."""
        enabled, health = _SENSORS_ENABLED_BOOT, _SENSORS_HEALTH_BOOT
        if self.boot.ahrs_healthy:
            enabled |= _AHRS_BIT
            health |= _AHRS_BIT
        armed = self.armed
        if not armed and not self.arm_failures():
            health |= _PREARM_BIT
        elif armed:
            health |= _PREARM_BIT
        if self.battery_failsafe:
            health &= ~_BATTERY_BIT
        if not self.base_mode() & mav.MAV_MODE_FLAG_GUIDED_ENABLED:
            enabled &= ~_CONTROL_BITS  # position and altitude controllers idle (as the guided bit says)
            health &= ~_CONTROL_BITS
        return SENSORS_PRESENT, enabled, health

    def ekf_flags(self) -> int:
        return self.boot.ekf_flags()

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
