"""Slow and abusive clients against the real server settings (controller.server.uvicorn_config), over raw sockets:
a client that sends its headers a byte at a time, or nothing, or endless headers, or trickles its body, or opens
more connections than the cap, or subscribes to the event stream and never reads."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
import weakref
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psutil
import pytest
import uvicorn

from controller import server as srv
from controller.api import errors
from controller.api.app import create_app
from controller.events import Event
from controller.runtime import Runtime
from tests import support
from tests.support import TOKEN

HEADER_TIMEOUT = 1.0


@contextlib.asynccontextmanager
async def guarded(runtime: Runtime, **overrides) -> AsyncIterator[tuple[int, uvicorn.Server, object]]:
    app = create_app(runtime, manage_lifecycle=False)
    port = support.free_port()
    server = uvicorn.Server(srv.uvicorn_config(app, "127.0.0.1", port, "warning", lifespan="off", **overrides))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield port, server, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture(autouse=True)
def quick_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv.GuardedHttpProtocol, "header_timeout_s", HEADER_TIMEOUT)
    monkeypatch.setattr(srv.GuardedHttpProtocol, "write_stall_s", 1.0)
    monkeypatch.setattr(srv.GuardedWebSocketProtocol, "write_stall_s", 1.0)
    monkeypatch.setattr(srv.GuardedWebSocketProtocol, "close_deadline_s", 1.0)


async def talk(port: int, chunks: list[bytes], delay: float = 0.0, wait: float = 10.0) -> tuple[bytes, float, bool]:
    """Send chunks (pausing between them), then read until the server closes: (answer, seconds, closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    reading = asyncio.create_task(reader.read())  # read all along: the answer may come while we still send
    try:
        for chunk in chunks:
            if reading.done():
                break
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(delay)
    except (ConnectionError, OSError):
        pass
    try:
        answer = await asyncio.wait_for(reading, wait)
        closed = True
    except (ConnectionError, OSError):
        answer, closed = b"", True
    except TimeoutError:
        answer, closed = b"", False
    finally:
        writer.close()
    return answer, time.monotonic() - start, closed


GET = b"GET /api/v1/me HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer " + TOKEN["commander"].encode() + b"\r\n\r\n"


async def test_a_normal_request_still_works(runtime: Runtime) -> None:
    async with guarded(runtime) as (port, _, _):
        answer, _, _ = await talk(port, [GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")])
    assert answer.startswith(b"HTTP/1.1 200") and b'"role":"commander"' in answer


async def test_a_silent_connection_is_dropped(runtime: Runtime) -> None:
    async with guarded(runtime) as (port, server, _):
        answer, took, closed = await talk(port, [])
        assert closed and took < HEADER_TIMEOUT + 2
        assert answer.startswith(b"HTTP/1.1 408")
        assert len(server.server_state.connections) == 0


async def test_headers_sent_a_byte_at_a_time_are_cut_off(runtime: Runtime) -> None:
    async with guarded(runtime) as (port, server, _):
        slow = [GET[i : i + 1] for i in range(len(GET))]  # would take ~25 s at 0.25 s a byte
        answer, took, closed = await talk(port, slow, delay=0.25)
        assert closed and took < HEADER_TIMEOUT + 2, took
        assert len(server.server_state.connections) == 0


async def test_kept_alive_connection_gets_a_deadline_for_its_next_request_too(runtime: Runtime) -> None:
    async with guarded(runtime, timeout_keep_alive=30) as (port, _, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(GET)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"GET /api/v1/me HT")  # the start of a second request, and then nothing
            start = time.monotonic()
            rest = await asyncio.wait_for(reader.read(), HEADER_TIMEOUT + 3)
            assert rest.startswith(b"HTTP/1.1 408") and time.monotonic() - start < HEADER_TIMEOUT + 2
        finally:
            writer.close()


async def test_endless_headers_get_431(runtime: Runtime) -> None:
    async with guarded(runtime) as (port, _, _):
        flood = [b"GET /api/v1/me HTTP/1.1\r\n"] + [b"X-Pad: " + b"a" * 4000 + b"\r\n"] * 40
        answer, _, closed = await talk(port, flood, delay=0.01)
    assert closed
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:60]


async def test_a_trickled_body_gets_408(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "BODY_TIMEOUT_S", 1.0)
    async with guarded(runtime) as (port, _, _):
        head = (
            b"POST /api/v1/incidents HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 200\r\n"
            b"Authorization: Bearer " + TOKEN["commander"].encode() + b"\r\n\r\n"
        )
        answer, took, closed = await talk(port, [head] + [b" "] * 20, delay=0.2)
    assert answer.startswith(b"HTTP/1.1 408") and b'"error":"timeout"' in answer, answer[:200]
    assert runtime.center.incidents == {}


async def test_a_chunked_body_over_the_limit_gets_413(runtime: Runtime) -> None:
    async with guarded(runtime) as (port, _, _):
        head = (
            b"POST /api/v1/incidents HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nAuthorization: Bearer " + TOKEN["commander"].encode() + b"\r\n\r\n"
        )
        chunk = b"x" * 8192
        body = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 10 + [b"0\r\n\r\n"]
        answer, _, _ = await talk(port, [head, *body])
    assert answer.startswith(b"HTTP/1.1 413") and b'"error":"too_large"' in answer, answer[:200]


async def test_connections_over_the_cap_are_refused(runtime: Runtime) -> None:
    async with guarded(runtime, limit_concurrency=10) as (port, server, _):
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(15)]
        try:
            answers = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in conns[10:]))
            assert all(a.startswith(b"HTTP/1.1 503") for a in answers), answers
            assert len(server.server_state.connections) <= 10
        finally:
            for _, w in conns:
                w.close()


