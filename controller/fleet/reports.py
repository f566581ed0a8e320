"""The seam between the dispatch centre and the flight layer, in both directions.

The centre tells the flight layer when a mission must start flying or stop
(`MissionObserver`); the flight layer reports what the vehicles do
(`FlightReports`). Both sides type against these protocols, so the fleet code
never imports the centre and can be tested against a recording fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.control.commands import CommandResult, PilotCommand
from controller.domain.alerts import AlertKind
from controller.domain.entities import Incident, Mission
from controller.search.plan import SearchPlan

#: Below this height above home and disarmed, a vehicle is on the ground.
GROUND_ALT_M = 2.0


@dataclass(frozen=True, slots=True)
class VehicleReport:
    """What a vehicle says about itself, for reconciling the controller's state with it."""

    armed: bool
    alt_rel_m: float
    mode: int | None
    lat: float
    lon: float
    battery_pct: float | None = None
    mission_seq: int | None = None

    @property
    def in_air(self) -> bool:
        return self.armed and self.alt_rel_m > GROUND_ALT_M

    @property
    def on_ground(self) -> bool:
        """Landed and disarmed: nothing flies until someone arms it."""
        return not self.armed and self.alt_rel_m < GROUND_ALT_M


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What the flight layer must do after a reconciliation: supervise these flights, bring these drones down."""

    #: Missions to fly on from where their vehicle is (the runner's resume).
    resume: tuple[tuple[Mission, Incident], ...] = ()
    #: Drones flying with no mission to fly for: command them home and report their landing.
    bring_home: tuple[str, ...] = ()
    #: Human-readable decisions, for the log.
    decisions: tuple[str, ...] = field(default=())


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

    async def flight_returning(self, mission_id: str, reason: str, *, alert: AlertKind | None = None) -> None:
        """The drone heads home (battery, failsafe, end of search); its incident gets another drone if still open.
        `alert`: people are told at once, with this kind (the vehicle took itself over, the battery reserve)."""

    async def flight_landed(self, drone_id: str, reason: str = "landed", *, deliberate: bool = False) -> None:
        """Wheels down and disarmed (with or without a mission: a drone brought home after a reconciliation).
        `deliberate`: a pilot landed it there (`reason` says who); away from a station it still needs recovering."""

    async def flight_failed(self, mission_id: str, reason: str, *, to_maintenance: bool) -> None:
        """The flight could not be carried out (arming refused, command unanswered, ...)."""

    async def block_incident(self, incident_id: str, reason: str) -> None:
        """No drone can serve the incident (e.g. it lies in a no-fly zone)."""

    async def search_plan(self, mission_id: str) -> SearchPlan:
        """The search mission's share of the area (made and stored now)."""

    async def search_progress(self, mission_id: str, done: int) -> None:
        """How many of its waypoints a search mission has flown."""

    async def link_state(self, drone_id: str, up: bool) -> None:
        """The link went down (the drone shows lost_link). A link coming up is reconciled instead."""

    async def reconcile(self, vehicles: Mapping[str, VehicleReport | None], *, why: str) -> Reconciled:
        """Make the drones' and their missions' states agree with what their vehicles report (None: no link)."""

    def check_vehicle(self, drone_id: str, vehicle: VehicleReport) -> str | None:
        """The contradiction between the drone's state and its vehicle, once it has lasted past the grace (else None)."""


    def telemetry(self, drone_id: str, lat: float, lon: float, alt_m: float, battery_pct: float | None) -> None:
        """A position sample, folded into live state (no commit)."""

    def live_telemetry(self, drone_id: str, data: dict[str, Any]) -> None:
        """Publish a telemetry snapshot for the maps (ephemeral, at most about once a second per drone)."""


class PilotFlight(Protocol):
    """Implemented by the flight layer: carries out a pilot's command on the drone's flying mission."""

    async def pilot_command(self, drone_id: str, cmd: PilotCommand, by: str) -> CommandResult:
        """Check and send `cmd` (raises controller.control.commands.CommandRefused with the HTTP status and why)."""

    def control_mode(self, drone_id: str) -> tuple[bool, bool]:
        """(a pilot directs the flight now, a search sweep is paused for it)."""
