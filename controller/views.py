"""The one declaration of each JSON shape the controller sends, and the functions that build them.

Shapes are `TypedDict`s: REST routes name them as response models (FastAPI
validates and documents them through pydantic) and event payloads are built by
the same functions, at the cost of a plain dict. Clients (pilot page, command
map, benchmarks) parse the same structure whether it came from
`GET /missions/{id}` or from a `mission.updated` event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field
from typing_extensions import NotRequired, TypedDict

from controller.domain.alerts import Alert, AlertKind, Severity
from controller.domain.entities import Drone, Incident, Mission
from controller.events import iso as _iso
from controller.search.plan import SearchPlan


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, the same form pydantic gives, so clients can compare strings."""
    return _iso(value) if value else None


# --- shapes -------------------------------------------------------------------------------------


class SearchArea(TypedDict, total=False):
    radius_m: float
    polygon: list[list[float]]


class IncidentOut(TypedDict):
    id: str
    grade: int
    category: str
    status: str
    lat: float
    lon: float
    address: str | None
    description: str
    callers: int
    drones_requested: int
    created_at: str | None
    updated_at: str | None
    last_report_at: str | None
    closed_at: str | None
    close_reason: str | None
    blocked_reason: Annotated[str | None, Field(description="why no drone can serve it (e.g. no-fly zone)")]
    search_area: Annotated[SearchArea | None, Field(description="missing-person searches: radius_m or polygon ([lon, lat] ring)")]


class IncidentCreated(IncidentOut):
    merged: Annotated[bool, Field(description="true when this call was merged into an open incident as a repeat call")]


class SearchPlanOut(TypedDict):
    strip: int
    strips: int
    waypoints: list[list[float]]
    done: int
    altitude_m: float
    speed_ms: float
    end: NotRequired[int]
    resumed_from: NotRequired[str]
    split_from: NotRequired[str]


class OfferIncident(TypedDict):
    """What a pilot needs to decide in seconds about the incident."""

    id: str
    grade: int
    category: str
    lat: float
    lon: float
    address: str | None
    description: str
    callers: int


class MissionOut(TypedDict):
    id: str
    incident_id: str
    drone_id: str
    station_id: str
    pilot_id: str | None
    state: str
    offered_at: str | None
    expires_at: str | None
    eta_s: float
    distance_m: float
    decided_at: str | None
    decided_by: str | None
    reason: str | None
    updated_at: str | None
    plan: Annotated[SearchPlanOut | None, Field(description="a search mission's share of the area")]
    remaining_s: NotRequired[Annotated[float, Field(description="seconds left to answer an open offer")]]
    incident: NotRequired[OfferIncident]


class IncidentDetail(IncidentOut):
    reports: list[dict]
    missions: list[MissionOut]
    timeline: list[dict]
    queue_reasons: Annotated[dict[str, str], Field(description="why drones were ruled out, if queued")]


class MissionDetail(MissionOut):
    timeline: Annotated[list[dict], Field(description="state transitions")]
    steps: Annotated[list[dict], Field(description="flight steps: arming, takeoff, targets, landing ...")]


class DroneOut(TypedDict):
    id: str
    station_id: str
    model: str
    state: str
    since: str | None
    battery_pct: float
    lat: float
    lon: float
    alt_m: float
    mission_id: str | None
    updated_at: str | None


class TrackOut(TypedDict):
    drone_id: str
    minutes: float
    points: Annotated[
        list[list[float]], Field(description="[[lat, lon, alt_m, seconds_ago], ...], oldest first, one every 2 s at most")
    ]


class StationOut(TypedDict):
    id: str
    name: str
    district: str
    lat: float
    lon: float
    drones: list[str]
    pilot_on_duty: str | None


# --- builders -------------------------------------------------------------------------------------


def incident_view(inc: Incident) -> IncidentOut:
    return {
        "id": inc.id,
        "grade": inc.grade,
        "category": inc.category,
        "status": inc.status.value,
        "lat": inc.lat,
        "lon": inc.lon,
        "address": inc.address,
        "description": inc.description,
        "callers": inc.callers,
        "drones_requested": inc.drones_requested,
        "created_at": iso(inc.created_at),
        "updated_at": iso(inc.updated_at),
        "last_report_at": iso(inc.last_report_at),
        "closed_at": iso(inc.closed_at),
        "close_reason": inc.close_reason,
        "blocked_reason": inc.blocked_reason,
        "search_area": inc.search_area,  # type: ignore[typeddict-item]
    }


def plan_view(plan: SearchPlan | None) -> SearchPlanOut | None:
    return plan.to_json() if plan is not None else None  # type: ignore[return-value]


def mission_view(m: Mission, now: datetime | None = None) -> MissionOut:
    view: MissionOut = {
        "id": m.id,
        "incident_id": m.incident_id,
        "drone_id": m.drone_id,
        "station_id": m.station_id,
        "pilot_id": m.pilot_id,
        "state": m.state.value,
        "offered_at": iso(m.offered_at),
        "expires_at": iso(m.expires_at),
        "eta_s": round(m.eta_s, 1),
        "distance_m": round(m.distance_m, 1),
        "decided_at": iso(m.decided_at),
        "decided_by": m.decided_by,
        "reason": m.reason,
        "updated_at": iso(m.updated_at),
        "plan": plan_view(m.plan),
    }
    if now is not None and m.state.value == "offered":
        view["remaining_s"] = max(0.0, round((m.expires_at - now).total_seconds(), 1))
    return view


