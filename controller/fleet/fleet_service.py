"""The fleet service: every drone's link, one ticker for all of them, and a runner per flying mission.

It is the dispatch centre's `MissionObserver` (accepted -> fly, recalled -> come
home) and each link's listener (link up/down, telemetry). It reports to the
centre only through `FlightReports` and reads live state only through the
centre's read-only view. Telemetry reaches the centre in memory at full rate
and the event stream at most once a second per drone, as ephemeral
`drone.telemetry` events for the map.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.config import FleetConfig
from controller.control.commands import CommandRefused, CommandResult, PilotCommand
from controller.dispatch.returns import ReturnPlanner
from controller.domain.entities import Incident, Mission
from controller.fleet.drone_link import Connect, DroneLink, LinkConfig, LinkError
from controller.fleet.flight_context import return_options
from controller.fleet.mission_runner import FlightContext, MissionRunner, Phase
from controller.fleet.nofly import NoFlyGuard
from controller.fleet.copter import CopterMode
from controller.fleet.reports import GROUND_ALT_M, FlightReports, Reconciled, VehicleReport
from controller.fleet.telemetry import Telemetry
from controller.fleet.transport import Endpoint, open_transport

if TYPE_CHECKING:
    from controller.center.view import LiveView

log = logging.getLogger(__name__)

LIVENESS_PERIOD_S = 0.25
#: A drone whose link has not come up this long after start is reported lost.
FIRST_CONTACT_GRACE_S = 15.0
TELEMETRY_EVENT_PERIOD_S = 1.0
#: At start-up, how long to wait for every linked vehicle's first report before reconciling without it.
RECONCILE_WAIT_S = 10.0
#: A vehicle report counts only if its heartbeat and position are this recent.
REPORT_FRESH_S = 3.0
#: How often every drone's state is checked against its vehicle.
CHECK_PERIOD_S = 1.0
#: The flight view's track: one position every TRACK_PERIOD_S, the last TRACK_POINTS of them.
TRACK_PERIOD_S = 2.0
TRACK_POINTS = 300


@dataclass(frozen=True, slots=True)
class FlightView:
    """What a pilot flying a drone sees besides the map's layers (scene and no-fly zones come from elsewhere)."""

    drone_id: str
    lat: float | None
    lon: float | None
    alt_m: float | None
    ground_speed_ms: float | None
    heading_deg: float | None
    battery_pct: float | None
    mode: str | None
    armed: bool
    link_up: bool
    #: Seconds since the vehicle's last HEARTBEAT (None: never heard).
    heartbeat_age_s: float | None
    #: The shared return rule from where it is: where to, the battery (%) and the time (s) it takes.
    return_to: str | None
    return_need_pct: float | None
    return_s: float | None
    #: The runner's phase ("en route", "pilot", ...) and, under a pilot, its target and orbit.
    phase: str | None
    piloted: bool
    paused_sweep: bool
    target: tuple[float, float, float] | None
    #: Planned path ahead [(lat, lon)]: to the scene around the zones, to the pilot's target, or the sweep left.
    route: tuple[tuple[float, float], ...]
    #: Recent positions (lat, lon, alt), oldest first.
    track: tuple[tuple[float, float, float], ...]
    #: The camera mount's pitch (degrees, -90 straight down) as the vehicle reports it; None if it reports none.
    gimbal_pitch_deg: float | None = None


def vehicle_report(link: DroneLink, now: float) -> VehicleReport | None:
    """What the vehicle says about itself, if its link is up and its heartbeat and position are fresh."""
    t = link.telemetry
    if not link.up or t.lat is None or t.lon is None or t.mode is None or t.alt_rel_m is None:
        return None
    if now - t.last.get("HEARTBEAT", -1e9) > REPORT_FRESH_S or now - t.last.get("GLOBAL_POSITION_INT", -1e9) > REPORT_FRESH_S:
        return None
    return VehicleReport(
        armed=t.armed, alt_rel_m=t.alt_rel_m, mode=t.mode, lat=t.lat, lon=t.lon,
        battery_pct=t.battery_pct, mission_seq=t.mission_seq,
    )


