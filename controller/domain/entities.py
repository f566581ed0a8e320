"""Live domain objects. Each owns a StateMachine; everything else is plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from controller.domain.state_machine import StateMachine
from controller.domain.states import (
    DRONE_TRANSITIONS,
    INCIDENT_TRANSITIONS,
    MISSION_TRANSITIONS,
    OPEN_INCIDENT,
    DroneState,
    IncidentStatus,
    MissionState,
)

if TYPE_CHECKING:
    from controller.dispatch.base import Decision
    from controller.search.plan import SearchPlan


@dataclass(slots=True)
class CallerReport:
    received_at: datetime
    lat: float
    lon: float
    caller: str | None = None
    text: str = ""


@dataclass(slots=True)
class Incident:
    id: str
    grade: int
    category: str
    lat: float
    lon: float
    created_at: datetime
    created_by: str
    machine: StateMachine[IncidentStatus]
    address: str | None = None
    description: str = ""
    callers: int = 1
    drones_requested: int = 1
    updated_at: datetime | None = None
    last_report_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None
    #: Drones that declined, let the offer expire, or were aborted for this incident: never offered again.
    excluded_drones: set[str] = field(default_factory=set)
    #: The last dispatch decision that left this incident waiting (explains why), None once offered.
    queue_decision: Decision | None = None
    #: Whether the incident's entry into the queue has been announced on the event stream.
    queue_announced: bool = False
    #: Set when no drone can serve it at all (e.g. inside a no-fly zone); it is then not offered.
    blocked_reason: str | None = None
    #: Missing-person searches: {"radius_m": r} around the incident's position, or {"polygon": [[lon, lat], ...]}.
    search_area: dict[str, Any] | None = None

    @property
    def queue_reasons(self) -> dict[str, str]:
        return self.queue_decision.ruled_out if self.queue_decision is not None else {}

    @classmethod
    def new(cls, id: str, *, at: datetime, status: IncidentStatus = IncidentStatus.QUEUED, **kw) -> Incident:
        machine = StateMachine("incident", id, status, INCIDENT_TRANSITIONS, at)
        kw.setdefault("updated_at", at)
        kw.setdefault("last_report_at", at)
        return cls(id=id, created_at=at, machine=machine, **kw)

    @property
    def status(self) -> IncidentStatus:
        return self.machine.state

    @property
    def is_open(self) -> bool:
        return self.machine.state in OPEN_INCIDENT


@dataclass(slots=True)
class Mission:
    id: str
    incident_id: str
    drone_id: str
    station_id: str
    machine: StateMachine[MissionState]
    offered_at: datetime
    expires_at: datetime
    eta_s: float
    distance_m: float
    #: The drone's state before the offer, restored if the offer is declined, expires or is withdrawn.
    drone_prior_state: DroneState
    pilot_id: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None
    updated_at: datetime | None = None
    #: A search mission's share of the area (set when its drone reaches the search).
    plan: SearchPlan | None = None

    @classmethod
    def new(cls, id: str, *, at: datetime, state: MissionState = MissionState.OFFERED, **kw) -> Mission:
        machine = StateMachine("mission", id, state, MISSION_TRANSITIONS, at)
        kw.setdefault("updated_at", at)
        return cls(id=id, machine=machine, offered_at=kw.pop("offered_at", at), **kw)

    @property
    def state(self) -> MissionState:
        return self.machine.state


@dataclass(slots=True)
class Drone:
    id: str
    station_id: str
    model: str
    machine: StateMachine[DroneState]
    battery_pct: float
    lat: float
    lon: float
    alt_m: float = 0.0
    mission_id: str | None = None
    updated_at: datetime | None = None

    @classmethod
    def new(cls, id: str, *, at: datetime, state: DroneState = DroneState.STANDBY, **kw) -> Drone:
        machine = StateMachine("drone", id, state, DRONE_TRANSITIONS, at)
        kw.setdefault("updated_at", at)
        return cls(id=id, machine=machine, **kw)

    @property
    def state(self) -> DroneState:
        return self.machine.state
