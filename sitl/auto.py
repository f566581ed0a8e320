"""AUTO mode: flying the stored mission item by item, as ArduCopter 4.7 does.

NAV commands are flown (takeoff, waypoints with hold times, loiters, delay,
land, return to launch); DO commands run at once on the way to the next NAV
command (change speed, set home, jump with repeat counts). Each start is
announced ("Mission: N Waypoint"), each finished item too (MISSION_ITEM_REACHED,
"Reached command #N"). Past the last item the mission is complete and the
copter holds position. Storing and transferring the mission is mission.py's job.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.kinematics import Limits, LocalFrame, Motion
from sitl.mission import COMMAND_NAMES, Item, MissionStore
from sitl.modes import Mode
from sitl.navigation import Event, Navigator
from sitl.params import ParamStore

if TYPE_CHECKING:
    from sitl.rtl import ReturnToLaunch

SEV_INFO = mav.MAV_SEVERITY_INFO
_PASS_THROUGH = (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT)


class AutoHost(Protocol):
    """What mission execution needs of its vehicle."""

    t: float
    params: ParamStore
    nav: Navigator
    motion: Motion
    frame: LocalFrame
    mission: MissionStore
    encoder: Any
    rtl: ReturnToLaunch

    @property
    def mode(self) -> Mode: ...
    @property
    def flying(self) -> bool: ...
    @property
    def wp_jerk(self) -> float: ...
    def limits(self) -> Limits: ...
    def height_from(self, alt: float, frame: int) -> float: ...
    def set_home_here(self, announce: bool = True) -> bool: ...
    def set_home(self, lat: float, lon: float, alt_amsl: float) -> bool: ...
    def send(self, msg: Any) -> None: ...
    def text(self, severity: int, text: str) -> None: ...


class MissionRunner:
    """Where the mission is (`seq`), whether it runs, and its speed (DO_CHANGE_SPEED in AUTO)."""

    def __init__(self, host: AutoHost) -> None:
        self._v = host
        self.seq = 0
        self.speed: float | None = None  # m/s; None: WPNAV_SPEED
        self.running = False
        self._complete = False
        self._started = False
        self._arrived_at: float | None = None
        self._jumps: dict[int, int] = {}  # DO_JUMP seq -> jumps done
        self._landing_pending = False

    # --- state --------------------------------------------------------------------------------------

    def state(self) -> int:
        """MISSION_CURRENT.mission_state."""
        if not self._v.mission.has_mission:
            return mav.MISSION_STATE_NO_MISSION
        if self._complete:
            return mav.MISSION_STATE_COMPLETE
        if self.running:
            return mav.MISSION_STATE_ACTIVE
        if self._started:
            return mav.MISSION_STATE_PAUSED
        return mav.MISSION_STATE_NOT_STARTED

    def reset(self) -> None:
        """The mission was cleared."""
        self.seq = 0
        self.running = False
        self._complete = False
        self._started = False

    def interrupt(self) -> None:
        """Stop running the mission where it is (disarm, pause, leaving AUTO); a resume continues there."""
        self.running = False

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed

    # --- starting -----------------------------------------------------------------------------------

    def set_current(self, seq: int) -> bool:
        """MISSION_SET_CURRENT / DO_SET_MISSION_CURRENT: go on from `seq` (at once if running)."""
        if not 0 < seq < self._v.mission.count:
            return False
        self.seq = seq
        self._complete = False
        if self._v.mode == Mode.AUTO and self.running:
            self._start_item(seq)
        return True

    def start_or_resume(self) -> None:
        v = self._v
        if not v.mission.has_mission:
            if v.flying:
                v.nav.hold(v.motion, v.limits(), v.t)
            return
        self.running = True
        self._started = True
        if self._complete or self.seq < 1 or self.seq >= v.mission.count:
            self._complete = False
            self._jumps.clear()
            self._start_item(1)
        else:
            self._start_item(self.seq)

    def _start_item(self, seq: int) -> None:
        """Start mission item `seq` (running DO commands at once, up to the next NAV command)."""
        v = self._v
        while True:
            item = v.mission.get(seq)
            if item is None:
                self._done()
                return
            self.seq = seq
            self._arrived_at = None
            cmd = item.command
            if cmd < mav.MAV_CMD_NAV_LAST:  # a NAV command: the vehicle flies it
                v.text(SEV_INFO, f"Mission: {seq} {COMMAND_NAMES.get(cmd, 'Cmd')}")
                self._start_nav(item)
                return
            if cmd == mav.MAV_CMD_DO_JUMP:
                target, repeat = int(item.params[0]), int(item.params[1])
                done = self._jumps.get(seq, 0)
                if repeat < 0 or done < repeat:
                    self._jumps[seq] = done + 1
                    v.text(SEV_INFO, f"Mission: {seq} Jump")
                    seq = target
                    continue
                seq += 1
                continue
            # A DO/CONDITION command: done at once.
            v.send(v.encoder.mission_item_reached_encode(seq))
            v.text(SEV_INFO, f"Mission: {seq} {COMMAND_NAMES.get(cmd, 'Cmd')}")
            if cmd == mav.MAV_CMD_DO_CHANGE_SPEED:
                speed_type, speed = int(item.params[0]), item.params[1]
                if speed_type in (0, 1):
                    self.speed = speed if speed > 0 else None
            elif cmd == mav.MAV_CMD_DO_SET_HOME:
                if item.params[0] >= 0.5 or not item.has_location:
                    v.set_home_here()
                else:
                    v.set_home(item.lat, item.lon, item.z)
            seq += 1

    def _item_target(self, item: Item) -> tuple[float, float, float]:
        """Where a NAV item goes: no latitude/longitude means here, altitude 0 means the current altitude."""
        v = self._v
        m = v.motion
        n, e = v.frame.to_ne(item.lat, item.lon) if item.has_location else (m.north, m.east)
        h = v.height_from(item.z, item.frame) if item.z != 0 else m.alt
        return n, e, h

    def _start_nav(self, item: Item) -> None:
        v = self._v
        cmd, now = item.command, v.t
        if cmd == mav.MAV_CMD_NAV_TAKEOFF:
            h = v.height_from(item.z, item.frame)
            if not v.flying:
                v.nav.takeoff(v.motion, h, now)
            else:
                m = v.motion
                v.nav.goto((m.north, m.east, max(h, m.alt)), now, yaw_to_travel=False)
        elif cmd == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            v.rtl.start()
        elif cmd == mav.MAV_CMD_NAV_LAND:
            if item.has_location:
                n, e, _ = self._item_target(item)
                self._landing_pending = True
                v.nav.goto((n, e, v.motion.alt), now, speed=self.speed)
            else:
                v.nav.land(now)
        elif cmd in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LOITER_UNLIM,
                     mav.MAV_CMD_NAV_LOITER_TURNS, mav.MAV_CMD_NAV_SPLINE_WAYPOINT):
            radius = v.params["WPNAV_RADIUS"] / 100.0
            target = self._item_target(item)
            v.nav.goto(target, now, speed=self.speed, radius=max(radius, 0.5), stop=self._stops_at(item, target), jerk=v.wp_jerk)
        elif cmd == mav.MAV_CMD_NAV_DELAY:
            v.nav.hold(v.motion, v.limits(), now)
        elif v.flying:
            v.nav.hold(v.motion, v.limits(), now)

    def _stops_at(self, item: Item, target: tuple[float, float, float]) -> bool:
        """A waypoint is flown through (reached on entering WPNAV_RADIUS) only if a leg elsewhere follows at once."""
        if item.command not in _PASS_THROUGH or item.params[0] > 0:
            return True
        mission = self._v.mission
        seq = item.seq + 1
        while (following := mission.get(seq)) is not None and following.command >= mav.MAV_CMD_NAV_LAST:
            seq += 1
        if following is None or following.command not in _PASS_THROUGH:
            return True
        n, e, _ = self._item_target(following)
        return math.hypot(n - target[0], e - target[1]) < 1.0

    # --- progress -----------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """A navigation event while the mission runs."""
        v = self._v
        item = v.mission.get(self.seq)
        if item is None:
            return
        cmd = item.command
        if cmd == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            v.rtl.on_event(event)
            return
        if cmd == mav.MAV_CMD_NAV_TAKEOFF and event == Event.TAKEOFF_DONE:
            self._start_item(self.seq + 1)
        elif cmd == mav.MAV_CMD_NAV_TAKEOFF and event == Event.ARRIVED:
            self._start_item(self.seq + 1)
        elif cmd == mav.MAV_CMD_NAV_LAND and event == Event.ARRIVED and self._landing_pending:
            self._landing_pending = False
            v.nav.land(v.t)
        elif event == Event.ARRIVED and cmd in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_SPLINE_WAYPOINT,
                                                mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LOITER_TURNS):
            self._arrived_at = v.t

    def tick(self) -> None:
        """Hold times and loiter times run out here."""
        v = self._v
        if not self.running or v.mode != Mode.AUTO:
            return
        item = v.mission.get(self.seq)
        if item is None:
            return
        if item.command == mav.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            v.rtl.tick()
            return
        if self._arrived_at is None:
            if item.command == mav.MAV_CMD_NAV_DELAY and v.t - v.nav.goal.since >= max(item.params[0], 0.0):
                self._reached_and_next(item)
            return
        wait = item.params[0] if item.command in (mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TIME) else 0.0
        if item.command == mav.MAV_CMD_NAV_LOITER_TURNS:
            wait = max(item.params[0], 0.0) * 2 * math.pi * max(abs(item.params[2]), 10.0) / 5.0
        if v.t - self._arrived_at >= max(wait, 0.0):
            self._reached_and_next(item)

    def landed(self) -> None:
        """Landed and about to disarm in AUTO: the current item is reached and the mission stops."""
        v = self._v
        item = v.mission.get(self.seq)
        v.send(v.encoder.mission_item_reached_encode(self.seq))
        if item is not None and item.command == mav.MAV_CMD_NAV_LAND:
            v.text(SEV_INFO, f"Reached command #{self.seq}")
        self.running = False
        self._complete = v.mission.get(self.seq + 1) is None
        if self._complete:
            self.seq = 0

    def _reached_and_next(self, item: Item) -> None:
        v = self._v
        self._arrived_at = None
        v.send(v.encoder.mission_item_reached_encode(item.seq))
        v.text(SEV_INFO, f"Reached command #{item.seq}")
        self._start_item(item.seq + 1)

    def _done(self) -> None:
        """Past the last item: ArduCopter holds position (or stays landed) with the mission complete."""
        v = self._v
        self.running = False
        self._complete = True
        self.seq = 0
        if v.flying:
            v.nav.hold(v.motion, v.limits(), v.t)
