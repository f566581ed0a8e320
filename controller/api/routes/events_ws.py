"""The event stream over WebSocket: numbered, filtered by role/station/incident, resumable.

Connect to `/api/v1/events?since=SEQ&station=ID&incident=ID` with the bearer
token in the Authorization header or, from a browser, as the WebSocket
subprotocols `["dronefleet", TOKEN]`. The server sends a `hello` message with
the last published sequence number, replays every matching event after `since`
(from memory, or from the database when it is older, a page at a time), then
streams live.

Limits, each with its own close code and a reason saying what to do:

- 4400 a query parameter is malformed (the reason names it);
- 4401 no or unknown token; 4403 the role may not subscribe, or not to that station
  (drone tokens may only publish video: they get no stream);
- 4410 `since` is older than the role may replay (everyone but commanders: REPLAY_WINDOW_EVENTS
  events or REPLAY_WINDOW_S seconds): load the current state over REST, then reconnect with the
  `last_seq` of the `hello` that came before the close;
- 4429 too many streams open with this token, or too many replays with it lately: retry later;
- 1013 the subscriber fell behind (its queue is bounded in events and bytes, and a send may not stall
  longer than SEND_TIMEOUT_S): an `overflow` message (if it can still be sent) and a reason carry
  `since=N`; reconnect with it and lose nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from controller.api.schemas import ID_MAX, ID_PATTERN
from controller.api.visibility import event_filter
from controller.auth import Principal, Role
from controller.domain.errors import Forbidden
from controller.events import QUEUE_MAX_BYTES, QUEUE_MAX_EVENTS, Event, EventFilter, Subscription
from controller.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["events"])

SUBPROTOCOL = "dronefleet"
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_REPLAY_TOO_OLD = 4410
CLOSE_TOO_MANY = 4429
CLOSE_OVERLOADED = 1013
#: Events read per page during a replay (from the in-memory ring or the database).
REPLAY_PAGE = 500
DB_PAGE = REPLAY_PAGE
SINCE_MAX = 2**63 - 1
_ID = re.compile(ID_PATTERN)


@dataclass
class StreamLimits:
    """Per-app limits of the event stream (tests shrink them)."""

    per_token: int = 16
    #: Replays (connections with `since` behind the stream) per token: a bucket of `replay_burst`,
    #: refilled at `replay_per_minute`.
    replay_burst: int = 10
    replay_per_minute: float = 20.0
    #: How far back roles other than commander may replay.
    window_events: int = 10_000
    window_s: float = 3600.0
    queue_events: int = QUEUE_MAX_EVENTS
    queue_bytes: int = QUEUE_MAX_BYTES
    #: A single send may wait this long for a client that does not read before it is cut off.
    send_timeout_s: float = 30.0
    #: How long closing may wait on a client that does not read.
    close_timeout_s: float = 2.0


@dataclass
class StreamRegistry:
    """Open streams and replay budgets per token (keyed by the token's digest; only valid tokens get here)."""

    limits: StreamLimits = field(default_factory=StreamLimits)
    open: dict[bytes, int] = field(default_factory=dict)
    _buckets: dict[bytes, tuple[float, float]] = field(default_factory=dict)

    def take_replay(self, key: bytes, now: float | None = None) -> float:
        """0 if a replay may start now (and count it), else the seconds until one may."""
        now = time.monotonic() if now is None else now
        lim = self.limits
        rate = lim.replay_per_minute / 60.0
        level, at = self._buckets.get(key, (float(lim.replay_burst), now))
        level = min(float(lim.replay_burst), level + (now - at) * rate)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return (1.0 - level) / rate if rate > 0 else float("inf")
        self._buckets[key] = (level - 1.0, now)
        return 0.0


def registry(ws: WebSocket) -> StreamRegistry:
    reg = getattr(ws.app.state, "streams", None)
    if reg is None:
        reg = ws.app.state.streams = StreamRegistry()
    return reg


def _credentials(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from the Authorization header or the subprotocol list."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(offered) >= 2 and offered[0] == SUBPROTOCOL:
        return offered[1], SUBPROTOCOL
    return None, SUBPROTOCOL if SUBPROTOCOL in offered else None


def _reason(text: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    data = text.encode("utf-8", "replace")[:123]
    return data.decode("utf-8", "ignore")


class BadQuery(ValueError):
    pass


def _query(ws: WebSocket) -> tuple[int | None, str | None, str | None]:
    q = ws.query_params
    since: int | None = None
    raw = q.get("since")
    if raw is not None:
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or int(raw) > SINCE_MAX:
            shown = raw if len(raw) <= 24 else raw[:21] + "..."
            raise BadQuery(f"since must be a whole number 0..{SINCE_MAX}, not {shown!r}")
        since = int(raw)
    ids = []
    for name in ("station", "incident"):
        value = q.get(name)
        if value is not None and (len(value) > ID_MAX or not _ID.match(value)):
            raise BadQuery(f"{name} must be an id (letters, digits, '.', '_', '-'; at most {ID_MAX})")
        ids.append(value)
    return since, ids[0], ids[1]


@dataclass
class _Progress:
    last: int = 0


@router.websocket("/events")
async def events(ws: WebSocket):
    rt: Runtime = ws.app.state.runtime
    reg = registry(ws)
    lim = reg.limits
    token, subprotocol = _credentials(ws)
    await ws.accept(subprotocol=subprotocol)
    who = rt.tokens.authenticate(token)
    if who is None or token is None:
        await ws.close(CLOSE_UNAUTHORIZED, "missing or unknown bearer token")
        return
    if who.role is Role.DRONE:
        await ws.close(CLOSE_FORBIDDEN, "drone tokens may only publish video; they get no event stream")
        return
    try:
        since, station, incident = _query(ws)
        accepts = event_filter(who, station, incident)
    except BadQuery as exc:
        await ws.close(CLOSE_BAD_REQUEST, _reason(str(exc)))
        return
    except Forbidden as exc:
        await ws.close(CLOSE_FORBIDDEN, _reason(str(exc)))
        return
    key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    if reg.open.get(key, 0) >= lim.per_token:
        await ws.close(CLOSE_TOO_MANY, _reason(f"too many event streams open with this token (limit {lim.per_token})"))
        return
    reg.open[key] = reg.open.get(key, 0) + 1
    bus = rt.center.bus
    sub = bus.subscribe(accepts, lim.queue_events, lim.queue_bytes)
    progress = _Progress(bus.last_published_seq)
    sender = asyncio.create_task(_send(ws, rt, reg, key, who, sub, accepts, since, progress))
    receiver = asyncio.create_task(_receive(ws, lim))
    overflow = asyncio.create_task(sub.overflow.wait())
    try:
        done, _ = await asyncio.wait({sender, receiver, overflow}, return_when=asyncio.FIRST_COMPLETED)
        stalled = sender in done and not sender.cancelled() and isinstance(sender.exception(), _Stalled)
        if sub.overflowed or stalled:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            await _close_behind(ws, lim, progress.last)
        for task in done:
            if task is overflow or task.cancelled() or task.exception() is None:
                continue
            if not isinstance(task.exception(), WebSocketDisconnect | _Stalled):
                log.warning("event stream for %s ended: %r", who.actor, task.exception())
    finally:
        bus.unsubscribe(sub)
        left = reg.open.get(key, 1) - 1
        if left > 0:
            reg.open[key] = left
        else:
            reg.open.pop(key, None)
        for task in (sender, receiver, overflow):
            task.cancel()
        await asyncio.gather(sender, receiver, overflow, return_exceptions=True)


class _Stalled(Exception):
    """A send did not complete in time: the client does not read."""


async def _close_behind(ws: WebSocket, lim: StreamLimits, last: int) -> None:
    """Tell a subscriber that fell behind where to resume, if its socket still takes anything; then close."""

    async def bye() -> None:
        await ws.send_text(json.dumps({"type": "overflow", "resume_from": last}))
        await ws.close(CLOSE_OVERLOADED, _reason(f"subscriber fell behind; reconnect with since={last}"))

    try:
        await asyncio.wait_for(bye(), lim.close_timeout_s)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
        pass  # the server's write-stall guard drops the connection itself


async def _receive(ws: WebSocket, lim: StreamLimits) -> None:
    """Read until the client goes away; a client may send {"type": "ping"} and gets a pong."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text and len(text) < 256 and '"ping"' in text:
            try:
                await asyncio.wait_for(ws.send_text(json.dumps({"type": "pong"})), lim.send_timeout_s)
            except TimeoutError:
                raise _Stalled() from None


async def _send(
    ws: WebSocket,
    rt: Runtime,
    reg: StreamRegistry,
    key: bytes,
    who: Principal,
    sub: Subscription,
    accepts: EventFilter,
    since: int | None,
    progress: _Progress,
) -> None:
    lim = reg.limits
    bus = rt.center.bus

    async def send(text: str) -> None:
        try:
            await asyncio.wait_for(ws.send_text(text), lim.send_timeout_s)
        except TimeoutError:
            raise _Stalled() from None

    last = bus.last_published_seq
    progress.last = last
    await send(json.dumps({"type": "hello", "last_seq": last}))
    if since is not None and since < last:
        refusal = await _replay_refusal(rt, reg, key, who, since, last)
        if refusal is not None:
            code, reason = refusal
            try:
                await asyncio.wait_for(ws.close(code, _reason(reason)), lim.close_timeout_s)
            except TimeoutError:
                pass
            return
        progress.last = since
        last = await _replay(rt, send, accepts, since, last, progress)
        progress.last = last
    while True:
        item = await sub.queue.get()
        if item is None:
            return  # overflow: the handler closes with since=progress.last
        event, wire = item
        if event.seq is not None:
            if event.seq <= last:
                continue  # already sent during the replay
            last = event.seq
        await send(wire)
        if event.seq is not None:
            progress.last = last


async def _replay_refusal(
    rt: Runtime, reg: StreamRegistry, key: bytes, who: Principal, since: int, last: int
) -> tuple[int, str] | None:
    """None if this replay may go ahead, else (close code, reason)."""
    lim = reg.limits
    wait = reg.take_replay(key)
    if wait > 0:
        return CLOSE_TOO_MANY, f"too many replays with this token; retry in {max(1, round(wait))} s"
    if who.role is Role.COMMANDER:
        return None
    if last - since > lim.window_events:
        return CLOSE_REPLAY_TOO_OLD, (
            f"since={since} is more than {lim.window_events} events back; reload over REST, then use since=last_seq"
        )
    first = await _first_after(rt, since)
    if first is not None and (rt.center.clock() - first.ts).total_seconds() > lim.window_s:
        return CLOSE_REPLAY_TOO_OLD, (
            f"since={since} is more than {lim.window_s / 3600:g} h back; reload over REST, then use since=last_seq"
        )
    return None


async def _first_after(rt: Runtime, since: int) -> Event | None:
    page = rt.center.bus.replay_page(since, 1)
    if page is None:
        db = rt.db
        page = await db.read(lambda c: db.events_after(c, since, 1))
    return page[0] if page else None


async def _replay(rt: Runtime, send, accepts: EventFilter, since: int, upto: int, progress: _Progress) -> int:  # noqa: ANN001
    """Send the matching events in (since, upto], a page at a time, from memory or the database."""
    bus = rt.center.bus
    db = rt.db
    cursor = since
    while cursor < upto:
        page = bus.replay_page(cursor, REPLAY_PAGE)
        if page is None:  # older than the in-memory ring
            start = cursor
            page = await db.read(lambda c: db.events_after(c, start, DB_PAGE))
        if not page:
            break
        for event in page:
            if event.seq > upto:  # type: ignore[operator]
                return upto
            if accepts(event):
                await send(event.wire())
            cursor = event.seq  # type: ignore[assignment]
            progress.last = cursor
        await asyncio.sleep(0)  # between pages, let live traffic and other clients in
    return max(cursor, upto)
