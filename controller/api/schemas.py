"""Request bodies and parameters. Strict: unknown fields, wrong JSON types, non-finite numbers, out-of-range
values, oversized or non-Unicode strings are 422, naming the field and the reason.

Response shapes are declared once, in controller.views, beside the functions
that build them for both REST and the event stream.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from controller.api.errors import Problem  # noqa: F401  (re-exported: the error body)
from controller.domain.categories import INCIDENT_CATEGORIES, SEARCH_CATEGORY

Category = Literal["traffic_accident", "missing_person", "violent_crime", "fire", "other"]
assert set(Category.__args__) == set(INCIDENT_CATEGORIES)  # type: ignore[attr-defined]

#: Largest search area: the area of the largest search radius (π·(10 km)² ≈ 314 km²).
MAX_SEARCH_RADIUS_M = 10_000.0
MAX_SEARCH_AREA_M2 = math.pi * MAX_SEARCH_RADIUS_M**2
#: Smallest: the area of the smallest radius (π·(10 m)²).
MIN_SEARCH_RADIUS_M = 10.0
MIN_SEARCH_AREA_M2 = math.pi * MIN_SEARCH_RADIUS_M**2

#: Ids of incidents, missions, drones, stations, hotspots and viewers (as the config's Identifier).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ID_MAX = 64

# Text must be valid Unicode (no lone surrogates: they cannot be stored or sent as UTF-8) without control
# characters other than tab, newline and carriage return (a NUL cannot be stored in PostgreSQL).
_BAD_TEXT = re.compile(r"[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: str) -> str:
    bad = _BAD_TEXT.search(value)
    if bad is not None:
        ch = bad.group()
        what = "an unpaired UTF-16 surrogate" if "\ud800" <= ch <= "\udfff" else "a control character"
        raise PydanticCustomError(
            "text_invalid",
            f"contains {what} (U+{ord(ch):04X}) at character {bad.start()}: text must be valid Unicode "
            "without control characters other than tab and newline",
        )
    return value


#: What the OpenAPI document says of every free-text field (enforced by Checked, with a clearer message).
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F]*$"


def Text(**kw: Any) -> Any:  # noqa: N802  (a Field declaration)
    """A free-text field: valid Unicode without control characters other than tab, newline and return."""
    return Field(json_schema_extra={"pattern": TEXT_PATTERN}, **kw)


def _json_integer(value: Any) -> Any:
    """A JSON number without a fraction (2 or 2.0), not a string ("2") nor a boolean (true)."""
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer (a JSON number, not a string or boolean)")
    return value


#: An integer that must come as a JSON number: pydantic's lax int would take "1" and true.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class Checked(BaseModel):
    """Every body: no unknown fields, finite numbers only, every string valid Unicode text."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, str):
            check_text(value)
        return value


class Strict(Checked):
    model_config = ConfigDict(str_strip_whitespace=True)


#: Positions: JSON numbers only (`true` or `"1"` are not numbers; an integer is a valid float), finite, in range.
Lon = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-180, le=180)]
Lat = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-90, le=90)]


class IncidentCreate(Strict):
    grade: JsonInt = Field(
        ge=1, le=4,
        description="urgency: a JSON integer 1 (most urgent: danger to life) to 4 (least); strings such as \"1\" are refused",
    )
    category: Category
    lat: float = Field(strict=True, ge=-90, le=90, description="WGS84 latitude (a JSON number); within the service radius of the city")
    lon: float = Field(strict=True, ge=-180, le=180, description="WGS84 longitude (a JSON number)")
    address: str | None = Text(default=None, max_length=300)
    description: str = Text(default="", max_length=4000)
    caller: str | None = Text(default=None, max_length=120, description="caller name or number")
    drones_requested: JsonInt | None = Field(
        default=None, ge=1, le=8,
        description="default 1; for missing-person searches the policy's number by grade",
    )
    search_radius_m: float | None = Field(
        default=None, strict=True, gt=MIN_SEARCH_RADIUS_M, le=MAX_SEARCH_RADIUS_M,
        description="missing_person only: search this radius (metres, over 10 and at most 10 000) around lat/lon",
    )
    search_polygon: list[tuple[Lon, Lat]] | None = Field(
        default=None, min_length=4, max_length=200,
        description=(
            "missing_person only, instead of search_radius_m: the search area as a closed ring of [lon, lat] "
            "positions (4 to 200, first == last) forming a simple polygon; every position within the service "
            f"radius of the city, and an area between π·(10 m)² and π·(10 km)² (≈ {MAX_SEARCH_AREA_M2 / 1e6:.0f} km²)"
        ),
    )

    @field_validator("search_radius_m", "search_polygon")
    @classmethod
    def _search_area(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        category = info.data.get("category")
        if category is not None and category != SEARCH_CATEGORY:
            raise ValueError(f"a search area is only for {SEARCH_CATEGORY} incidents, not {category}")
        if info.field_name == "search_polygon":
            if info.data.get("search_radius_m") is not None:
                raise ValueError("give search_radius_m or search_polygon, not both")
            ring = value
            if ring[0] != ring[-1]:
                raise ValueError("search_polygon must be closed (first position == last)")
            from shapely import Polygon

            if not Polygon(ring).is_valid:
                raise ValueError("search_polygon is not a simple polygon (its edges cross or it has no area)")
        return value


class CloseRequest(Strict):
    reason: str = Text(default="", max_length=500)


class SearchDronesRequest(Strict):
    count: JsonInt = Field(ge=1, le=8, description="drones to add to the search; they share the remaining area")


class DeclineRequest(Strict):
    reason: str = Text(default="", max_length=500)


class AbortRequest(Strict):
    reason: str = Text(min_length=1, max_length=500)


class MaintenanceRequest(Strict):
    on: bool = Field(strict=True, description="true: out of service; false: back in service (a JSON boolean)")
    reason: str = Text(default="", max_length=500)


# --- parameters -------------------------------------------------------------------------------------------


def IdPath(what: str) -> Any:  # noqa: N802  (a parameter declaration, like fastapi.Path)
    return Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description=f"the {what}'s id")


