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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.config.models import DroneModel, FlightProfile
from controller.domain.entities import Incident, Mission
from controller.domain.states import MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.drone_link import CommandRejected, CommandTimeout, DroneLink, LinkDown, LinkError, MissionItem
from controller.fleet.flight_math import battery_to_return_pct, nearest_site, orbit_points
from controller.fleet.nofly import NoFlyGuard, NoFlyViolation
from controller.search.planner import end_of

if TYPE_CHECKING:
    from controller.dispatch_center import DispatchCenter

log = logging.getLogger(__name__)

#: Arm refusals that clear by themselves while the vehicle finishes booting (see the transcripts).
TRANSIENT_ARM_REFUSALS = (
    "Need Position Estimate",
    "waiting for home",
    "Accels inconsistent",
    "Gyros inconsistent",
    "EKF",
    "GPS",
)
#: Below this relative altitude and disarmed, the drone is on the ground.
GROUND_ALT_M = 2.0
SEARCH_CATEGORY = "missing_person"
#: Search missions: 0 home, 1 take-off, 2 change speed, then the sweep waypoints, then RTL.
FIRST_SWEEP_SEQ = 3


class ArmRefused(LinkError):
    pass


class BatteryLow(Exception):
    pass


class FailsafeReturn(Exception):
    """The vehicle left GUIDED by itself (GCS or battery failsafe): it is going home."""


@dataclass(frozen=True)
class FlightContext:
    profile: FlightProfile
    model: DroneModel
    transit_alt_m: float
    reserve_pct: float
    guard: NoFlyGuard
    #: (station id, lat, lon) of every station, for landing elsewhere when home is out of reach.
    stations: tuple[tuple[str, float, float], ...]


#: Turning points of a detour count as reached within this distance.
DETOUR_RADIUS_M = 40.0
#: The recall reason of a runner whose drone another mission took over in flight.
HANDED_OVER = "drone handed over to another mission"
#: Farther than this from its first sweep waypoint, a search drone flies there in GUIDED at cruise speed first.
SEARCH_TRANSIT_M = 300.0


