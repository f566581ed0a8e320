"""Alerts: the list people work through (scoped like the event stream) and their acknowledgement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from controller.api.deps import COMMAND, PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, responses
from controller.auth import Principal, Role
from controller.domain.alerts import AlertKind
from controller.domain.categories import SEARCH_CATEGORY
from controller.runtime import Runtime
from controller.views import AlertOut, alert_view

router = APIRouter(prefix="/api/v1", tags=["alerts"])

AlertId = Annotated[int, Path(ge=1, le=2**62, description="the alert's id (the sequence number of its `alert` event)")]


@router.get("/alerts", response_model=list[AlertOut], responses=responses(*AUTH, 422))
async def list_alerts(
    open_only: bool = Query(default=False, alias="open", description="true: only alerts nobody has acknowledged yet"),
    kind: list[AlertKind] = Query(default=[], description="only these kinds"),
    limit: int = Query(default=100, ge=1, le=1000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> list[AlertOut]:
    """Newest first. Pilots see their station's alerts, search teams those about missing-person searches."""
    station = who.station_id if who.role is Role.PILOT else None
    category = SEARCH_CATEGORY if who.role is Role.SEARCH_TEAM else None
    db = rt.db
    found = await db.read(lambda c: db.query_alerts(
        c, open_only=open_only, station_id=station, category=category, kinds=[k.value for k in kind], limit=limit,
    ))
    return [alert_view(a) for a in found]


@router.post(
    "/alerts/{alert_id}/ack", response_model=AlertOut, responses=responses(*AUTH, 404, 409, *BODY, 503),
)
async def acknowledge_alert(
    alert_id: AlertId,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND, Role.PILOT)),
) -> AlertOut:
    """Record who acknowledged the alert and when, and publish `alert.acknowledged`. Pilots acknowledge their
    station's alerts (403 otherwise); 409 if someone already did (naming them)."""
    return alert_view(await rt.center.acknowledge_alert(alert_id, who))
