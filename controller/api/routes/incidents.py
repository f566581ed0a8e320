"""Incidents: intake (with repeat-call merge), listing, detail, cancel and resolve."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from controller.api.deps import ANY_ROLE, COMMAND, require, runtime
from controller.api.schemas import Category, CloseRequest, IncidentCreate, SearchDronesRequest
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


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


@router.post(
    "/incidents",
    status_code=201,
    response_model=IncidentCreated,
    responses={200: {"description": "repeat call merged into an open incident", "model": IncidentCreated}},
)
async def create_incident(
    body: IncidentCreate,
    response: Response,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Open an incident and dispatch it at once; a repeat call about an open incident is merged into it (200)."""
    x, y = rt.config.frame.to_xy(body.lat, body.lon)
    if (x * x + y * y) ** 0.5 > SERVICE_RADIUS_M:
        raise _field_error("lat", f"location is more than {SERVICE_RADIUS_M / 1000:g} km from {rt.config.city.name}")
    inc, merged = await rt.center.create_incident(NewIncident(**body.model_dump()), who)
    if merged:
        response.status_code = 200
    return {**incident_view(inc), "merged": merged}


@router.get("/incidents", response_model=list[IncidentOut])
async def list_incidents(
    status: list[IncidentStatus] = Query(default=[]),
    grade: list[int] = Query(default=[]),
    category: list[Category] = Query(default=[]),
    station: str | None = Query(default=None, max_length=64),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*ANY_ROLE)),
) -> list[dict]:
    """Newest first. Pilots are limited to their station, search teams to missing-person incidents."""
    for g in grade:
        if not 1 <= g <= 4:
            raise HTTPException(422, [{"loc": ["query", "grade"], "msg": f"grade {g} is not 1..4", "type": "value_error"}])
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


@router.get("/incidents/{incident_id}", response_model=IncidentDetail)
async def get_incident(
    incident_id: str, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*ANY_ROLE))
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


@router.post("/incidents/{incident_id}/cancel", response_model=IncidentOut)
async def cancel_incident(
    incident_id: str,
    body: CloseRequest | None = None,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Close without result: offers are withdrawn and drones in the air come home."""
    inc = await rt.center.close_incident(incident_id, who, resolved=False, reason=body.reason if body else "")
    return incident_view(inc)


@router.post("/incidents/{incident_id}/resolve", response_model=IncidentOut)
async def resolve_incident(
    incident_id: str,
    body: CloseRequest | None = None,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Close as handled: drones over the scene return and their missions complete on landing."""
    inc = await rt.center.close_incident(incident_id, who, resolved=True, reason=body.reason if body else "")
    return incident_view(inc)


@router.post("/incidents/{incident_id}/search-drones", response_model=IncidentOut)
async def add_search_drones(
    incident_id: str,
    body: SearchDronesRequest,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> dict:
    """Add drones to a missing-person search: they are offered now; each joiner takes a free strip or half of the largest remaining sweep."""
    return incident_view(await rt.center.add_search_drones(incident_id, body.count, who))
