"""Schema migrations: a new database and one made before migrations both end at the schema the code expects."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, text

from controller.store import schema
from controller.store.database import Database
from controller.store.migrate import BASELINE, current, head, migrate


def differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema.metadata)
    finally:
        engine.dispose()


def test_a_new_database_is_migrated_to_exactly_the_schema_the_code_uses(database_url: str) -> None:
    db = Database(database_url)
    try:
        db.create_schema()
        assert current(db.engine) == head()
        db.create_schema()  # idempotent: a second start changes nothing
        assert current(db.engine) == head()
    finally:
        db.close()
    assert differences(database_url) == []


def test_a_database_made_before_migrations_is_stamped_and_upgraded_with_its_data(database_url: str) -> None:
    # what every controller before migrations left behind: the baseline tables, no alembic_version
    engine = create_engine(database_url)
    migrate(engine, BASELINE)
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(insert(schema.drones).values(
            id="NJ-XW-01-D1", station_id="NJ-XW-01", model="m3td", state="standby", battery_pct=88.0,
            lat=32.04, lon=118.78, alt_m=0.0, mission_id=None, updated_at=at))
        conn.execute(insert(schema.incidents).values(
            id="INC-000041", grade=2, category="fire", status="queued", lat=32.05, lon=118.79, address=None,
            description="old", callers=1, drones_requested=1, created_at=at, updated_at=at, last_report_at=at,
            closed_at=None, close_reason=None, blocked_reason=None, search_area=None, created_by="commander:old"))
        conn.execute(insert(schema.events).values(seq=7, ts=at, type="incident.created", incident_id="INC-000041", data={}))
    engine.dispose()
    assert current(create_engine(database_url)) is None

    db = Database(database_url)
    try:
        db.create_schema()
        assert current(db.engine) == head()
        snap = db.load_snapshot()
    finally:
        db.close()
    assert [d.id for d in snap.drones] == ["NJ-XW-01-D1"] and snap.drones[0].battery_pct == 88.0
    assert [i.id for i in snap.incidents] == ["INC-000041"] and snap.last_incident_no == 41
    assert snap.last_event_seq == 7
    assert differences(database_url) == []
