"""The event stream over WebSocket: numbered, filtered by role/station/incident, resumable.

Connect to `/api/v1/events?since=SEQ&station=ID&incident=ID` with the bearer
token in the Authorization header or, from a browser, as the WebSocket
subprotocols `["dronefleet", TOKEN]`. The server sends a `hello` message with
the last published sequence number, replays every matching event after `since`
(from memory, or from the database when it is older), then streams live. A
subscriber that falls too far behind gets an `overflow` message and is closed;
it reconnects with the last `seq` it processed and loses nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from controller.api.visibility import event_filter
from controller.domain.errors import Forbidden
from controller.events import Event, EventFilter, Subscription
from controller.runtime import Runtime

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["events"])

SUBPROTOCOL = "dronefleet"
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_OVERLOADED = 1013
DB_PAGE = 5000


def _credentials(ws: WebSocket) -> tuple[str | None, str | None]:
    """(token, subprotocol to echo) from the Authorization header or the subprotocol list."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(offered) >= 2 and offered[0] == SUBPROTOCOL:
        return offered[1], SUBPROTOCOL
    return None, SUBPROTOCOL if SUBPROTOCOL in offered else None


@router.websocket("/events")
async def events(ws: WebSocket, since: int | None = None, station: str | None = None, incident: str | None = None):
    rt: Runtime = ws.app.state.runtime
    token, subprotocol = _credentials(ws)
    await ws.accept(subprotocol=subprotocol)
    who = rt.tokens.authenticate(token)
    if who is None:
        await ws.close(CLOSE_UNAUTHORIZED, "missing or unknown bearer token")
        return
    try:
        accepts = event_filter(who, station, incident)
    except Forbidden as exc:
        await ws.close(CLOSE_FORBIDDEN, str(exc)[:120])
        return
    bus = rt.center.bus
    sub = bus.subscribe(accepts)
    sender = asyncio.create_task(_send(ws, rt, sub, accepts, since))
    receiver = asyncio.create_task(_receive(ws))
    try:
        done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() and not isinstance(task.exception(), WebSocketDisconnect):
                log.warning("event stream for %s ended: %r", who.actor, task.exception())
    finally:
        bus.unsubscribe(sub)
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)


async def _receive(ws: WebSocket) -> None:
    """Read until the client goes away; a client may send {"type": "ping"} and gets a pong."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text and '"ping"' in text:
            await ws.send_text(json.dumps({"type": "pong"}))


async def _send(ws: WebSocket, rt: Runtime, sub: Subscription, accepts: EventFilter, since: int | None) -> None:
    bus = rt.center.bus
    last = bus.last_published_seq
    await ws.send_text(json.dumps({"type": "hello", "last_seq": last}))
    if since is not None and since < last:
        last = await _replay(ws, rt, accepts, since, last)
    while True:
        item = await sub.queue.get()
        if item is None:
            await ws.send_text(json.dumps({"type": "overflow", "resume_from": last}))
            await ws.close(CLOSE_OVERLOADED, "subscriber fell behind; reconnect with since")
            return
        event, wire = item
        if event.seq is not None:
            if event.seq <= last:
                continue  # already sent during the replay
            last = event.seq
        await ws.send_text(wire)


async def _replay(ws: WebSocket, rt: Runtime, accepts: EventFilter, since: int, upto: int) -> int:
    bus = rt.center.bus
    cursor = since
    events: list[Event] | None = bus.replay_from_memory(cursor)
    while events is None:  # older than the in-memory ring: page through the database
        db = rt.db
        start = cursor
        page = await db.read(lambda c: db.events_after(c, start, DB_PAGE))
        if not page:
            break
        for event in page:
            if accepts(event):
                await ws.send_text(event.wire())
            cursor = event.seq  # type: ignore[assignment]
        events = bus.replay_from_memory(cursor)
    for event in events or []:
        if event.seq > upto:  # type: ignore[operator]
            break
        if accepts(event):
            await ws.send_text(event.wire())
        cursor = event.seq  # type: ignore[assignment]
    return max(cursor, upto)
