"""What people do: open (or merge) an incident, close it, accept, decline, abort, maintenance, add search drones.

Every command checks each transition it will make before changing anything
(a refusal is a 409 and changes nothing), applies them, runs the dispatch pass
for whatever it freed, and awaits the commit before it returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controller.auth import Principal, Role
from controller.center.changes import Changes
from controller.center.dispatch_pass import DispatchPass
from controller.center.journal import Journal
from controller.center.state import LiveState
from controller.config import FleetConfig
from controller.domain.alerts import AlertKind
from controller.domain.categories import SEARCH_CATEGORY, is_search
from controller.domain.entities import CallerReport, Drone, Incident, Mission
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.domain.state_machine import Transition
from controller.domain.states import ACTIVE_MISSION, AIRBORNE, SERVING_MISSION, DroneState, IncidentStatus, MissionState
from controller.fleet.reports import MissionObserver
from controller.geo import equirectangular_m
from controller.store import rows
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

D, I, M = DroneState, IncidentStatus, MissionState
#: A search may ask for at most this many drones in all.
MAX_SEARCH_DRONES = 12


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


class Commands:
    def __init__(
        self,
        config: FleetConfig,
        state: LiveState,
        journal: Journal,
        changes: Changes,
        passes: DispatchPass,
        observers: list[MissionObserver],
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.state = state
        self.journal = journal
        self.ch = changes
        self.passes = passes
        self.observers = observers
        self.clock = clock

    # --- lookups ------------------------------------------------------------------------------

    def _authorize(self, who: Principal, station_id: str) -> None:
        if who.role is Role.PILOT and who.station_id != station_id:
            raise Forbidden(f"pilot of station {who.station_id} may not act on station {station_id}'s missions")

    async def _find_mission(self, mission_id: str) -> Mission:
        m = self.state.missions.get(mission_id)
        if m is not None:
            return m
        db = self.journal.db
        stored = await db.read(lambda c: db.get_mission(c, mission_id))
        if stored is None:
            raise NotFound("mission", mission_id)
        raise Conflict(f"mission {mission_id} is {stored.state.value}")

    # --- incidents -------------------------------------------------------------------------------

    def find_duplicate(self, spec: NewIncident, now: datetime) -> Incident | None:
        """An open incident of the same category, close enough and recent enough to be the same event."""
        rule = self.config.policy.duplicate_merge
        best: tuple[float, Incident] | None = None
        for inc in self.state.incidents.values():
            if inc.category != spec.category or inc.last_report_at is None:
                continue
            if (now - inc.last_report_at).total_seconds() > rule.window_s:
                continue
            dist = equirectangular_m(spec.lat, spec.lon, inc.lat, inc.lon)
            if dist <= rule.radius_m and (best is None or dist < best[0]) and self._takes_repeat_calls(inc):
                best = (dist, inc)
        return best[1] if best else None

    def _takes_repeat_calls(self, inc: Incident) -> bool:
        """A repeat call merges only into an incident being served (a drone offered, on its way or there) or waiting
        for one; an open incident nothing will fly for (its drones went home, it is blocked) lets the call get a drone."""
        if any(m.state in SERVING_MISSION for m in self.state.incident_missions(inc.id)):
            return True
        return not inc.blocked_reason and self.state.drones_needed(inc) > 0

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
            self.ch.incident_event(cs, "incident.merged", dup, now, report={"caller": spec.caller, "text": spec.description})
            await self.journal.commit(cs)
            log.info("repeat call merged into %s (now %d callers)", dup.id, dup.callers)
            return dup, True

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
            self.state.next_incident_id(),
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
        self.state.incidents[inc.id] = inc
        cs.insert(rows.report_row(inc.id, report))
        cs.insert(rows.transition_row(Transition("incident", inc.id, None, I.QUEUED.value, now, "call received", who.actor)))
        self.ch.incident_event(cs, "incident.created", inc, now)
        self.passes.run(now, cs, only=inc)
        await self.journal.commit(cs)
        return inc, False

    async def close_incident(self, incident_id: str, who: Principal, *, resolved: bool, reason: str) -> Incident:
        """Cancel or resolve an open incident; its offers are withdrawn and its drones sent home."""
        inc = self.state.incidents.get(incident_id)
        if inc is None:
            db = self.journal.db
            stored = await db.read(lambda c: db.get_incident(c, incident_id))
            if stored is None:
                raise NotFound("incident", incident_id)
            raise Conflict(f"incident {incident_id} is already {stored.status.value}")
        target = I.RESOLVED if resolved else I.CANCELLED
        inc.machine.check(target)
        now = self.clock()
        cs = Changeset()
        why = f"incident {target.value}" + (f": {reason}" if reason else "")
        for m in self.state.incident_missions(inc.id):
            if m.state in ACTIVE_MISSION:
                self.ch.release_mission(m, now, cs, why, who.actor, resolved=resolved)
        self.ch.move(inc.machine, target, now, cs, reason, who.actor)
        inc.closed_at = inc.updated_at = now
        inc.close_reason = reason or None
        self.ch.incident_event(cs, "incident.updated", inc, now)
        self.state.close_incident(inc)
        self.passes.run(now, cs)
        await self.journal.commit(cs)
        log.info("%s %s by %s%s", inc.id, target.value, who.actor, f": {reason}" if reason else "")
        return inc

    async def add_search_drones(self, incident_id: str, count: int, who: Principal) -> Incident:
        """Command asks for `count` more drones on a search; they are offered now and share the remaining area."""
        inc = self.state.incidents.get(incident_id)
        if inc is None:
            raise NotFound("incident", incident_id)
        if not is_search(inc.category):
            raise Conflict(f"{incident_id} is a {inc.category} incident, not a search")
        if not 1 <= count <= 8 or inc.drones_requested + count > MAX_SEARCH_DRONES:
            raise Conflict(f"{incident_id} has {inc.drones_requested} drones; adding {count} would exceed {MAX_SEARCH_DRONES}")
        now = self.clock()
        cs = Changeset()
        inc.drones_requested += count
        inc.updated_at = now
        self.ch.incident_event(cs, "incident.updated", inc, now, reason=f"{who.name} added {count} search drone(s)")
        self.ch.dirty.requeued.add(inc.id)
        self.passes.run(now, cs)
        await self.journal.commit(cs)
        return inc

    # --- missions ------------------------------------------------------------------------------------

    async def accept(self, mission_id: str, who: Principal) -> Mission:
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        now = self.clock()
        if m.state is M.OFFERED and now >= m.expires_at:
            await self.expire_offer(m.id)
            raise Conflict(f"the offer {m.id} expired at {m.expires_at.isoformat()}")
        m.machine.check(M.ACCEPTED)
        drone = self.state.drones[m.drone_id]
        # A drone redirected in the air (preemption) is offered while it flies home; accepting turns it round.
        redirect = drone.state in AIRBORNE and m.drone_prior_state in AIRBORNE and drone.mission_id == m.id
        if drone.state is not D.OFFERED and not redirect:
            raise Conflict(f"drone {drone.id} is {drone.state.value}; the offer can no longer be accepted")
        inc = self.state.incidents[m.incident_id]
        cs = Changeset()
        self.ch.timers.disarm(m.id)
        self.ch.move(m.machine, M.ACCEPTED, now, cs, "", who.actor)
        m.decided_at, m.decided_by, m.updated_at = now, who.actor, now
        self.ch.move(drone.machine, D.ENROUTE if redirect else D.PREFLIGHT, now, cs, f"accepted {m.id}", who.actor)
        self.ch.drone_event(cs, drone, now)
        self.ch.mission_event(cs, "mission.updated", m, now)
        self.ch.sync_status(inc, now, cs, f"{m.id} accepted", who.actor)
        await self.journal.commit(cs)
        log.info("%s accepted by %s: %s flies to %s", m.id, who.actor, drone.id, inc.id)
        for observer in self.observers:
            observer.mission_accepted(m, inc)
        return m

    async def decline(self, mission_id: str, who: Principal, reason: str = "") -> Mission:
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        return await self._end_offer(m, M.DECLINED, who.actor, reason or "declined by pilot")

    async def expire_offer(self, mission_id: str) -> None:
        await self.expire_offers([mission_id])

    async def expire_offers(self, mission_ids: list[str]) -> None:
        """Offers whose deadline passed, ended together: one dispatch pass and one commit for all of them (offers
        made in one burst expire in one burst; one pass each would hold the event loop for a second or more)."""
        now = self.clock()
        cs = Changeset()
        reason = f"no answer within {self.config.policy.offer_timeout_s:g} s"
        ended = []
        for mission_id in mission_ids:
            m = self.state.missions.get(mission_id)
            if m is None or m.state is not M.OFFERED:
                continue  # accepted, declined or withdrawn in the meantime
            self._end_one(m, M.EXPIRED, "system", reason, now, cs)
            ended.append(m)
        if not ended:
            return
        self.passes.run(now, cs)
        for m in ended:
            self._announce_end(m, reason, now, cs)
        await self.journal.commit(cs)
        for m in ended:
            log.info("%s expired (%s); %s goes to the next drone", m.id, reason, m.incident_id)

    async def _end_offer(self, m: Mission, outcome: MissionState, actor: str, reason: str) -> Mission:
        m.machine.check(outcome)
        now = self.clock()
        cs = Changeset()
        self._end_one(m, outcome, actor, reason, now, cs)
        self.passes.run(now, cs)
        self._announce_end(m, reason, now, cs)
        await self.journal.commit(cs)
        log.info("%s %s (%s); %s goes to the next drone", m.id, outcome.value, reason, m.incident_id)
        return m

    def _end_one(self, m: Mission, outcome: MissionState, actor: str, reason: str, now: datetime, cs: Changeset) -> None:
        self.ch.timers.disarm(m.id)
        self.ch.move(m.machine, outcome, now, cs, reason, actor)
        m.decided_at, m.decided_by, m.reason, m.updated_at = now, actor, reason, now
        self.ch.free_offered_drone(m, now, cs, reason, actor)
        inc = self.state.incidents.get(m.incident_id)
        self.ch.mission_event(cs, f"offer.{outcome.value}", m, now)
        if inc is not None:
            inc.excluded_drones.add(m.drone_id)
            self.ch.sync_status(inc, now, cs, f"{m.id} {outcome.value}", actor)

    def _announce_end(self, m: Mission, reason: str, now: datetime, cs: Changeset) -> None:
        """`offer.ended` for the pilot whose offer expired or was declined: why, and where the call went next (the
        offer the dispatch pass just made for the same incident, or the queue)."""
        inc = self.state.incident_any(m.incident_id)
        nxt = next(
            (o for o in (self.state.incident_missions(m.incident_id) if inc is not None else ())
             if o.state is M.OFFERED and o.id != m.id and o.drone_id != m.drone_id and o.offered_at == now),
            None,
        )
        data = {
            "mission_id": m.id, "drone_id": m.drone_id, "station_id": m.station_id, "incident_id": m.incident_id,
            "outcome": m.state.value, "reason": reason,
            "next": {"mission_id": nxt.id, "drone_id": nxt.drone_id, "station_id": nxt.station_id} if nxt else None,
            "queued": nxt is None and inc is not None and inc.is_open and inc.status is I.QUEUED,
        }
        self.journal.event(
            cs, "offer.ended", data, now, incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id,
            mission_id=m.id, category=inc.category if inc is not None else None,
        )
        declined = m.state is M.DECLINED
        went = (f"offered to {nxt.drone_id} ({nxt.station_id}) next" if nxt else
                "queued: no other drone can take it" if data["queued"] else "no other offer made")
        what = f"grade-{inc.grade} {inc.category} {inc.id}" if inc is not None else m.incident_id
        self.ch.alert(
            cs, now, AlertKind.OFFER_DECLINED if declined else AlertKind.OFFER_EXPIRED,
            f"{m.drone_id} ({m.station_id}) {'declined' if declined else 'did not answer'} {what}: {reason}; {went}",
            mission=m, incident=inc,
        )

    async def warn_offers(self, mission_ids: list[str]) -> None:
        """Offers with OFFER_EXPIRING_S or less left: one `offer_expiring` alert each (the timers fire once per
        offer), those fired together in one commit."""
        now = self.clock()
        cs = Changeset()
        for mission_id in mission_ids:
            m = self.state.missions.get(mission_id)
            if m is None or m.state is not M.OFFERED:
                continue  # answered or withdrawn in the meantime
            inc = self.state.incident_any(m.incident_id)
            left = max(0.0, (m.expires_at - now).total_seconds())
            what = f"grade-{inc.grade} {inc.category} {inc.id}" if inc is not None else m.incident_id
            self.ch.alert(
                cs, now, AlertKind.OFFER_EXPIRING,
                f"{m.drone_id} ({m.station_id}) has {left:.0f} s left to answer the offer for {what}",
                mission=m, incident=inc,
            )
        if cs:
            await self.journal.commit(cs)

    async def abort(self, mission_id: str, who: Principal, reason: str) -> Mission:
        """Stop a mission at any step; an airborne drone comes home and the incident gets another drone."""
        m = await self._find_mission(mission_id)
        self._authorize(who, m.station_id)
        m.machine.check(M.ABORTED)
        now = self.clock()
        cs = Changeset()
        self.ch.release_mission(m, now, cs, reason or "aborted", who.actor, resolved=False)
        inc = self.state.incidents.get(m.incident_id)
        if inc is not None:
            inc.excluded_drones.add(m.drone_id)
            self.ch.sync_status(inc, now, cs, f"{m.id} aborted", who.actor)
        self.passes.run(now, cs)
        await self.journal.commit(cs)
        log.info("%s aborted by %s: %s", m.id, who.actor, reason)
        return m

    # --- drones ------------------------------------------------------------------------------------

    async def set_maintenance(self, drone_id: str, on: bool, who: Principal, reason: str = "") -> Drone:
        drone = self.state.drones.get(drone_id)
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
        self.ch.move(drone.machine, target, now, cs, reason or ("maintenance" if on else "back in service"), who.actor)
        self.ch.drone_event(cs, drone, now)
        self.passes.run(now, cs)
        await self.journal.commit(cs)
        return drone
