"""Database tables. SQLite by default, PostgreSQL through DATABASE_URL; plain SQLAlchemy Core.

The controller keeps live state in memory and writes every change here before it
answers or announces it, so a killed process restarts with exactly what callers saw.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    LargeBinary,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, whatever the backend does with time zones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("grade", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("address", String(300)),
    Column("description", Text, nullable=False, default=""),
    Column("callers", Integer, nullable=False),
    Column("drones_requested", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_report_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("close_reason", String(500)),
    Column("blocked_reason", String(500)),
    Column("search_area", JSON),
    Column("created_by", String(64), nullable=False),
)

caller_reports = Table(
    "caller_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("caller", String(120)),
    Column("text", Text, nullable=False, default=""),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
)

missions = Table(
    "missions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False, index=True),
    Column("drone_id", String(64), nullable=False, index=True),
    Column("station_id", String(64), nullable=False, index=True),
    Column("pilot_id", String(64)),
    Column("state", String(16), nullable=False, index=True),
    Column("drone_prior_state", String(16), nullable=False),
    Column("offered_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("eta_s", Float, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(64)),
    Column("reason", String(500)),
    Column("plan", JSON),
    Column("updated_at", UTCDateTime, nullable=False),
)

drones = Table(
    "drones",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("station_id", String(64), nullable=False),
    Column("model", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("battery_pct", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("alt_m", Float, nullable=False, default=0.0),
    Column("mission_id", String(32)),
    Column("updated_at", UTCDateTime, nullable=False),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(16), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("from_state", String(16)),
    Column("to_state", String(16), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", String(500), nullable=False, default=""),
    Column("actor", String(64), nullable=False),
    Index("ix_transitions_entity", "entity", "entity_id"),
)

mission_steps = Table(
    "mission_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mission_id", String(32), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("step", String(40), nullable=False),
    Column("ok", Integer, nullable=False, default=1),
    Column("detail", String(500), nullable=False, default=""),
)

hotspots = Table(
    "hotspots",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("incident_id", String(32), nullable=False, index=True),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("error_m", Float, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("hits", Integer, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("drones", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_by", String(64)),
    Column("status_at", UTCDateTime),
    Column("thumbnail_png", LargeBinary),
)

#: Alerts for people (migration 0002): one row per `alert` event (its seq is the id), and who acknowledged it.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("text", String(500), nullable=False),
    Column("drone_id", String(64)),
    Column("mission_id", String(32)),
    Column("incident_id", String(32)),
    Column("station_id", String(64), index=True),
    Column("category", String(32)),
    Column("acked_at", UTCDateTime),
    Column("acked_by", String(120)),
    Column("acked_role", String(16)),
)

#: Evidence recordings (migration 0003): one row per recorded feed of a mission; segments and hashes are in its
#: signed manifest on disk (controller/evidence).
recordings = Table(
    "recordings",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("drone_id", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("codec", String(16), nullable=False),
    Column("station_id", String(64), index=True),
    Column("mission_id", String(32), index=True),
    Column("incident_id", String(32), index=True),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("ended_at", UTCDateTime),
    Column("status", String(16), nullable=False),
    Column("path", String(500), nullable=False),
    Column("segments", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("frames", BigInteger, nullable=False, default=0),
    Column("dropped", BigInteger, nullable=False, default=0),
    Column("write_errors", Integer, nullable=False, default=0),
    Column("deleted_at", UTCDateTime),
)

#: Who looked at or exported which evidence, and when (migration 0003).
evidence_audit = Table(
    "evidence_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(16), nullable=False, index=True),
    Column("recording_id", String(40), index=True),
    Column("detail", String(500), nullable=False, default=""),
)

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("type", String(40), nullable=False),
    Column("incident_id", String(32), index=True),
    Column("station_id", String(64), index=True),
    Column("drone_id", String(64)),
    Column("mission_id", String(32)),
    Column("category", String(32)),
    Column("data", JSON, nullable=False),
)
