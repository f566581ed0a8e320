"""The event stream against hostile or careless clients: bad parameters, replays scoped, paged, rate-limited and
bounded in age, a stream limit per token, and a subscriber that falls behind told where to resume."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from fastapi import FastAPI

from controller.api.app import create_app
from controller.api.routes import events_ws
from controller.events import Event
from controller.runtime import Runtime
from tests import support
from tests.support import auth


def ws_url(base: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + "/api/v1/events" + (f"?{query}" if query else "")


async def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def closed_with(ws, timeout: float = 5.0) -> tuple[int, str, list[dict]]:
    """Read until the server closes; (code, reason, messages received before)."""
    got: list[dict] = []
    try:
        while True:
            got.append(await recv(ws, timeout))
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None, "the server dropped the socket without a close frame"
        return exc.rcvd.code, exc.rcvd.reason, got


@pytest.fixture
async def served(runtime: Runtime):
    """(base url, app) of a live server, so tests can tune the app's stream limits."""
    app = create_app(runtime, manage_lifecycle=False)
    async with support.serve(app) as url:
        yield url, app


def limits(app: FastAPI) -> events_ws.StreamLimits:
    return app.state.streams.limits


async def create(base: str, station: str, category: str = "fire") -> str:
    async with httpx.AsyncClient(base_url=base) as c:
        s = next(s for s in (await c.get("/api/v1/stations", headers=auth("commander"))).json() if s["id"] == station)
        r = await c.post(
            "/api/v1/incidents", json={"grade": 2, "category": category, "lat": s["lat"] + 0.003, "lon": s["lon"]},
            headers=auth("commander"),
        )
        assert r.status_code == 201, r.text
        return r.json()["id"]


def durable(rt: Runtime, n: int, station: str = support.STATION_A) -> None:
    """Publish n numbered events straight onto the bus (no database), as a burst."""
    bus = rt.center.bus
    now = datetime.now(UTC)
    bus.publish([bus.stamp("test.tick", {"i": i}, now, station_id=station) for i in range(n)])


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("since=-99999999999999999999999", "since must be a whole number"),
        ("since=99999999999999999999999", "since must be a whole number"),
        ("since=-1", "since must be a whole number"),
        ("since=1.5", "since must be a whole number"),
        ("since=abc", "since must be a whole number"),
        ("since=", "since must be a whole number"),
        ("station=%00", "station must be an id"),
        ("incident=" + "x" * 200, "incident must be an id"),
    ],
)
async def test_bad_parameters_close_with_a_reason(served, query: str, fragment: str) -> None:
    url, _ = served
    async with websockets.connect(ws_url(url, query), additional_headers=auth("commander")) as ws:
        code, reason, got = await closed_with(ws)
    assert code == events_ws.CLOSE_BAD_REQUEST and fragment in reason, (code, reason)
    assert got == []


async def test_drone_tokens_get_no_stream(served) -> None:
    url, _ = served
    async with websockets.connect(ws_url(url), additional_headers=auth("drone_a1")) as ws:
        code, reason, _ = await closed_with(ws)
    assert code == events_ws.CLOSE_FORBIDDEN and "drone" in reason


async def test_replay_is_scoped_to_the_role(served, runtime: Runtime) -> None:
    url, _ = served
    await create(url, support.STATION_A)
    search = await create(url, support.STATION_B, category="missing_person")
    last = runtime.center.bus.last_published_seq
    expect = {"pilot_a": {support.STATION_A}, "pilot_b": {support.STATION_B}}
    for who, stations in expect.items():
        async with websockets.connect(ws_url(url, "since=0"), additional_headers=auth(who)) as ws:
            assert (await recv(ws))["last_seq"] == last
            got = []
            while not got or got[-1]["seq"] < max(e.seq for e in runtime.center.bus.replay_from_memory(0) if e.station_id in stations):
                got.append(await recv(ws))
        assert got and {e["station_id"] for e in got} == stations
    async with websockets.connect(ws_url(url, "since=0"), additional_headers=auth("search_team")) as ws:
        await recv(ws)
        mine = [e.seq for e in runtime.center.bus.replay_from_memory(0) if e.incident_id == search]
        got = [await recv(ws) for _ in mine]
    assert [e["seq"] for e in got] == mine and {e["incident_id"] for e in got} == {search}


