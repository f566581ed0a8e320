"""DbWriter and Changeset on a temporary SQLite file: order, publish-after-commit, group commit, failure isolation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.store import rows, schema
from controller.store.database import Database
from controller.store.writer import Changeset
from tests.store.builders import at, drone, event, incident, incident_id, mission, report
from tests.store.conftest import WriterRig


def incident_change(n: int, seq: int | None = None, **kw: object) -> Changeset:
    cs = Changeset()
    cs.upsert(rows.incident_row(incident(n, minute=n, **kw)))  # type: ignore[arg-type]
    cs.events.append(event(n if seq is None else seq, incident_id=incident_id(n)))
    return cs


def stored(db: Database, table: schema.Table, column: str) -> list:
    with db.engine.connect() as conn:
        return list(conn.execute(select(table.c[column]).order_by(table.c[column])).scalars())


@dataclass
class Gate:
    """Holds the writer thread at the start of its first transaction, so a burst can queue up behind it."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    transactions: int = 0  # transactions the writer thread began
    commits: int = 0

    def on_begin(self, _conn: object) -> None:
        if threading.current_thread().name != "db-writer":
            return
        self.transactions += 1
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(5), "gate never released"

    def on_commit(self, _conn: object) -> None:
        if threading.current_thread().name == "db-writer":
            self.commits += 1

    async def wait_entered(self) -> None:
        for _ in range(500):
            if self.entered.is_set():
                return
            await asyncio.sleep(0.002)
        raise AssertionError("the writer never began a transaction")


@pytest.fixture
def gate(db: Database) -> Iterator[Gate]:
    g = Gate()
    sa_event.listen(db.engine, "begin", g.on_begin)
    sa_event.listen(db.engine, "commit", g.on_commit)
    yield g
    g.release.set()


# --- Changeset ---------------------------------------------------------------------------------------


def test_upsert_keeps_the_first_position_with_the_latest_values() -> None:
    cs = Changeset()
    assert not cs
    a1, b, a2 = drone("drone-a", battery_pct=90.0), drone("drone-b"), drone("drone-a", battery_pct=55.0)
    cs.upsert(rows.drone_row(a1))
    cs.upsert(rows.drone_row(b))
    cs.upsert(rows.incident_row(incident(1)))
    cs.upsert(rows.drone_row(a2))
    assert cs
    assert [(t.name, r["id"]) for t, r in cs.upserts] == [("drones", "drone-a"), ("drones", "drone-b"), ("incidents", incident_id(1))]
    assert cs.upserts[0][1]["battery_pct"] == 55.0


def test_same_key_in_another_table_is_another_row() -> None:
    cs = Changeset()
    cs.upsert(rows.drone_row(drone("X-1")))
    cs.upsert((schema.incidents, rows.incident_row(incident(1))[1] | {"id": "X-1"}))
    assert len(cs.upserts) == 2


def test_inserts_and_events_make_a_changeset_non_empty() -> None:
    only_insert, only_event = Changeset(), Changeset()
    only_insert.insert(rows.report_row(incident_id(1), report(0, "smoke")))
    only_event.events.append(event(1))
    assert only_insert and only_event


# --- DbWriter: order and publication -------------------------------------------------------------------


async def test_commits_in_order_and_publishes_only_after_commit(db: Database, writer: WriterRig) -> None:
    futures = [writer.writer.commit(incident_change(n)) for n in range(1, 11)]
    done_order: list[int] = []
    for n, fut in enumerate(futures, 1):
        fut.add_done_callback(lambda _f, n=n: done_order.append(n))
    await asyncio.gather(*futures)

    pub = writer.published
    assert pub.seqs == list(range(1, 11))  # every event, in commit order
    for seqs, visible in zip(pub.calls, pub.stored_at_publish, strict=True):
        assert set(seqs) <= visible  # durable before anyone heard of it
    assert done_order == list(range(1, 11))
    assert stored(db, schema.incidents, "id") == [incident_id(n) for n in range(1, 11)]
    assert stored(db, schema.events, "seq") == list(range(1, 11))
    assert writer.writer.commits == 10


async def test_a_future_resolves_after_its_events_are_published(writer: WriterRig) -> None:
    fut = writer.writer.commit(incident_change(1))
    assert not fut.done()
    await fut
    assert writer.published.seqs == [1]


async def test_events_without_a_sequence_number_are_published_not_stored(db: Database, writer: WriterRig) -> None:
    cs = incident_change(1)
    cs.events.append(event(None, "drone.telemetry"))
    await writer.writer.commit(cs)
    assert writer.published.seqs == [1, None]
    assert stored(db, schema.events, "seq") == [1]


async def test_upserting_again_updates_the_row(db: Database, writer: WriterRig) -> None:
    await writer.writer.commit(incident_change(1))
    later = incident(1, minute=1, status=IncidentStatus.OFFERED, description="second call: two people")
    later.updated_at = at(7)
    cs = Changeset()
    cs.upsert(rows.incident_row(later))
    await writer.writer.commit(cs)
    with db.engine.connect() as conn:
        got = Database.get_incident(conn, incident_id(1))
        assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar() == 1
    assert got is not None
    assert (got.status, got.description, got.updated_at) == (IncidentStatus.OFFERED, "second call: two people", at(7))


