"""The WebSocket event stream: numbered, filtered, and resumable after a reconnect or a restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from controller.api.app import create_app
from controller.runtime import Runtime
from tests import support
from tests.conftest import build_runtime
from tests.support import TOKEN, auth


def ws_url(base: str, **query) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return base.replace("http://", "ws://") + "/api/v1/events" + (f"?{q}" if q else "")


async def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def collect(ws, until, timeout: float = 5.0) -> list[dict]:
    """Receive events until `until(events)` is true."""
    out: list[dict] = []
    while not until(out):
        out.append(await recv(ws, timeout))
    return out


async def create(base: str, station: str = support.STATION_A, category: str = "fire", north_deg: float = 0.003) -> str:
    """Open an incident just north of `station` (so that station's drone gets the offer); returns its id."""
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.get("/api/v1/stations", headers=auth("commander"))
        s = next(s for s in r.json() if s["id"] == station)
        body = {"grade": 2, "category": category, "lat": s["lat"] + north_deg, "lon": s["lon"]}
        r = await c.post("/api/v1/incidents", json=body, headers=auth("commander"))
        assert r.status_code == 201, r.text
        return r.json()["id"]


async def test_commander_sees_every_change_in_order(live_url: str) -> None:
    async with websockets.connect(ws_url(live_url), additional_headers=auth("commander")) as ws:
        hello = await recv(ws)
        assert hello == {"type": "hello", "last_seq": 0}
        inc = await create(live_url)
        events = await collect(ws, lambda ev: any(e["type"] == "offer.created" for e in ev))
        types = [e["type"] for e in events]
        assert types[0] == "incident.created" and "offer.created" in types and "drone.updated" in types
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        offer = next(e for e in events if e["type"] == "offer.created")
        assert offer["incident_id"] == inc and offer["station_id"] == support.STATION_A
        assert offer["data"]["incident"]["grade"] == 2 and offer["data"]["state"] == "offered"
        assert offer["data"]["remaining_s"] == pytest.approx(30, abs=1)


async def test_pilot_sees_only_its_station(live_url: str) -> None:
    async with (
        websockets.connect(ws_url(live_url), subprotocols=["dronefleet", TOKEN["pilot_a"]]) as wa,
        websockets.connect(ws_url(live_url), subprotocols=["dronefleet", TOKEN["pilot_b"]]) as wb,
    ):
        assert wa.subprotocol == "dronefleet"
        await recv(wa), await recv(wb)
        await create(live_url, station=support.STATION_A)
        got_a = await collect(wa, lambda ev: any(e["type"] == "offer.created" for e in ev))
        assert {e["station_id"] for e in got_a} == {support.STATION_A}
        await create(live_url, station=support.STATION_B, category="other")
        got_b = await collect(wb, lambda ev: any(e["type"] == "offer.created" for e in ev))
        assert {e["station_id"] for e in got_b} == {support.STATION_B}
        # station A's pilot got nothing about B's offer
        with pytest.raises(asyncio.TimeoutError):
            extra = await recv(wa, timeout=0.5)
            assert extra["station_id"] == support.STATION_A


async def test_filters_by_incident(live_url: str) -> None:
    first = await create(live_url, station=support.STATION_A)
    async with websockets.connect(ws_url(live_url, incident=first, since=0), additional_headers=auth("commander")) as ws:
        await recv(ws)
        await create(live_url, station=support.STATION_B, category="other")
        events = await collect(ws, lambda ev: any(e["type"] == "offer.created" for e in ev))
        assert {e["incident_id"] for e in events} == {first}


async def test_refused_subscriptions(live_url: str) -> None:
    async with websockets.connect(ws_url(live_url)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as err:
            await recv(ws)
        assert err.value.rcvd.code == 4401
    async with websockets.connect(ws_url(live_url, station=support.STATION_A), additional_headers=auth("pilot_b")) as ws:
        with pytest.raises(websockets.ConnectionClosed) as err:
            await recv(ws)
        assert err.value.rcvd.code == 4403


async def test_resume_after_reconnect_loses_and_repeats_nothing(live_url: str) -> None:
    async with websockets.connect(ws_url(live_url), additional_headers=auth("commander")) as ws:
        await recv(ws)
        await create(live_url, station=support.STATION_A)
        seen = await collect(ws, lambda ev: any(e["type"] == "offer.created" for e in ev))
    last = seen[-1]["seq"]
    # While disconnected, two more incidents arrive.
    await create(live_url, station=support.STATION_B, category="other")
    await create(live_url, station="NJ-XW-03", category="violent_crime")
    async with websockets.connect(ws_url(live_url, since=last), additional_headers=auth("commander")) as ws:
        hello = await recv(ws)
        missed = await collect(ws, lambda ev: ev and ev[-1]["seq"] == hello["last_seq"])
    assert [e["seq"] for e in missed] == list(range(last + 1, hello["last_seq"] + 1))
    assert sum(1 for e in missed if e["type"] == "incident.created") == 2


async def test_resume_from_the_database_after_a_restart(tmp_path: Path) -> None:
    cfg = support.copy_configs(tmp_path / "configs")
    rt: Runtime = build_runtime(tmp_path, cfg)
    await rt.start()
    async with support.serve(create_app(rt, manage_lifecycle=False)) as url:
        await create(url, station=support.STATION_A)
        await create(url, station=support.STATION_B, category="other")
    total = rt.center.bus.last_published_seq
    await rt.stop()

    rt2 = build_runtime(tmp_path, cfg)
    await rt2.start()
    try:
        assert rt2.center.bus.last_published_seq == total, "numbering continues after a restart"
        async with support.serve(create_app(rt2, manage_lifecycle=False)) as url:
            async with websockets.connect(ws_url(url, since=2), additional_headers=auth("commander")) as ws:
                hello = await recv(ws)
                assert hello["last_seq"] == total
                replay = await collect(ws, lambda ev: ev and ev[-1]["seq"] == total)
                assert [e["seq"] for e in replay] == list(range(3, total + 1))
                new = await create(url, station="NJ-GL-01", category="violent_crime")
                live = await recv(ws)
                assert live["seq"] == total + 1 and live["incident_id"] == new
    finally:
        await rt2.stop()


async def test_search_team_stream_carries_only_searches(live_url: str) -> None:
    async with websockets.connect(ws_url(live_url), additional_headers=auth("search_team")) as ws:
        await recv(ws)
        await create(live_url, station=support.STATION_A, category="fire")
        search = await create(live_url, station=support.STATION_B, category="missing_person")
        got = await collect(ws, lambda ev: any(e["type"] == "offer.created" for e in ev))
        assert {e["incident_id"] for e in got} == {search}
