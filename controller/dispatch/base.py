"""The Dispatcher interface and the plain data it works on.

The dispatch centre hands a dispatcher a snapshot (waiting incidents, every
drone with its state) and gets decisions back; it never lets a dispatcher touch
live objects. That keeps engines swappable and testable on hand-made layouts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.config.models import DroneModel
from controller.domain.states import DroneState


#: Drone states from which a drone can take a new incident (in the air it can only be preempted).
AVAILABLE = frozenset({DroneState.STANDBY, DroneState.CHARGING, DroneState.LANDED})


@dataclass(frozen=True, slots=True)
class DroneCandidate:
    id: str
    station_id: str
    model_id: str
    model: DroneModel
    state: DroneState
    battery_pct: float
    lat: float
    lon: float
    #: East/north metres in the city's local frame (see controller.geo.LocalFrame).
    x: float
    y: float
    pilot_on_duty: bool
    #: The mission the drone is flying, and its incident's grade (for preemption by a more urgent call).
    mission_id: str | None = None
    mission_grade: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentRequest:
    id: str
    grade: int
    category: str
    lat: float
    lon: float
    x: float
    y: float
    created_at: datetime
    drones_needed: int = 1
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Assignment:
    drone_id: str
    station_id: str
    eta_s: float
    distance_m: float
    #: Set when the drone is taken from a less urgent mission in flight: that mission's id, and why.
    preempts: str | None = None
    preempt_reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do for one incident: offers to make (best first) and why other drones were ruled out.

    Per-drone reasons are worded only when someone asks (`ruled_out`): a pass
    re-evaluates every waiting incident, and most of those explanations are
    never read.
    """

    incident_id: str
    assignments: tuple[Assignment, ...]
    #: reason -> how many drones it ruled out, over the whole fleet.
    ruled_out_counts: Mapping[str, int] = field(default_factory=dict)
    explain: Callable[[], dict[str, str]] | None = field(default=None, repr=False, compare=False)

    @property
    def ruled_out(self) -> dict[str, str]:
        """drone id -> reason, for the nearest drones that were not chosen (bounded in size)."""
        return self.explain() if self.explain is not None else {}


class Dispatcher(ABC):
    """Decides offers for waiting incidents. Must be fast (called on every intake and release) and pure."""

    @abstractmethod
    def decide(
        self,
        incidents: Sequence[IncidentRequest],
        drones: Sequence[DroneCandidate],
        now: datetime,
        freed: frozenset[str] | None = None,
        must: frozenset[str] = frozenset(),
    ) -> list[Decision]:
        """One Decision per incident, in the order the incidents should be served.

        `freed`, when given, names the only drones whose availability changed since
        the incidents not in `must` were last decided: a dispatcher may leave out
        those that none of the freed drones could serve (they would be decided as
        before). Incidents in `must` are always decided.
        """


def unavailable_reason(drone: DroneCandidate) -> str | None:
    """Why a drone cannot take any new incident right now, or None (the same rule for every dispatcher)."""
    if drone.state is DroneState.MAINTENANCE:
        return "in maintenance"
    if drone.state is DroneState.LOST_LINK:
        return "link lost"
    if drone.state not in AVAILABLE:
        return f"busy ({drone.state.value})"
    if not drone.pilot_on_duty:
        return "no pilot on duty"
    return None
