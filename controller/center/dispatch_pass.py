"""The dispatch pass: turn live state into the dispatcher's snapshot, and its decisions into offers.

Incremental by default: incidents the current command re-queued are decided in
full, the rest only if a drone this command freed could serve them (they
already had no feasible free drone); a command that freed no drone and
re-queued nothing runs no pass at all. The dispatcher's view of each drone and
of each waiting incident is rebuilt only when it changed (`touch`, and the
changes recorded in `Dirty`), so thousands of queued calls cost a dictionary
walk per pass, not thousands of object builds. The periodic sweep treats the
drones that changed since the last sweep (a battery charging, a shift starting)
as freed, instead of deciding every waiting call again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from controller.center.changes import Changes, Dirty
from controller.center.offers import OfferTimers
from controller.center.state import LiveState
from controller.center.view import LiveView
from controller.config import FleetConfig
from controller.dispatch import Assignment, Decision, Dispatcher, DroneCandidate, IncidentRequest
from controller.domain.alerts import AlertKind
from controller.domain.entities import Incident, Mission
from controller.domain.errors import Conflict
from controller.domain.state_machine import Transition
from controller.domain.states import AIRBORNE, WORKING_MISSION, DroneState, IncidentStatus, MissionState
from controller.store import rows
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

D, I, M = DroneState, IncidentStatus, MissionState


class DispatchPass:
    def __init__(
        self,
        config: FleetConfig,
        dispatcher: Dispatcher,
        state: LiveState,
        view: LiveView,
        changes: Changes,
        timers: OfferTimers,
        dirty: Dirty,
    ) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.state = state
        self.view = view
        self.changes = changes
        self.timers = timers
        self.dirty = dirty
        self._xy_cache: dict[str, tuple[float, float, float, float]] = {}
        self._on_duty_cache: tuple[tuple[int, int], dict[str, bool]] | None = None
        self._candidates: dict[str, DroneCandidate] = {}
        #: incident id -> its request (None: open but not waiting for a drone), rebuilt when the incident changes.
        self._requests: dict[str, IncidentRequest | None] = {}
        self._station_ids = [s.id for s in config.stations]
        self._station_of = {d.id: s.id for s in config.stations for d in s.drones}
        #: Stations whose pilot came on or went off duty since the last sweep.
        self._duty_changed: set[str] = set()

    def touch(self, drone_id: str) -> None:
        """The drone changed in a way no command announced (battery, position): rebuild its entry."""
        self.dirty.drone_changed(drone_id)

    def xy(self, key: str, lat: float, lon: float) -> tuple[float, float]:
        cached = self._xy_cache.get(key)
        if cached is not None and cached[0] == lat and cached[1] == lon:
            return cached[2], cached[3]
        x, y = self.config.frame.to_xy(lat, lon)
        self._xy_cache[key] = (lat, lon, x, y)
        return x, y

    # --- the dispatcher's snapshot ------------------------------------------------------

    def _on_duty_map(self, now: datetime) -> Mapping[str, bool]:
        """Which stations have a pilot on duty; rosters change by the minute at most, so cache per minute."""
        local = self.view.local_time(now)
        key = (local.hour, local.minute)
        if self._on_duty_cache is None or self._on_duty_cache[0] != key:
            on_duty = {sid: self.view.pilot_on_duty(sid, now) is not None for sid in self._station_ids}
            if self._on_duty_cache is not None:
                before = self._on_duty_cache[1]
                self._duty_changed |= {sid for sid, up in on_duty.items() if before.get(sid) != up}
            self._on_duty_cache = (key, on_duty)
            self._candidates.clear()
        return self._on_duty_cache[1]

    def candidates(self, now: datetime) -> list[DroneCandidate]:
        """The fleet as the dispatcher sees it; entries are rebuilt only for drones that changed."""
        on_duty = self._on_duty_map(now)
        cache = self._candidates
        for drone_id in self.dirty.stale:
            cache.pop(drone_id, None)
        self.dirty.stale.clear()
        drones = self.state.drones
        if len(cache) == len(drones):
            return list(cache.values())
        models = self.config.drone_models
        for d in drones.values():
            if d.id in cache:
                continue
            x, y = self.xy(d.id, d.lat, d.lon)
            flying = self.state.mission_of(d)
            flying_for = self.state.incident_any(flying.incident_id) if flying is not None else None
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
        return [cache[d_id] for d_id in drones]

    def _request(self, inc: Incident) -> IncidentRequest | None:
        if inc.blocked_reason:
            return None
        needed = self.state.drones_needed(inc)
        if needed <= 0:
            return None
        x, y = self.xy(inc.id, inc.lat, inc.lon)
        return IncidentRequest(
            id=inc.id, grade=inc.grade, category=inc.category, lat=inc.lat, lon=inc.lon, x=x, y=y,
            created_at=inc.created_at, drones_needed=needed, excluded=frozenset(inc.excluded_drones),
        )

    def waiting_requests(self, only: Incident | None = None) -> list[IncidentRequest]:
        """The incidents waiting for drones, as the dispatcher sees them (cached until an incident changes)."""
        cache = self._requests
        for inc_id in self.dirty.incidents:
            cache.pop(inc_id, None)
        self.dirty.incidents.clear()
        incidents = self.state.incidents
        if len(cache) > len(incidents) + 1024:  # closed incidents' entries
            for inc_id in [i for i in cache if i not in incidents]:
                del cache[inc_id]
        out = []
        for inc in (only,) if only is not None else incidents.values():
            if inc.id in cache:
                req = cache[inc.id]
            else:
                req = cache[inc.id] = self._request(inc)
            if req is not None:
                out.append(req)
        return out

    def waiting(self) -> bool:
        """Whether any open incident waits for a drone."""
        return bool(self.waiting_requests())

    # --- the pass ---------------------------------------------------------------------------

    def run(self, now: datetime, cs: Changeset, only: Incident | None = None, full: bool = False, sweep: bool = False) -> None:
        """Offer drones to waiting incidents.

        `only`: just this new incident, since intake frees nothing. `full`: everything (start-up). `sweep`:
        the periodic pass for changes no command announces: the drones changed since the last sweep (a
        battery charging) and those of stations whose shift changed count as freed.
        """
        freed, requeued = self.dirty.take()
        if sweep:
            self._on_duty_map(now)
            freed |= frozenset(self.dirty.swept) | {d for d, sid in self._station_of.items() if sid in self._duty_changed}
            self.dirty.swept.clear()
            self._duty_changed.clear()
        if only is None and not full and not freed and not requeued:
            return  # nothing became free and nothing lost a drone: every waiting call was decided as it stands
        waiting = self.waiting_requests(only)
        if not waiting:
            return
        if only is not None or full:
            decisions = self.dispatcher.decide(waiting, self.candidates(now), now)
        else:
            must = [w for w in waiting if w.id in requeued]
            rest = [w for w in waiting if w.id not in requeued]
            decisions = self.dispatcher.decide(must + rest, self.candidates(now), now, freed=freed, must=requeued)
        preempted = False
        for decision in decisions:
            preempted |= self._apply(decision, now, cs)
        if preempted:  # the displaced incidents were re-queued by this pass: find them another drone now
            self.run(now, cs)

    def _apply(self, decision: Decision, now: datetime, cs: Changeset) -> bool:
        """Make the decision's offers (or queue the incident); True if a drone was taken from another mission."""
        inc = self.state.incidents[decision.incident_id]
        ch = self.changes
        if not decision.assignments:
            inc.queue_decision = decision
            if not inc.queue_announced and inc.status is I.QUEUED:
                # Announced once, when the incident enters the queue; later passes only refresh the reasons.
                inc.queue_announced = True
                ch.incident_event(
                    cs, "incident.queued", inc, now,
                    ruled_out=decision.ruled_out, ruled_out_counts=dict(decision.ruled_out_counts),
                )
                why = _summarize_counts(decision.ruled_out_counts)
                ch.alert(
                    cs, now, AlertKind.QUEUED_NO_DRONE,
                    f"grade-{inc.grade} {inc.category} {inc.id} queued, no drone can take it: {why}", incident=inc,
                )
                log.info("%s waits in the queue: %s", inc.id, why)
            return False
        preempted = False
        inc.queue_decision = None
        inc.queue_announced = False
        for a in decision.assignments:
            drone = self.state.drones[a.drone_id]
            if a.preempts is not None:
                self._preempt(a, inc, now, cs)
                preempted = True
            m = Mission.new(
                self.state.next_mission_id(),
                at=now,
                incident_id=inc.id,
                drone_id=drone.id,
                station_id=drone.station_id,
                pilot_id=self.view.pilot_on_duty(drone.station_id, now),
                expires_at=now + timedelta(seconds=self.config.policy.offer_timeout_s),
                eta_s=a.eta_s,
                distance_m=a.distance_m,
                drone_prior_state=drone.state,
            )
            self.state.add_mission(m)
            cs.insert(rows.transition_row(Transition("mission", m.id, None, M.OFFERED.value, now, "", "dispatch")))
            if drone.state not in AIRBORNE:  # a redirected drone keeps flying home until its pilot accepts
                ch.move(drone.machine, D.OFFERED, now, cs, f"offered {m.id} for {inc.id}", "dispatch")
            drone.mission_id = m.id
            ch.drone_event(cs, drone, now)
            ch.mission_event(cs, "offer.created", m, now)
            self.timers.arm(m)
            log.info(
                "%s (grade %d %s): offered %s to %s, ETA %.0f s over %.1f km",
                inc.id, inc.grade, inc.category, m.id, drone.id, a.eta_s, a.distance_m / 1000,
            )
        ch.sync_status(inc, now, cs, "offered", "dispatch")
        return preempted

    def _preempt(self, a: Assignment, inc: Incident, now: datetime, cs: Changeset) -> None:
        """Take a drone off a less urgent mission in flight for `inc`: abort that mission with the reason
        (the flight layer is told through `mission_recalled`), tell its pilot, re-queue its incident."""
        old = self.state.missions.get(a.preempts) if a.preempts else None
        if old is None or old.state not in WORKING_MISSION:
            raise Conflict(f"cannot redirect {a.drone_id}: its mission {a.preempts} is not in flight")
        ch = self.changes
        reason = a.preempt_reason or f"redirected to grade-{inc.grade} {inc.id}"
        ch.release_mission(old, now, cs, reason, "dispatch", resolved=False)
        drone = self.state.drones[old.drone_id]
        self.changes.journal.event(
            cs, "mission.preempted",
            {"mission_id": old.id, "drone_id": old.drone_id, "incident_id": old.incident_id, "for_incident_id": inc.id,
             "for_grade": inc.grade, "reason": reason},
            now, incident_id=old.incident_id, station_id=old.station_id, drone_id=old.drone_id, mission_id=old.id,
        )
        ch.alert(cs, now, AlertKind.MISSION_PREEMPTED, f"{old.id} on {drone.id} stopped: {reason}; {old.incident_id} re-queued", drone=drone, mission=old)
        displaced = self.state.incidents.get(old.incident_id)
        if displaced is not None:
            ch.sync_status(displaced, now, cs, f"{old.id} preempted by {inc.id}", "dispatch")
        log.warning("%s preempted for %s: %s", old.id, inc.id, reason)


def _summarize_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "no drones"
