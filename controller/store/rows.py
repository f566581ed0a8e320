"""Conversions between live domain objects and table rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table

from controller.domain.alerts import Ack, Alert, AlertKind, Severity
from controller.domain.entities import CallerReport, Drone, Incident, Mission
from controller.domain.state_machine import Transition
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.events import Event
from controller.hotspots.records import HotspotRecord, HotspotStatus
from controller.search.plan import SearchPlan
from controller.store import schema


def incident_row(inc: Incident) -> tuple[Table, dict[str, Any]]:
    return schema.incidents, {
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
        "created_at": inc.created_at,
        "updated_at": inc.updated_at,
        "last_report_at": inc.last_report_at,
        "closed_at": inc.closed_at,
        "close_reason": inc.close_reason,
        "blocked_reason": inc.blocked_reason,
        "search_area": inc.search_area,
        "created_by": inc.created_by,
    }


def report_row(incident_id: str, rep: CallerReport) -> tuple[Table, dict[str, Any]]:
    return schema.caller_reports, {
        "incident_id": incident_id,
        "received_at": rep.received_at,
        "caller": rep.caller,
        "text": rep.text,
        "lat": rep.lat,
        "lon": rep.lon,
    }


def mission_row(m: Mission) -> tuple[Table, dict[str, Any]]:
    return schema.missions, {
        "id": m.id,
        "incident_id": m.incident_id,
        "drone_id": m.drone_id,
        "station_id": m.station_id,
        "pilot_id": m.pilot_id,
        "state": m.state.value,
        "drone_prior_state": m.drone_prior_state.value,
        "offered_at": m.offered_at,
        "expires_at": m.expires_at,
        "eta_s": m.eta_s,
        "distance_m": m.distance_m,
        "decided_at": m.decided_at,
        "decided_by": m.decided_by,
        "reason": m.reason,
        "plan": m.plan.to_json() if m.plan is not None else None,
        "updated_at": m.updated_at,
    }


def drone_row(d: Drone) -> tuple[Table, dict[str, Any]]:
    return schema.drones, {
        "id": d.id,
        "station_id": d.station_id,
        "model": d.model,
        "state": d.state.value,
        "battery_pct": d.battery_pct,
        "lat": d.lat,
        "lon": d.lon,
        "alt_m": d.alt_m,
        "mission_id": d.mission_id,
        "updated_at": d.updated_at,
    }


def transition_row(t: Transition) -> tuple[Table, dict[str, Any]]:
    return schema.transitions, {
        "entity": t.entity,
        "entity_id": t.entity_id,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "at": t.at,
        "reason": t.reason[:500],
        "actor": t.actor[:64],
    }


def event_row(e: Event) -> tuple[Table, dict[str, Any]]:
    return schema.events, {
        "seq": e.seq,
        "ts": e.ts,
        "type": e.type,
        "incident_id": e.incident_id,
        "station_id": e.station_id,
        "drone_id": e.drone_id,
        "mission_id": e.mission_id,
        "category": e.category,
        "data": e.data,
    }


def alert_row(a: Alert) -> tuple[Table, dict[str, Any]]:
    return schema.alerts, {
        "id": a.id,
        "at": a.at,
        "kind": a.kind.value,
        "severity": a.severity.value,
        "text": a.text,
        "drone_id": a.drone_id,
        "mission_id": a.mission_id,
        "incident_id": a.incident_id,
        "station_id": a.station_id,
        "category": a.category,
        "acked_at": a.ack.at if a.ack else None,
        "acked_by": a.ack.name if a.ack else None,
        "acked_role": a.ack.role if a.ack else None,
    }


def alert_from_row(row: Any) -> Alert:
    return Alert(
        id=int(row.id),
        at=row.at,
        kind=AlertKind(row.kind),
        severity=Severity(row.severity),
        text=row.text,
        drone_id=row.drone_id,
        mission_id=row.mission_id,
        incident_id=row.incident_id,
        station_id=row.station_id,
        category=row.category,
        ack=Ack(row.acked_by, row.acked_role, row.acked_at) if row.acked_at is not None else None,
    )


def hotspot_row(rec: HotspotRecord) -> tuple[Table, dict[str, Any]]:
    return schema.hotspots, {
        "id": rec.id,
        "incident_id": rec.incident_id,
        "lat": rec.lat,
        "lon": rec.lon,
        "error_m": rec.error_m,
        "kind": rec.kind,
        "score": rec.score,
        "hits": rec.hits,
        "first_seen": rec.first_seen,
        "last_seen": rec.last_seen,
        "drones": list(rec.drones),
        "status": rec.status.value,
        "status_by": rec.status_by,
        "status_at": rec.status_at,
        "thumbnail_png": rec.thumbnail_png,
    }


def incident_from_row(row: Any) -> Incident:
    inc = Incident.new(
        row.id,
        at=row.created_at,
        status=IncidentStatus(row.status),
        grade=row.grade,
        category=row.category,
        lat=row.lat,
        lon=row.lon,
        created_by=row.created_by,
        address=row.address,
        description=row.description,
        callers=row.callers,
        drones_requested=row.drones_requested,
        updated_at=row.updated_at,
        last_report_at=row.last_report_at,
        closed_at=row.closed_at,
        close_reason=row.close_reason,
        blocked_reason=row.blocked_reason,
        search_area=row.search_area,
    )
    inc.machine.since = row.updated_at
    return inc


def mission_from_row(row: Any) -> Mission:
    m = Mission.new(
        row.id,
        at=row.updated_at,
        state=MissionState(row.state),
        incident_id=row.incident_id,
        drone_id=row.drone_id,
        station_id=row.station_id,
        pilot_id=row.pilot_id,
        offered_at=row.offered_at,
        expires_at=row.expires_at,
        eta_s=row.eta_s,
        distance_m=row.distance_m,
        drone_prior_state=DroneState(row.drone_prior_state),
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        reason=row.reason,
        plan=SearchPlan.from_json(row.plan),
    )
    return m


def drone_from_row(row: Any) -> Drone:
    return Drone.new(
        row.id,
        at=row.updated_at,
        state=DroneState(row.state),
        station_id=row.station_id,
        model=row.model,
        battery_pct=row.battery_pct,
        lat=row.lat,
        lon=row.lon,
        alt_m=row.alt_m,
        mission_id=row.mission_id,
    )


def event_from_row(row: Any) -> Event:
    return Event(
        seq=row.seq,
        ts=row.ts,
        type=row.type,
        data=row.data,
        incident_id=row.incident_id,
        station_id=row.station_id,
        drone_id=row.drone_id,
        mission_id=row.mission_id,
        category=row.category,
    )


def hotspot_from_row(row: Any) -> HotspotRecord:
    return HotspotRecord(
        id=row.id,
        incident_id=row.incident_id,
        lat=row.lat,
        lon=row.lon,
        error_m=row.error_m,
        kind=row.kind,
        score=row.score,
        hits=row.hits,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        drones=list(row.drones),
        status=HotspotStatus(row.status),
        status_by=row.status_by,
        status_at=row.status_at,
        thumbnail_png=row.thumbnail_png,
    )
