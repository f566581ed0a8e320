"""Engine set-up, the snapshot loaded at start, and the read queries behind the REST API.

Reads run in a small thread pool so the event loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, create_engine, event, func, or_, select
from sqlalchemy.engine import Connection, Engine

from controller.domain.alerts import Alert, AlertKind
from controller.domain.entities import Drone, Incident, Mission
from controller.domain.states import ACTIVE_MISSION, OPEN_INCIDENT, MissionState
from controller.events import Event
from controller.store import rows, schema
from controller.store.migrate import migrate

log = logging.getLogger(__name__)
T = TypeVar("T")


def make_engine(url: str) -> Engine:
    """SQLite gets WAL and a busy timeout (durable across a killed process); PostgreSQL is used as is."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@dataclass
class Snapshot:
    """What a restarting controller needs to carry on exactly where it stopped."""

    drones: list[Drone]
    incidents: list[Incident]
    missions: list[Mission]
    last_event_seq: int
    last_incident_no: int
    last_mission_no: int
    #: Open offers whose `offer_expiring` alert was already raised (not raised again after a restart).
    warned_offers: frozenset[str] = frozenset()


def _max_suffix(conn: Connection, column: Any) -> int:
    value = conn.execute(select(func.max(column))).scalar()
    return int(value.split("-")[-1]) if value else 0


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="db-read")

    def create_schema(self) -> None:
        """Bring the schema to what this code expects (Alembic migrations; see controller.store.migrate)."""
        migrate(self.engine)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()

    async def read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.engine.connect() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._pool, run)

    # --- start-up -----------------------------------------------------------

    def load_snapshot(self) -> Snapshot:
        with self.engine.connect() as conn:
            drones = [rows.drone_from_row(r) for r in conn.execute(select(schema.drones))]
            open_statuses = [s.value for s in OPEN_INCIDENT]
            active = [s.value for s in ACTIVE_MISSION]
            m = schema.missions
            # open incidents, and closed ones a drone was still flying for (their missions are reconciled too)
            incidents = [
                rows.incident_from_row(r)
                for r in conn.execute(
                    select(schema.incidents).where(
                        or_(
                            schema.incidents.c.status.in_(open_statuses),
                            schema.incidents.c.id.in_(select(m.c.incident_id).where(m.c.state.in_(active))),
                        )
                    )
                )
            ]
            open_ids = [i.id for i in incidents if i.is_open]
            mission_rows = conn.execute(
                select(schema.missions).where(
                    or_(schema.missions.c.incident_id.in_(open_ids), schema.missions.c.state.in_(active))
                )
            )
            missions = [rows.mission_from_row(r) for r in mission_rows]
            last_seq = conn.execute(select(func.max(schema.events.c.seq))).scalar() or 0
            offered = [x.id for x in missions if x.state is MissionState.OFFERED]
            a = schema.alerts
            warned = frozenset(conn.execute(
                select(a.c.mission_id).where(a.c.kind == AlertKind.OFFER_EXPIRING.value, a.c.mission_id.in_(offered))
            ).scalars()) if offered else frozenset()
            return Snapshot(
                drones=drones,
                incidents=incidents,
                missions=missions,
                last_event_seq=int(last_seq),
                last_incident_no=_max_suffix(conn, schema.incidents.c.id),
                last_mission_no=_max_suffix(conn, schema.missions.c.id),
                warned_offers=warned,
            )

    # --- queries (run through `read`) ---------------------------------------

    @staticmethod
    def query_incidents(
        conn: Connection,
        *,
        statuses: Sequence[str] = (),
        grades: Sequence[int] = (),
        categories: Sequence[str] = (),
        station_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Incident]:
        t = schema.incidents
        q = select(t)
        if statuses:
            q = q.where(t.c.status.in_(list(statuses)))
        if grades:
            q = q.where(t.c.grade.in_(list(grades)))
        if categories:
            q = q.where(t.c.category.in_(list(categories)))
        if created_after:
            q = q.where(t.c.created_at >= created_after)
        if created_before:
            q = q.where(t.c.created_at < created_before)
        if ids is not None:
            q = q.where(t.c.id.in_(list(ids)))
        if station_id:
            m = schema.missions
            q = q.where(t.c.id.in_(select(m.c.incident_id).where(m.c.station_id == station_id)))
        q = q.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
        return [rows.incident_from_row(r) for r in conn.execute(q)]

    @staticmethod
    def get_incident(conn: Connection, incident_id: str) -> Incident | None:
        row = conn.execute(select(schema.incidents).where(schema.incidents.c.id == incident_id)).first()
        return rows.incident_from_row(row) if row else None

    @staticmethod
    def incident_reports(conn: Connection, incident_id: str) -> list[dict[str, Any]]:
        t = schema.caller_reports
        q = select(t).where(t.c.incident_id == incident_id).order_by(t.c.id)
        return [
            {"received_at": r.received_at, "caller": r.caller, "text": r.text, "lat": r.lat, "lon": r.lon}
            for r in conn.execute(q)
        ]

    @staticmethod
    def query_missions(
        conn: Connection,
        *,
        states: Sequence[str] = (),
        station_id: str | None = None,
        incident_id: str | None = None,
        drone_id: str | None = None,
        incident_category: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Mission]:
        t = schema.missions
        q = select(t)
        if states:
            q = q.where(t.c.state.in_(list(states)))
        if station_id:
            q = q.where(t.c.station_id == station_id)
        if incident_id:
            q = q.where(t.c.incident_id == incident_id)
        if drone_id:
            q = q.where(t.c.drone_id == drone_id)
        if incident_category:
            i = schema.incidents
            q = q.where(t.c.incident_id.in_(select(i.c.id).where(i.c.category == incident_category)))
        q = q.order_by(t.c.offered_at.desc(), t.c.id.desc()).limit(limit).offset(offset)
        return [rows.mission_from_row(r) for r in conn.execute(q)]

    @staticmethod
    def get_mission(conn: Connection, mission_id: str) -> Mission | None:
        row = conn.execute(select(schema.missions).where(schema.missions.c.id == mission_id)).first()
        return rows.mission_from_row(row) if row else None

    @staticmethod
    def timeline(conn: Connection, entity: str, entity_id: str) -> list[dict[str, Any]]:
        t = schema.transitions
        q = select(t).where(and_(t.c.entity == entity, t.c.entity_id == entity_id)).order_by(t.c.id)
        return [
            {"from": r.from_state, "to": r.to_state, "at": r.at, "reason": r.reason, "actor": r.actor}
            for r in conn.execute(q)
        ]

    @staticmethod
    def mission_steps(conn: Connection, mission_id: str) -> list[dict[str, Any]]:
        t = schema.mission_steps
        q = select(t).where(t.c.mission_id == mission_id).order_by(t.c.id)
        return [{"at": r.at, "step": r.step, "ok": bool(r.ok), "detail": r.detail} for r in conn.execute(q)]

    @staticmethod
    def query_alerts(
        conn: Connection,
        *,
        open_only: bool = False,
        station_id: str | None = None,
        category: str | None = None,
        kinds: Sequence[str] = (),
        limit: int = 100,
    ) -> list[Alert]:
        """Newest first; `open_only`: not yet acknowledged."""
        t = schema.alerts
        q = select(t)
        if open_only:
            q = q.where(t.c.acked_at.is_(None))
        if station_id:
            q = q.where(t.c.station_id == station_id)
        if category:
            q = q.where(t.c.category == category)
        if kinds:
            q = q.where(t.c.kind.in_(list(kinds)))
        q = q.order_by(t.c.id.desc()).limit(limit)
        return [rows.alert_from_row(r) for r in conn.execute(q)]

    @staticmethod
    def get_alert(conn: Connection, alert_id: int) -> Alert | None:
        row = conn.execute(select(schema.alerts).where(schema.alerts.c.id == alert_id)).first()
        return rows.alert_from_row(row) if row else None

    @staticmethod
    def events_after(conn: Connection, seq: int, limit: int = 10_000) -> list[Event]:
        t = schema.events
        q = select(t).where(t.c.seq > seq).order_by(t.c.seq).limit(limit)
        return [rows.event_from_row(r) for r in conn.execute(q)]