def never_reading_subscriber(port: int, token: str) -> socket.socket:
    """A WebSocket client that completes the handshake request and then never reads a byte."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(
        b"GET /api/v1/events HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
    )
    return s


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def test_never_reading_subscribers_are_cut_off_and_their_memory_freed(runtime: Runtime) -> None:
    clients = 10
    async with guarded(runtime) as (port, server, app):
        app.state.streams.limits.per_token = clients
        app.state.streams.limits.queue_bytes = 4 * 2**20
        app.state.streams.limits.close_timeout_s = 0.5
        bus = runtime.center.bus
        before = rss_mib()
        base_subs = bus.subscriber_count
        socks = [never_reading_subscriber(port, TOKEN["commander"]) for _ in range(clients)]
        try:
            for _ in range(100):
                if bus.subscriber_count == base_subs + clients:
                    break
                await asyncio.sleep(0.05)
            assert bus.subscriber_count == base_subs + clients
            subs = [weakref.ref(s) for s in bus._subscribers]
            # 16 kB telemetry-like events, each one distinct, until every subscriber has been cut off
            blob = "t" * 16_000
            sent = 0
            deadline = time.monotonic() + 30
            while bus.subscriber_count > base_subs and time.monotonic() < deadline:
                bus.publish([Event(None, datetime.now(UTC), "test.telemetry", {"i": sent, "blob": f"{blob}{sent}"})])
                sent += 1
                if sent % 50 == 0:
                    await asyncio.sleep(0)
            assert bus.subscriber_count == base_subs, "a subscriber that never reads is cut off"
            for _ in range(100):  # the write-stall guard then drops the sockets themselves
                if not server.server_state.connections:
                    break
                await asyncio.sleep(0.1)
            assert not server.server_state.connections, "the never-reading sockets are closed by the server"
            gc.collect()
            assert sum(1 for ref in subs if ref() is not None) == base_subs, "their subscriptions are freed"
            after = rss_mib()
            print(f"\n{clients} never-reading subscribers, {sent} events of 16 kB published: RSS {before:.1f} -> {after:.1f} MiB")
            assert after - before < 32, (before, after)
        finally:
            for s in socks:
                s.close()
