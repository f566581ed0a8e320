"""A pilot flying a drone in the air: the control token, commands over MAVLink, and the flight view.

Roles: the pilot of the drone's station, commanders and admins. Commands are checked before anything is sent
(422 a field outside the configured limits, 409 the state: not holding control, no mission in flight, a no-fly
zone, the geofence, the battery) and answered once the vehicle acknowledged (502 it refused, 504 it did not
answer). Every command and control change goes into the mission's steps and onto the event stream.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Body, Depends

from controller.api.deps import require, runtime
from controller.api.errors import AUTH, BODY, responses
from controller.api.schemas import CommandBody, IdPath
from controller.api.visibility import check_mission
from controller.auth import Principal, Role
from controller.center.control import ControlToken, Holder
from controller.control import commands as c
from controller.domain.errors import Conflict, NotFound
from controller.runtime import Runtime
from controller.views import CommandOut, ControlOut, FlightOut, iso

router = APIRouter(prefix="/api/v1", tags=["control"])

DroneId = Annotated[str, IdPath("drone")]
MissionId = Annotated[str, IdPath("mission")]
FLYERS = (Role.COMMANDER, Role.ADMIN, Role.PILOT)


def to_command(body: object) -> c.PilotCommand:
    """The request body as the controller's typed command."""
    kind = getattr(body, "kind")
    if kind == "fly_to":
        return c.FlyTo(body.lat, body.lon, body.alt_m)  # type: ignore[attr-defined]
    if kind == "altitude":
        return c.Altitude(body.alt_m)  # type: ignore[attr-defined]
    if kind == "orbit":
        return c.Orbit(body.lat, body.lon, body.radius_m, c.Direction(body.direction), body.speed_ms)  # type: ignore[attr-defined]
    if kind == "roi":
        return c.Roi(body.lat, body.lon)  # type: ignore[attr-defined]
    if kind == "gimbal":
        return c.Gimbal(body.pitch_deg)  # type: ignore[attr-defined]
    if kind == "land":
        return c.Land(body.confirm)  # type: ignore[attr-defined]
    return {"roi_clear": c.RoiClear, "hold": c.Hold, "resume": c.Resume, "return": c.Return}[kind]()


def _control_view(rt: Runtime, drone_id: str, tok: ControlToken | None) -> ControlOut:
    drone = rt.center.view.drones[drone_id]
    station = rt.config.station(drone.station_id)
    limits = rt.config.policy.control
    piloted, paused = rt.fleet.control_mode(drone_id) if rt.fleet is not None and tok is not None else (False, False)
    fence = fence_of_station(rt, station.lat, station.lon)
    return {
        "drone_id": drone_id,
        "mission_id": tok.mission_id if tok else None,
        "holder": tok.holder.json() if tok and tok.holder else None,  # type: ignore[typeddict-item]
        "since": iso(tok.since) if tok else None,
        "taken_over_from": tok.taken_over_from.json() if tok and tok.taken_over_from else None,  # type: ignore[typeddict-item]
        "mode": "pilot" if piloted else "controller",
        "paused_sweep": paused,
        "limits": {
            "min_alt_m": limits.min_alt_m, "max_alt_m": limits.max_alt_m,
            "min_orbit_radius_m": limits.min_orbit_radius_m, "max_orbit_radius_m": limits.max_orbit_radius_m,
            "max_speed_ms": limits.max_speed_ms, "geofence": fence,
            "nofly_buffer_m": rt.config.policy.engine.nofly_buffer_m,
        },
    }


def fence_of_station(rt: Runtime, lat: float, lon: float) -> dict:
    return {"lat": lat, "lon": lon, "radius_m": rt.config.policy.control.geofence.radius_m}


@router.get("/drones/{drone_id}/control", response_model=ControlOut, responses=responses(*AUTH, 404, 422))
async def get_control(drone_id: DroneId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*FLYERS))) -> dict:
    """Who holds the drone's control token, whether a pilot directs the flight, and the limits commands meet."""
    rt.center.control.authorize(drone_id, who)
    return _control_view(rt, drone_id, rt.center.control.token(drone_id))


