"""Live state: the drones, the open incidents and their missions, held in memory and indexed.

Only the centre's commands and flight reports change it; everything else reads
it through `LiveView`. Incident status is derived from the incident's missions
here, so the two can never disagree.
"""

from __future__ import annotations

from controller.domain.entities import Drone, Incident, Mission
from controller.domain.states import (
    ACTIVE_MISSION,
    FINISHED_MISSION,
    SERVING_MISSION,
    IncidentStatus,
    MissionState,
)

I, M = IncidentStatus, MissionState


class LiveState:
    def __init__(self) -> None:
        self.drones: dict[str, Drone] = {}
        #: Open incidents only.
        self.incidents: dict[str, Incident] = {}
        #: Active missions, and every mission of an open incident.
        self.missions: dict[str, Mission] = {}
        #: Closed incidents one of whose missions is still active (a drone flying home for it).
        self.closed: dict[str, Incident] = {}
        self._by_incident: dict[str, set[str]] = {}
        self.incident_no = 0
        self.mission_no = 0

    # --- identifiers ---------------------------------------------------------------

    def next_incident_id(self) -> str:
        self.incident_no += 1
        return f"INC-{self.incident_no:06d}"

    def next_mission_id(self) -> str:
        self.mission_no += 1
        return f"MSN-{self.mission_no:06d}"

    # --- indexes ---------------------------------------------------------------------

    def add_mission(self, m: Mission) -> None:
        self.missions[m.id] = m
        self._by_incident.setdefault(m.incident_id, set()).add(m.id)

    def incident_missions(self, incident_id: str) -> list[Mission]:
        return [self.missions[mid] for mid in self._by_incident.get(incident_id, ())]

    def incident_any(self, incident_id: str) -> Incident | None:
        """An open incident, or a closed one whose drone is still flying for it."""
        return self.incidents.get(incident_id) or self.closed.get(incident_id)

    def mission_of(self, drone: Drone) -> Mission | None:
        return self.missions.get(drone.mission_id) if drone.mission_id else None

    def close_incident(self, inc: Incident) -> None:
        del self.incidents[inc.id]
        self.closed[inc.id] = inc
        self.forget_closed()

    def forget_closed(self) -> None:
        """Closed incidents stay in memory only while one of their missions is still active."""
        for inc_id in list(self.closed):
            if not any(m.state in ACTIVE_MISSION for m in self.incident_missions(inc_id)):
                del self.closed[inc_id]
                for mid in self._by_incident.pop(inc_id, ()):
                    self.missions.pop(mid, None)

    # --- derived ---------------------------------------------------------------------------

    def derived_status(self, inc: Incident) -> IncidentStatus:
        states = {m.state for m in self.incident_missions(inc.id)}
        if M.ON_SCENE in states:
            return I.ON_SCENE
        if states & {M.ACCEPTED, M.LAUNCHED}:
            return I.DISPATCHED
        if M.OFFERED in states:
            return I.OFFERED
        return I.QUEUED

    def drones_needed(self, inc: Incident) -> int:
        """Drones the incident still asked for beyond those serving it.

        A search drone that swept its whole share still counts: its share needs no other drone.
        """
        serving = sum(
            1 for m in self.incident_missions(inc.id)
            if m.state in SERVING_MISSION or (m.state in FINISHED_MISSION and m.plan is not None and m.plan.finished)
        )
        return max(0, inc.drones_requested - serving)