async def test_children_before_parents_in_a_changeset_still_commit(db: Database, writer: WriterRig) -> None:
    """Rows go in foreign-key order whatever order they were added in (SQLite enforces the keys here)."""
    cs = Changeset()
    cs.insert(rows.report_row(incident_id(1), report(0, "first call")))
    cs.upsert(rows.mission_row(mission(1, inc=1)))
    cs.upsert(rows.incident_row(incident(1)))
    await writer.writer.commit(cs)
    assert stored(db, schema.missions, "id") == ["MSN-000001"]
    assert stored(db, schema.caller_reports, "incident_id") == [incident_id(1)]


# --- DbWriter: group commit and failures ---------------------------------------------------------------


async def test_a_burst_is_committed_as_one_batch(db: Database, writer: WriterRig, gate: Gate) -> None:
    first = writer.writer.commit(incident_change(1))
    await gate.wait_entered()  # the writer holds changeset 1 in its own transaction
    burst = [writer.writer.commit(incident_change(n)) for n in range(2, 22)]
    gate.release.set()
    await asyncio.gather(first, *burst)

    assert writer.writer.batches == 2 and writer.writer.commits == 21
    assert (gate.transactions, gate.commits) == (2, 2)  # 21 changesets, two transactions
    assert writer.published.calls == [[n] for n in range(1, 22)]  # still one publication per changeset, in order
    assert all(set(c) <= v for c, v in zip(writer.published.calls, writer.published.stored_at_publish, strict=True))
    assert stored(db, schema.events, "seq") == list(range(1, 22))


async def test_a_failing_changeset_in_a_batch_is_retried_alone(db: Database, writer: WriterRig, gate: Gate) -> None:
    first = writer.writer.commit(incident_change(1))
    await gate.wait_entered()
    bad = Changeset()
    bad.upsert(rows.drone_row(drone("drone-bad")))
    bad.insert(rows.report_row(incident_id(999), report(0, "for an incident that does not exist")))  # FK violation
    bad.events.append(event(3))
    good_before, failing, good_after = (
        writer.writer.commit(incident_change(2)),
        writer.writer.commit(bad),
        writer.writer.commit(incident_change(4)),
    )
    gate.release.set()

    await asyncio.gather(first, good_before, good_after)
    with pytest.raises(IntegrityError):
        await failing
    assert writer.published.seqs == [1, 2, 4]  # the failed change's event is never published
    assert stored(db, schema.events, "seq") == [1, 2, 4]
    assert stored(db, schema.incidents, "id") == [incident_id(n) for n in (1, 2, 4)]
    assert stored(db, schema.drones, "id") == []  # nothing of the failed changeset is kept
    # one transaction for changeset 1, the failed batch of three, then each of the three alone
    assert gate.transactions == 1 + 1 + 3
    assert writer.writer.batches == 2 and writer.writer.commits == 4


async def test_a_failing_changeset_alone_fails_and_the_writer_carries_on(db: Database, writer: WriterRig) -> None:
    bad = Changeset()
    bad.insert((schema.events, rows.event_row(event(1))[1] | {"type": None}))  # NOT NULL
    bad.events.append(event(1))
    with pytest.raises(RuntimeError, match="database write failed"):
        await writer.writer.commit(bad)
    assert writer.published.events == []
    await writer.writer.commit(incident_change(2))
    assert writer.published.seqs == [2]
    assert stored(db, schema.events, "seq") == [2]


async def test_drone_mission_and_incident_rows_round_trip(db: Database, writer: WriterRig) -> None:
    d = drone("drone-a", minute=3, state=DroneState.ENROUTE, battery_pct=61.25, alt_m=45.5, mission_id="MSN-000001")
    inc = incident(1, status=IncidentStatus.DISPATCHED, address="12 Zhongshan Rd", search_area={"radius_m": 150})
    m = mission(1, inc=1, minute=2, state=MissionState.LAUNCHED, pilot_id="pilot-7", decided_at=at(2.5), decided_by="pilot-7")
    cs = Changeset()
    for row in (rows.drone_row(d), rows.incident_row(inc), rows.mission_row(m)):
        cs.upsert(row)
    await writer.writer.commit(cs)
    snap = db.load_snapshot()
    assert [rows.drone_row(x) for x in snap.drones] == [rows.drone_row(d)]
    assert [rows.incident_row(x) for x in snap.incidents] == [rows.incident_row(inc)]
    assert [rows.mission_row(x) for x in snap.missions] == [rows.mission_row(m)]
    assert snap.missions[0].plan is None


async def test_a_failing_publication_does_not_strand_the_other_futures(db: Database, gate: Gate) -> None:
    from controller.store.writer import DbWriter

    published: list[int | None] = []

    def on_committed(events: object) -> None:
        seqs = [e.seq for e in events]  # type: ignore[attr-defined]
        if seqs == [2]:
            raise ValueError("a subscriber's filter blew up")
        published.extend(seqs)

    w = DbWriter(db.engine, on_committed)
    w.start(asyncio.get_running_loop())
    try:
        first = w.commit(incident_change(1))
        await gate.wait_entered()
        burst = [w.commit(incident_change(n)) for n in (2, 3, 4)]  # one batch; publishing 2 raises
        gate.release.set()
        await first
        done, _ = await asyncio.wait(burst, timeout=0.5)
        assert stored(db, schema.events, "seq") == [1, 2, 3, 4]  # all committed ...
        assert published == [1, 3, 4]  # ... so 3 and 4 must still be announced
        assert len(done) == 3  # and every caller must hear back
    finally:
        gate.release.set()
        w.stop()
