"""One JSON shape per domain object, shared by REST responses and event payloads.

Clients (pilot page, command map, benchmarks) parse the same structure whether
it came from `GET /missions/{id}` or from a `mission.updated` event.
"""

from __future__ import annotations

from datetime import datetime

from controller.events import iso as _iso
from typing import Any

from controller.domain.entities import Drone, Incident, Mission


def iso(value: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, the same form pydantic gives, so clients can compare strings."""
    return _iso(value) if value else None


def incident_view(inc: Incident) -> dict[str, Any]:
    return {
        "id": inc.id,
        "grade": inc.grade,
        "category": inc.category,
        "status": inc.status.value,
        "lat": inc.lat,
        "lon": inc.lon,
        "address": inc.address,
        "description": inc.description,
        "callers": inc.callers,
        "drones_requested": inc.drones_requested,
        "created_at": iso(inc.created_at),
        "updated_at": iso(inc.updated_at),
        "last_report_at": iso(inc.last_report_at),
        "closed_at": iso(inc.closed_at),
        "close_reason": inc.close_reason,
        "blocked_reason": inc.blocked_reason,
        "search_area": inc.search_area,
    }


def mission_view(m: Mission, now: datetime | None = None) -> dict[str, Any]:
    view = {
        "id": m.id,
        "incident_id": m.incident_id,
        "drone_id": m.drone_id,
        "station_id": m.station_id,
        "pilot_id": m.pilot_id,
        "state": m.state.value,
        "offered_at": iso(m.offered_at),
        "expires_at": iso(m.expires_at),
        "eta_s": round(m.eta_s, 1),
        "distance_m": round(m.distance_m, 1),
        "decided_at": iso(m.decided_at),
        "decided_by": m.decided_by,
        "reason": m.reason,
        "updated_at": iso(m.updated_at),
        "plan": m.plan,
    }
    if now is not None and m.state.value == "offered":
        view["remaining_s"] = max(0.0, round((m.expires_at - now).total_seconds(), 1))
    return view


def offer_view(m: Mission, inc: Incident, now: datetime) -> dict[str, Any]:
    """What a pilot needs to decide in seconds: the mission plus the incident's essentials."""
    view = mission_view(m, now)
    view["incident"] = {
        "id": inc.id,
        "grade": inc.grade,
        "category": inc.category,
        "lat": inc.lat,
        "lon": inc.lon,
        "address": inc.address,
        "description": inc.description,
        "callers": inc.callers,
    }
    return view


def drone_view(d: Drone) -> dict[str, Any]:
    return {
        "id": d.id,
        "station_id": d.station_id,
        "model": d.model,
        "state": d.state.value,
        "since": iso(d.machine.since),
        "battery_pct": round(d.battery_pct, 1),
        "lat": d.lat,
        "lon": d.lon,
        "alt_m": round(d.alt_m, 1),
        "mission_id": d.mission_id,
        "updated_at": iso(d.updated_at),
    }
