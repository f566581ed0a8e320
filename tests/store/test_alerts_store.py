"""Alerts in the database (migration 0002), on SQLite and PostgreSQL: stored with their event, filtered, acknowledged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import create_engine, insert, inspect

from controller.domain.alerts import Ack, Alert, AlertKind, Severity
from controller.events import Event
from controller.store import rows, schema
from controller.store.database import Database
from controller.store.migrate import alembic_config, current, head, migrate
from controller.store.writer import Changeset
from tests.store.conftest import WriterRig

T0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def alert(seq: int, kind: AlertKind, station: str | None = None, category: str | None = None) -> Alert:
    return Alert(seq, T0 + timedelta(seconds=seq), kind, Severity.WARNING, f"alert {seq}", station_id=station, category=category)


def test_0002_adds_the_alerts_table_to_a_0001_database_keeping_its_data(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        migrate(engine, "0001")
        assert "alerts" not in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(insert(schema.events).values(seq=3, ts=T0, type="alert", data={"severity": "info", "text": "old"}))
        migrate(engine, "0002")
        assert current(engine) == "0002"
        assert "alerts" in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert Database.query_alerts(conn) == []  # alerts before 0002 stay in the event log only
            assert [e.seq for e in Database.events_after(conn, 0)] == [3]
        with engine.begin() as conn:  # and back down
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
        assert "alerts" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


async def test_alerts_are_stored_filtered_and_acknowledged(db: Database, writer: WriterRig) -> None:
    cs = Changeset()
    made = [
        alert(1, AlertKind.OFFER_EXPIRING, "S-A", "fire"),
        alert(2, AlertKind.HOTSPOT_NEW, None, "missing_person"),
        alert(3, AlertKind.LINK_LOST, "S-B"),
    ]
    for a in made:
        cs.insert(rows.alert_row(a))
        cs.events.append(Event(a.id, a.at, "alert", {"id": a.id}))
    await writer.writer.commit(cs)
    assert [a.id for a in await db.read(lambda c: db.query_alerts(c))] == [3, 2, 1]
    assert await db.read(lambda c: db.query_alerts(c, station_id="S-A")) == [made[0]]
    assert await db.read(lambda c: db.query_alerts(c, category="missing_person")) == [made[1]]
    assert await db.read(lambda c: db.query_alerts(c, kinds=["link_lost", "hotspot_new"], limit=1)) == [made[2]]

    ack = Ack("cmd", "commander", T0 + timedelta(minutes=5))
    cs = Changeset()
    cs.upsert(rows.alert_row(made[0].acknowledged(ack)))
    await writer.writer.commit(cs)
    got = await db.read(lambda c: db.get_alert(c, 1))
    assert got is not None and got.ack == ack and got.kind is AlertKind.OFFER_EXPIRING and got.at == made[0].at
    assert [a.id for a in await db.read(lambda c: db.query_alerts(c, open_only=True))] == [3, 2]
    assert await db.read(lambda c: db.get_alert(c, 99)) is None
