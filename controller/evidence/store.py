"""Evidence queries (run through Database.read) and the audit rows (written through the journal's writer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from controller.auth import Principal
from controller.store import schema
from controller.store.writer import Changeset


def query_recordings(
    conn: Connection, *, incident_id: str | None = None, mission_id: str | None = None, drone_id: str | None = None,
    station_id: str | None = None, since: datetime | None = None, until: datetime | None = None,
    include_deleted: bool = False, limit: int = 200,
) -> list[dict[str, Any]]:
    r = schema.recordings
    q = select(r)
    for column, value in ((r.c.incident_id, incident_id), (r.c.mission_id, mission_id), (r.c.drone_id, drone_id),
                          (r.c.station_id, station_id)):
        if value is not None:
            q = q.where(column == value)
    if since is not None:  # overlapping the window: still going, or ended after its start
        q = q.where(or_(r.c.ended_at.is_(None), r.c.ended_at >= since))
    if until is not None:
        q = q.where(r.c.started_at <= until)
    if not include_deleted:
        q = q.where(r.c.deleted_at.is_(None))
    q = q.order_by(r.c.started_at.desc(), r.c.id).limit(limit)
    return [dict(row._mapping) for row in conn.execute(q)]


def get_recording(conn: Connection, recording_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(schema.recordings).where(schema.recordings.c.id == recording_id)).first()
    return dict(row._mapping) if row else None


def query_audit(conn: Connection, recording_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    a = schema.evidence_audit
    q = select(a)
    if recording_id is not None:
        q = q.where(a.c.recording_id == recording_id)
    return [dict(row._mapping) for row in conn.execute(q.order_by(a.c.id.desc()).limit(limit))]


def timeline(conn: Connection, mission_id: str | None, incident_id: str | None) -> dict[str, Any]:
    """The mission's and incident's transitions, steps and events, for an export."""
    t, e, s = schema.transitions, schema.events, schema.mission_steps

    def rows(q: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(q)]

    out: dict[str, Any] = {"mission_id": mission_id, "incident_id": incident_id}
    conds = []
    if incident_id:
        out["incident_transitions"] = rows(select(t).where(and_(t.c.entity == "incident", t.c.entity_id == incident_id)).order_by(t.c.id))
        conds.append(e.c.incident_id == incident_id)
    if mission_id:
        out["mission_transitions"] = rows(select(t).where(and_(t.c.entity == "mission", t.c.entity_id == mission_id)).order_by(t.c.id))
        out["mission_steps"] = rows(select(s).where(s.c.mission_id == mission_id).order_by(s.c.id))
        conds.append(e.c.mission_id == mission_id)
    out["events"] = rows(select(e).where(or_(*conds)).order_by(e.c.seq)) if conds else []
    return out


def audit_row(who: Principal, action: str, recording_id: str | None, detail: str, at: datetime) -> dict[str, Any]:
    return {"at": at, "actor": who.actor, "role": who.role.value, "action": action, "recording_id": recording_id,
            "detail": detail[:500]}


def audit_changeset(row: dict[str, Any]) -> Changeset:
    cs = Changeset()
    cs.insert((schema.evidence_audit, row))
    return cs
