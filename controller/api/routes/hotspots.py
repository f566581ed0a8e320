"""Hotspots for search teams and command: list (with distance and bearing from the team), exports, status."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from typing_extensions import NotRequired

from controller import geo
from controller.api.deps import require, runtime
from controller.api.errors import AUTH, BODY, field_error, responses
from controller.api.schemas import Checked, IdPath, IdQuery, Text
from controller.auth import Principal, Role
from controller.hotspots.exports import geojson, kml
from controller.hotspots.records import HotspotRecord, HotspotStatus, HotspotView
from controller.hotspots.service import HotspotService
from controller.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["hotspots"])

VIEWERS = (Role.COMMANDER, Role.ADMIN, Role.SEARCH_TEAM)

HotspotId = Annotated[str, IdPath("hotspot")]
FromLat = Query(default=None, ge=-90, le=90, allow_inf_nan=False, description="the team's latitude, for distance and bearing")
FromLon = Query(default=None, ge=-180, le=180, allow_inf_nan=False, description="the team's longitude (with from_lat)")
GEOJSON = "application/geo+json"
KML = "application/vnd.google-earth.kml+xml"


class HotspotOut(HotspotView):
    """A hotspot for a team: its view, a navigation link, and distance and bearing from the team if it said where it is."""

    navigate_url: str
    distance_m: NotRequired[float]
    bearing_deg: NotRequired[float]


class StatusChange(Checked):
    status: Literal["confirmed", "dismissed", "found"]
    note: str = Text(default="", max_length=500)


def _service(rt: Runtime) -> HotspotService:
    if rt.hotspots is None:
        raise HTTPException(503, "hotspot detection is not running in this controller")
    return rt.hotspots


def _out(rec: HotspotRecord, origin: tuple[float, float] | None) -> HotspotOut:
    data: HotspotOut = {**rec.view(), "navigate_url": ""}  # type: ignore[typeddict-item]
    data["navigate_url"] = f"geo:{rec.lat:.7f},{rec.lon:.7f}?q={rec.lat:.7f},{rec.lon:.7f}({rec.id})"
    if origin is not None:
        data["distance_m"] = round(geo.distance_m(origin[0], origin[1], rec.lat, rec.lon), 1)
        data["bearing_deg"] = round(geo.bearing_deg(origin[0], origin[1], rec.lat, rec.lon), 1)
    return data


def _filtered(
    svc: HotspotService, incident: str | None, status: list[HotspotStatus]
) -> list[HotspotRecord]:
    return svc.list(incident, frozenset(s.value for s in status))


@router.get("/hotspots", response_model=list[HotspotOut], responses=responses(*AUTH, 422, 503))
async def list_hotspots(
    incident: str | None = IdQuery("incident"),
    status: list[HotspotStatus] = Query(default=[]),
    from_lat: float | None = FromLat,
    from_lon: float | None = FromLon,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> list[dict]:
    if (from_lat is None) != (from_lon is None):
        missing = "from_lon" if from_lon is None else "from_lat"
        raise field_error(["query", missing], "from_lat and from_lon go together: give both or neither")
    origin = (from_lat, from_lon) if from_lat is not None and from_lon is not None else None
    return [_out(r, origin) for r in _filtered(_service(rt), incident, status)]


@router.get(
    "/hotspots.geojson",
    response_class=Response,
    responses={
        200: {
            "description": "a GeoJSON FeatureCollection of Point features (RFC 7946)",
            "content": {GEOJSON: {"schema": {"type": "object", "required": ["type", "features"], "properties": {
                "type": {"type": "string", "enum": ["FeatureCollection"]}, "features": {"type": "array", "items": {"type": "object"}}
            }}}},
        },
        **responses(*AUTH, 422, 503),
    },
)
async def hotspots_geojson(
    incident: str | None = IdQuery("incident"),
    status: list[HotspotStatus] = Query(default=[]),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> Response:
    body = json.dumps(geojson(_filtered(_service(rt), incident, status)))
    return Response(body, media_type=GEOJSON)


@router.get(
    "/hotspots.kml",
    response_class=Response,
    responses={
        200: {"description": "a KML 2.2 document, one Placemark per hotspot", "content": {KML: {"schema": {"type": "string"}}}},
        **responses(*AUTH, 422, 503),
    },
)
async def hotspots_kml(
    incident: str | None = IdQuery("incident"),
    status: list[HotspotStatus] = Query(default=[]),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> Response:
    title = f"dronefleet hotspots {incident}" if incident else "dronefleet hotspots"
    return Response(
        kml(_filtered(_service(rt), incident, status), title),
        media_type=KML,
        headers={"Content-Disposition": 'attachment; filename="hotspots.kml"'},
    )


@router.get("/hotspots/{hotspot_id}", response_model=HotspotOut, responses=responses(*AUTH, 404, 422, 503))
async def get_hotspot(
    hotspot_id: HotspotId,
    from_lat: float | None = FromLat,
    from_lon: float | None = FromLon,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> dict:
    if (from_lat is None) != (from_lon is None):
        missing = "from_lon" if from_lon is None else "from_lat"
        raise field_error(["query", missing], "from_lat and from_lon go together: give both or neither")
    origin = (from_lat, from_lon) if from_lat is not None and from_lon is not None else None
    return _out(_service(rt).get(hotspot_id), origin)


@router.get(
    "/hotspots/{hotspot_id}/thumbnail.png",
    response_class=Response,
    responses={
        200: {"description": "the thermal crop around the hotspot", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **responses(*AUTH, 404, 422, 503),
    },
)
async def hotspot_thumbnail(
    hotspot_id: HotspotId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*VIEWERS))
) -> Response:
    rec = _service(rt).get(hotspot_id)
    if not rec.thumbnail_png:
        raise HTTPException(404, f"hotspot {hotspot_id} has no thumbnail")
    return Response(rec.thumbnail_png, media_type="image/png", headers={"Cache-Control": "private, max-age=5"})


@router.post("/hotspots/{hotspot_id}/status", response_model=HotspotOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def set_hotspot_status(
    hotspot_id: HotspotId,
    change: StatusChange,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> dict:
    """confirmed: worth walking to; dismissed: not the person, never raised again here; found: closes the search."""
    rec = await _service(rt).set_status(hotspot_id, HotspotStatus(change.status), who, change.note)
    return _out(rec, None)
