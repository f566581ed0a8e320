"""Missions: the pilot's accept/decline, command's abort, listing and detail with the timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from controller.api.deps import PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, responses
from controller.api.schemas import AbortRequest, DeclineRequest, IdPath, IdQuery
from controller.api.visibility import check_mission
from controller.auth import Principal, Role
from controller.domain.categories import SEARCH_CATEGORY
from controller.domain.entities import Mission
from controller.domain.errors import Forbidden, NotFound
from controller.domain.states import MissionState
from controller.runtime import Runtime
from controller.views import MissionDetail, MissionOut, mission_view, offer_view

router = APIRouter(prefix="/api/v1", tags=["missions"])

MissionId = Annotated[str, IdPath("mission")]


def _view(rt: Runtime, m: Mission) -> MissionOut:
    view = rt.center.view
    live = view.offer_payload(m) if m.id in view.missions else None
    return live or mission_view(m, view.clock())


@router.get("/missions", response_model=list[MissionOut], responses=responses(*AUTH, 422))
async def list_missions(
    state: list[MissionState] = Query(default=[]),
    station: str | None = IdQuery("station"),
    incident: str | None = IdQuery("incident"),
    drone: str | None = IdQuery("drone"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=1_000_000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> list[dict]:
    """Newest offer first. Pilots get their station's missions only (their offers: `?state=offered`)."""
    category = None
    if who.role is Role.PILOT:
        if station not in (None, who.station_id):
            raise Forbidden("pilots see only their own station's missions")
        station = who.station_id
    if who.role is Role.SEARCH_TEAM:
        category = SEARCH_CATEGORY
    db = rt.db
    found = await db.read(
        lambda c: db.query_missions(
            c,
            states=[s.value for s in state],
            station_id=station,
            incident_id=incident,
            drone_id=drone,
            incident_category=category,
            limit=limit,
            offset=offset,
        )
    )
    return [_view(rt, m) for m in found]


@router.get("/missions/{mission_id}", response_model=MissionDetail, responses=responses(*AUTH, 404, 422))
async def get_mission(
    mission_id: MissionId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))
) -> dict:
    db = rt.db

    def load(c):  # noqa: ANN001, ANN202
        m = db.get_mission(c, mission_id)
        if m is None:
            return None
        inc = db.get_incident(c, m.incident_id)
        return m, inc, db.timeline(c, "mission", mission_id), db.mission_steps(c, mission_id)

    found = await db.read(load)
    if found is None:
        raise NotFound("mission", mission_id)
    m, inc, timeline, steps = found
    check_mission(who, m.station_id, inc.category if inc else None)
    view = offer_view(m, inc, rt.center.clock()) if inc else mission_view(m)
    return {**view, "timeline": timeline, "steps": steps}


@router.post("/missions/{mission_id}/accept", response_model=MissionOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def accept_mission(
    mission_id: MissionId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(Role.PILOT))
) -> dict:
    """The station's pilot takes the mission; the drone starts its preflight."""
    return _view(rt, await rt.center.accept(mission_id, who))


@router.post("/missions/{mission_id}/decline", response_model=MissionOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def decline_mission(
    mission_id: MissionId,
    body: DeclineRequest | None = None,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.PILOT)),
) -> dict:
    """The pilot turns the offer down; the next-best drone is offered at once."""
    return _view(rt, await rt.center.decline(mission_id, who, body.reason if body else ""))


@router.post("/missions/{mission_id}/abort", response_model=MissionOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def abort_mission(
    mission_id: MissionId,
    body: AbortRequest,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.COMMANDER, Role.ADMIN, Role.PILOT)),
) -> dict:
    """Stop the mission at any step: an airborne drone returns, the incident gets another drone."""
    return _view(rt, await rt.center.abort(mission_id, who, body.reason))
