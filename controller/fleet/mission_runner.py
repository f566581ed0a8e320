"""Flies one accepted mission over its drone's link, reporting every step to the dispatch centre.

Sequence (ArduCopter, as in the reference transcripts): wait for a position
estimate, GUIDED, arm (retried while the refusal is transient), NAV_TAKEOFF to
transit altitude, fly to the scene (SET_POSITION_TARGET_GLOBAL_INT, re-sent as
it gets no ACK), hold or orbit over it until recalled or the battery reserve
says go home, then RTL (or fly to a nearer station and LAND when home is out of
reach), and wait for touchdown and disarm.

A recall (commander abort, incident closed) cancels whatever step is running
and brings the drone home. A lost link pauses the runner; if the vehicle's own
GCS failsafe took it home meanwhile, the runner follows it down. Every target
is checked against the no-fly zones before it is sent.

The battery rule is the dispatch engine's (`controller.dispatch.returns`): the
drone turns for home when its battery falls to what the routed, wind-corrected
return to the station the rule names takes, plus the reserve; and when home is
out of reach it lands at that same station, the one the engine counted on when
it sent the drone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.control import checks
from controller.control import mavlink as wire
from controller.control.commands import (
    Altitude, CommandRefused, CommandResult, Gimbal, Hold, Land, Orbit, PilotCommand, Resume, Return, Roi, RoiClear,
)
from controller.dispatch.flight import OutboundProfile, heights, outbound_profile
from controller.domain.alerts import AlertKind
from controller.domain.categories import is_search
from controller.domain.entities import Incident, Mission
from controller.domain.states import MissionState
from controller.fleet.copter import CUSTOM_MODE_ENABLED, CopterMode
from controller.fleet.drone_link import CommandRejected, CommandTimeout, DroneLink, LinkDown, LinkError
from controller.fleet.flight_context import FlightContext, ReturnOptions, return_options
from controller.fleet.flight_math import orbit_points
from controller.fleet.nofly import NoFlyViolation
from controller.fleet.reports import GROUND_ALT_M, FlightReports
from controller.fleet.sweep import SweepMission
from controller.fleet.telemetry import Telemetry

log = logging.getLogger(__name__)

#: Arm refusals that clear by themselves while the vehicle finishes booting (see the transcripts).
TRANSIENT_ARM_REFUSALS = (
    "Need Position Estimate",
    "waiting for home",
    "Accels inconsistent",
    "Gyros inconsistent",
    "EKF",
    "GPS",
    "Logging not started",  # ArduPilot's logger starts a moment after boot (seen on a loaded SITL)
    "GCS failsafe",  # clears with our heartbeats after a restart of the controller
)


#: Modes a vehicle's failsafe takes it home in.
FAILSAFE_MODES = (CopterMode.RTL, CopterMode.LAND)


class ArmRefused(LinkError):
    pass


class BatteryLow(Exception):
    pass


class FailsafeReturn(Exception):
    """The vehicle left GUIDED by itself (GCS or battery failsafe): it is going home."""


class MissionPeers(Protocol):
    """Lookups a runner needs beyond its own mission (the dispatch centre's read-only view provides them)."""

    def incident_missions(self, incident_id: str) -> list[Mission]: ...


#: Turning points of a detour count as reached within this distance.
DETOUR_RADIUS_M = 40.0
#: The recall reason of a runner whose drone another mission took over in flight.
HANDED_OVER = "drone handed over to another mission"
#: Farther than this from its first sweep waypoint, a search drone flies there in GUIDED at cruise speed first.
SEARCH_TRANSIT_M = 300.0
#: The departure height counts as reached this far below it (the flight on then climbs on the way).
DEPARTURE_SLACK_M = 1.5
#: A mode change acknowledged by DO_SET_MODE shows in the heartbeat within this long (ArduCopter sends it at 1 Hz).
MODE_REPORT_S = 1.5
#: Armed and this high, or climbing this fast, a drone below GROUND_ALT_M is lifting off.
LIFT_OFF_M = 0.3
LIFT_OFF_CLIMB_MS = 0.3
#: How often the pilot-directed phase looks at the vehicle (battery, mode, arrival).
PILOT_WATCH_S = 0.5
#: An orbit's centre counts as reached this close (CIRCLE is entered there) and this near the height.
ORBIT_CENTRE_M = 5.0
ORBIT_ALT_M = 3.0
#: How long a `return` command waits for the way home to start before it answers.
RETURN_ACK_S = 5.0


class Phase(StrEnum):
    """What the runner is doing; pilot commands are taken only while it flies its mission (en route, on scene,
    sweeping) or while the pilot already directs it."""

    PREFLIGHT = "preflight"
    EN_ROUTE = "en route"
    #: A search drone's GUIDED transit to its area (its sweep is not uploaded yet: no commands until it runs).
    TRANSIT = "on its way to its search area"
    ON_SCENE = "on scene"
    SEARCHING = "searching"
    PILOT = "pilot"
    LANDING = "landing where the pilot said"
    RETURNING = "returning"


#: Phases a flight command (fly to, height, orbit, hold, land) may interrupt.
COMMANDABLE = frozenset({Phase.EN_ROUTE, Phase.ON_SCENE, Phase.SEARCHING, Phase.PILOT})


@dataclass(slots=True)
class PilotState:
    """What the pilot has the drone doing, so the runner knows which mode to expect and what to resume.

    The watcher (`_piloted`) and the commands change it only under the runner's command lock, so a mode change
    the runner decides (a command, CIRCLE over an orbit's centre) and the mode it expects change together."""

    by: str
    #: Where the pilot last sent it (an orbit's centre); None: holding where it was.
    target: checks.Point3 | None = None
    orbit: Orbit | None = None
    #: On its way to an orbit's centre; CIRCLE is entered there.
    orbit_pending: bool = False
    expected: CopterMode = CopterMode.GUIDED
    #: Modes that are no failsafe either: the one a command being sent switches to (the vehicle reports it as
    #: soon as it accepts, before its answer arrives), or the one of a command whose answer never came.
    also: frozenset[CopterMode] = frozenset()
    #: Counts the flight commands sent; a pending orbit belongs to the command that set it up.
    generation: int = 0
    #: Why the runner took the flight back (failsafe, battery, recall), once it did.
    ended: str | None = None
    #: A search drone taken out of its AUTO sweep (resume picks the sweep up where it left off).
    paused_sweep: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Before:
    """A PilotState's flight fields before a command was sent (put back when the vehicle refused it)."""

    target: checks.Point3 | None
    orbit: Orbit | None
    orbit_pending: bool
    expected: CopterMode
    also: frozenset[CopterMode]

    @classmethod
    def of(cls, p: PilotState) -> _Before:
        return cls(p.target, p.orbit, p.orbit_pending, p.expected, p.also)


class MissionRunner:
    def __init__(
        self,
        link: DroneLink,
        reports: FlightReports,
        mission: Mission,
        incident: Incident,
        ctx: FlightContext,
        peers: MissionPeers | None = None,
    ) -> None:
        self.link = link
        self.reports = reports
        self.peers = peers
        self.mission = mission
        self.incident = incident
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._recall: str | None = None
        #: Until then the reported mode may still be the one before our last mode change (see _set_mode_now).
        self._mode_settles_at = 0.0
        self._texts_seen = link.telemetry.texts_received
        self.finished = asyncio.Event()
        self.phase = Phase.PREFLIGHT
        #: Set while a pilot directs the flight.
        self.pilot: PilotState | None = None
        #: The running behaviour (the controller's own flight, or the pilot-directed watch), and what replaces it.
        self._behaviour: asyncio.Task[None] | None = None
        self._switch_to: Callable[[], Awaitable[None]] | None = None
        self._sweep_mission: SweepMission | None = None
        self._commands = asyncio.Lock()
        self._home_started = asyncio.Event()
        #: The phase a pilot took over from (what a failed take-over goes back to).
        self._resume_phase = Phase.EN_ROUTE

    # --- control ------------------------------------------------------------------

    def start(self, resume: bool = False) -> None:
        self._task = asyncio.get_running_loop().create_task(self._main(resume), name=f"mission-{self.mission.id}")

    def recall(self, reason: str) -> None:
        """Stop the current step and bring the drone home (or stand it down on the ground)."""
        if self._recall is None:
            self._recall = reason
            if self._task is not None:
                self._task.cancel()

    def detach(self) -> None:
        """Another mission has taken this drone in flight (preemption): stop supervising, send nothing more."""
        self._recall = HANDED_OVER
        if self._task is not None:
            self._task.cancel()

    async def stop(self) -> None:
        """Controller shutdown: stop supervising without touching the vehicle (a restart resumes)."""
        if self._task is not None:
            self._recall = self._recall or "controller stopping"
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # --- the flight -----------------------------------------------------------------

    async def _main(self, resume: bool) -> None:
        m = self.mission
        try:
            try:
                await self._supervise(lambda: self._fly(resume))
            except asyncio.CancelledError:
                if self._recall in ("controller stopping", HANDED_OVER):
                    raise
                await self._step("recalled", self._recall or "", ok=True)
                await self._come_home(self._recall or "recalled")
            except BatteryLow as exc:
                await self._step("battery reserve", str(exc), ok=False)
                # people are told at once (a battery_low alert): the flight is cut short, the call may need a drone
                await self._come_home(f"battery reserve: {exc}", alert=AlertKind.BATTERY_LOW)
            except FailsafeReturn as exc:
                self._end_pilot(f"failsafe: {exc}")
                self.phase = Phase.RETURNING
                await self._step("failsafe", str(exc), ok=False)
                await self.reports.flight_returning(m.id, str(exc), alert=AlertKind.FAILSAFE)
                await self._wait_landed()
            except NoFlyViolation as exc:
                await self._step("no-fly", str(exc), ok=False)
                # Block first, so failing the mission does not offer the same target to the next drone.
                await self.reports.block_incident(self.incident.id, str(exc))
                await self.reports.flight_failed(m.id, f"refused: {exc}", to_maintenance=False)
                await self._come_home("no-fly target refused")
            except (ArmRefused, CommandRejected, CommandTimeout, LinkDown) as exc:
                await self._step("failed", str(exc), ok=False)
                await self.reports.flight_failed(m.id, str(exc), to_maintenance=True)
                await self._come_home(str(exc))
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - a runner must never die silently
            log.exception("%s: mission runner crashed", m.id)
        finally:
            self.finished.set()

    async def _fly(self, resume: bool) -> None:
        """The controller's own flight: launch (or turn round in the air, or pick up after a restart), then the
        scene or the search."""
        if resume:
            await self._resume()
            return
        if self._airborne():
            await self._redirect()
        else:
            await self._launch()
        if self.searching:
            await self._search()
        else:
            await self._to_scene()
            await self._on_scene()

    async def _supervise(self, first: Callable[[], Awaitable[None]]) -> None:
        """Run one behaviour at a time as a child task: the controller's flight, or the pilot-directed watch.

        A pilot command replaces the running behaviour (`_replace`): the child is cancelled and the next one
        starts; a recall cancels this task itself (and so the child), handled by `_main` as before. Errors of a
        behaviour (battery, failsafe, link) reach `_main` through here."""
        work: Callable[[], Awaitable[None]] | None = first
        while work is not None:
            self._switch_to = None
            self._behaviour = asyncio.get_running_loop().create_task(work(), name=f"behaviour-{self.mission.id}")
            try:
                await self._behaviour
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                replaced = self._switch_to is not None and (task is None or task.cancelling() == 0)
                if not replaced:
                    self._behaviour.cancel()
                    raise
                work = self._switch_to

    async def _replace(self, work: Callable[[], Awaitable[None]]) -> None:
        """Stop the running behaviour (sends nothing more once this returns) and have `_supervise` start `work`."""
        child = self._behaviour
        self._switch_to = work
        if child is not None and not child.done():
            child.cancel()
            await asyncio.wait([child])
        # let _supervise pick the new behaviour up before anything else is sent
        await asyncio.sleep(0)

    async def _step(self, step: str, detail: str = "", ok: bool = True) -> None:
        await self.reports.flight_step(self.mission.id, step, detail, ok)

    @property
    def searching(self) -> bool:
        return is_search(self.incident.category)

    def _here(self) -> tuple[float, float]:
        t = self.link.telemetry
        if t.lat is None or t.lon is None:
            raise LinkDown(f"{self.link.drone_id}: no position yet")
        return t.lat, t.lon

    def _cmd(self) -> dict[str, float]:
        p = self.ctx.profile
        return {"timeout": p.command_timeout_s, "retries": p.command_retries}

    @property
    def reserve_pct(self) -> float:
        return self.ctx.policy.battery_reserve_pct

    @property
    def scene_alt_m(self) -> float:
        return heights(self.ctx.policy)[2]

    def _outbound(self, lat: float, lon: float) -> OutboundProfile:
        m = self.ctx.model
        dist = geo.distance_m(*self._here(), lat, lon)
        return outbound_profile(self.ctx.policy, dist, m.cruise_speed_ms, m.climb_rate_ms, m.descent_rate_ms)

    async def _set_mode_now(self, mode: CopterMode) -> None:
        """A mode change confirmed by COMMAND_ACK (DO_SET_MODE) at once, instead of by the next heartbeat up to a
        second later (SET_MODE); vehicles that refuse or ignore DO_SET_MODE get SET_MODE."""
        try:
            await self.link.command_long(
                mavlink2.MAV_CMD_DO_SET_MODE, [CUSTOM_MODE_ENABLED, int(mode)], what=f"mode {mode.name}", timeout=1.0, retries=2
            )
            self._mode_settles_at = time.monotonic() + MODE_REPORT_S  # the heartbeat showing it may lag the ACK
        except (CommandRejected, CommandTimeout):
            await self.link.set_mode(mode, timeout=1.0, retries=5)

    async def _launch(self) -> None:
        """Straight up to the departure height only; the climb to the flight's height happens on the way."""
        link, p = self.link, self.ctx.profile
        await self._step("preflight", "waiting for a position estimate (EKF and GPS)")
        await link.wait_for(
            lambda t: t.ekf_ok and (t.gps_fix or 0) >= 3 and t.lat is not None,
            p.arm_ready_timeout_s,
            "position estimate",
        )
        self.ctx.guard.check_point(*self._here(), "the take-off position")
        self.ctx.guard.route(self._here(), (self.incident.lat, self.incident.lon))  # refuses a scene in a zone or unreachable
        await self._set_mode_now(CopterMode.GUIDED)
        await self._step("mode", "GUIDED")
        await self._arm()
        alt = heights(self.ctx.policy)[0]
        await link.command_long(mavlink2.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, 0, 0, 0, alt], what="takeoff", **self._cmd())
        await self._step("takeoff", f"straight up to {alt:.0f} m")
        await link.wait_for(lambda t: (t.alt_rel_m or 0) > GROUND_ALT_M, p.takeoff_timeout_s, "leaving the ground")
        await self.reports.flight_launched(self.mission.id)
        climb_s = alt / self.ctx.model.climb_rate_ms
        await link.wait_for(lambda t: (t.alt_rel_m or 0) >= alt - DEPARTURE_SLACK_M, climb_s * 3 + 30, "climb to the departure height")
        await self._step("departure height", f"{self.link.telemetry.alt_rel_m:.0f} m")

    def _airborne(self) -> bool:
        t = self.link.telemetry
        return t.armed and (t.alt_rel_m or 0.0) > GROUND_ALT_M

    async def _redirect(self) -> None:
        """The drone was given this mission in the air (preempted from another): turn it round in GUIDED."""
        t = self.link.telemetry
        self.ctx.guard.route(self._here(), (self.incident.lat, self.incident.lon))  # refuses a scene in a zone or unreachable
        await self.link.set_mode(CopterMode.GUIDED, timeout=1.0, retries=5)
        await self._step("redirected in flight", f"at {t.alt_rel_m or 0:.0f} m, {t.battery_pct or 0:.0f}% battery; GUIDED")
        await self.reports.flight_launched(self.mission.id)

    async def _arm(self) -> None:
        texts: list[str] = []
        for attempt in range(self.ctx.profile.arm_attempts):
            try:
                await self.link.command_long(
                    mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, [1], what="arm", **self._cmd()
                )
                await self._step("armed", f"after {attempt + 1} attempt(s)")
                return
            except CommandRejected as exc:
                texts = exc.texts
                transient = texts and all(any(k in t for k in TRANSIENT_ARM_REFUSALS) for t in texts)
                if not transient:
                    raise ArmRefused(f"arming refused: {'; '.join(texts) or exc}") from None
                await asyncio.sleep(1.0)
        raise ArmRefused(f"arming refused {self.ctx.profile.arm_attempts} times: {'; '.join(texts)}")

    def return_options(self) -> ReturnOptions:
        """Home, and the station the shared return rule names, each with the battery the flight there takes."""
        t = self.link.telemetry
        home = (t.home[0], t.home[1]) if t.home else None
        return return_options(self.ctx, *self._here(), t.alt_rel_m or 0.0, home)

    def _check_battery(self) -> None:
        t = self.link.telemetry
        if t.battery_pct is None or t.lat is None:
            return
        opts = self.return_options()
        need = opts.need_pct  # the rule the engine dispatched with
        floor = need + self.reserve_pct + self.ctx.profile.battery_return_margin_pct
        if t.battery_pct <= floor:
            raise BatteryLow(f"{t.battery_pct:.0f}% left, the flight home needs {need:.0f}% + reserve")

    def _check_mode(self, expected: CopterMode = CopterMode.GUIDED, also: frozenset[CopterMode] = frozenset()) -> None:
        """The vehicle is in the mode this runner put it in (or one of `also`); any other (RTL, LAND, ALT_HOLD after
        an EKF failsafe, ...) means it took itself over: raise FailsafeReturn with what the vehicle said about it."""
        t = self.link.telemetry
        if t.mode is None or t.mode == expected or t.mode in also or time.monotonic() < self._mode_settles_at:
            return
        try:
            name = CopterMode(t.mode).name
        except ValueError:
            name = f"mode {t.mode}"
        said = self._new_warnings()
        raise FailsafeReturn(f"vehicle switched to {name} by itself" + (f": {'; '.join(said)}" if said else " (failsafe)"))

    def _new_warnings(self) -> list[str]:
        """Warnings (STATUSTEXT, severity warning or worse) the vehicle sent since this runner last looked."""
        t = self.link.telemetry
        new = min(t.texts_received - self._texts_seen, len(t.texts))
        self._texts_seen = t.texts_received
        return [text for sev, text in (t.texts[-new:] if new > 0 else []) if sev <= mavlink2.MAV_SEVERITY_WARNING]


    async def _fly_route(
        self, lat: float, lon: float, what: str, radius: float, homing: bool = False, alt: float | None = None
    ) -> None:
        """Fly to (lat, lon), around no-fly zones when the straight leg would cross one.

        Without `alt`, by the outbound profile: at its cruise height, descending to the scene height on the
        last stretch when it cruises higher, so the drone arrives at the scene height.
        """
        route = self.ctx.guard.route(self._here(), (lat, lon))
        if len(route) > 1:
            await self._step("detour", f"{what}: {len(route) - 1} turning points around a no-fly zone")
        profile = self._outbound(lat, lon) if alt is None else OutboundProfile(alt, alt, alt, 0.0)
        for wlat, wlon in route[:-1]:
            await self._fly_to(wlat, wlon, f"{what} (around a no-fly zone)", max(radius, DETOUR_RADIUS_M), homing, profile.cruise_m)
        last = route[-2] if len(route) > 1 else self._here()
        leg = geo.distance_m(*last, lat, lon)
        if profile.descent_from_m > 0 and leg > profile.descent_from_m:
            # cruise to where the descent starts, then glide down to the scene height on the way in
            blat, blon = geo.destination(lat, lon, geo.bearing_deg(lat, lon, *last), profile.descent_from_m)
            await self._fly_to(blat, blon, f"{what} (descent point)", DETOUR_RADIUS_M, homing, profile.cruise_m)
        await self._fly_to(lat, lon, what, radius, homing, profile.scene_m)

    async def _fly_to(
        self, lat: float, lon: float, what: str, radius: float, homing: bool = False, alt: float | None = None
    ) -> None:
        """Send a GUIDED target and supervise until within `radius`; re-send on silence.

        `homing`: this flight is the way home (a diversion, a detour before RTL): the battery rule has
        already chosen it, so a falling battery must not interrupt it.
        """
        link, p = self.link, self.ctx.profile
        self.ctx.guard.check_leg(self._here(), (lat, lon), what)
        alt = heights(self.ctx.policy)[1] if alt is None else alt
        dist = geo.distance_m(*self._here(), lat, lon)
        budget = dist / self.ctx.model.cruise_speed_ms * 2.5 + 60
        elapsed = 0.0
        link.send_position_target(lat, lon, alt)

        def arrived_or_taken_over(t: Telemetry) -> bool:  # a failsafe ends the leg at once, not at the next re-send
            if t.mode != CopterMode.GUIDED and time.monotonic() >= self._mode_settles_at:
                return True
            return t.lat is not None and geo.equirectangular_m(t.lat, t.lon, lat, lon) <= radius

        while True:
            try:
                await link.wait_for(arrived_or_taken_over, p.target_resend_s, what)
                self._check_mode()
                return
            except CommandTimeout:
                pass
            await self._wait_link()
            self._check_mode()
            if not homing:
                self._check_battery()
            elapsed += p.target_resend_s
            if elapsed > budget:
                raise CommandTimeout(f"{self.link.drone_id}: {what}: not reached in {budget:.0f} s")
            link.send_position_target(lat, lon, alt)

    async def _wait_link(self) -> None:
        """Pause while the link is down (the vehicle's failsafe acts meanwhile)."""
        if self.link.up:
            return
        await self._step("link lost", "waiting for the link; the vehicle's GCS failsafe is armed", ok=False)
        while not self.link.up:
            await asyncio.sleep(0.5)
        await self._step("link restored")

    async def _to_scene(self) -> None:
        self.phase = Phase.EN_ROUTE
        inc = self.incident
        plan = self._outbound(inc.lat, inc.lon)
        await self._step(
            "target sent", f"scene at {inc.lat:.5f}, {inc.lon:.5f}: climbing on the way to {plan.cruise_m:.0f} m, over it at {plan.scene_m:.0f} m"
        )
        await self._fly_route(inc.lat, inc.lon, "the flight to the scene", self.ctx.profile.arrival_radius_m)
        # the step first: once the mission shows on scene it may be closed at once, and the recall that follows
        # would cancel this task before a later step was written
        await self._step("on scene")
        await self.reports.flight_on_scene(self.mission.id)

    async def _on_scene(self) -> None:
        self.phase = Phase.ON_SCENE
        p, inc = self.ctx.profile, self.incident
        if p.on_scene == "hold":
            while True:
                await asyncio.sleep(1.0)
                await self._wait_link()
                self._check_mode()
                self._check_battery()
        points = orbit_points(inc.lat, inc.lon, p.orbit_radius_m, p.orbit_points)
        for lat, lon in points:
            self.ctx.guard.check_point(lat, lon, "an orbit point")
        await self._step("orbit", f"{p.orbit_radius_m:.0f} m radius, {len(points)} points at {self.scene_alt_m:.0f} m")
        while True:
            for lat, lon in points:
                await self._fly_to(lat, lon, "the orbit", p.arrival_radius_m, alt=self.scene_alt_m)
                self._check_battery()

    async def _search(self) -> None:
        """Sweep this drone's share of the search area as an AUTO mission, reporting progress."""
        self.phase = Phase.TRANSIT
        plan = await self.reports.search_plan(self.mission.id)
        wps = plan.waypoints
        alt = plan.altitude_m
        if wps and geo.distance_m(*self._here(), *wps[0]) > SEARCH_TRANSIT_M:
            # get there at cruise speed in GUIDED; the AUTO sweep then runs at the slower search speed
            await self._fly_route(wps[0][0], wps[0][1], "the flight to the search area", self.ctx.profile.arrival_radius_m, alt=heights(self.ctx.policy)[1])
            await self._step("at the search area", f"strip {plan.strip}")
        legs = [self._here(), *wps]
        for a, b in zip(legs, legs[1:]):
            self.ctx.guard.check_leg(a, b, "the search pattern")
        sweep = self._sweep_mission = SweepMission(plan)
        await self.link.upload_mission(sweep.items(), timeout=self.ctx.profile.command_timeout_s)
        km = plan.length_m() / 1000
        origin = f", resuming {plan.resumed_from}" if plan.resumed_from else ""
        await self._step("search plan uploaded", f"strip {plan.strip}: {len(wps)} waypoints, {km:.1f} km at {alt:.0f} m{origin}")
        await self.link.set_mode(CopterMode.AUTO, **self._cmd())
        await self.link.command_long(mavlink2.MAV_CMD_MISSION_START, [0, 0], what="mission start", **self._cmd())
        await self.reports.flight_on_scene(self.mission.id, searching=True)
        await self._step("searching")
        await self._sweep(sweep)

    async def _sweep(self, sweep: SweepMission) -> None:
        """Watch the AUTO sweep: progress, battery, failsafes, and its end at the RTL item."""
        self._sweep_mission = sweep
        self.phase = Phase.SEARCHING
        waypoints = sweep.waypoints
        done = -1
        while True:
            await self._wait_link()
            t = self.link.telemetry
            seq = t.mission_seq or 0
            if sweep.complete(seq, t.mode):
                await self.reports.search_progress(self.mission.id, waypoints)
                await self._step("search pattern complete", f"{waypoints} waypoints")
                self.phase = Phase.RETURNING
                await self.reports.flight_returning(self.mission.id, "search pattern complete")
                await self._wait_landed()
                return
            if t.mode != CopterMode.AUTO and time.monotonic() >= self._mode_settles_at:
                raise FailsafeReturn(f"vehicle left AUTO for mode {t.mode} during the search")
            self._check_battery()
            now_done = sweep.flown(seq)
            end = self.mission.plan.stop_at if self.mission.plan else waypoints
            if end < waypoints and now_done >= end:
                # a joining drone took the rest of this sweep: hand over and come home
                await self.reports.search_progress(self.mission.id, end)
                await self._step("search share handed over", f"{end} of {waypoints} waypoints; the rest to {self._joiner()}")
                self.phase = Phase.RETURNING
                await self.link.set_mode(CopterMode.RTL, **self._cmd())
                await self.reports.flight_returning(self.mission.id, "search share handed over to a joining drone")
                await self._wait_landed()
                return
            if now_done != done:
                done = now_done
                await self.reports.search_progress(self.mission.id, done)
            await asyncio.sleep(1.0)

    def _joiner(self) -> str:
        for m in self.peers.incident_missions(self.mission.incident_id) if self.peers is not None else ():
            if m.plan and m.plan.split_from == self.mission.id:
                return m.drone_id
        return "a joining drone"

    async def _resume(self) -> None:
        """After a controller restart: pick the flight up where the vehicle is."""
        await self._step("resumed", "controller restarted; reading the vehicle's state")
        await self.link.wait_for(lambda t: t.lat is not None and t.mode is not None, 30, "telemetry after restart")
        t = self.link.telemetry
        airborne = t.armed and (t.alt_rel_m or 0) > GROUND_ALT_M
        state = self.mission.state
        if state is MissionState.RETURNING or (airborne and t.mode in (CopterMode.RTL, CopterMode.LAND)):
            if state is not MissionState.RETURNING:
                await self.reports.flight_returning(self.mission.id, "vehicle returned while the controller was down")
            if airborne and t.mode not in (CopterMode.RTL, CopterMode.LAND):
                # it was on its way home under the controller (a diversion, a detour): take it home again
                await self._come_home("resumed on the way home")
                return
            await self._wait_landed()
            return
        if not airborne:
            if state is MissionState.ACCEPTED:
                await self._launch()
            else:
                await self.reports.flight_landed(self.mission.drone_id, "found on the ground after restart")
                return
        if self.searching:
            if t.mode == CopterMode.AUTO and self.mission.plan:
                await self._sweep(SweepMission(self.mission.plan))
            else:
                await self._search()
            return
        if self.mission.state is not MissionState.ON_SCENE:
            await self._to_scene()
        await self._on_scene()

    # --- a pilot directs the flight ---------------------------------------------------

    @property
    def piloted(self) -> bool:
        return self.phase is Phase.PILOT

    def situation(self) -> checks.Situation:
        """The drone as the command checks see it."""
        t = self.link.telemetry
        lat, lon = self._here()
        target = self.pilot.target if self.pilot is not None else None
        return checks.Situation(
            checks.Point3(lat, lon, t.alt_rel_m or 0.0), t.battery_pct, (t.home[0], t.home[1]) if t.home else None, target,
        )

    async def command(self, cmd: PilotCommand, by: str) -> CommandResult:
        """Check a pilot's command, send it, and take the flight over from the controller's own behaviour.

        Raises CommandRefused: 422/409 before anything is sent (limits, state, zones, geofence, battery),
        502 when the vehicle refused it (with its STATUSTEXTs), 504 when it did not answer."""
        async with self._commands:
            if not self.link.up:
                raise CommandRefused(409, f"the link to {self.link.drone_id} is down")
            if isinstance(cmd, Roi | RoiClear | Gimbal):
                checks.check_fields(cmd, self.ctx.policy.control)
                self._require(self.phase in COMMANDABLE | {Phase.TRANSIT, Phase.RETURNING}, cmd)
                request = wire.roi(cmd.lat, cmd.lon) if isinstance(cmd, Roi) else wire.roi_clear() if isinstance(cmd, RoiClear) \
                    else wire.gimbal_pitch(cmd.pitch_deg)
                ms = await self._send([request])
                return CommandResult(cmd.describe(), ms)
            if isinstance(cmd, Return):
                return await self._pilot_return(by)
            if isinstance(cmd, Resume):
                return await self._pilot_resume(by)
            checks.check_fields(cmd, self.ctx.policy.control)
            self._require(self.phase in COMMANDABLE and self._airborne(), cmd)
            if isinstance(cmd, Land):
                return await self._pilot_land(by)
            s = self.situation()
            orbit = self.pilot.orbit if self.pilot is not None and isinstance(cmd, Altitude) else None
            to: checks.Point3 | None
            if orbit is not None and isinstance(cmd, Altitude):  # a new height while orbiting: flown again at it
                centre = checks.check(Orbit(orbit.lat, orbit.lon, orbit.radius_m, orbit.direction, orbit.speed_ms), s, self.ctx)
                to = checks.Point3(centre.lat, centre.lon, cmd.alt_m) if centre is not None else None
                if to is not None:
                    checks.check_battery(self.ctx, s, to)
            elif isinstance(cmd, Hold):
                to = s.position
            else:
                to = checks.check(cmd, s, self.ctx)
            if to is None:
                raise CommandRefused(409, f"{cmd.kind}: no point to fly {self.link.drone_id} to")
            if isinstance(cmd, Orbit):
                orbit = cmd
            requests = (
                wire.orbit_setup(to.lat, to.lon, to.alt_m, orbit.radius_m, orbit.speed_ms, orbit.direction)
                if orbit is not None else [wire.reposition(to.lat, to.lon, to.alt_m)]
            )
            # DO_REPOSITION switches the vehicle to GUIDED (from CIRCLE, AUTO) as soon as it accepts it
            took_over, p, before = await self._before_send(by, CopterMode.GUIDED)
            ms = await self._send_for(p, before, requests, cmd, took_over)
            p.target, p.orbit, p.orbit_pending = to, orbit, orbit is not None
            p.expected, p.also = CopterMode.GUIDED, frozenset()
            self._settle()  # the heartbeat may still show the mode before
            return CommandResult(cmd.describe() + (" (CIRCLE once over the centre)" if orbit is not None else ""), ms)

    def _require(self, ok: bool, cmd: PilotCommand) -> None:
        if not ok:
            raise CommandRefused(
                409, f"{cmd.kind} is not possible now: {self.link.drone_id} is {self.phase.value} (commands are taken "
                "while it flies its mission: en route, on scene or searching)",
            )

    def _settle(self) -> None:
        self._mode_settles_at = time.monotonic() + MODE_REPORT_S

    async def _before_send(self, by: str, mode: CopterMode) -> tuple[bool, PilotState, _Before]:
        """Take the flight over (if the controller flew it) and, before anything is sent, accept `mode` too:
        the vehicle shows it as soon as it accepts the command, possibly before its answer is read. A pending orbit
        is given up: no CIRCLE around the old centre in the middle of a new command. Called under the command lock,
        with no wait between this and the send."""
        took_over = await self._take_over(by)
        p = self.pilot
        if p is None or p.ended is not None:  # a failsafe in the take-over itself
            raise CommandRefused(409, self._left_why(p))
        before = _Before.of(p)
        p.generation += 1
        p.orbit_pending = False
        p.also = p.also | {mode}
        return took_over, p, before

    async def _send_for(
        self, p: PilotState, before: _Before, requests: list[wire.VehicleRequest], cmd: PilotCommand, took_over: bool,
    ) -> float:
        """Send a flight command for the pilot state `p`; on a refusal put the state back (the vehicle changed
        nothing), on no answer keep the command's mode acceptable (it may have taken it); if the runner took the
        flight back meanwhile (failsafe, battery, recall), answer 409 with why."""
        try:
            ms = await self._send(requests)
        except CommandRefused as exc:
            self._settle()
            if self.pilot is p and p.ended is None:
                p.target, p.orbit, p.expected = before.target, before.orbit, before.expected
                if exc.status == 502:  # refused: nothing changed on the vehicle
                    p.orbit_pending, p.also = before.orbit_pending, before.also
                # else unknown: the command's mode stays acceptable and no CIRCLE is entered on the runner's own
                if took_over:  # the controller flies on as before
                    await self._give_back(f"the {cmd.kind} command did not reach the vehicle")
            raise
        if self.pilot is not p or p.ended is not None or self.phase not in (Phase.PILOT, Phase.LANDING):
            raise CommandRefused(409, f"{cmd.kind} reached the vehicle, but {self._left_why(p)}")
        return ms

    def _left_why(self, p: PilotState | None) -> str:
        why = (p.ended if p is not None else None) or f"the controller took the flight back ({self.phase.value})"
        return f"{self.link.drone_id} is no longer under the pilot's control: {why}"

    def _end_pilot(self, why: str) -> None:
        """The runner takes the flight back from the pilot (failsafe, battery, recall): a command being sent learns why."""
        if self.pilot is not None and self.pilot.ended is None:
            self.pilot.ended = why
        self.pilot = None

    async def _send(self, requests: list[wire.VehicleRequest]) -> float:
        try:
            return await wire.send(self.link, requests, timeout=self.ctx.policy.control.ack_timeout_s)
        except CommandRejected as exc:
            raise CommandRefused(502, f"the vehicle refused: {exc}") from None
        except CommandTimeout as exc:
            raise CommandRefused(504, f"the vehicle did not acknowledge: {exc}") from None
        except LinkError as exc:
            raise CommandRefused(409, f"the link to {self.link.drone_id} is down: {exc}") from None

    async def _take_over(self, by: str) -> bool:
        """Stop the controller's own behaviour and watch the pilot's flight instead; True if it was the controller's."""
        if self.phase is Phase.PILOT and self.pilot is not None:
            self.pilot.by = by
            return False
        paused = self.phase is Phase.SEARCHING
        # until the command's answer, the vehicle is in the mode the controller had it in (AUTO for a sweep)
        self.pilot = PilotState(by, expected=CopterMode.AUTO if paused else CopterMode.GUIDED, paused_sweep=paused)
        self._resume_phase = self.phase
        await self._replace(self._piloted)
        self.phase = Phase.PILOT
        return True

    async def _give_back(self, why: str) -> None:
        """The controller flies again: the scene (or the rest of the sweep, in AUTO again)."""
        previous = self._resume_phase
        self.pilot = None
        if self.searching and self._sweep_mission is not None:
            sweep = self._sweep_mission
            self.phase = Phase.SEARCHING
            await self._replace(lambda: self._sweep(sweep))
        else:
            self.phase = previous
            await self._replace(self._scene_again)
        await self._step("controller in control", why)

    async def _scene_again(self) -> None:
        if self.mission.state is not MissionState.ON_SCENE:
            await self._to_scene()
        else:
            await self._fly_route(self.incident.lat, self.incident.lon, "the flight back over the scene",
                                  self.ctx.profile.arrival_radius_m, alt=self.scene_alt_m)
        await self._on_scene()

    async def _pilot_resume(self, by: str) -> CommandResult:
        if self.phase is not Phase.PILOT or self.pilot is None:
            raise CommandRefused(409, f"nothing to resume: the controller is flying {self.link.drone_id} ({self.phase.value})")
        sweep = self.searching and self._sweep_mission is not None
        mode = CopterMode.AUTO if sweep else CopterMode.GUIDED  # AUTO: ArduCopter resumes the current mission item
        _, p, before = await self._before_send(by, mode)
        ms = await self._send_for(p, before, [wire.set_mode(mode)], Resume(), took_over=False)
        p.expected, p.also = mode, frozenset()
        self._settle()
        if sweep:
            await self._give_back(f"sweep resumed by {by}")
            return CommandResult("the sweep resumed where it left off (AUTO)", ms)
        await self._give_back(f"resumed by {by}")
        return CommandResult("the controller flies the scene again", ms)

    async def _pilot_return(self, by: str) -> CommandResult:
        if self.phase in (Phase.RETURNING, Phase.LANDING):
            raise CommandRefused(409, f"{self.link.drone_id} is already {self.phase.value}")
        self._require(self.phase in COMMANDABLE | {Phase.TRANSIT}, Return())
        started = time.perf_counter()
        self._home_started.clear()
        self.recall(f"returned by {by}")
        try:
            await asyncio.wait_for(self._home_started.wait(), RETURN_ACK_S)
            detail = "returning by the controller's way home (RTL, or a diversion by the return rule)"
        except asyncio.TimeoutError:
            detail = "the way home is under way"
        return CommandResult(detail, (time.perf_counter() - started) * 1000.0)

    async def _pilot_land(self, by: str) -> CommandResult:
        took_over, p, before = await self._before_send(by, CopterMode.LAND)
        ms = await self._send_for(p, before, [wire.set_mode(CopterMode.LAND)], Land(confirm=True), took_over)
        self._settle()
        p.expected, p.also = CopterMode.LAND, frozenset()
        self.phase = Phase.LANDING
        await self._replace(lambda: self._land_here(by))
        return CommandResult("landing where it is", ms)

    async def _land_here(self, by: str) -> None:
        """The pilot landed the drone where it is: the mission ends there; command is told to recover it."""
        t = self.link.telemetry
        where = f"{t.lat:.5f},{t.lon:.5f}" if t.lat is not None and t.lon is not None else "its position"
        await self._step("landing here", f"by {by} at {where}")
        await self.reports.flight_returning(self.mission.id, f"landing here by {by}")
        await self.link.wait_for(lambda t: not t.armed and (t.alt_rel_m or 0) < GROUND_ALT_M, 600, "touchdown and disarm")
        await self._step("landed", f"touchdown and disarm, landed here by {by}")
        await self.reports.flight_landed(self.mission.drone_id, f"landed here by {by}", deliberate=True)

    async def _piloted(self) -> None:
        """Watch the pilot's flight: the expected mode (a failsafe otherwise), the battery, arrival at the scene,
        and an orbit's centre, where CIRCLE is entered."""
        try:
            await self._watch_pilot()
        except (FailsafeReturn, BatteryLow, LinkError, NoFlyViolation) as exc:
            # the runner takes the flight back: a command being sent right now must not answer "accepted"
            if self.pilot is not None and self.pilot.ended is None:
                self.pilot.ended = f"battery reserve: {exc}" if isinstance(exc, BatteryLow) else \
                    f"failsafe: {exc}" if isinstance(exc, FailsafeReturn) else str(exc)
            raise

    async def _watch_pilot(self) -> None:
        await self._step("pilot in control", f"by {self.pilot.by if self.pilot else '?'}")
        scene = (self.incident.lat, self.incident.lon)
        arrived = self.mission.state is MissionState.ON_SCENE or self.searching
        while True:
            await asyncio.sleep(PILOT_WATCH_S)
            await self._wait_link()
            p = self.pilot
            if p is None:
                return
            t = self.link.telemetry
            if p.orbit_pending and p.target is not None and t.lat is not None:
                close = geo.equirectangular_m(t.lat, t.lon, p.target.lat, p.target.lon) <= ORBIT_CENTRE_M
                if close and abs((t.alt_rel_m or 0.0) - p.target.alt_m) <= ORBIT_ALT_M:
                    await self._enter_orbit(p, p.generation)
            self._check_mode(p.expected, p.also)
            self._check_battery()
            if not arrived and t.lat is not None:
                if geo.equirectangular_m(t.lat, t.lon, *scene) <= self.ctx.profile.arrival_radius_m:
                    arrived = True
                    await self._step("on scene", f"flown there by {p.by}")
                    await self.reports.flight_on_scene(self.mission.id)

    async def _enter_orbit(self, p: PilotState, generation: int) -> None:
        """Over the centre of the orbit of command `generation`: CIRCLE, unless a newer command superseded it.
        Under the command lock: no command is sent between the switch and the mode expected after it."""
        async with self._commands:
            if self.pilot is not p or p.ended is not None or not p.orbit_pending or p.generation != generation:
                return
            p.also = p.also | {CopterMode.CIRCLE}  # shown as soon as accepted
            await self._set_mode_now(CopterMode.CIRCLE)
            p.orbit_pending, p.expected, p.also = False, CopterMode.CIRCLE, frozenset()
            self._settle()
        await self._step("orbiting", f"{p.orbit.radius_m:.0f} m around {p.target.lat:.5f},{p.target.lon:.5f}"
                         if p.orbit and p.target else "")

    # --- coming home ----------------------------------------------------------------

    async def _come_home(self, reason: str, alert: AlertKind | None = None) -> None:
        """Bring the drone down safely, whatever step it was in, and report it on the ground."""
        self._end_pilot(reason)
        self.phase = Phase.RETURNING
        t = self.link.telemetry
        airborne = t.armed and (t.alt_rel_m or 0) > GROUND_ALT_M
        lifting = t.armed and ((t.alt_rel_m or 0) > LIFT_OFF_M or (t.climb_ms or 0) > LIFT_OFF_CLIMB_MS)
        if not airborne and lifting:
            # recalled during its take-off: it is just above its pad; bring it straight down there
            await self._step("landing", f"recalled while lifting off: {reason}")
            try:
                await self.link.set_mode(CopterMode.LAND, **self._cmd())
            except LinkError as exc:
                await self._step("land command failed", str(exc), ok=False)
            await self._wait_landed()
            return
        if not airborne:
            # Still on the ground: make it safe, then tell the centre it can stand the drone down.
            if t.armed:
                try:
                    await self.link.command_long(mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, [0], what="disarm", **self._cmd())
                    await self._step("disarmed", f"stood down on the ground: {reason}")
                except LinkError as exc:
                    await self._step("disarm failed", str(exc), ok=False)
            await self.reports.flight_landed(self.mission.drone_id, f"stood down on the ground: {reason}")
            return
        if alert is not None:
            await self.reports.flight_returning(self.mission.id, reason, alert=alert)
        else:
            await self.reports.flight_returning(self.mission.id, reason)
        while True:
            try:
                await self._wait_link()
                await self._return_leg()
                self._home_started.set()
                break
            except LinkError as exc:
                await self._step("return command failed", f"{exc}; retrying", ok=False)
                await asyncio.sleep(1.0)
        await self._wait_landed()

    async def _return_leg(self) -> None:
        """Home (RTL, around no-fly zones first) if the battery covers it; else land where the return rule says.

        If the vehicle's own failsafe takes over meanwhile (RTL or LAND), it is left to it.
        """
        try:
            await self._steer_home()
        except FailsafeReturn as exc:
            await self._step("failsafe", f"{exc}; left to the vehicle", ok=False)

    async def _steer_home(self) -> None:
        t = self.link.telemetry
        opts = self.return_options()
        if t.battery_pct is None or t.battery_pct - opts.home_pct >= self.reserve_pct / 2 or opts.site is None:
            route = self.ctx.guard.route(self._here(), opts.home)
            if len(route) > 1:  # RTL flies straight: take the turning points in GUIDED first
                await self.link.set_mode(CopterMode.GUIDED, **self._cmd())
                for wlat, wlon in route[:-1]:
                    await self._fly_to(wlat, wlon, "the flight home (around a no-fly zone)", DETOUR_RADIUS_M, homing=True,
                                       alt=heights(self.ctx.policy)[1])
            await self.link.set_mode(CopterMode.RTL, **self._cmd())
            await self._step("RTL", "returning to its station")
            return
        site, lat, lon = opts.site
        dist = geo.distance_m(*self._here(), lat, lon)
        await self._step("divert", f"home is out of reach: landing at {site}, {dist / 1000:.1f} km away")
        await self.link.set_mode(CopterMode.GUIDED, **self._cmd())
        await self._fly_route(lat, lon, f"the diversion to {site}", self.ctx.profile.arrival_radius_m, homing=True,
                              alt=heights(self.ctx.policy)[1])
        await self.link.set_mode(CopterMode.LAND, **self._cmd())
        await self._step("LAND", f"at {site}")

    async def _wait_landed(self) -> None:
        while True:
            try:
                await self.link.wait_for(
                    lambda t: not t.armed and (t.alt_rel_m or 0) < GROUND_ALT_M, 30, "touchdown and disarm"
                )
                break
            except CommandTimeout:
                t = self.link.telemetry
                alt = f"{t.alt_rel_m:.0f} m" if t.alt_rel_m is not None else "unknown altitude"
                await self._step("returning", f"{alt}, link {'up' if self.link.up else 'down'}")
        await self._step("landed", "touchdown and disarm")
        await self.reports.flight_landed(self.mission.drone_id)