def offer_view(m: Mission, inc: Incident, now: datetime) -> MissionOut:
    """What a pilot needs to decide in seconds: the mission plus the incident's essentials."""
    view = mission_view(m, now)
    view["incident"] = {
        "id": inc.id,
        "grade": inc.grade,
        "category": inc.category,
        "lat": inc.lat,
        "lon": inc.lon,
        "address": inc.address,
        "description": inc.description,
        "callers": inc.callers,
    }
    return view


def drone_view(d: Drone) -> DroneOut:
    return {
        "id": d.id,
        "station_id": d.station_id,
        "model": d.model,
        "state": d.state.value,
        "since": iso(d.machine.since),
        "battery_pct": round(d.battery_pct, 1),
        "lat": d.lat,
        "lon": d.lon,
        "alt_m": round(d.alt_m, 1),
        "mission_id": d.mission_id,
        "updated_at": iso(d.updated_at),
    }


# --- pilot control (issue 17) -------------------------------------------------------------------


class HolderOut(TypedDict):
    name: str
    role: str


class GeofenceOut(TypedDict):
    lat: float
    lon: float
    radius_m: float


class ControlLimitsOut(TypedDict):
    min_alt_m: float
    max_alt_m: float
    min_orbit_radius_m: float
    max_orbit_radius_m: float
    max_speed_ms: float
    geofence: GeofenceOut
    nofly_buffer_m: Annotated[float, Field(description="targets keep this far from no-fly zones; legs and orbits half of it")]


class ControlOut(TypedDict):
    drone_id: str
    mission_id: Annotated[str | None, Field(description="the mission in flight (null: none, nobody holds control)")]
    holder: HolderOut | None
    since: str | None
    taken_over_from: HolderOut | None
    mode: Annotated[str, Field(description="controller: the controller flies its plan; pilot: a pilot directs the flight")]
    paused_sweep: bool
    limits: ControlLimitsOut


class CommandOut(TypedDict):
    id: Annotated[str, Field(description="a fresh id for this command")]
    kind: str
    drone_id: str
    mission_id: str
    by: HolderOut
    accepted: bool
    detail: str
    acked_in_ms: Annotated[float, Field(description="API to the vehicle's last acknowledgement, milliseconds")]


class FlightOut(TypedDict):
    mission_id: str
    drone_id: str
    state: str
    lat: float | None
    lon: float | None
    alt_m: float | None
    ground_speed_ms: float | None
    heading_deg: float | None
    gimbal_pitch_deg: Annotated[
        float | None, Field(description="the camera mount's pitch in degrees (0 level, -90 straight down) as the "
                            "vehicle reports it (GIMBAL_DEVICE_ATTITUDE_STATUS); null when it reports none")
    ]
    battery_pct: float | None
    mode: Annotated[str | None, Field(description="the vehicle's flight mode (ArduCopter's name)")]
    armed: bool
    link_up: bool
    heartbeat_age_s: float | None
    return_to: Annotated[str | None, Field(description="where the return rule takes it: a station id, or home")]
    return_need_pct: Annotated[float | None, Field(description="battery the way home takes from here (before the reserve)")]
    return_s: Annotated[float | None, Field(description="seconds the way home takes from here")]
    phase: str | None
    piloted: bool
    paused_sweep: bool
    target: Annotated[list[float] | None, Field(description="the pilot's target [lat, lon, alt_m]")]
    scene: Annotated[list[float], Field(description="[lat, lon] of the incident")]
    route: Annotated[list[list[float]], Field(description="path ahead [[lat, lon], ...]")]
    track: Annotated[list[list[float]], Field(description="recent positions [[lat, lon, alt_m], ...], oldest first")]


def holder_view(name: str, role: str) -> HolderOut:
    return {"name": name, "role": role}


# --- alerts (issue 18) -------------------------------------------------------------------------------


class AckOut(TypedDict):
    by: HolderOut
    at: str | None


class AlertOut(TypedDict):
    id: Annotated[int, Field(description="the sequence number of its `alert` event")]
    kind: AlertKind
    severity: Severity
    text: str
    at: str | None
    drone_id: str | None
    mission_id: str | None
    incident_id: str | None
    station_id: str | None
    category: Annotated[str | None, Field(description="the incident's category, if it concerns one")]
    acknowledged: Annotated[AckOut | None, Field(description="who acknowledged it and when; null: still open")]


def alert_view(a: Alert) -> AlertOut:
    return {
        "id": a.id,
        "kind": a.kind,
        "severity": a.severity,
        "text": a.text,
        "at": iso(a.at),
        "drone_id": a.drone_id,
        "mission_id": a.mission_id,
        "incident_id": a.incident_id,
        "station_id": a.station_id,
        "category": a.category,
        "acknowledged": {"by": holder_view(a.ack.name, a.ack.role), "at": iso(a.ack.at)} if a.ack else None,
    }
