"""A temporary database (SQLite, and a real PostgreSQL server) and a started DbWriter that records what it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from controller.events import Event
from controller.store import schema
from controller.store.database import Database
from controller.store.writer import DbWriter


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.create_schema()
    yield database
    database.close()


@dataclass
class Published:
    """What the writer published, and which of those events were already in the database when it did."""

    db: Database
    events: list[Event] = field(default_factory=list)
    calls: list[list[int | None]] = field(default_factory=list)
    stored_at_publish: list[set[int]] = field(default_factory=list)

    def __call__(self, events: Sequence[Event]) -> None:
        self.calls.append([e.seq for e in events])
        self.events.extend(events)
        with self.db.engine.connect() as conn:  # a separate connection: sees only committed rows
            self.stored_at_publish.append(set(conn.execute(select(schema.events.c.seq)).scalars()))

    @property
    def seqs(self) -> list[int | None]:
        return [e.seq for e in self.events]


@dataclass
class WriterRig:
    writer: DbWriter
    published: Published


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[WriterRig]:
    published = Published(db)
    w = DbWriter(db.engine, published)
    w.start(asyncio.get_running_loop())
    yield WriterRig(w, published)
    w.stop()
