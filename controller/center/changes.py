"""The primitive changes every command is made of: a transition, its row, its event, and what dispatch must revisit.

Each helper changes live state and records the matching rows and stamped
events in the command's changeset, so a command is a sequence of these calls
followed by one commit. `Dirty` collects what the current command freed or
re-queued, so the dispatch pass that follows can be incremental.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.center.alerts import stamp_alert
from controller.center.journal import Journal
from controller.center.offers import OfferTimers
from controller.center.state import LiveState
from controller.dispatch.base import AVAILABLE
from controller.domain.alerts import Alert, AlertKind, NewAlert, Severity
from controller.domain.entities import Drone, Incident, Mission
from controller.domain.state_machine import StateMachine
from controller.domain.states import AIRBORNE, DroneState, IncidentStatus, MissionState
from controller.fleet.reports import MissionObserver
from controller.store import rows
from controller.store.writer import Changeset
from controller.views import drone_view, incident_view, offer_view

D, I, M = DroneState, IncidentStatus, MissionState


@dataclass(slots=True)
class Dirty:
    """What changed since the last dispatch pass."""

    #: Drones that became available (a waiting incident might now be served).
    freed: set[str] = field(default_factory=set)
    #: Incidents that must be decided in full (they lost a drone or gained a need).
    requeued: set[str] = field(default_factory=set)
    #: Drones whose dispatch candidate must be rebuilt (state, position or battery changed).
    stale: set[str] = field(default_factory=set)
    #: Drones changed since the last periodic sweep (a charging battery raises no command: the sweep looks at them).
    swept: set[str] = field(default_factory=set)
    #: Incidents whose dispatch request must be rebuilt (status, missions, exclusions or grade changed).
    incidents: set[str] = field(default_factory=set)

    def drone_changed(self, drone_id: str) -> None:
        self.stale.add(drone_id)
        self.swept.add(drone_id)

    def take(self) -> tuple[frozenset[str], frozenset[str]]:
        freed, requeued = frozenset(self.freed), frozenset(self.requeued)
        self.freed.clear()
        self.requeued.clear()
        return freed, requeued


class Changes:
    def __init__(
        self, state: LiveState, journal: Journal, timers: OfferTimers, observers: list[MissionObserver], dirty: Dirty
    ) -> None:
        self.state = state
        self.journal = journal
        self.timers = timers
        self.observers = observers
        self.dirty = dirty

    # --- records ------------------------------------------------------------------------

    def move(
        self, machine: StateMachine[Any], to: Any, now: datetime, cs: Changeset, reason: str = "", actor: str = "system"
    ) -> None:
        cs.insert(rows.transition_row(machine.advance(to, now, reason, actor)))

    def mission_event(self, cs: Changeset, type: str, m: Mission, now: datetime) -> None:
        inc = self.state.incident_any(m.incident_id)
        data = offer_view(m, inc, now) if inc is not None else {}
        self.journal.event(
            cs, type, data, now,
            incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id, mission_id=m.id,
            category=inc.category if inc is not None else None,
        )
        cs.upsert(rows.mission_row(m))
        self.dirty.incidents.add(m.incident_id)

    def incident_event(self, cs: Changeset, type: str, inc: Incident, now: datetime, **extra: Any) -> None:
        data: dict[str, Any] = dict(incident_view(inc))
        data.update(extra)
        self.journal.event(cs, type, data, now, incident_id=inc.id, category=inc.category)
        cs.upsert(rows.incident_row(inc))
        self.dirty.incidents.add(inc.id)

    def drone_event(self, cs: Changeset, d: Drone, now: datetime) -> None:
        self.dirty.drone_changed(d.id)
        if d.state in AVAILABLE:
            self.dirty.freed.add(d.id)
        d.updated_at = now
        self.journal.event(cs, "drone.updated", dict(drone_view(d)), now, station_id=d.station_id, drone_id=d.id)
        cs.upsert(rows.drone_row(d))

    def alert(
        self, cs: Changeset, now: datetime, kind: AlertKind, text: str, *, severity: Severity | None = None,
        drone: Drone | None = None, mission: Mission | None = None, incident: Incident | None = None,
    ) -> Alert:
        """A message for people: commanders see all, pilots their station's, search teams their searches'."""
        station = drone.station_id if drone else mission.station_id if mission else None
        inc = incident or (self.state.incident_any(mission.incident_id) if mission else None)
        return stamp_alert(self.journal, cs, now, NewAlert(
            kind, text, severity, drone_id=drone.id if drone else mission.drone_id if mission else None,
            mission_id=mission.id if mission else None,
            incident_id=inc.id if inc else mission.incident_id if mission else None,
            station_id=station, category=inc.category if inc else None,
        ))

    # --- incident status ------------------------------------------------------------------

    def sync_status(self, inc: Incident, now: datetime, cs: Changeset, reason: str, actor: str = "system") -> None:
        """Move the incident to the status its missions imply, and mark it for dispatch if it needs a drone."""
        wanted = self.state.derived_status(inc)
        self.dirty.incidents.add(inc.id)
        if wanted is I.QUEUED or self.state.drones_needed(inc):
            self.dirty.requeued.add(inc.id)
        if inc.is_open and wanted is not inc.status:
            self.move(inc.machine, wanted, now, cs, reason, actor)
            inc.updated_at = now
            self.incident_event(cs, "incident.updated", inc, now)

    # --- ending a mission's claim on its drone ----------------------------------------------

    def release_mission(
        self, m: Mission, now: datetime, cs: Changeset, reason: str, actor: str, *, resolved: bool
    ) -> None:
        """End a mission's claim on its drone: withdraw an offer, stand down a preflight, recall a flight."""
        drone = self.state.drones[m.drone_id]
        self.timers.disarm(m.id)
        airborne = drone.state in AIRBORNE and drone.mission_id == m.id
        if resolved and airborne and m.machine.can(M.RETURNING):
            self.move(m.machine, M.RETURNING, now, cs, reason, actor)  # completes when the drone lands
        else:
            self.move(m.machine, M.ABORTED, now, cs, reason, actor)
        m.reason, m.updated_at = reason, now
        if m.state is M.ABORTED and not airborne:
            if drone.state is D.OFFERED:
                self.free_offered_drone(m, now, cs, reason, actor)
            elif drone.state is D.PREFLIGHT and drone.mission_id == m.id:
                drone.mission_id = None
                if not self.observers:  # nothing flies it: it never left the ground
                    self.move(drone.machine, D.STANDBY, now, cs, reason, actor)
                # else it stays in preflight, unavailable, until the flight layer reports it down and disarmed
                # (its take-off may already be under way)
                self.drone_event(cs, drone, now)
        if airborne and drone.state is not D.RETURNING:
            self.move(drone.machine, D.RETURNING, now, cs, reason, actor)
            self.drone_event(cs, drone, now)
        self.mission_event(cs, "mission.updated", m, now)
        for observer in self.observers:
            observer.mission_recalled(m, reason)

    def free_offered_drone(self, m: Mission, now: datetime, cs: Changeset, reason: str, actor: str) -> None:
        """The drone goes back to what it was before this offer, if it is still offered for this one (it may
        have landed and been offered something else since)."""
        drone = self.state.drones[m.drone_id]
        if drone.mission_id != m.id:
            return
        drone.mission_id = None
        if drone.state is D.OFFERED:
            self.move(drone.machine, m.drone_prior_state, now, cs, reason, actor)
            self.drone_event(cs, drone, now)