@router.post("/drones/{drone_id}/control/take", response_model=ControlOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def take_control(drone_id: DroneId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*FLYERS))) -> dict:
    """Commander or admin: take control over (the pilot sees `control.changed`). The station's pilot: take it back
    when nobody holds it. 409 when the drone has no mission in flight or someone else holds it."""
    return _control_view(rt, drone_id, await rt.center.control.take(drone_id, who))


@router.post("/drones/{drone_id}/control/release", response_model=ControlOut, responses=responses(*AUTH, 404, 409, *BODY, 503))
async def release_control(drone_id: DroneId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*FLYERS))) -> dict:
    """The holder lets go: a commander's release gives control back to the mission's pilot; a pilot's leaves it free."""
    return _control_view(rt, drone_id, await rt.center.control.release(drone_id, who))


@router.post(
    "/drones/{drone_id}/commands", response_model=CommandOut, responses=responses(*AUTH, 404, 409, *BODY, 502, 503, 504),
)
async def send_command(
    drone_id: DroneId,
    body: Annotated[CommandBody, Body()],
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*FLYERS)),
) -> dict:
    """Fly the drone: `kind` is fly_to, altitude, orbit, roi, roi_clear, gimbal, hold, resume, return or land
    (with `confirm: true`). Only the control holder's commands are sent; each is checked first and answered once
    the vehicle acknowledged it."""
    cmd = to_command(body)
    m, result = await rt.center.control.command(drone_id, cmd, who)
    return {
        "id": f"CMD-{secrets.token_hex(6)}", "kind": cmd.kind, "drone_id": drone_id, "mission_id": m.id,
        "by": Holder.of(who).json(), "accepted": True, "detail": result.detail,  # type: ignore[typeddict-item]
        "acked_in_ms": round(result.acked_in_ms, 1),
    }


@router.get("/missions/{mission_id}/flight", response_model=FlightOut, responses=responses(*AUTH, 404, 409, 422, 503))
async def get_flight(mission_id: MissionId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*FLYERS))) -> dict:
    """The flight view of a mission in flight: position, height, speed, heading, camera pitch, battery, the way
    home (where, battery and time), link, mode, who directs it, the scene, the path ahead and the recent track.
    No-fly zones are in `/ui-config`; the drone's position also streams as `drone.telemetry` events."""
    view = rt.center.view
    m = view.missions.get(mission_id)
    if m is None:
        db = rt.db
        stored = await db.read(lambda conn: db.get_mission(conn, mission_id))
        if stored is None:
            raise NotFound("mission", mission_id)
        raise Conflict(f"mission {mission_id} is {stored.state.value}: no flight to show")
    inc = view.incident(m.incident_id)
    check_mission(who, m.station_id, inc.category if inc else None)
    if rt.fleet is None:
        raise Conflict("no flight layer runs in this controller")
    f = rt.fleet.flight_view(m.drone_id)
    if f is None:
        raise Conflict(f"drone {m.drone_id} has no MAVLink link")
    return {
        "mission_id": m.id, "drone_id": m.drone_id, "state": m.state.value,
        "lat": f.lat, "lon": f.lon, "alt_m": f.alt_m, "ground_speed_ms": f.ground_speed_ms, "heading_deg": f.heading_deg,
        "gimbal_pitch_deg": f.gimbal_pitch_deg,
        "battery_pct": f.battery_pct, "mode": f.mode, "armed": f.armed, "link_up": f.link_up,
        "heartbeat_age_s": f.heartbeat_age_s, "return_to": f.return_to, "return_need_pct": f.return_need_pct,
        "return_s": f.return_s, "phase": f.phase, "piloted": f.piloted, "paused_sweep": f.paused_sweep,
        "target": list(f.target) if f.target else None,
        "scene": [inc.lat, inc.lon] if inc else [],
        "route": [list(p) for p in f.route], "track": [list(p) for p in f.track],
    }