class MissionRunner:
    def __init__(
        self, link: DroneLink, center: DispatchCenter, mission: Mission, incident: Incident, ctx: FlightContext
    ) -> None:
        self.link = link
        self.center = center
        self.mission = mission
        self.incident = incident
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._recall: str | None = None
        self.finished = asyncio.Event()

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
                if resume:
                    await self._resume()
                else:
                    if self._airborne():
                        await self._redirect()
                    else:
                        await self._launch()
                    if self.searching:
                        await self._search()
                    else:
                        await self._to_scene()
                        await self._on_scene()
            except asyncio.CancelledError:
                if self._recall in ("controller stopping", HANDED_OVER):
                    raise
                await self._step("recalled", self._recall or "", ok=True)
                await self._come_home(self._recall or "recalled")
            except BatteryLow as exc:
                await self._step("battery reserve", str(exc), ok=False)
                await self._come_home(f"battery reserve: {exc}")
            except FailsafeReturn as exc:
                await self._step("failsafe", str(exc), ok=False)
                await self.center.flight_returning(m.id, str(exc))
                await self._wait_landed()
            except NoFlyViolation as exc:
                await self._step("no-fly", str(exc), ok=False)
                # Block first, so failing the mission does not offer the same target to the next drone.
                await self.center.block_incident(self.incident.id, str(exc))
                await self.center.flight_failed(m.id, f"refused: {exc}", to_maintenance=False)
                await self._come_home("no-fly target refused")
            except (ArmRefused, CommandRejected, CommandTimeout, LinkDown) as exc:
                await self._step("failed", str(exc), ok=False)
                await self.center.flight_failed(m.id, str(exc), to_maintenance=True)
                await self._come_home(str(exc))
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - a runner must never die silently
            log.exception("%s: mission runner crashed", m.id)
        finally:
            self.finished.set()

    async def _step(self, step: str, detail: str = "", ok: bool = True) -> None:
        await self.center.flight_step(self.mission.id, step, detail, ok)

    @property
    def searching(self) -> bool:
        return self.incident.category == SEARCH_CATEGORY

    def _here(self) -> tuple[float, float]:
        t = self.link.telemetry
        if t.lat is None or t.lon is None:
            raise LinkDown(f"{self.link.drone_id}: no position yet")
        return t.lat, t.lon

    def _cmd(self) -> dict[str, float]:
        p = self.ctx.profile
        return {"timeout": p.command_timeout_s, "retries": p.command_retries}

    async def _launch(self) -> None:
        link, p = self.link, self.ctx.profile
        await self._step("preflight", "waiting for a position estimate (EKF and GPS)")
        await link.wait_for(
            lambda t: t.ekf_ok and (t.gps_fix or 0) >= 3 and t.lat is not None,
            p.arm_ready_timeout_s,
            "position estimate",
        )
        self.ctx.guard.check_point(*self._here(), "the take-off position")
        self.ctx.guard.route(self._here(), (self.incident.lat, self.incident.lon))  # refuses a scene in a zone or unreachable
        await link.set_mode(CopterMode.GUIDED, timeout=1.0, retries=5)
        await self._step("mode", "GUIDED")
        await self._arm()
        alt = self.ctx.transit_alt_m
        await link.command_long(mavlink2.MAV_CMD_NAV_TAKEOFF, [0, 0, 0, 0, 0, 0, alt], what="takeoff", **self._cmd())
        await self._step("takeoff", f"climbing to {alt:.0f} m")
        await link.wait_for(lambda t: (t.alt_rel_m or 0) > GROUND_ALT_M, p.takeoff_timeout_s, "leaving the ground")
        await self.center.flight_launched(self.mission.id)
        climb_s = alt / self.ctx.model.climb_rate_ms
        await link.wait_for(lambda t: (t.alt_rel_m or 0) >= 0.95 * alt, climb_s * 3 + 30, "climb to transit altitude")
        await self._step("transit altitude", f"{self.link.telemetry.alt_rel_m:.0f} m")

    def _airborne(self) -> bool:
        t = self.link.telemetry
        return t.armed and (t.alt_rel_m or 0.0) > GROUND_ALT_M

    async def _redirect(self) -> None:
        """The drone was given this mission in the air (preempted from another): turn it round in GUIDED."""
        t = self.link.telemetry
        self.ctx.guard.route(self._here(), (self.incident.lat, self.incident.lon))  # refuses a scene in a zone or unreachable
        await self.link.set_mode(CopterMode.GUIDED, timeout=1.0, retries=5)
        await self._step("redirected in flight", f"at {t.alt_rel_m or 0:.0f} m, {t.battery_pct or 0:.0f}% battery; GUIDED")
        await self.center.flight_launched(self.mission.id)

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

    def _check_battery(self) -> None:
        t = self.link.telemetry
        if t.battery_pct is None or t.lat is None:
            return
        home = t.home or (self.center.drones[self.mission.drone_id].lat, self.center.drones[self.mission.drone_id].lon, 0)
        need = battery_to_return_pct(geo.equirectangular_m(t.lat, t.lon, home[0], home[1]), t.alt_rel_m or 0, self.ctx.model)
        floor = need + self.ctx.reserve_pct + self.ctx.profile.battery_return_margin_pct
        if t.battery_pct <= floor:
            raise BatteryLow(f"{t.battery_pct:.0f}% left, the flight home needs {need:.0f}% + reserve")

    def _check_mode(self) -> None:
        t = self.link.telemetry
        if t.mode in (CopterMode.RTL, CopterMode.LAND):
            raise FailsafeReturn(f"vehicle switched to {CopterMode(t.mode).name} by itself (failsafe)")


    async def _fly_route(self, lat: float, lon: float, what: str, radius: float) -> None:
        """Fly to (lat, lon), around no-fly zones when the straight leg would cross one."""
        route = self.ctx.guard.route(self._here(), (lat, lon))
        if len(route) > 1:
            await self._step("detour", f"{what}: {len(route) - 1} turning points around a no-fly zone")
        for wlat, wlon in route[:-1]:
            await self._fly_to(wlat, wlon, f"{what} (around a no-fly zone)", max(radius, DETOUR_RADIUS_M))
        await self._fly_to(lat, lon, what, radius)

    async def _fly_to(self, lat: float, lon: float, what: str, radius: float) -> None:
        """Send a GUIDED target and supervise until within `radius`; re-send on silence."""
        link, p = self.link, self.ctx.profile
        self.ctx.guard.check_leg(self._here(), (lat, lon), what)
        alt = self.ctx.transit_alt_m
        dist = geo.distance_m(*self._here(), lat, lon)
        budget = dist / self.ctx.model.cruise_speed_ms * 2.5 + 60
        elapsed = 0.0
        link.send_position_target(lat, lon, alt)
        while True:
            try:
                await link.wait_for(
                    lambda t: t.lat is not None and geo.equirectangular_m(t.lat, t.lon, lat, lon) <= radius,
                    p.target_resend_s,
                    what,
                )
                return
            except CommandTimeout:
                pass
            await self._wait_link()
            self._check_mode()
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
        inc = self.incident
        await self._step("target sent", f"scene at {inc.lat:.5f}, {inc.lon:.5f}")
        await self._fly_route(inc.lat, inc.lon, "the flight to the scene", self.ctx.profile.arrival_radius_m)
        await self.center.flight_on_scene(self.mission.id)
        await self._step("on scene")

    async def _on_scene(self) -> None:
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
        await self._step("orbit", f"{p.orbit_radius_m:.0f} m radius, {len(points)} points")
        while True:
            for lat, lon in points:
                await self._fly_to(lat, lon, "the orbit", p.arrival_radius_m)
                self._check_battery()

    async def _search(self) -> None:
        """Sweep this drone's share of the search area as an AUTO mission, reporting progress."""
        plan = await self.center.search_plan(self.mission.id)
        wps = [tuple(w) for w in plan["waypoints"]]
        alt = plan["altitude_m"]
        if wps and geo.distance_m(*self._here(), *wps[0]) > SEARCH_TRANSIT_M:
            # get there at cruise speed in GUIDED; the AUTO sweep then runs at the slower search speed
            await self._fly_route(wps[0][0], wps[0][1], "the flight to the search area", self.ctx.profile.arrival_radius_m)
            await self._step("at the search area", f"strip {plan['strip']}")
        legs = [self._here(), *wps]
        for a, b in zip(legs, legs[1:]):
            self.ctx.guard.check_leg(a, b, "the search pattern")
        items = [
            MissionItem(mavlink2.MAV_CMD_NAV_WAYPOINT),  # home: the vehicle keeps its own
            MissionItem(mavlink2.MAV_CMD_NAV_TAKEOFF, alt=alt),
            MissionItem(mavlink2.MAV_CMD_DO_CHANGE_SPEED, params=(1, plan["speed_ms"], -1, 0)),
            *(MissionItem(mavlink2.MAV_CMD_NAV_WAYPOINT, lat=lat, lon=lon, alt=alt) for lat, lon in wps),
            MissionItem(mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH),
        ]
        await self.link.upload_mission(items, timeout=self.ctx.profile.command_timeout_s)
        km = self.center.search_planner.length_m(plan) / 1000
        origin = f", resuming {plan['resumed_from']}" if "resumed_from" in plan else ""
        await self._step("search plan uploaded", f"strip {plan['strip']}: {len(wps)} waypoints, {km:.1f} km at {alt:.0f} m{origin}")
        await self.link.set_mode(CopterMode.AUTO, **self._cmd())
        await self.link.command_long(mavlink2.MAV_CMD_MISSION_START, [0, 0], what="mission start", **self._cmd())
        await self.center.flight_on_scene(self.mission.id, searching=True)
        await self._step("searching")
        await self._sweep(len(wps))

    async def _sweep(self, waypoints: int) -> None:
        """Watch the AUTO sweep: progress, battery, failsafes, and its end at the RTL item."""
        rtl_seq = FIRST_SWEEP_SEQ + waypoints
        done = -1
        while True:
            await self._wait_link()
            t = self.link.telemetry
            seq = t.mission_seq or 0
            if seq >= rtl_seq or t.mode == CopterMode.RTL and seq >= rtl_seq - 1:
                await self.center.search_progress(self.mission.id, waypoints)
                await self._step("search pattern complete", f"{waypoints} waypoints")
                await self.center.flight_returning(self.mission.id, "search pattern complete")
                await self._wait_landed()
                return
            if t.mode != CopterMode.AUTO:
                raise FailsafeReturn(f"vehicle left AUTO for mode {t.mode} during the search")
            self._check_battery()
            now_done = max(0, min(waypoints, seq - FIRST_SWEEP_SEQ))
            end = end_of(self.mission.plan) if self.mission.plan else waypoints
            if end < waypoints and now_done >= end:
                # a joining drone took the rest of this sweep: hand over and come home
                await self.center.search_progress(self.mission.id, end)
                await self._step("search share handed over", f"{end} of {waypoints} waypoints; the rest to {self._joiner()}")
                await self.link.set_mode(CopterMode.RTL, **self._cmd())
                await self.center.flight_returning(self.mission.id, "search share handed over to a joining drone")
                await self._wait_landed()
                return
            if now_done != done:
                done = now_done
                await self.center.search_progress(self.mission.id, done)
            await asyncio.sleep(1.0)

    def _joiner(self) -> str:
        for m in self.center.incident_missions(self.mission.incident_id):
            if m.plan and m.plan.get("split_from") == self.mission.id:
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
                await self.center.flight_returning(self.mission.id, "vehicle returned while the controller was down")
            await self._wait_landed()
            return
        if not airborne:
            if state is MissionState.ACCEPTED:
                await self._launch()
            else:
                await self.center.flight_landed(self.mission.drone_id, "found on the ground after restart")
                return
        if self.searching:
            if t.mode == CopterMode.AUTO and self.mission.plan:
                await self._sweep(len(self.mission.plan["waypoints"]))
            else:
                await self._search()
            return
        if self.mission.state is not MissionState.ON_SCENE:
            await self._to_scene()
        await self._on_scene()

    # --- coming home ----------------------------------------------------------------

    async def _come_home(self, reason: str) -> None:
        """Bring the drone down safely, whatever step it was in."""
        t = self.link.telemetry
        airborne = t.armed and (t.alt_rel_m or 0) > GROUND_ALT_M
        if not airborne:
            # Still on the ground: the centre has already stood the drone down; just make it safe.
            if t.armed:
                try:
                    await self.link.command_long(mavlink2.MAV_CMD_COMPONENT_ARM_DISARM, [0], what="disarm", **self._cmd())
                    await self._step("disarmed", f"stood down on the ground: {reason}")
                except LinkError as exc:
                    await self._step("disarm failed", str(exc), ok=False)
            return
        await self.center.flight_returning(self.mission.id, reason)
        while True:
            try:
                await self._wait_link()
                await self._return_leg()
                break
            except LinkError as exc:
                await self._step("return command failed", f"{exc}; retrying", ok=False)
                await asyncio.sleep(1.0)
        await self._wait_landed()

    async def _return_leg(self) -> None:
        """RTL home; if home is beyond the battery, fly to the nearest station and LAND there."""
        t = self.link.telemetry
        drone = self.center.drones[self.mission.drone_id]
        home = t.home or (drone.lat, drone.lon, 0.0)
        here = self._here()
        need_home = battery_to_return_pct(geo.equirectangular_m(*here, home[0], home[1]), t.alt_rel_m or 0, self.ctx.model)
        if t.battery_pct is None or t.battery_pct - need_home >= self.ctx.reserve_pct / 2:
            await self.link.set_mode(CopterMode.RTL, **self._cmd())
            await self._step("RTL", "returning to its station")
            return
        site, dist = nearest_site(*here, self.ctx.stations)
        await self._step("divert", f"home is out of reach: landing at {site}, {dist / 1000:.1f} km away")
        lat, lon = next((la, lo) for s, la, lo in self.ctx.stations if s == site)
        await self.link.set_mode(CopterMode.GUIDED, **self._cmd())
        await self._fly_route(lat, lon, f"the diversion to {site}", self.ctx.profile.arrival_radius_m)
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
        await self.center.flight_landed(self.mission.drone_id)
