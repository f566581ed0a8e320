"""Incidents: intake (with repeat-call merge), listing, detail, cancel and resolve."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import Field

from controller.api.deps import COMMAND, PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, field_error, responses
from controller.api.schemas import (
    MAX_SEARCH_AREA_M2,
    MIN_SEARCH_AREA_M2,
    Category,
    CloseRequest,
    IdPath,
    IdQuery,
    IncidentCreate,
    Instant,
    SearchDronesRequest,
)
from controller.api.visibility import check_incident
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.categories import SEARCH_CATEGORY
from controller.domain.errors import Forbidden, NotFound
from controller.domain.states import IncidentStatus
from controller.runtime import Runtime
from controller.views import IncidentCreated, IncidentDetail, IncidentOut, incident_view, mission_view

router = APIRouter(prefix="/api/v1", tags=["incidents"])

#: Calls farther than this from the city centre are outside the unit's service area.
SERVICE_RADIUS_M = 150_000.0

IncidentId = Annotated[str, IdPath("incident")]


def _from_centre_m(rt: Runtime, lat: float, lon: float) -> float:
    x, y = rt.config.frame.to_xy(lat, lon)
    d = math.hypot(x, y)
    return d if math.isfinite(d) else math.inf


def _check_search_polygon(rt: Runtime, ring: list[tuple[float, float]]) -> None:
    """Within reach of the fleet (every corner within the service radius) and no larger than the radius cap."""
    from shapely import Polygon

    city = rt.config.city.name
    for i, (lon, lat) in enumerate(ring):
        if _from_centre_m(rt, lat, lon) > SERVICE_RADIUS_M:
            raise field_error(
                ["body", "search_polygon", i],
                f"position [{lon}, {lat}] is more than {SERVICE_RADIUS_M / 1000:g} km from {city}",
            )
    area = Polygon(rt.config.frame.ring_to_xy(ring)).area
    if not math.isfinite(area) or area > MAX_SEARCH_AREA_M2:
        raise field_error(
            ["body", "search_polygon"],
            f"search area of {area / 1e6:.1f} km² is larger than the {MAX_SEARCH_AREA_M2 / 1e6:.0f} km² maximum "
            "(the area of a 10 km radius): split the search or narrow it",
        )
    if area < MIN_SEARCH_AREA_M2:
        raise field_error(
            ["body", "search_polygon"], f"search area of {area:.0f} m² is smaller than {MIN_SEARCH_AREA_M2:.0f} m²"
        )


@router.post(
    "/incidents",
    status_code=201,
    response_model=IncidentCreated,
    responses={
        200: {"description": "repeat call merged into an open incident", "model": IncidentCreated},
        **responses(*AUTH, *BODY, 503),
    },
)
async def create_incident(
    body: IncidentCreate,
    response: Response,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Open an incident and dispatch it at once; a repeat call about an open incident is merged into it (200).

    Rules: `grade` is a JSON integer 1 (most urgent) to 4; `lat`/`lon` are JSON numbers within 150 km of the
    city; a `missing_person` call may give a search area, either `search_radius_m` (over 10 m, at most 10 km)
    or `search_polygon` (a closed simple [lon, lat] ring, every corner within 150 km of the city, area at most
    π·(10 km)²). Unknown fields, wrong types, NaN/Infinity and invalid Unicode are 422 naming the field.
    """
    if _from_centre_m(rt, body.lat, body.lon) > SERVICE_RADIUS_M:
        raise field_error(["body", "lat"], f"location is more than {SERVICE_RADIUS_M / 1000:g} km from {rt.config.city.name}")
    if body.search_polygon is not None:
        _check_search_polygon(rt, body.search_polygon)
    inc, merged = await rt.center.create_incident(NewIncident(**body.model_dump()), who)
    if merged:
        response.status_code = 200
    return {**incident_view(inc), "merged": merged}


@router.get("/incidents", response_model=list[IncidentOut], responses=responses(*AUTH, 422))
async def list_incidents(
    status: list[IncidentStatus] = Query(default=[]),
    grade: list[Annotated[int, Field(ge=1, le=4)]] = Query(default=[], description="urgency 1 (most urgent) to 4"),
    category: list[Category] = Query(default=[]),
    station: str | None = IdQuery("station"),
    created_after: Instant | None = Query(default=None, description="ISO 8601; without a zone, UTC"),
    created_before: Instant | None = Query(default=None, description="ISO 8601; without a zone, UTC"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> list[dict]:
    """Newest first. Pilots are limited to their station, search teams to missing-person incidents."""
    if who.role is Role.PILOT:
        if station not in (None, who.station_id):
            raise Forbidden("pilots see only their own station")
        station = who.station_id
    if who.role is Role.SEARCH_TEAM:
        if any(c != SEARCH_CATEGORY for c in category):
            raise Forbidden("search teams see only missing-person incidents")
        category = [SEARCH_CATEGORY]
    db = rt.db
    found = await db.read(
        lambda c: db.query_incidents(
            c,
            statuses=[s.value for s in status],
            grades=grade,
            categories=list(category),
            station_id=station,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            offset=offset,
        )
    )
    return [incident_view(i) for i in found]


@router.get("/incidents/{incident_id}", response_model=IncidentDetail, responses=responses(*AUTH, 404, 422))
async def get_incident(
    incident_id: IncidentId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))
) -> dict:
    db = rt.db

    def load(c):  # noqa: ANN001, ANN202
        inc = db.get_incident(c, incident_id)
        if inc is None:
            return None
        return inc, db.incident_reports(c, incident_id), db.query_missions(c, incident_id=incident_id, limit=1000), db.timeline(c, "incident", incident_id)

    found = await db.read(load)
    if found is None:
        raise NotFound("incident", incident_id)
    inc, reports, missions, timeline = found
    check_incident(who, inc.category, (m.station_id for m in missions))
    live = rt.center.view.incidents.get(incident_id)
    now = rt.center.clock()
    return {
        **incident_view(inc),
        "reports": reports,
        "missions": [mission_view(m, now) for m in missions],
        "timeline": timeline,
        "queue_reasons": dict(live.queue_reasons) if live else {},
    }


@router.post("/incidents/{incident_id}/cancel", response_model=IncidentOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def cancel_incident(
    incident_id: IncidentId,
    body: CloseRequest | None = None,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Close without result: offers are withdrawn and drones in the air come home."""
    inc = await rt.center.close_incident(incident_id, who, resolved=False, reason=body.reason if body else "")
    return incident_view(inc)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def resolve_incident(
    incident_id: IncidentId,
    body: CloseRequest | None = None,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Close as handled: drones over the scene return and their missions complete on landing."""
    inc = await rt.center.close_incident(incident_id, who, resolved=True, reason=body.reason if body else "")
    return incident_view(inc)


@router.post("/incidents/{incident_id}/search-drones", response_model=IncidentOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def add_search_drones(
    incident_id: IncidentId,
    body: SearchDronesRequest,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Add drones to a missing-person search: they are offered now; each joiner takes a free strip or half of the largest remaining sweep."""
    return incident_view(await rt.center.add_search_drones(incident_id, body.count, who))
