"""Request and response bodies. Strict: unknown fields, out-of-range values and oversized strings are 422."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.config.models import INCIDENT_CATEGORIES

Category = Literal["traffic_accident", "missing_person", "violent_crime", "fire", "other"]
assert set(Category.__args__) == set(INCIDENT_CATEGORIES)  # type: ignore[attr-defined]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class IncidentCreate(Strict):
    grade: int = Field(ge=1, le=4, description="1 most urgent, 4 least")
    category: Category
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=300)
    description: str = Field(default="", max_length=4000)
    caller: str | None = Field(default=None, max_length=120, description="caller name or number")
    drones_requested: int | None = Field(
        default=None, ge=1, le=8, description="default 1; for missing-person searches the policy's number by grade"
    )
    search_radius_m: float | None = Field(
        default=None, gt=10, le=10_000, description="missing_person: search this radius around lat/lon"
    )
    search_polygon: list[tuple[float, float]] | None = Field(
        default=None, min_length=4, max_length=200, description="missing_person: search area as a closed [lon, lat] ring"
    )

    @model_validator(mode="after")
    def _search_area(self) -> IncidentCreate:
        if (self.search_radius_m is not None or self.search_polygon is not None) and self.category != "missing_person":
            raise ValueError("a search area is only for missing_person incidents")
        if self.search_radius_m is not None and self.search_polygon is not None:
            raise ValueError("give search_radius_m or search_polygon, not both")
        if self.search_polygon is not None:
            ring = self.search_polygon
            if ring[0] != ring[-1]:
                raise ValueError("search_polygon must be closed (first position == last)")
            if any(not (-180 <= lon <= 180 and -90 <= lat <= 90) for lon, lat in ring):
                raise ValueError("search_polygon positions must be [lon, lat] in range")
            from shapely import Polygon

            if not Polygon(ring).is_valid:
                raise ValueError("search_polygon is not a simple polygon")
        return self


class CloseRequest(Strict):
    reason: str = Field(default="", max_length=500)


class SearchDronesRequest(Strict):
    count: int = Field(ge=1, le=8, description="drones to add to the search; they share the remaining area")


class DeclineRequest(Strict):
    reason: str = Field(default="", max_length=500)


class AbortRequest(Strict):
    reason: str = Field(min_length=1, max_length=500)


class MaintenanceRequest(Strict):
    on: bool
    reason: str = Field(default="", max_length=500)


class IncidentOut(BaseModel):
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
    created_at: str
    updated_at: str | None
    last_report_at: str | None
    closed_at: str | None
    close_reason: str | None
    blocked_reason: str | None = Field(default=None, description="why no drone can serve it (e.g. no-fly zone)")
    search_area: dict | None = None


class IncidentCreated(IncidentOut):
    merged: bool = Field(description="true when this call was merged into an open incident as a repeat call")


class MissionOut(BaseModel):
    id: str
    incident_id: str
    drone_id: str
    station_id: str
    pilot_id: str | None
    state: str
    offered_at: str
    expires_at: str
    remaining_s: float | None = None
    eta_s: float
    distance_m: float
    decided_at: str | None
    decided_by: str | None
    reason: str | None
    updated_at: str | None
    plan: dict | None = None
    incident: dict | None = None


class IncidentDetail(IncidentOut):
    reports: list[dict]
    missions: list[MissionOut]
    timeline: list[dict]
    queue_reasons: dict[str, str] = Field(default_factory=dict, description="why drones were ruled out, if queued")


class MissionDetail(MissionOut):
    timeline: list[dict] = Field(description="state transitions")
    steps: list[dict] = Field(default_factory=list, description="flight steps: arming, takeoff, targets, landing ...")


class DroneOut(BaseModel):
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


class StationOut(BaseModel):
    id: str
    name: str
    district: str
    lat: float
    lon: float
    drones: list[str]
    pilot_on_duty: str | None


class Problem(BaseModel):
    detail: str
    error: str
