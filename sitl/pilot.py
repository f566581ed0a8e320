"""The flight mode and what it flies: mode changes with ArduCopter's refusals, GUIDED targets, the flight step.

A mode change is refused the way ArduCopter refuses it (no position estimate,
no mission, "Auto: Missing Takeoff Cmd") and announced by a HEARTBEAT; entering
a mode in the air starts what it flies (RTL, LAND, the mission in AUTO, a sink
in manual-throttle modes, a position hold otherwise). Each flight step moves the
copter (navigation.py) and hands the navigator's events to whoever flies:
the mission in AUTO, RTL, or the landing logic on touchdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.circle import ROI_AT_CENTER, Orbit
from sitl.kinematics import Limits, Motion
from sitl.mission import MissionStore
from sitl.modes import HOLDS_POSITION, MANUAL_THROTTLE, NEEDS_POSITION, Mode, is_known
from sitl.navigation import Event, GoalKind, Navigator
from sitl.params import ParamStore

if TYPE_CHECKING:
    from sitl.arming import Arming
    from sitl.auto import MissionRunner
    from sitl.boot import Boot
    from sitl.mount import Mount
    from sitl.rtl import ReturnToLaunch

SEV_CRITICAL, SEV_WARNING = mav.MAV_SEVERITY_CRITICAL, mav.MAV_SEVERITY_WARNING


class PilotHost(Protocol):
    """What the mode logic needs of its vehicle."""

    t: float
    params: ParamStore
    nav: Navigator
    motion: Motion
    mission: MissionStore
    boot: Boot
    arming: Arming
    auto: MissionRunner
    rtl: ReturnToLaunch
    mount: Mount

    @property
    def armed(self) -> bool: ...
    @property
    def flying(self) -> bool: ...
    def limits(self) -> Limits: ...
    def wind(self) -> tuple[float, float]: ...
    def text(self, severity: int, text: str) -> None: ...
    def send(self, msg: Any) -> None: ...
    def heartbeat(self) -> Any: ...


class Pilot:
    """The flight mode, the GUIDED speed, and whether the position controller sits idle on the ground."""

    def __init__(self, host: PilotHost) -> None:
        self._v = host
        self.mode = Mode.STABILIZE
        self.guided_speed: float | None = None  # m/s from DO_CHANGE_SPEED; None: WPNAV_SPEED
        #: Landed and disarmed in a position mode: HEARTBEAT base_mode loses its guided bit until the next arming or mode change.
        self.controller_idle = False

    def idle_controller(self) -> None:
        self.controller_idle = True

    def wake_controller(self) -> None:
        self.controller_idle = False

    # --- modes ----------------------------------------------------------------------------------

    def change_mode(self, mode: int) -> bool:
        """Switch flight mode as ArduCopter would; False when refused. A change is announced by HEARTBEAT."""
        v = self._v
        if not is_known(mode):
            v.text(SEV_WARNING, f"No such mode {mode}")
            return False
        mode = Mode(mode)
        if mode == self.mode:
            return True
        if v.armed and mode in NEEDS_POSITION and not v.boot.using_gps:
            return False
        if v.armed and mode == Mode.AUTO:
            if not v.mission.has_mission:
                return False
            first = v.mission.get(1)
            if not v.flying and (first is None or first.command != mav.MAV_CMD_NAV_TAKEOFF):
                v.text(SEV_CRITICAL, "Auto: Missing Takeoff Cmd")
                return False
        previous = self.mode
        self.mode = mode
        self.controller_idle = False
        if previous == Mode.AUTO:
            v.auto.interrupt()
        v.rtl.cancel()
        v.nav.face = None  # a new mode starts with its own yaw (ArduCopter's auto_yaw back to its default)
        self._enter_mode()
        v.send(v.heartbeat())
        return True

    def _enter_mode(self) -> None:
        v = self._v
        now = v.t
        if not v.flying:
            if v.nav.goal.kind == GoalKind.SPOOL and self.mode not in (Mode.GUIDED, Mode.AUTO):
                v.nav.ground(now)  # a takeoff in progress is abandoned
            return
        mode = self.mode
        if mode == Mode.RTL:
            v.rtl.start()
        elif mode == Mode.LAND:
            v.nav.land(now)
        elif mode == Mode.AUTO:
            v.auto.start_or_resume()
        elif mode == Mode.CIRCLE:
            self._start_circle()
        elif mode in MANUAL_THROTTLE:
            v.nav.sink(now)
        elif mode in HOLDS_POSITION:
            v.nav.hold(v.motion, v.limits(), now)
        else:
            v.nav.hold(v.motion, v.limits(), now)

    def _start_circle(self) -> None:
        """CIRCLE: orbit from CIRCLE_RADIUS/RATE/OPTIONS (sitl/circle.py); ROI_AT_CENTER points the mount at the centre."""
        v = self._v
        p = v.params
        orbit = Orbit.start(v.motion, v.limits(), p["CIRCLE_RADIUS"], p["CIRCLE_RATE"], int(p["CIRCLE_OPTIONS"]))
        self._circle_params = (p["CIRCLE_RADIUS"], p["CIRCLE_RATE"])
        v.nav.circle(orbit, v.t)
        if orbit.options & ROI_AT_CENTER and v.mount.present:
            v.mount.set_roi((orbit.north, orbit.east, 0.0))  # the centre on the ground

    _circle_params = (0.0, 0.0)

    def _circle_param_change(self) -> None:
        """CIRCLE_RADIUS and CIRCLE_RATE set while circling take effect at once (AC_Circle::check_param_change)."""
        v = self._v
        g = v.nav.goal
        if g.orbit is None:
            return
        now = (v.params["CIRCLE_RADIUS"], v.params["CIRCLE_RATE"])
        if now != self._circle_params:
            self._circle_params = now
            g.orbit.update_params(*now)

    # --- regions of interest ---------------------------------------------------------------------

    def set_roi(self, north: float, east: float) -> None:
        """DO_SET_ROI_LOCATION: the nose turns to the location in the modes that fly with auto yaw, until cleared,
        a new mode or a new GUIDED destination (measured: a reposition after an ROI faces the way it flies)."""
        self._v.nav.face = (north, east)

    def clear_roi(self) -> None:
        self._v.nav.face = None

    # --- GUIDED ---------------------------------------------------------------------------------

    def guided_goto(self, target: tuple[float, float, float]) -> None:
        """Fly to a (north, east, height) target at the GUIDED speed; on the ground nothing happens."""
        v = self._v
        if not v.flying:
            return  # ArduCopter stays on the ground: a position target is no takeoff
        v.nav.face = None  # a new destination: yaw back to its default (ArduCopter's set_destination)
        v.nav.goto(target, v.t, speed=self.guided_speed)

    def change_speed(self, speed: float | None) -> None:
        """DO_CHANGE_SPEED (ground or air speed): the mission's speed in AUTO, else GUIDED's; a leg in flight follows."""
        v = self._v
        if self.mode == Mode.AUTO:
            v.auto.set_speed(speed)
        else:
            self.guided_speed = speed
        g = v.nav.goal
        if g.kind == GoalKind.GOTO and self.mode in (Mode.GUIDED, Mode.AUTO):
            g.speed = self.guided_speed if self.mode == Mode.GUIDED else v.auto.speed

    # --- the flight step ------------------------------------------------------------------------

    def fly(self, dt: float) -> None:
        """Move the copter `dt` seconds and react to what happened (lift-off, arrival, touchdown, ...)."""
        v = self._v
        p = v.params
        was_airborne = v.flying
        land = (
            (p["LAND_SPEED_HIGH"] or p["WPNAV_SPEED_DN"]) / 100.0,
            max(p["LAND_SPEED"], 30.0) / 100.0,
            p["LAND_ALT_LOW"] / 100.0,
        )
        events = v.nav.step(v.motion, v.limits(), dt, v.wind(), land)
        if was_airborne:
            v.arming.flew(dt)
        for event in events:
            self._on_nav_event(event)
        if self.mode == Mode.RTL:
            v.rtl.tick()
        elif self.mode == Mode.CIRCLE:
            self._circle_param_change()
        v.auto.tick()

    def _on_nav_event(self, event: Event) -> None:
        v = self._v
        if event == Event.LIFTOFF:
            v.boot.lifted_off()
            return
        if event == Event.TOUCHDOWN:
            v.arming.touchdown()
            return
        if self.mode == Mode.AUTO and v.auto.running:
            v.auto.on_event(event)
        elif self.mode == Mode.RTL:
            v.rtl.on_event(event)
        elif event == Event.TAKEOFF_DONE:
            m = v.motion
            v.nav.goto((m.north, m.east, m.alt), v.t, yaw_to_travel=False)  # hold at the takeoff altitude
