"""The durable journal: every change goes to the database through one writer, then out as numbered events.

A command builds a `Changeset` (rows and stamped events) while it changes live
state, then awaits `commit`. The writer thread commits changesets in order
(group commit) and only then publishes their events, so a client never sees an
event that a crash could take back. The event bus is created once, here; at
start its numbering continues from the last stored event, so subscribers made
before `open` keep listening to the same bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Table

from controller.events import Event, EventBus
from controller.store.database import Database, Snapshot
from controller.store.writer import Changeset, DbWriter

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """The change could not be made durable; the controller stops so a restart reloads committed state."""


class Journal:
    def __init__(self, db: Database, clock: Callable[[], datetime], on_fatal: Callable[[str], None] | None = None) -> None:
        self.db = db
        self.clock = clock
        self.bus = EventBus()
        self._on_fatal = on_fatal
        self._writer: DbWriter | None = None

    async def open(self) -> Snapshot:
        """Create the schema if needed, load what was committed, and start the writer."""
        loop = asyncio.get_running_loop()
        snap: Snapshot = await loop.run_in_executor(None, self._load)
        self.bus.continue_from(snap.last_event_seq + 1)
        self._writer = DbWriter(self.db.engine, self.bus.publish)
        self._writer.start(loop)
        return snap

    def _load(self) -> Snapshot:
        self.db.create_schema()
        return self.db.load_snapshot()

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)

    @property
    def commits(self) -> int:
        return self._writer.commits if self._writer is not None else 0

    async def commit(self, cs: Changeset) -> None:
        assert self._writer is not None, "journal not open"
        try:
            await self._writer.commit(cs)
        except Exception as exc:
            message = "a change could not be written to the database; stopping so a restart reloads committed state"
            log.critical(message)
            if self._on_fatal is not None:
                self._on_fatal(message)
            raise ServiceUnavailable(message) from exc

    def event(self, cs: Changeset, type: str, data: dict[str, Any], now: datetime, **ids: str | None) -> None:
        """Stamp a durable event into the changeset; it is published once the changeset commits."""
        cs.events.append(self.bus.stamp(type, data, now, **ids))

    def publish_now(self, type: str, data: dict[str, Any], **ids: str | None) -> None:
        """An ephemeral event (telemetry, feed lists): no number, not stored, superseded by the next one."""
        self.bus.publish([Event(None, self.clock(), type, data, **ids)])

    async def record(self, type: str, data: dict[str, Any], upserts: list[tuple[Table, dict[str, Any]]], **ids: str | None) -> None:
        """Commit rows of a service beside the centre (hotspots) with one numbered event, published once durable."""
        cs = Changeset()
        for item in upserts:
            cs.upsert(item)
        self.event(cs, type, data, self.clock(), **ids)
        await self.commit(cs)
