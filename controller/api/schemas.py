"""Request bodies (strict: unknown fields, out-of-range values and oversized strings are 422) and the error body.

Response shapes are declared once, in controller.views, beside the functions
that build them for both REST and the event stream.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from controller.domain.categories import INCIDENT_CATEGORIES, SEARCH_CATEGORY

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
        if (self.search_radius_m is not None or self.search_polygon is not None) and self.category != SEARCH_CATEGORY:
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


class Problem(BaseModel):
    detail: str
    error: str