def link_configs(config: FleetConfig, drone_ids: list[str] | None = None) -> dict[str, LinkConfig]:
    """Where each drone speaks MAVLink: drone N in roster order at BASE_PORT + PORT_STEP * N, sysid N + 1."""
    links = config.flight.links
    out: dict[str, LinkConfig] = {}
    roster = [d.id for s in config.stations for d in s.drones]
    for n, drone_id in enumerate(roster):
        if drone_ids is not None and drone_id not in drone_ids:
            continue
        o = links.overrides.get(drone_id)
        url = (o.url if o and o.url else None) or f"{links.scheme}:{links.host}:{links.base_port + links.port_step * n}"
        key = None
        if o and o.signing_key_env:
            hex_key = os.environ.get(o.signing_key_env)
            if not hex_key:
                raise ValueError(f"{drone_id}: signing key variable {o.signing_key_env} is not set")
            key = bytes.fromhex(hex_key)
            if len(key) != 32:
                raise ValueError(f"{drone_id}: signing key in {o.signing_key_env} must be 32 bytes (64 hex digits)")
        out[drone_id] = LinkConfig(drone_id, Endpoint.parse(url), (o.sysid if o and o.sysid else n + 1), signing_key=key)
    return out


class FleetService:
    def __init__(
        self,
        reports: FlightReports,
        view: LiveView,
        config: FleetConfig,
        links: dict[str, LinkConfig],
        returns: ReturnPlanner,
        connect: Connect = open_transport,
    ) -> None:
        self.reports = reports
        self.view = view
        self.config = config
        self.links: dict[str, DroneLink] = {d: DroneLink(c, listener=self, connect=connect) for d, c in links.items()}
        self.guard = NoFlyGuard(config.nofly, config.frame)
        self.returns = returns
        self.runners: dict[str, MissionRunner] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._last_event: dict[str, float] = {}
        self._started_at = 0.0
        self._stations = {s.id: (s.id, s.lat, s.lon) for s in config.stations}
        self.telemetry_messages = 0
        #: Called with (drone id, telemetry) on every position report (the hotspot pipeline's pose history).
        self.position_listeners: list[Callable[[str, Telemetry], None]] = []
        self.configured = 0
        #: Drones flying with no mission, being brought home.
        self._homing: set[str] = set()
        #: Drones with a reconciliation under way (link back, or a contradiction found).
        self._reconciling: set[str] = set()
        self._reconciled = False
        #: Seconds from start to the start-up reconciliation's end.
        self.reconcile_startup_s: float | None = None
        self._tracks: dict[str, deque[tuple[float, float, float]]] = {}
        self._track_at: dict[str, float] = {}

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Open every link and resume the missions that were flying when the controller stopped."""
        self._started_at = time.monotonic()
        for link in self.links.values():
            link.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="fleet-ticker")
        unlinked = [d for d in self.view.drones if d not in self.links]
        for drone_id in unlinked:  # no link configured: the controller cannot fly these
            await self.reports.link_state(drone_id, False)
        # Nothing the database says about a drone is trusted until its vehicle confirms it (bounded wait).
        deadline = self._started_at + RECONCILE_WAIT_S
        while time.monotonic() < deadline and any(vehicle_report(link, time.monotonic()) is None for link in self.links.values()):
            await asyncio.sleep(0.1)
        now = time.monotonic()
        vehicles = {d: vehicle_report(link, now) for d, link in self.links.items()}
        result = await self.reports.reconcile(vehicles, why="start-up")
        self._reconciled = True
        self.reconcile_startup_s = time.monotonic() - self._started_at
        self._act(result)
        silent = sum(1 for v in vehicles.values() if v is None)
        log.info(
            "fleet link: %d drones linked (%d silent), %d without a link; reconciled in %.1f s: %d missions resumed, %d drones brought home",
            len(self.links), silent, len(unlinked), self.reconcile_startup_s, len(self.runners), len(self._homing),
        )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        await asyncio.gather(*(r.stop() for r in self.runners.values()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(link.stop() for link in self.links.values()), return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fleet task %s failed", task.get_name(), exc_info=task.exception())

    async def _tick_forever(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(LIVENESS_PERIOD_S)
            now = time.monotonic()
            beats += 1
            send_heartbeat = beats % round(1 / LIVENESS_PERIOD_S) == 0
            for drone_id, link in self.links.items():
                if send_heartbeat:
                    try:
                        link.heartbeat()
                    except LinkError:
                        pass
                link.check_liveness(now)
                if not link.up and link.last_rx == 0.0 and now - self._started_at > FIRST_CONTACT_GRACE_S:
                    link.last_rx = -1.0  # report the missing first contact once
                    self._spawn(self.reports.link_state(drone_id, False), f"link-down-{drone_id}")
            if self._reconciled and beats % round(CHECK_PERIOD_S / LIVENESS_PERIOD_S) == 0:
                self._check_all(now)

    # --- reconciliation -------------------------------------------------------------

    def _check_all(self, now: float) -> None:
        """The invariant: no drone's state contradicts its vehicle for more than a few seconds (else it is repaired)."""
        for drone_id, link in self.links.items():
            if drone_id in self._reconciling:
                continue
            report = vehicle_report(link, now)
            if report is None:
                continue
            why = self.reports.check_vehicle(drone_id, report)
            if why is not None:
                log.warning("%s %s: reconciling", drone_id, why)
                self._reconcile_one(drone_id, report, f"invariant: {why}")

    def _reconcile_one(self, drone_id: str, report: VehicleReport, why: str) -> None:
        async def run() -> None:
            try:
                self._act(await self.reports.reconcile({drone_id: report}, why=why))
            finally:
                self._reconciling.discard(drone_id)

        self._reconciling.add(drone_id)
        self._spawn(run(), f"reconcile-{drone_id}")

    async def _reconcile_when_reporting(self, link: DroneLink) -> None:
        """A link came back: reconcile the drone once its vehicle's report is fresh (it may have landed meanwhile)."""
        deadline = time.monotonic() + REPORT_FRESH_S * 2
        while (report := vehicle_report(link, time.monotonic())) is None:
            if time.monotonic() > deadline or not link.up:
                return
            await asyncio.sleep(0.1)
        if link.drone_id not in self._reconciling:
            self._reconcile_one(link.drone_id, report, "link restored")

    def _act(self, result: Reconciled) -> None:
        """Supervise the flights a reconciliation kept, and bring down the drones flying for nothing."""
        for mission, incident in result.resume:
            if mission.id not in self.runners and mission.drone_id in self.links:
                self._run(mission, incident, resume=True)
        for drone_id in result.bring_home:
            if drone_id not in self._homing and drone_id in self.links and not any(
                r.mission.drone_id == drone_id for r in self.runners.values()
            ):
                self._homing.add(drone_id)
                self._spawn(self._bring_home(drone_id), f"home-{drone_id}")

    async def _bring_home(self, drone_id: str) -> None:
        """RTL a drone flying with no mission, and report its landing (retrying while its link is down)."""
        link = self.links[drone_id]
        p = self.config.flight
        try:
            while link.telemetry.mode not in (CopterMode.RTL, CopterMode.LAND):
                try:
                    await link.set_mode(CopterMode.RTL, timeout=p.command_timeout_s, retries=p.command_retries)
                except LinkError as exc:
                    log.warning("%s: RTL for a drone with no mission failed (%s); retrying", drone_id, exc)
                    await asyncio.sleep(1.0)
            while True:
                try:
                    await link.wait_for(lambda t: not t.armed and (t.alt_rel_m or 0) < GROUND_ALT_M, 30, "touchdown")
                    break
                except LinkError:
                    continue
            await self.reports.flight_landed(drone_id, "brought home after a reconciliation")
        finally:
            self._homing.discard(drone_id)

    # --- MissionObserver ----------------------------------------------------------

    def mission_accepted(self, mission: Mission, incident: Incident) -> None:
        if mission.drone_id not in self.links:
            self._spawn(
                self.reports.flight_failed(mission.id, "no MAVLink link configured for this drone", to_maintenance=True),
                f"nolink-{mission.id}",
            )
            return
        self._run(mission, incident, resume=False)

    def mission_recalled(self, mission: Mission, reason: str) -> None:
        runner = self.runners.get(mission.id)
        if runner is not None:
            runner.recall(reason)  # it brings the drone down (or stands it down) and reports it on the ground
        else:  # nothing was flying it: a drone held in preflight can be stood down at once
            self._spawn(self.reports.flight_landed(mission.drone_id, f"stood down: {reason}"), f"standdown-{mission.id}")

    def _run(self, mission: Mission, incident: Incident, resume: bool) -> None:
        for other in list(self.runners.values()):
            if other.mission.drone_id == mission.drone_id and other.mission.id != mission.id:
                other.detach()  # preempted in flight: the old runner must not command the drone any more
        drone = self.view.drones[mission.drone_id]
        ctx = FlightContext(
            profile=self.config.flight,
            model_id=drone.model,
            model=self.config.drone_models[drone.model],
            policy=self.config.policy,
            guard=self.guard,
            returns=self.returns,
            frame=self.config.frame,
            station=self._stations[drone.station_id],
        )
        runner = MissionRunner(self.links[mission.drone_id], self.reports, mission, incident, ctx, peers=self.view)
        self.runners[mission.id] = runner
        runner.start(resume=resume)
        self._spawn(self._reap(mission.id, runner), f"reap-{mission.id}")

    async def _reap(self, mission_id: str, runner: MissionRunner) -> None:
        await runner.finished.wait()
        if self.runners.get(mission_id) is runner:
            del self.runners[mission_id]

    # --- PilotFlight: a pilot's commands and the flight view ----------------------------

    def runner_of(self, drone_id: str) -> MissionRunner | None:
        return next((r for r in self.runners.values() if r.mission.drone_id == drone_id and not r.finished.is_set()), None)

    async def pilot_command(self, drone_id: str, cmd: PilotCommand, by: str) -> CommandResult:
        runner = self.runner_of(drone_id)
        if runner is None:
            raise CommandRefused(409, f"nothing flies a mission on {drone_id} now (not airborne under this controller)")
        return await runner.command(cmd, by)

    def control_mode(self, drone_id: str) -> tuple[bool, bool]:
        runner = self.runner_of(drone_id)
        if runner is None or not runner.piloted or runner.pilot is None:
            return False, False
        return True, runner.pilot.paused_sweep

    def flight_view(self, drone_id: str) -> FlightView | None:
        link = self.links.get(drone_id)
        if link is None:
            return None
        t = link.telemetry
        now = time.monotonic()
        beat = t.last.get("HEARTBEAT")
        runner = self.runner_of(drone_id)
        return_to = need = secs = None
        route: list[tuple[float, float]] = []
        target = None
        if runner is not None and t.lat is not None and t.lon is not None:
            ctx = runner.ctx
            alt = t.alt_rel_m or 0.0
            opts = return_options(ctx, t.lat, t.lon, alt, (t.home[0], t.home[1]) if t.home else None)
            need = round(opts.need_pct, 1)
            return_to = opts.site[0] if opts.site is not None else "home"
            secs = round(need / 100.0 * ctx.model.endurance_min * 60.0, 0)  # the rule's seconds, read back from its %
            p = runner.pilot
            if p is not None and p.target is not None:
                target = (p.target.lat, p.target.lon, p.target.alt_m)
                route = [(t.lat, t.lon), (p.target.lat, p.target.lon)]
            elif runner.phase is Phase.EN_ROUTE:
                try:
                    route = [(t.lat, t.lon), *self.guard.route((t.lat, t.lon), (runner.incident.lat, runner.incident.lon))]
                except Exception:  # noqa: BLE001 - a scene no route reaches shows no route
                    route = []
            elif runner.mission.plan is not None and runner.phase is Phase.SEARCHING:
                route = [(t.lat, t.lon), *(tuple(w) for w in runner.mission.plan.waypoints[runner.mission.plan.done:])]
        try:
            mode = CopterMode(t.mode).name if t.mode is not None else None
        except ValueError:
            mode = str(t.mode)
        return FlightView(
            drone_id=drone_id, lat=t.lat, lon=t.lon, alt_m=t.alt_rel_m, ground_speed_ms=t.ground_speed_ms,
            heading_deg=t.heading_deg, battery_pct=t.battery_pct, mode=mode, armed=t.armed, link_up=link.up,
            heartbeat_age_s=round(now - beat, 1) if beat is not None else None,
            return_to=return_to, return_need_pct=need, return_s=secs,
            phase=runner.phase.value if runner is not None else None,
            piloted=bool(runner and runner.piloted), paused_sweep=bool(runner and runner.pilot and runner.pilot.paused_sweep),
            target=target, route=tuple(route), track=tuple(self._tracks.get(drone_id, ())),
            gimbal_pitch_deg=t.gimbal_pitch_deg,
        )

    # --- LinkListener ---------------------------------------------------------------

    def link_state_changed(self, link: DroneLink, up: bool) -> None:
        if not up:
            self._spawn(self.reports.link_state(link.drone_id, False), f"link-{link.drone_id}")
            return
        try:
            link.heartbeat()  # at once: the vehicle's GCS failsafe (from our restart) clears before anything is asked
        except LinkError:
            pass
        self._spawn(self._configure(link), f"configure-{link.drone_id}")
        if self._reconciled:  # before that, the start-up reconciliation covers it
            self._spawn(self._reconcile_when_reporting(link), f"relink-{link.drone_id}")

    def telemetry_received(self, link: DroneLink, kind: str) -> None:
        self.telemetry_messages += 1
        if kind != "GLOBAL_POSITION_INT":
            return
        t = link.telemetry
        if t.lat is None or t.lon is None:
            return
        self.reports.telemetry(link.drone_id, t.lat, t.lon, t.alt_rel_m or 0.0, t.battery_pct)
        for listener in self.position_listeners:
            listener(link.drone_id, t)
        now = time.monotonic()
        if now - self._track_at.get(link.drone_id, -1e9) >= TRACK_PERIOD_S:
            self._track_at[link.drone_id] = now
            track = self._tracks.get(link.drone_id)
            if track is None:
                track = self._tracks[link.drone_id] = deque(maxlen=TRACK_POINTS)
            track.append((round(t.lat, 7), round(t.lon, 7), round(t.alt_rel_m or 0.0, 1)))
        if now - self._last_event.get(link.drone_id, 0.0) >= TELEMETRY_EVENT_PERIOD_S:
            self._last_event[link.drone_id] = now
            self.reports.live_telemetry(link.drone_id, t.snapshot())

    async def _configure(self, link: DroneLink) -> None:
        """Failsafes, return altitude and the model's speeds (those the dispatch engine times flights with), set on
        every drone whenever its link comes up."""
        fs = self.config.flight.failsafe
        model = self.config.drone_models[self.view.drones[link.drone_id].model]
        wanted: list[tuple[str, float]] = [
            ("FS_GCS_ENABLE", fs.gcs_enable),
            ("FS_GCS_TIMEOUT", fs.gcs_timeout_s),
            ("BATT_FS_LOW_ACT", fs.battery_low_action),
            ("FS_EKF_ACTION", fs.ekf_action),
            ("RTL_ALT", self.config.policy.transit_altitude_m * 100),
            ("WPNAV_SPEED", model.cruise_speed_ms * 100),
            ("WPNAV_SPEED_UP", model.climb_rate_ms * 100),
            ("WPNAV_SPEED_DN", model.descent_rate_ms * 100),
            ("WPNAV_ACCEL", model.acceleration_ms2 * 100),
        ]
        try:
            capacity = await link.read_param("BATT_CAPACITY")
            wanted.append(("BATT_LOW_MAH", round(capacity * fs.battery_low_pct / 100)))
            for name, value in wanted:
                await link.set_param(name, value)
            self.configured += 1
            log.debug("%s: failsafes set (%s)", link.drone_id, ", ".join(f"{n}={v:g}" for n, v in wanted))
            if self.configured == len(self.links):
                log.info("failsafes set on all %d drones (%s)", self.configured, ", ".join(n for n, _ in wanted))
        except LinkError as exc:
            log.warning("%s: could not set failsafe parameters: %s", link.drone_id, exc)