async def test_replay_is_paged(served, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = served
    durable(runtime, 50)
    pages: list[int] = []
    real = runtime.center.bus.replay_page

    def spy(since: int, limit: int):
        page = real(since, limit)
        pages.append(len(page) if page else 0)
        return page

    monkeypatch.setattr(events_ws, "REPLAY_PAGE", 7)
    monkeypatch.setattr(runtime.center.bus, "replay_page", spy)
    async with websockets.connect(ws_url(url, "since=3"), additional_headers=auth("commander")) as ws:
        await recv(ws)
        got = [(await recv(ws))["seq"] for _ in range(47)]
    assert got == list(range(4, 51))
    assert max(pages) == 7 and len(pages) >= 7, pages


async def test_replays_are_rate_limited_per_token(served, runtime: Runtime) -> None:
    url, app = served
    limits(app).replay_burst = 2
    limits(app).replay_per_minute = 0.5
    durable(runtime, 5)
    for _ in range(2):
        async with websockets.connect(ws_url(url, "since=1"), additional_headers=auth("commander")) as ws:
            await recv(ws)
            assert (await recv(ws))["seq"] == 2
    async with websockets.connect(ws_url(url, "since=1"), additional_headers=auth("commander")) as ws:
        code, reason, got = await closed_with(ws)
    assert code == events_ws.CLOSE_TOO_MANY and "too many replays" in reason and "retry in" in reason
    assert [m["type"] for m in got] == ["hello"]
    # other tokens have their own budget, and a live subscription (no replay) is not counted
    async with websockets.connect(ws_url(url, "since=1"), additional_headers=auth("admin")) as ws:
        await recv(ws)
        assert (await recv(ws))["seq"] == 2
    async with websockets.connect(ws_url(url), additional_headers=auth("commander")) as ws:
        assert (await recv(ws))["type"] == "hello"


async def test_replay_depth_is_bounded_for_everyone_but_commanders(served, runtime: Runtime) -> None:
    url, app = served
    limits(app).window_events = 10
    durable(runtime, 30)
    async with websockets.connect(ws_url(url, "since=5"), additional_headers=auth("pilot_a")) as ws:
        code, reason, got = await closed_with(ws)
    assert code == events_ws.CLOSE_REPLAY_TOO_OLD and "since=5 is more than 10 events back" in reason
    assert got == [{"type": "hello", "last_seq": 30}], "the hello says where to resume after reloading"
    async with websockets.connect(ws_url(url, "since=25"), additional_headers=auth("pilot_a")) as ws:
        await recv(ws)
        assert (await recv(ws))["seq"] == 26
    async with websockets.connect(ws_url(url, "since=5"), additional_headers=auth("commander")) as ws:
        await recv(ws)
        assert (await recv(ws))["seq"] == 6


async def test_replay_age_is_bounded(served, runtime: Runtime) -> None:
    url, app = served
    bus = runtime.center.bus
    old = datetime.now(UTC) - timedelta(hours=2)
    bus.publish([bus.stamp("test.tick", {"i": i}, old, station_id=support.STATION_A) for i in range(3)])
    durable(runtime, 2)
    async with websockets.connect(ws_url(url, "since=0"), additional_headers=auth("search_team")) as ws:
        code, reason, _ = await closed_with(ws)
    assert code == events_ws.CLOSE_REPLAY_TOO_OLD and "1 h back" in reason
    async with websockets.connect(ws_url(url, "since=3"), additional_headers=auth("admin")) as ws:
        await recv(ws)
        assert (await recv(ws))["seq"] == 4


async def test_streams_per_token_are_limited(served) -> None:
    url, app = served
    limits(app).per_token = 2
    a = await websockets.connect(ws_url(url), additional_headers=auth("pilot_a"))
    b = await websockets.connect(ws_url(url), additional_headers=auth("pilot_a"))
    try:
        await recv(a), await recv(b)
        async with websockets.connect(ws_url(url), additional_headers=auth("pilot_a")) as c:
            code, reason, _ = await closed_with(c)
        assert code == events_ws.CLOSE_TOO_MANY and "limit 2" in reason
        async with websockets.connect(ws_url(url), additional_headers=auth("pilot_b")) as other:
            assert (await recv(other))["type"] == "hello"
        await a.close()
        for _ in range(50):
            if app.state.streams.open.get(next(iter(app.state.streams.open)), 0) < 2:
                break
            await asyncio.sleep(0.05)
        async with websockets.connect(ws_url(url), additional_headers=auth("pilot_a")) as d:
            assert (await recv(d))["type"] == "hello"
    finally:
        await a.close()
        await b.close()


async def test_a_subscriber_that_falls_behind_is_told_where_to_resume(served, runtime: Runtime) -> None:
    url, app = served
    limits(app).queue_events = 5
    async with websockets.connect(ws_url(url), additional_headers=auth("commander")) as ws:
        assert (await recv(ws))["last_seq"] == 0
        durable(runtime, 40)  # one burst: the subscriber's queue of 5 overflows before it can send anything
        code, reason, got = await closed_with(ws)
    assert code == events_ws.CLOSE_OVERLOADED
    assert got[-1]["type"] == "overflow"
    resume = got[-1]["resume_from"]
    assert f"since={resume}" in reason
    seen = [m["seq"] for m in got if m.get("seq")]
    assert seen == list(range(1, resume + 1))
    assert runtime.center.bus.subscriber_count == 2, "only the video service's and the evidence recorder's own are left"
    limits(app).queue_events = 20_000
    async with websockets.connect(ws_url(url, f"since={resume}"), additional_headers=auth("commander")) as ws:
        await recv(ws)
        rest = [(await recv(ws))["seq"] for _ in range(40 - resume)]
    assert seen + rest == list(range(1, 41)), "nothing lost, nothing repeated"


async def test_subscription_queue_is_bounded_in_bytes(runtime: Runtime) -> None:
    bus = runtime.center.bus
    sub = bus.subscribe(lambda e: True, max_events=10_000, max_bytes=50_000)
    try:
        blob = "x" * 10_000
        now = datetime.now(UTC)
        for i in range(4):
            bus.publish([Event(None, now, "test.blob", {"i": i, "b": blob})])
        assert not sub.overflowed and 40_000 < sub.queue.bytes < 50_000
        (await sub.queue.get())
        assert sub.queue.bytes < 40_000, "bytes are counted down as the subscriber reads"
        for i in range(3):
            bus.publish([Event(None, now, "test.blob", {"i": i, "b": blob})])
        assert sub.overflowed and sub.overflow.is_set()
        assert sub.queue.qsize() == 1 and sub.queue.bytes == 0, "what was queued is dropped at once"
        assert await sub.queue.get() is None
    finally:
        bus.unsubscribe(sub)
