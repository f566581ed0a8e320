"""Fleet: stations with the pilot on duty, drones with live state, maintenance switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from controller.api.deps import PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, responses
from controller.api.schemas import IdPath, IdQuery, MaintenanceRequest
from controller.auth import Principal, Role
from controller.domain.errors import Forbidden, NotFound
from controller.domain.states import DroneState
from controller.runtime import Runtime
from controller.views import DroneOut, StationOut, TrackOut, drone_view

router = APIRouter(prefix="/api/v1", tags=["fleet"])

DroneId = Annotated[str, IdPath("drone")]


@router.get("/stations", response_model=list[StationOut], responses=responses(*AUTH))
async def list_stations(rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))) -> list[dict]:
    view = rt.center.view
    now = view.clock()
    return [
        {
            "id": s.id,
            "name": s.name,
            "district": s.district,
            "lat": s.lat,
            "lon": s.lon,
            "drones": [d.id for d in s.drones],
            "pilot_on_duty": view.pilot_on_duty(s.id, now),
        }
        for s in rt.config.stations
    ]


@router.get("/drones", response_model=list[DroneOut], responses=responses(*AUTH, 422))
async def list_drones(
    station: str | None = IdQuery("station"),
    state: list[DroneState] = Query(default=[]),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> list[dict]:
    """Live state of every drone. Pilots see their own station's drones."""
    if who.role is Role.PILOT:
        if station not in (None, who.station_id):
            raise Forbidden("pilots see only their own station's drones")
        station = who.station_id
    wanted = set(state)
    return [
        drone_view(d)
        for d in rt.center.view.drones.values()
        if (station is None or d.station_id == station) and (not wanted or d.state in wanted)
    ]


@router.get("/drones/{drone_id}", response_model=DroneOut, responses=responses(*AUTH, 404, 422))
async def get_drone(drone_id: DroneId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))) -> dict:
    drone = rt.center.view.drones.get(drone_id)
    if drone is None:
        raise NotFound("drone", drone_id)
    if who.role is Role.PILOT and drone.station_id != who.station_id:
        raise Forbidden("pilots see only their own station's drones")
    return drone_view(drone)


@router.get("/drones/{drone_id}/track", response_model=TrackOut, responses=responses(*AUTH, 404, 422))
async def get_track(
    drone_id: DroneId,
    minutes: float = Query(default=10.0, gt=0, le=30, description="how far back (at most 30 minutes)"),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> TrackOut:
    """Where the drone has been lately (kept in memory from its telemetry: empty after a restart; the
    `drone.telemetry` events carry the positions after these)."""
    drone = rt.center.view.drones.get(drone_id)
    if drone is None:
        raise NotFound("drone", drone_id)
    if who.role is Role.PILOT and drone.station_id != who.station_id:
        raise Forbidden("pilots see only their own station's drones")
    now = rt.center.clock()
    points = rt.center.tracks.recent(drone_id, minutes * 60)
    return {
        "drone_id": drone_id,
        "minutes": minutes,
        "points": [[p.lat, p.lon, round(p.alt_m, 1), round((now - p.at).total_seconds(), 1)] for p in points],
    }


@router.post("/drones/{drone_id}/maintenance", response_model=DroneOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def set_maintenance(
    drone_id: DroneId,
    body: MaintenanceRequest,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.ADMIN)),
) -> dict:
    """Take a drone out of service (only from standby, charging or landed) or put it back."""
    return drone_view(await rt.center.set_maintenance(drone_id, body.on, who, body.reason))
