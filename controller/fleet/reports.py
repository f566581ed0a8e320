"""The seam between the dispatch centre and the flight layer, in both directions.

The centre tells the flight layer when a mission must start flying or stop
(`MissionObserver`); the flight layer reports what the vehicles do
(`FlightReports`). Both sides type against these protocols, so the fleet code
never imports the centre and can be tested against a recording fake.
"""

from __future__ import annotations

from typing import Any, Protocol

from controller.domain.entities import Incident, Mission
from controller.search.plan import SearchPlan


class MissionObserver(Protocol):
    """Implemented by the flight layer: told when a mission must start flying or stop."""

    def mission_accepted(self, mission: Mission, incident: Incident) -> None: ...

    def mission_recalled(self, mission: Mission, reason: str) -> None:
        """The mission was aborted, or its incident closed: stop, and bring the drone home if it flies."""


class FlightReports(Protocol):
    """Implemented by the dispatch centre: what the vehicles did, made durable and published."""

    async def flight_step(self, mission_id: str, step: str, detail: str = "", ok: bool = True) -> None:
        """One flight step (armed, takeoff, target sent, ...) for the mission's timeline."""

    async def flight_launched(self, mission_id: str) -> None:
        """The drone is airborne on its way."""

    async def flight_on_scene(self, mission_id: str, searching: bool = False) -> None: ...

    async def flight_returning(self, mission_id: str, reason: str) -> None:
        """The drone heads home (battery, failsafe, end of search); its incident gets another drone if still open."""

    async def flight_landed(self, drone_id: str, reason: str = "landed") -> None:
        """Wheels down and disarmed."""

    async def flight_failed(self, mission_id: str, reason: str, *, to_maintenance: bool) -> None:
        """The flight could not be carried out (arming refused, command unanswered, ...)."""

    async def block_incident(self, incident_id: str, reason: str) -> None:
        """No drone can serve the incident (e.g. it lies in a no-fly zone)."""

    async def search_plan(self, mission_id: str) -> SearchPlan:
        """The search mission's share of the area (made and stored now)."""

    async def search_progress(self, mission_id: str, done: int) -> None:
        """How many of its waypoints a search mission has flown."""

    async def link_state(self, drone_id: str, up: bool) -> None: ...

    def telemetry(self, drone_id: str, lat: float, lon: float, alt_m: float, battery_pct: float | None) -> None:
        """A position sample, folded into live state (no commit)."""

    def live_telemetry(self, drone_id: str, data: dict[str, Any]) -> None:
        """Publish a telemetry snapshot for the maps (ephemeral, at most about once a second per drone)."""
