"""One database writer thread: changes commit in the order they were made, off the event loop.

Every command mutates live state synchronously, then awaits `commit(changeset)`.
The thread drains whatever is queued into one transaction (group commit, so a
burst of calls costs one fsync, not hundreds), and only after the commit
publishes the changesets' events, in order, on the event loop. If a batch fails,
each changeset is retried alone so one bad change cannot sink its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Engine

from controller.events import Event
from controller.store import schema
from controller.store.rows import event_row

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Changeset:
    """Rows to upsert, rows to insert, and events to publish once they are durable.

    Upserting the same row twice keeps its first position (so foreign keys see
    parents first) with the latest values.
    """

    upserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    inserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    _positions: dict[tuple[str, tuple[Any, ...]], int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.inserts or self.events)

    def upsert(self, item: tuple[Table, dict[str, Any]]) -> None:
        table, row = item
        key = (table.name, tuple(row[c.name] for c in table.primary_key.columns))
        position = self._positions.get(key)
        if position is None:
            self._positions[key] = len(self.upserts)
            self.upserts.append(item)
        else:
            self.upserts[position] = item

    def insert(self, item: tuple[Table, dict[str, Any]]) -> None:
        self.inserts.append(item)


_STOP = object()


class Statements:
    """Upsert statements built once per table, so SQLAlchemy compiles each once and then only binds rows."""

    def __init__(self, dialect: str) -> None:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - other backends are not supported
            raise RuntimeError(f"unsupported database dialect {dialect}")
        self._insert = insert
        self._upserts: dict[str, Any] = {}

    def upsert(self, table: Table) -> Any:
        stmt = self._upserts.get(table.name)
        if stmt is None:
            ins = self._insert(table)
            pk = [c.name for c in table.primary_key.columns]
            updates = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in pk}
            stmt = ins.on_conflict_do_update(index_elements=pk, set_=updates)
            self._upserts[table.name] = stmt
        return stmt


#: Tables in foreign-key order (parents first), so grouped writes never see a child before its parent.
_TABLE_ORDER = {t.name: i for i, t in enumerate(schema.metadata.sorted_tables)}


def apply(conn: Connection, change: Changeset, statements: Statements) -> None:
    by_table: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, row in change.upserts:
        by_table.setdefault(table.name, (table, []))[1].append(row)
    for name in sorted(by_table, key=_TABLE_ORDER.__getitem__):
        table, rows = by_table[name]
        conn.execute(statements.upsert(table), rows)
    inserts: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
    for table, row in change.inserts:
        inserts.setdefault(table.name, (table, []))[1].append(row)
    for event in change.events:
        if event.seq is not None:  # durable events are stored with their change, for replay after restarts
            table, row = event_row(event)
            inserts.setdefault(table.name, (table, []))[1].append(row)
    for name in sorted(inserts, key=_TABLE_ORDER.__getitem__):
        table, rows = inserts[name]
        conn.execute(table.insert(), rows)


class DbWriter:
    def __init__(self, engine: Engine, on_committed: Callable[[Sequence[Event]], None]) -> None:
        self._engine = engine
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="db-writer", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._statements = Statements(engine.dialect.name)
        self.commits = 0
        self.batches = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread.start()

    def commit(self, change: Changeset) -> asyncio.Future[None]:
        assert self._loop is not None, "writer not started"
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((change, fut))
        return fut

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < 500:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                batch.append(nxt)
            self._write(batch)

    def _write(self, batch: list[tuple[Changeset, asyncio.Future[None]]]) -> None:
        started = time.perf_counter()
        try:
            with self._engine.begin() as conn:
                for change, _ in batch:
                    apply(conn, change, self._statements)
            results: list[tuple[Changeset, asyncio.Future[None], BaseException | None]] = [
                (c, f, None) for c, f in batch
            ]
        except Exception:  # noqa: BLE001 - retried one by one below, each failure reported to its caller
            if len(batch) == 1:
                log.exception("database write failed")
                results = [(batch[0][0], batch[0][1], RuntimeError("database write failed"))]
            else:
                results = []
                for change, fut in batch:
                    try:
                        with self._engine.begin() as conn:
                            apply(conn, change, self._statements)
                        results.append((change, fut, None))
                    except Exception as exc:  # noqa: BLE001
                        log.exception("database write failed")
                        results.append((change, fut, exc))
        self.batches += 1
        self.commits += len(batch)
        elapsed = time.perf_counter() - started
        if elapsed > 0.25:
            log.warning("slow database commit: %d changesets in %.0f ms", len(batch), elapsed * 1000)
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._deliver, results)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _deliver(self, results: list[tuple[Changeset, asyncio.Future[None], BaseException | None]]) -> None:
        for change, fut, exc in results:
            if exc is None:
                try:
                    self._on_committed(change.events)
                except Exception:  # noqa: BLE001 - the change is durable: its caller and the next ones must hear so
                    log.exception("publishing committed events failed")
                if not fut.done():
                    fut.set_result(None)
            elif not fut.done():
                fut.set_exception(exc)