def IdQuery(what: str) -> Any:  # noqa: N802
    return Query(default=None, min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description=f"only this {what}")


def _iso_text(value: Any) -> Any:
    """Only ISO 8601 text: pydantic would also read a bare number ("0.5") as seconds since 1970."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value.strip()):
        raise PydanticCustomError("datetime_from_date_parsing", "give an ISO 8601 date-time, e.g. 2026-01-01T08:00:00+08:00")
    return value


def _instant(value: datetime | None) -> datetime | None:
    """Aware (a time without a zone is UTC) and representable in UTC, so the database can compare it."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PydanticCustomError(
            "datetime_range", "is outside the dates this controller can compare (0001-01-01 to 9999-12-31 in UTC)"
        ) from None


#: A query instant: ISO 8601; without a zone it is UTC; must lie within years 1 to 9999 once in UTC.
Instant = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_instant)]


# --- pilot commands (POST /drones/{id}/commands): one body per kind, told apart by `kind` ----------------------

#: Heights and radii here are only bounded to sane numbers; the configured limits (dispatch.yaml `control:`) are
#: checked by the controller, which names the field in its 422 as well.
AltM = Annotated[float, Field(strict=True, allow_inf_nan=False, gt=0, le=1000, description="metres above home")]


class CommandFields(BaseModel):
    """A command body: no unknown fields, finite JSON numbers (no free text, so no text check, which a
    discriminator field cannot carry)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FlyToBody(CommandFields):
    kind: Literal["fly_to"]
    lat: Lat
    lon: Lon
    alt_m: AltM | None = Field(default=None, description="metres above home; default: the current height")


class AltitudeBody(CommandFields):
    kind: Literal["altitude"]
    alt_m: AltM


class OrbitBody(CommandFields):
    kind: Literal["orbit"]
    lat: Lat
    lon: Lon
    radius_m: float = Field(strict=True, allow_inf_nan=False, gt=0, le=5000, description="orbit radius (m)")
    direction: Literal["cw", "ccw"] = "cw"
    speed_ms: float = Field(default=5.0, strict=True, allow_inf_nan=False, gt=0, le=100, description="speed along the circle (m/s)")


class RoiBody(CommandFields):
    kind: Literal["roi"]
    lat: Lat
    lon: Lon


class RoiClearBody(CommandFields):
    kind: Literal["roi_clear"]


class GimbalBody(CommandFields):
    kind: Literal["gimbal"]
    pitch_deg: float = Field(strict=True, allow_inf_nan=False, ge=-90, le=0, description="-90 straight down .. 0 level")


class HoldBody(CommandFields):
    kind: Literal["hold"]


class ResumeBody(CommandFields):
    kind: Literal["resume"]


class ReturnBody(CommandFields):
    kind: Literal["return"]


class LandBody(CommandFields):
    kind: Literal["land"]
    confirm: bool = Field(default=False, strict=True, description="must be true: the drone lands where it is")


CommandBody = Annotated[
    FlyToBody | AltitudeBody | OrbitBody | RoiBody | RoiClearBody | GimbalBody | HoldBody | ResumeBody | ReturnBody | LandBody,
    Field(discriminator="kind"),
]
