"""The event stream: every state change, numbered, fanned out to filtered subscribers.

Durable events get their sequence number when the change is made and are
published only after the change is committed, in commit order; a client that
reconnects with the last number it saw gets everything after it, from memory or,
for older numbers, from the database. Telemetry is ephemeral: no number, not
replayed, superseded by the next sample.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    seq: int | None
    ts: datetime
    type: str
    data: dict[str, Any]
    incident_id: str | None = None
    station_id: str | None = None
    drone_id: str | None = None
    mission_id: str | None = None
    #: The incident's category, so audiences such as search teams can be filtered without a lookup.
    category: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": iso(self.ts),
            "type": self.type,
            "incident_id": self.incident_id,
            "station_id": self.station_id,
            "drone_id": self.drone_id,
            "mission_id": self.mission_id,
            "category": self.category,
            "data": self.data,
        }

    def wire(self) -> str:
        return json.dumps(self.as_dict(), separators=(",", ":"), default=str)


#: Decides whether a subscriber receives an event.
EventFilter = Callable[[Event], bool]

#: A subscriber may fall this far behind (events queued, or bytes of their wire form) before it is cut off.
QUEUE_MAX_EVENTS = 20_000
QUEUE_MAX_BYTES = 8 * 1024 * 1024


class EventQueue(asyncio.Queue):  # type: ignore[type-arg]
    """An asyncio.Queue of (event, wire) items that counts the bytes of the wire strings it holds."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)  # type: ignore[misc]
        self.bytes = 0

    def _put(self, item: tuple[Event, str] | None) -> None:
        super()._put(item)  # type: ignore[misc]
        if item is not None:
            self.bytes += len(item[1])

    def _get(self) -> tuple[Event, str] | None:
        item = super()._get()  # type: ignore[misc]
        if item is not None:
            self.bytes -= len(item[1])
        return item


@dataclass(eq=False)
class Subscription:
    """A subscriber's queue, bounded in events and in bytes.

    A subscriber that falls further behind is cut off: what it had queued is dropped at once (the memory
    goes now, not when its socket finally closes), the queue ends with `None`, and `overflow` is set so
    whoever serves it can close it even while blocked on a slow socket. The client resumes by sequence number.
    """

    accepts: EventFilter
    max_events: int = QUEUE_MAX_EVENTS
    max_bytes: int = QUEUE_MAX_BYTES
    queue: EventQueue = field(default_factory=EventQueue)
    overflowed: bool = False
    overflow: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: Event, wire: str) -> None:
        if self.overflowed or not self.accepts(event):
            return
        if self.queue.qsize() >= self.max_events or self.queue.bytes + len(wire) > self.max_bytes:
            self._cut_off()
            return
        self.queue.put_nowait((event, wire))

    def _cut_off(self) -> None:
        self.overflowed = True
        log.warning(
            "event subscriber fell behind by %d events (%d bytes); closing it", self.queue.qsize(), self.queue.bytes
        )
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self.overflow.set()


class EventBus:
    def __init__(self, first_seq: int = 1, ring_size: int = 50_000) -> None:
        self._next_seq = first_seq
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subscribers: set[Subscription] = set()
        self.last_published_seq = first_seq - 1

    def continue_from(self, first_seq: int) -> None:
        """Number events from `first_seq` on (the last stored one + 1), before any is stamped."""
        if self._next_seq != self.last_published_seq + 1 or self._ring:
            raise RuntimeError("event numbering can only be set before the first event")
        self._next_seq = first_seq
        self.last_published_seq = first_seq - 1

    def stamp(self, type: str, data: dict[str, Any], ts: datetime, **ids: str | None) -> Event:
        """Number a durable event now; publish it after its change commits."""
        event = Event(self._next_seq, ts, type, data, **ids)
        self._next_seq += 1
        return event

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            if event.seq is not None:
                self._ring.append(event)
                self.last_published_seq = event.seq
            wire = event.wire()
            for sub in self._subscribers:
                sub.offer(event, wire)

    def subscribe(
        self, accepts: EventFilter, max_events: int = QUEUE_MAX_EVENTS, max_bytes: int = QUEUE_MAX_BYTES
    ) -> Subscription:
        sub = Subscription(accepts, max_events, max_bytes)
        self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def replay_page(self, since: int, limit: int) -> list[Event] | None:
        """At most `limit` published events with seq > since, oldest first; None when the ring no longer
        reaches back that far (read the database instead)."""
        if since >= self.last_published_seq:
            return []
        ring = self._ring
        if not ring or ring[0].seq > since + 1:  # type: ignore[operator]
            return None
        lo, hi = 0, len(ring)
        while lo < hi:  # first event with seq > since
            mid = (lo + hi) // 2
            if ring[mid].seq <= since:  # type: ignore[operator]
                lo = mid + 1
            else:
                hi = mid
        return [ring[i] for i in range(lo, min(lo + limit, len(ring)))]

    def replay_from_memory(self, since: int) -> list[Event] | None:
        """Published events with seq > since, or None when the ring no longer reaches back that far."""
        if since >= self.last_published_seq:
            return []
        if not self._ring or self._ring[0].seq > since + 1:  # type: ignore[operator]
            return None
        return [e for e in self._ring if e.seq > since]  # type: ignore[operator]
