"""The dispatch centre: intake, duplicate merge, offers to pilots, accept/decline/expiry, aborts.

Live state is held here, in memory, and changed only by the commands below.
Each command first checks every transition it will make (so a refusal changes
nothing), then applies them synchronously, then awaits the database commit; its
events are published only after that commit. Incident status is derived from
the incident's missions, so it can never disagree with them.

The flight layer (MAVLink) observes accepted missions through `MissionObserver`
and reports flight progress back through `report_flight`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from controller.auth import Principal, Role
from controller.config import FleetConfig
from controller.config.models import Station
from controller.dispatch import Assignment, Decision, Dispatcher, DroneCandidate, IncidentRequest
from controller.dispatch.base import AVAILABLE
from controller.domain.entities import CallerReport, Drone, Incident, Mission
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.search.planner import end_of
from controller.domain.state_machine import StateMachine, Transition
from controller.domain.states import (
    ACTIVE_MISSION,
    AIRBORNE,
    DroneState,
    IncidentStatus,
    MissionState,
)
from controller.events import EventBus
from controller.geo import equirectangular_m
from controller.search.planner import SearchPlanner
from controller.store import rows, schema
from controller.store.database import Database, Snapshot
from controller.store.writer import Changeset, DbWriter
from controller.views import drone_view, incident_view, offer_view

log = logging.getLogger(__name__)

D, I, M = DroneState, IncidentStatus, MissionState
#: Missions that count towards an incident's requested drones.
SERVING = frozenset({M.OFFERED, M.ACCEPTED, M.LAUNCHED, M.ON_SCENE})
DONE = frozenset({M.RETURNING, M.COMPLETED})
RELEASED = frozenset({M.DECLINED, M.EXPIRED, M.ABORTED})
#: How often waiting incidents are re-evaluated even when no command freed a drone.
SWEEP_INTERVAL_S = 5.0
#: A drone that lands with at least this much battery is ready at once; below, it charges first.
READY_BATTERY_PCT = 60.0
SEARCH_CATEGORY = "missing_person"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceUnavailable(Exception):
    """The change could not be made durable; the controller stops so a restart reloads committed state."""


@dataclass(frozen=True, slots=True)
class NewIncident:
    grade: int
    category: str
    lat: float
    lon: float
    address: str | None = None
    description: str = ""
    caller: str | None = None
    drones_requested: int | None = None
    search_radius_m: float | None = None
    search_polygon: list[tuple[float, float]] | None = None


class MissionObserver(Protocol):
    """Implemented by the flight layer: told when a mission must start flying or stop."""

    def mission_accepted(self, mission: Mission, incident: Incident) -> None: ...

    def mission_recalled(self, mission: Mission, reason: str) -> None:
        """The mission was aborted, or its incident closed: stop, and bring the drone home if it flies."""


class DispatchCenter:
    def __init__(
        self,
        config: FleetConfig,
        db: Database,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.dispatcher = dispatcher
        self.clock = clock
        self._on_fatal = on_fatal
        self.bus = EventBus()
        self.drones: dict[str, Drone] = {}
        self.incidents: dict[str, Incident] = {}  # open incidents only
        self.missions: dict[str, Mission] = {}  # active missions and every mission of an open incident
        self._closed_incidents: dict[str, Incident] = {}  # closed, but a mission of theirs is still flying
        self._by_incident: dict[str, set[str]] = {}
        self._stations: dict[str, Station] = {s.id: s for s in config.stations}
        self._station_of_drone = {d.id: s.id for s in config.stations for d in s.drones}
        self._tz = ZoneInfo(config.city.timezone)
        self._xy_cache: dict[str, tuple[float, float, float, float]] = {}
        self._on_duty_cache: tuple[tuple[int, int], dict[str, bool]] | None = None
        self._candidate_cache: dict[str, DroneCandidate] = {}
        self._prior_state: dict[str, DroneState] = {}  # state before a lost link
        self._unsaved_positions: set[str] = set()
        # What the current command changed, for an incremental dispatch pass (see _dispatch_pass).
        self._freed_now: set[str] = set()
        self._requeued_now: set[str] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writer: DbWriter | None = None
        self._incident_no = 0
        self._mission_no = 0
        self.observers: list[MissionObserver] = []
        self.search_planner = SearchPlanner(config)
        self.started = False

    # --- life cycle -----------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        snap: Snapshot = await loop.run_in_executor(None, self._load)
        self.bus = EventBus(first_seq=snap.last_event_seq + 1)
        self._writer = DbWriter(self.db.engine, self.bus.publish)
        self._writer.start(loop)
        self._incident_no = snap.last_incident_no
        self._mission_no = snap.last_mission_no
        now = self.clock()
        cs = Changeset()
        self._adopt_drones(snap.drones, now, cs)
        for inc in snap.incidents:
            self.incidents[inc.id] = inc
        for m in snap.missions:
            self._index_mission(m)
            inc = self.incidents.get(m.incident_id)
            if inc is not None and m.state in RELEASED:
                inc.excluded_drones.add(m.drone_id)
        offered = [m for m in self.missions.values() if m.state is M.OFFERED]
        for m in offered:
            self._arm_timer(m)
        for inc in self.incidents.values():
            inc.queue_announced = inc.status is I.QUEUED  # announced before the restart
        self._dispatch_pass(now, cs, full=True)
        if cs:
            await self._commit(cs)
        self._sweeper = loop.create_task(self._sweep_forever())
        self.started = True
        log.info(
            "dispatch centre ready: %d drones, %d open incidents, %d pending offers, %d missions in progress",
            len(self.drones),
            len(self.incidents),
            len(offered),
            sum(1 for m in self.missions.values() if m.state in ACTIVE_MISSION and m.state is not M.OFFERED),
        )

    def _load(self) -> Snapshot:
        self.db.create_schema()
        return self.db.load_snapshot()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
        self.started = False

    def _adopt_drones(self, stored: list[Drone], now: datetime, cs: Changeset) -> None:
        """Drones come from the roster; the database remembers their state across restarts."""
        known = {d.id: d for d in stored}
        for station in self.config.stations:
            for sd in station.drones:
                drone = known.get(sd.id)
                if drone is None:
                    drone = Drone.new(
                        sd.id,
                        at=now,
                        station_id=station.id,
                        model=sd.model,
                        battery_pct=100.0,
                        lat=station.lat,
                        lon=station.lon,
                    )
                    cs.upsert(rows.drone_row(drone))
                    cs.insert(
                        rows.transition_row(Transition("drone", drone.id, None, D.STANDBY.value, now, "commissioned", "system"))
                    )
                elif drone.station_id != station.id or drone.model != sd.model:
                    drone.station_id, drone.model = station.id, sd.model
                    cs.upsert(rows.drone_row(drone))
                self.drones[drone.id] = drone
        for drone_id in set(known) - set(self.drones):
            log.warning("drone %s is in the database but not in the roster; ignoring it", drone_id)

    # --- helpers --------------------------------------------------------------

    async def _commit(self, cs: Changeset) -> None:
        assert self._writer is not None
        try:
            await self._writer.commit(cs)
        except Exception as exc:
            message = "a change could not be written to the database; stopping so a restart reloads committed state"
            log.critical(message)
            if self._on_fatal is not None:
                self._on_fatal(message)
            raise ServiceUnavailable(message) from exc

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background dispatch task failed", exc_info=task.exception())

    def _index_mission(self, m: Mission) -> None:
        self.missions[m.id] = m
        self._by_incident.setdefault(m.incident_id, set()).add(m.id)

    def incident_missions(self, incident_id: str) -> list[Mission]:
        return [self.missions[mid] for mid in self._by_incident.get(incident_id, ())]

    def _move(
        self, machine: StateMachine[Any], to: Any, now: datetime, cs: Changeset, reason: str = "", actor: str = "system"
    ) -> None:
        cs.insert(rows.transition_row(machine.advance(to, now, reason, actor)))

    def _event(self, cs: Changeset, type: str, data: dict[str, Any], now: datetime, **ids: str | None) -> None:
        cs.events.append(self.bus.stamp(type, data, now, **ids))

    def _mission_event(self, cs: Changeset, type: str, m: Mission, now: datetime) -> None:
        inc = self._incident_any(m.incident_id)
        data = offer_view(m, inc, now) if inc is not None else {}
        self._event(
            cs,
            type,
            data,
            now,
            incident_id=m.incident_id,
            station_id=m.station_id,
            drone_id=m.drone_id,
            mission_id=m.id,
            category=inc.category if inc is not None else None,
        )
        cs.upsert(rows.mission_row(m))

    def _incident_event(self, cs: Changeset, type: str, inc: Incident, now: datetime, **extra: Any) -> None:
        data = incident_view(inc)
        data.update(extra)
        self._event(cs, type, data, now, incident_id=inc.id, category=inc.category)
        cs.upsert(rows.incident_row(inc))

    def _drone_event(self, cs: Changeset, d: Drone, now: datetime) -> None:
        self._candidate_cache.pop(d.id, None)
        if d.state in AVAILABLE:
            self._freed_now.add(d.id)
        d.updated_at = now
        self._event(cs, "drone.updated", drone_view(d), now, station_id=d.station_id, drone_id=d.id)
        cs.upsert(rows.drone_row(d))

    def _incident_any(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id) or self._closed_incidents.get(incident_id)

    def _authorize(self, who: Principal, station_id: str) -> None:
        if who.role is Role.PILOT and who.station_id != station_id:
            raise Forbidden(f"pilot of station {who.station_id} may not act on station {station_id}'s missions")

    async def _find_mission(self, mission_id: str) -> Mission:
        m = self.missions.get(mission_id)
        if m is not None:
            return m
        stored = await self.db.read(lambda c: self.db.get_mission(c, mission_id))
        if stored is None:
            raise NotFound("mission", mission_id)
        raise Conflict(f"mission {mission_id} is {stored.state.value}")

    def local_time(self, now: datetime) -> Any:
        return now.astimezone(self._tz).time()

    def pilot_on_duty(self, station_id: str, now: datetime) -> str | None:
        pilot = self._stations[station_id].on_duty(self.local_time(now))
        return pilot.id if pilot else None

    def _xy(self, key: str, lat: float, lon: float) -> tuple[float, float]:
        cached = self._xy_cache.get(key)
        if cached is not None and cached[0] == lat and cached[1] == lon:
            return cached[2], cached[3]
        x, y = self.config.frame.to_xy(lat, lon)
        self._xy_cache[key] = (lat, lon, x, y)
        return x, y

    # --- derived incident status --------------------------------------------

    def _derived_status(self, inc: Incident) -> IncidentStatus:
        states = {m.state for m in self.incident_missions(inc.id)}
        if M.ON_SCENE in states:
            return I.ON_SCENE
        if states & {M.ACCEPTED, M.LAUNCHED}:
            return I.DISPATCHED
        if M.OFFERED in states:
            return I.OFFERED
        return I.QUEUED

    def _sync_status(self, inc: Incident, now: datetime, cs: Changeset, reason: str, actor: str = "system") -> None:
        wanted = self._derived_status(inc)
        if wanted is I.QUEUED or self._drones_needed(inc):
            self._requeued_now.add(inc.id)
        if inc.is_open and wanted is not inc.status:
            self._move(inc.machine, wanted, now, cs, reason, actor)
            inc.updated_at = now
            self._incident_event(cs, "incident.updated", inc, now)

    def _drones_needed(self, inc: Incident) -> int:
        # A search drone that swept its whole share still counts: its share needs no other drone.
        serving = sum(
            1 for m in self.incident_missions(inc.id)
            if m.state in SERVING or (m.plan is not None and m.plan["done"] >= end_of(m.plan) and m.state in DONE)
        )
        return max(0, inc.drones_requested - serving)

    # --- dispatch pass --------------------------------------------------------

    def _on_duty_map(self, now: datetime) -> dict[str, bool]:
        """Which stations have a pilot on duty; rosters change by the minute at most, so cache per minute."""
        local = self.local_time(now)
        key = (local.hour, local.minute)
        if self._on_duty_cache is None or self._on_duty_cache[0] != key:
            on_duty = {sid: st.on_duty(local) is not None for sid, st in self._stations.items()}
            self._on_duty_cache = (key, on_duty)
            self._candidate_cache.clear()
        return self._on_duty_cache[1]

    def candidates(self, now: datetime) -> list[DroneCandidate]:
        """The fleet as the dispatcher sees it; entries are rebuilt only for drones that changed."""
        on_duty = self._on_duty_map(now)
        cache = self._candidate_cache
        if len(cache) == len(self.drones):
            return list(cache.values())
        models = self.config.drone_models
        for d in self.drones.values():
            if d.id in cache:
                continue
            x, y = self._xy(d.id, d.lat, d.lon)
            flying = self.missions.get(d.mission_id) if d.mission_id else None
            flying_for = self._incident_any(flying.incident_id) if flying is not None else None
            cache[d.id] = DroneCandidate(
                    id=d.id,
                    station_id=d.station_id,
                    model_id=d.model,
                    model=models[d.model],
                    state=d.state,
                    battery_pct=d.battery_pct,
                    lat=d.lat,
                    lon=d.lon,
                    x=x,
                    y=y,
                pilot_on_duty=on_duty[d.station_id],
                mission_id=flying.id if flying is not None else None,
                mission_grade=flying_for.grade if flying_for is not None else None,
            )
        return [cache[d_id] for d_id in self.drones]

    def waiting_requests(self, only: Incident | None = None) -> list[IncidentRequest]:
        out = []
        for inc in (only,) if only is not None else self.incidents.values():
            if inc.blocked_reason:
                continue
            needed = self._drones_needed(inc)
            if needed <= 0:
                continue
            x, y = self._xy(inc.id, inc.lat, inc.lon)
            out.append(
                IncidentRequest(
                    id=inc.id,
                    grade=inc.grade,
                    category=inc.category,
                    lat=inc.lat,
                    lon=inc.lon,
                    x=x,
                    y=y,
                    created_at=inc.created_at,
                    drones_needed=needed,
                    excluded=frozenset(inc.excluded_drones),
                )
            )
        return out

    def _dispatch_pass(
        self, now: datetime, cs: Changeset, only: Incident | None = None, full: bool = False
    ) -> None:
        """Offer drones to waiting incidents.

        Incremental by default: incidents the current command re-queued are decided
        in full, the rest only if a drone this command freed could serve them (they
        already had no feasible free drone). `only`: just this new incident, since
        intake frees nothing. `full`: everything, for start-up and the periodic
        sweep that catches changes no command announces (a shift starting, a
        battery charging).
        """
        freed, self._freed_now = self._freed_now, set()
        requeued, self._requeued_now = self._requeued_now, set()
        waiting = self.waiting_requests(only)
        if not waiting:
            return
        if only is not None or full:
            decisions = self.dispatcher.decide(waiting, self.candidates(now), now)
        else:
            must = [w for w in waiting if w.id in requeued]
            rest = [w for w in waiting if w.id not in requeued]
            decisions = self.dispatcher.decide(must + rest, self.candidates(now), now, freed=frozenset(freed), must=frozenset(requeued))
        preempted = False
        for decision in decisions:
            preempted |= self._apply_decision(decision, now, cs)
        if preempted:  # the displaced incidents were re-queued by this pass: find them another drone now
            self._dispatch_pass(now, cs)

    def _apply_decision(self, decision: Decision, now: datetime, cs: Changeset) -> bool:
        """Make the decision's offers (or queue the incident); True if a drone was taken from another mission."""
        inc = self.incidents[decision.incident_id]
        if not decision.assignments:
            inc.queue_decision = decision
            if not inc.queue_announced and inc.status is I.QUEUED:
                # Announced once, when the incident enters the queue; later passes only refresh the reasons.
                inc.queue_announced = True
                self._incident_event(
                    cs,
                    "incident.queued",
                    inc,
                    now,
                    ruled_out=decision.ruled_out,
                    ruled_out_counts=dict(decision.ruled_out_counts),
                )
                log.info("%s waits in the queue: %s", inc.id, _summarize_counts(decision.ruled_out_counts))
            return False
        preempted = False
        inc.queue_decision = None
        inc.queue_announced = False
        for a in decision.assignments:
            drone = self.drones[a.drone_id]
            if a.preempts is not None:
                self._preempt(a, inc, now, cs)
                preempted = True
            self._mission_no += 1
            m = Mission.new(
                f"MSN-{self._mission_no:06d}",
                at=now,
                incident_id=inc.id,
                drone_id=drone.id,
                station_id=drone.station_id,
                pilot_id=self.pilot_on_duty(drone.station_id, now),
                expires_at=now + timedelta(seconds=self.config.policy.offer_timeout_s),
                eta_s=a.eta_s,
                distance_m=a.distance_m,
                drone_prior_state=drone.state,
            )
            self._index_mission(m)
            cs.insert(rows.transition_row(Transition("mission", m.id, None, M.OFFERED.value, now, "", "dispatch")))
            if drone.state not in AIRBORNE:  # a redirected drone keeps flying home until its pilot accepts
                self._move(drone.machine, D.OFFERED, now, cs, f"offered {m.id} for {inc.id}", "dispatch")
            drone.mission_id = m.id
            self._drone_event(cs, drone, now)
            self._mission_event(cs, "offer.created", m, now)
            self._arm_timer(m)
            log.info(
                "%s (grade %d %s): offered %s to %s, ETA %.0f s over %.1f km",
                inc.id, inc.grade, inc.category, m.id, drone.id, a.eta_s, a.distance_m / 1000,
            )
        self._sync_status(inc, now, cs, "offered", "dispatch")
        return preempted

    def _preempt(self, a: Assignment, inc: Incident, now: datetime, cs: Changeset) -> None:
        """Take a drone off a less urgent mission in flight for `inc`: abort that mission with the reason
        (the flight layer is told through `mission_recalled`), tell its pilot, re-queue its incident."""
        old = self.missions[a.preempts] if a.preempts else None
        if old is None or old.state not in (M.LAUNCHED, M.ON_SCENE, M.ACCEPTED):
            raise Conflict(f"cannot redirect {a.drone_id}: its mission {a.preempts} is not in flight")
        reason = a.preempt_reason or f"redirected to grade-{inc.grade} {inc.id}"
        self._release_mission(old, now, cs, reason, "dispatch", resolved=False)
        drone = self.drones[old.drone_id]
        self._event(
            cs, "mission.preempted",
            {"mission_id": old.id, "drone_id": old.drone_id, "incident_id": old.incident_id, "for_incident_id": inc.id,
             "for_grade": inc.grade, "reason": reason},
            now, incident_id=old.incident_id, station_id=old.station_id, drone_id=old.drone_id, mission_id=old.id,
        )
        self._alert(cs, now, "warning", f"{old.id} on {drone.id} stopped: {reason}; {old.incident_id} re-queued", drone=drone, mission=old)
        displaced = self.incidents.get(old.incident_id)
        if displaced is not None:
            self._sync_status(displaced, now, cs, f"{old.id} preempted by {inc.id}", "dispatch")
        log.warning("%s preempted for %s: %s", old.id, inc.id, reason)

    async def _sweep_forever(self) -> None:
        """Re-run dispatch for the queue every few seconds, for changes that raise no command."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep()
            except ServiceUnavailable:
                return
            except Exception:  # noqa: BLE001 - a failed sweep must not stop the next one
                log.exception("queue sweep failed")

    async def sweep(self) -> None:
        await self.flush_positions()
        if not any(inc.status is I.QUEUED or self._drones_needed(inc) for inc in self.incidents.values()):
            return
        cs = Changeset()
        self._dispatch_pass(self.clock(), cs, full=True)
        if cs:
            await self._commit(cs)

    # --- offer timers ---------------------------------------------------------

    def _arm_timer(self, m: Mission) -> None:
        delay = max(0.0, (m.expires_at - self.clock()).total_seconds())
        loop = asyncio.get_running_loop()
        self._timers[m.id] = loop.call_later(delay, self._spawn_expiry, m.id)

    def _spawn_expiry(self, mission_id: str) -> None:
        self._timers.pop(mission_id, None)
        self._spawn(self.expire_offer(mission_id))

    def _disarm_timer(self, mission_id: str) -> None:
        handle = self._timers.pop(mission_id, None)
        if handle is not None:
            handle.cancel()

    # --- commands: incidents --------------------------------------------------

    def find_duplicate(self, spec: NewIncident, now: datetime) -> Incident | None:
        """An open incident of the same category, close enough and recent enough to be the same event."""
        rule = self.config.policy.duplicate_merge
        best: tuple[float, Incident] | None = None
        for inc in self.incidents.values():
            if inc.category != spec.category or inc.last_report_at is None:
                continue
            if (now - inc.last_report_at).total_seconds() > rule.window_s:
                continue
            dist = equirectangular_m(spec.lat, spec.lon, inc.lat, inc.lon)
            if dist <= rule.radius_m and (best is None or dist < best[0]):
                best = (dist, inc)
        return best[1] if best else None

    async def create_incident(self, spec: NewIncident, who: Principal) -> tuple[Incident, bool]:
        """Open an incident and dispatch it, or merge a repeat call into the open one it repeats."""
        now = self.clock()
        cs = Changeset()
        report = CallerReport(received_at=now, lat=spec.lat, lon=spec.lon, caller=spec.caller, text=spec.description)
        dup = self.find_duplicate(spec, now)
        if dup is not None:
            dup.callers += 1
            dup.last_report_at = now
            dup.updated_at = now
            if spec.grade < dup.grade:
                dup.grade = spec.grade  # a caller reporting it as more urgent raises the incident's grade
            cs.insert(rows.report_row(dup.id, report))
            self._incident_event(cs, "incident.merged", dup, now, report={"caller": spec.caller, "text": spec.description})
            await self._commit(cs)
            log.info("repeat call merged into %s (now %d callers)", dup.id, dup.callers)
            return dup, True

        self._incident_no += 1
        search = self.config.policy.search
        search_area = None
        requested = spec.drones_requested or 1
        if spec.category == SEARCH_CATEGORY:
            search_area = (
                {"polygon": [list(p) for p in spec.search_polygon]}
                if spec.search_polygon
                else {"radius_m": spec.search_radius_m or search.default_radius_m}
            )
            requested = spec.drones_requested or search.drones_by_grade.get(spec.grade, 1)
        inc = Incident.new(
            f"INC-{self._incident_no:06d}",
            at=now,
            grade=spec.grade,
            category=spec.category,
            lat=spec.lat,
            lon=spec.lon,
            address=spec.address,
            description=spec.description,
            drones_requested=requested,
            search_area=search_area,
            created_by=who.actor,
        )
        self.incidents[inc.id] = inc
        cs.insert(rows.report_row(inc.id, report))
        cs.insert(rows.transition_row(Transition("incident", inc.id, None, I.QUEUED.value, now, "call received", who.actor)))
        self._incident_event(cs, "incident.created", inc, now)
        self._dispatch_pass(now, cs, only=inc)
        await self._commit(cs)
        return inc, False

    async def close_incident(self, incident_id: str, who: Principal, *, resolved: bool, reason: str) -> Incident:
        """Cancel or resolve an open incident; its offers are withdrawn and its drones sent home."""
        inc = self.incidents.get(incident_id)
        if inc is None:
            stored = await self.db.read(lambda c: self.db.get_incident(c, incident_id))
            if stored is None:
                raise NotFound("incident", incident_id)
            raise Conflict(f"incident {incident_id} is already {stored.status.value}")
        target = I.RESOLVED if resolved else I.CANCELLED
        inc.machine.check(target)
        now = self.clock()
        cs = Changeset()
        why = f"incident {target.value}" + (f": {reason}" if reason else "")
        for m in self.incident_missions(inc.id):
            if m.state in ACTIVE_MISSION:
                self._release_mission(m, now, cs, why, who.actor, resolved=resolved)
        self._move(inc.machine, target, now, cs, reason, who.actor)
        inc.closed_at = inc.updated_at = now
        inc.close_reason = reason or None
        self._incident_event(cs, "incident.updated", inc, now)
        del self.incidents[inc.id]
        self._closed_incidents[inc.id] = inc
        self._forget_closed()
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        log.info("%s %s by %s%s", inc.id, target.value, who.actor, f": {reason}" if reason else "")
        return inc

    def _forget_closed(self) -> None:
        """Closed incidents stay in memory only while one of their missions is still active."""
        for inc_id in list(self._closed_incidents):
            if not any(m.state in ACTIVE_MISSION for m in self.incident_missions(inc_id)):
                del self._closed_incidents[inc_id]
                for mid in self._by_incident.pop(inc_id, ()):
                    self.missions.pop(mid, None)

    # --- commands: missions ---------------------------------------------------

    async def accept(self, mission_id: str, who: Principal) -> Mission:
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        now = self.clock()
        if m.state is M.OFFERED and now >= m.expires_at:
            await self.expire_offer(m.id)
            raise Conflict(f"the offer {m.id} expired at {m.expires_at.isoformat()}")
        m.machine.check(M.ACCEPTED)
        drone = self.drones[m.drone_id]
        # A drone redirected in the air (preemption) is offered while it flies home; accepting turns it round.
        redirect = drone.state in AIRBORNE and m.drone_prior_state in AIRBORNE and drone.mission_id == m.id
        if drone.state is not D.OFFERED and not redirect:
            raise Conflict(f"drone {drone.id} is {drone.state.value}; the offer can no longer be accepted")
        inc = self.incidents[m.incident_id]
        cs = Changeset()
        self._disarm_timer(m.id)
        self._move(m.machine, M.ACCEPTED, now, cs, "", who.actor)
        m.decided_at, m.decided_by, m.updated_at = now, who.actor, now
        self._move(drone.machine, D.ENROUTE if redirect else D.PREFLIGHT, now, cs, f"accepted {m.id}", who.actor)
        self._drone_event(cs, drone, now)
        self._mission_event(cs, "mission.updated", m, now)
        self._sync_status(inc, now, cs, f"{m.id} accepted", who.actor)
        await self._commit(cs)
        log.info("%s accepted by %s: %s flies to %s", m.id, who.actor, drone.id, inc.id)
        for observer in self.observers:
            observer.mission_accepted(m, inc)
        return m

    async def decline(self, mission_id: str, who: Principal, reason: str = "") -> Mission:
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        return await self._end_offer(m, M.DECLINED, who.actor, reason or "declined by pilot")

    async def expire_offer(self, mission_id: str) -> None:
        m = self.missions.get(mission_id)
        if m is None or m.state is not M.OFFERED:
            return  # accepted, declined or withdrawn in the meantime
        await self._end_offer(m, M.EXPIRED, "system", f"no answer within {self.config.policy.offer_timeout_s:g} s")

    async def _end_offer(self, m: Mission, outcome: MissionState, actor: str, reason: str) -> Mission:
        m.machine.check(outcome)
        now = self.clock()
        cs = Changeset()
        self._disarm_timer(m.id)
        self._move(m.machine, outcome, now, cs, reason, actor)
        m.decided_at, m.decided_by, m.reason, m.updated_at = now, actor, reason, now
        self._free_offered_drone(m, now, cs, reason, actor)
        inc = self.incidents.get(m.incident_id)
        self._mission_event(cs, f"offer.{outcome.value}", m, now)
        if inc is not None:
            inc.excluded_drones.add(m.drone_id)
            self._sync_status(inc, now, cs, f"{m.id} {outcome.value}", actor)
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        log.info("%s %s (%s); %s goes to the next drone", m.id, outcome.value, reason, m.incident_id)
        return m

    def _free_offered_drone(self, m: Mission, now: datetime, cs: Changeset, reason: str, actor: str) -> None:
        drone = self.drones[m.drone_id]
        if drone.mission_id == m.id:
            drone.mission_id = None
        if drone.state is D.OFFERED:
            self._move(drone.machine, m.drone_prior_state, now, cs, reason, actor)
            self._drone_event(cs, drone, now)

    async def abort(self, mission_id: str, who: Principal, reason: str) -> Mission:
        """Stop a mission at any step; an airborne drone comes home and the incident gets another drone."""
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        m.machine.check(M.ABORTED)
        now = self.clock()
        cs = Changeset()
        self._release_mission(m, now, cs, reason or "aborted", who.actor, resolved=False)
        inc = self.incidents.get(m.incident_id)
        if inc is not None:
            inc.excluded_drones.add(m.drone_id)
            self._sync_status(inc, now, cs, f"{m.id} aborted", who.actor)
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        log.info("%s aborted by %s: %s", m.id, who.actor, reason)
        return m

    def _release_mission(
        self, m: Mission, now: datetime, cs: Changeset, reason: str, actor: str, *, resolved: bool
    ) -> None:
        """End a mission's claim on its drone: withdraw an offer, stand down a preflight, recall a flight."""
        drone = self.drones[m.drone_id]
        self._disarm_timer(m.id)
        airborne = drone.state in AIRBORNE and drone.mission_id == m.id
        if resolved and airborne and m.machine.can(M.RETURNING):
            self._move(m.machine, M.RETURNING, now, cs, reason, actor)  # completes when the drone lands
        else:
            self._move(m.machine, M.ABORTED, now, cs, reason, actor)
        m.reason, m.updated_at = reason, now
        if m.state is M.ABORTED and not airborne:
            if drone.state is D.OFFERED:
                self._free_offered_drone(m, now, cs, reason, actor)
            elif drone.state is D.PREFLIGHT and drone.mission_id == m.id:
                drone.mission_id = None
                self._move(drone.machine, D.STANDBY, now, cs, reason, actor)
                self._drone_event(cs, drone, now)
        if airborne and drone.state is not D.RETURNING:
            self._move(drone.machine, D.RETURNING, now, cs, reason, actor)
            self._drone_event(cs, drone, now)
        self._mission_event(cs, "mission.updated", m, now)
        for observer in self.observers:
            observer.mission_recalled(m, reason)

    # --- commands: drones -----------------------------------------------------

    async def set_maintenance(self, drone_id: str, on: bool, who: Principal, reason: str = "") -> Drone:
        drone = self.drones.get(drone_id)
        if drone is None:
            raise NotFound("drone", drone_id)
        target = D.MAINTENANCE if on else D.STANDBY
        if drone.state is target:
            return drone
        if on and drone.state not in (D.STANDBY, D.CHARGING, D.LANDED):
            raise Conflict(f"drone {drone.id} is {drone.state.value}; only an idle drone can go to maintenance")
        drone.machine.check(target)
        now = self.clock()
        cs = Changeset()
        self._move(drone.machine, target, now, cs, reason or ("maintenance" if on else "back in service"), who.actor)
        self._drone_event(cs, drone, now)
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        return drone

    # --- reports from the flight layer -------------------------------------------

    def _flight_mission(self, mission_id: str) -> Mission | None:
        m = self.missions.get(mission_id)
        if m is None:
            log.warning("flight report for unknown mission %s ignored", mission_id)
        return m

    def _category_of(self, m: Mission) -> str | None:
        inc = self._incident_any(m.incident_id)
        return inc.category if inc else None

    async def flight_step(self, mission_id: str, step: str, detail: str = "", ok: bool = True) -> None:
        """Record one flight step (armed, takeoff, target sent, ...) in the mission's timeline and the stream."""
        m = self._flight_mission(mission_id)
        if m is None:
            return
        now = self.clock()
        cs = Changeset()
        cs.insert((schema.mission_steps, {"mission_id": m.id, "at": now, "step": step, "ok": int(ok), "detail": detail[:500]}))
        self._event(
            cs, "mission.step", {"mission_id": m.id, "drone_id": m.drone_id, "step": step, "ok": ok, "detail": detail},
            now, incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id, mission_id=m.id,
            category=self._category_of(m),
        )
        await self._commit(cs)
        (log.info if ok else log.warning)("%s %s: %s%s", m.id, m.drone_id, step, f" ({detail})" if detail else "")

    async def flight_launched(self, mission_id: str) -> None:
        """The drone is airborne on its way."""
        await self._flight_transition(mission_id, M.LAUNCHED, D.ENROUTE, "airborne")

    async def flight_on_scene(self, mission_id: str, searching: bool = False) -> None:
        await self._flight_transition(mission_id, M.ON_SCENE, D.SEARCHING if searching else D.ON_SCENE, "over the scene")

    async def flight_returning(self, mission_id: str, reason: str) -> None:
        """The drone heads home (battery, failsafe, end of search): its incident gets another drone if still open."""
        await self._flight_transition(mission_id, M.RETURNING, D.RETURNING, reason)

    async def _flight_transition(self, mission_id: str, ms: MissionState, ds: DroneState, reason: str) -> None:
        m = self._flight_mission(mission_id)
        if m is None or m.state is ms:
            return
        drone = self.drones[m.drone_id]
        now = self.clock()
        cs = Changeset()
        if m.machine.can(ms):
            self._move(m.machine, ms, now, cs, reason, "flight")
            m.updated_at = now
            self._mission_event(cs, "mission.updated", m, now)
        if drone.state is not ds and drone.machine.can(ds):
            self._move(drone.machine, ds, now, cs, reason, "flight")
            self._drone_event(cs, drone, now)
        inc = self.incidents.get(m.incident_id)
        if inc is not None:
            if ms is M.RETURNING:
                inc.excluded_drones.add(m.drone_id)
            self._sync_status(inc, now, cs, f"{m.id} {ms.value}", "flight")
        self._dispatch_pass(now, cs)
        if cs:
            await self._commit(cs)

    async def flight_landed(self, drone_id: str, reason: str = "landed") -> None:
        """Wheels down and disarmed: the mission completes and the drone is ready again (or charging)."""
        drone = self.drones[drone_id]
        now = self.clock()
        cs = Changeset()
        m = self.missions.get(drone.mission_id) if drone.mission_id else None
        if m is not None and m.state is M.RETURNING:
            self._move(m.machine, M.COMPLETED, now, cs, reason, "flight")
            m.updated_at = now
            self._mission_event(cs, "mission.updated", m, now)
        if drone.state is not D.LANDED and drone.machine.can(D.LANDED):
            self._move(drone.machine, D.LANDED, now, cs, reason, "flight")
        drone.mission_id = None
        ready = D.STANDBY if drone.battery_pct >= READY_BATTERY_PCT else D.CHARGING
        if drone.machine.can(ready):
            self._move(drone.machine, ready, now, cs, "back at a station", "flight")
        self._drone_event(cs, drone, now)
        self._forget_closed()
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        log.info("%s landed (%s); now %s", drone_id, reason, drone.state.value)

    async def flight_failed(self, mission_id: str, reason: str, *, to_maintenance: bool) -> None:
        """The flight could not be carried out (arming refused, command unanswered, no-fly target, ...)."""
        m = self._flight_mission(mission_id)
        if m is None or m.state not in ACTIVE_MISSION:
            return
        drone = self.drones[m.drone_id]
        now = self.clock()
        cs = Changeset()
        self._move(m.machine, M.ABORTED, now, cs, reason, "flight")
        m.reason, m.updated_at = reason, now
        self._mission_event(cs, "mission.updated", m, now)
        if drone.state in AIRBORNE:
            if drone.state is not D.RETURNING:
                self._move(drone.machine, D.RETURNING, now, cs, reason, "flight")
        else:
            drone.mission_id = None
            target = D.MAINTENANCE if to_maintenance else D.STANDBY
            if drone.state is not target and drone.machine.can(target):
                self._move(drone.machine, target, now, cs, reason, "flight")
        self._drone_event(cs, drone, now)
        self._alert(cs, now, "warning", f"{m.id} on {drone.id} failed: {reason}", drone=drone, mission=m)
        inc = self.incidents.get(m.incident_id)
        if inc is not None:
            inc.excluded_drones.add(drone.id)
            self._sync_status(inc, now, cs, f"{m.id} failed", "flight")
        self._dispatch_pass(now, cs)
        await self._commit(cs)

    async def search_plan(self, mission_id: str) -> dict[str, Any]:
        """Give a search mission its share of the area (resuming a departed drone's strip first) and keep it."""
        m = self.missions[mission_id]
        inc = self._incident_any(m.incident_id)
        assert inc is not None
        drone = self.drones[m.drone_id]
        plan = self.search_planner.plan(
            inc, self.incident_missions(inc.id), m, self._xy(drone.id, drone.lat, drone.lon), self.config.drone_models[drone.model]
        )
        now = self.clock()
        cs = Changeset()
        donor_end = plan.pop("donor_end", None)
        if donor_end is not None:  # the joiner takes the far half of this mission's remaining sweep
            donor = self.missions[plan["split_from"]]
            donor.plan, donor.updated_at = {**donor.plan, "end": donor_end}, now
            self._mission_event(cs, "mission.plan", donor, now)
            cs.upsert(rows.mission_row(donor))
        m.plan, m.updated_at = plan, now
        self._mission_event(cs, "mission.plan", m, now)
        await self._commit(cs)
        return plan

    async def add_search_drones(self, incident_id: str, count: int, who: Principal) -> Incident:
        """Command asks for `count` more drones on a search; they are offered now and share the remaining area."""
        inc = self.incidents.get(incident_id)
        if inc is None:
            raise NotFound("incident", incident_id)
        if inc.category != "missing_person":
            raise Conflict(f"{incident_id} is a {inc.category} incident, not a search")
        if not 1 <= count <= 8 or inc.drones_requested + count > 12:
            raise Conflict(f"{incident_id} has {inc.drones_requested} drones; adding {count} would exceed 12")
        now = self.clock()
        cs = Changeset()
        inc.drones_requested += count
        inc.updated_at = now
        self._incident_event(cs, "incident.updated", inc, now, reason=f"{who.name} added {count} search drone(s)")
        self._requeued_now.add(inc.id)
        self._dispatch_pass(now, cs)
        await self._commit(cs)
        return inc

    async def search_progress(self, mission_id: str, done: int) -> None:
        """How many of its waypoints a search mission has flown (a replacement resumes from there)."""
        m = self.missions.get(mission_id)
        if m is None or m.plan is None or m.plan["done"] == done:
            return
        now = self.clock()
        cs = Changeset()
        m.plan = {**m.plan, "done": done}
        m.updated_at = now
        cs.upsert(rows.mission_row(m))
        await self._commit(cs)

    async def block_incident(self, incident_id: str, reason: str) -> None:
        """No drone can serve this incident (e.g. it lies in a no-fly zone): keep it open but stop offering it."""
        inc = self.incidents.get(incident_id)
        if inc is None or inc.blocked_reason:
            return
        now = self.clock()
        cs = Changeset()
        inc.blocked_reason = reason
        inc.updated_at = now
        for m in self.incident_missions(inc.id):
            if m.state is M.OFFERED:
                self._release_mission(m, now, cs, f"withdrawn: {reason}", "flight", resolved=False)
        self._sync_status(inc, now, cs, "blocked", "flight")
        self._incident_event(cs, "incident.blocked", inc, now, reason=reason)
        self._alert(cs, now, "critical", f"{inc.id} cannot be flown: {reason}", incident=inc)
        await self._commit(cs)

    async def link_state(self, drone_id: str, up: bool) -> None:
        """Link lost: the drone shows lost_link and commanders are alerted; a pending offer is withdrawn.
        Link back: the drone returns to the state it had."""
        drone = self.drones.get(drone_id)
        if drone is None:
            return
        now = self.clock()
        cs = Changeset()
        if not up and drone.state is not D.LOST_LINK:
            m = self.missions.get(drone.mission_id) if drone.mission_id else None
            if m is not None and m.state is M.OFFERED:
                self._release_mission(m, now, cs, "drone link lost", "flight", resolved=False)
                inc = self.incidents.get(m.incident_id)
                if inc is not None:
                    inc.excluded_drones.add(drone.id)
                    self._sync_status(inc, now, cs, "offered drone lost its link", "flight")
            self._prior_state[drone.id] = drone.state
            self._move(drone.machine, D.LOST_LINK, now, cs, "no MAVLink message for 3 s", "flight")
            self._drone_event(cs, drone, now)
            self._alert(cs, now, "critical", f"link lost with {drone.id}", drone=drone)
        elif up and drone.state is D.LOST_LINK:
            back = self._prior_state.pop(drone.id, D.STANDBY)
            self._move(drone.machine, back, now, cs, "link restored", "flight")
            self._drone_event(cs, drone, now)
            self._alert(cs, now, "info", f"link restored with {drone.id}", drone=drone)
        else:
            return
        self._dispatch_pass(now, cs)
        await self._commit(cs)

    def _alert(
        self, cs: Changeset, now: datetime, severity: str, text: str, *,
        drone: Drone | None = None, mission: Mission | None = None, incident: Incident | None = None,
    ) -> None:
        """A message for people: commanders see all, pilots their station's."""
        station = drone.station_id if drone else mission.station_id if mission else None
        self._event(
            cs, "alert", {"severity": severity, "text": text}, now,
            station_id=station, drone_id=drone.id if drone else None,
            mission_id=mission.id if mission else None, incident_id=incident.id if incident else None,
        )

    def telemetry(self, drone_id: str, lat: float, lon: float, alt_m: float, battery_pct: float | None) -> None:
        """Fold a telemetry sample into the drone (in memory; positions are written by the periodic flush)."""
        drone = self.drones[drone_id]
        moved = equirectangular_m(lat, lon, drone.lat, drone.lon) > 25 or abs(alt_m - drone.alt_m) > 5
        charged = battery_pct is not None and abs(battery_pct - drone.battery_pct) >= 1.0
        drone.lat, drone.lon, drone.alt_m = lat, lon, alt_m
        if battery_pct is not None:
            drone.battery_pct = battery_pct
        if moved or charged:
            self._candidate_cache.pop(drone_id, None)
            self._unsaved_positions.add(drone_id)

    async def flush_positions(self) -> None:
        """Write moved drones' positions and batteries (so a restart starts from where they were)."""
        if not self._unsaved_positions:
            return
        ids, self._unsaved_positions = self._unsaved_positions, set()
        cs = Changeset()
        for drone_id in ids:
            cs.upsert(rows.drone_row(self.drones[drone_id]))
        await self._commit(cs)

    async def record(self, type: str, data: dict[str, Any], upserts: list[tuple[Any, dict[str, Any]]], **ids: str | None) -> None:
        """Commit rows of a service beside the centre (hotspots) with one numbered event, published once durable."""
        cs = Changeset()
        for item in upserts:
            cs.upsert(item)
        self._event(cs, type, data, self.clock(), **ids)
        await self._commit(cs)

    # --- reads ------------------------------------------------------------------

    def offer_payload(self, m: Mission) -> dict[str, Any]:
        inc = self._incident_any(m.incident_id)
        return offer_view(m, inc, self.clock()) if inc else {}


def _summarize_counts(counts: Any) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "no drones"

