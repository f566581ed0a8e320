"""The event stream across a SIGKILL: a client that reconnects with `since=SEQ` gets every later event exactly once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import websockets

from tests import support
from tests.persistence.test_kill_restart import Controller, near
from tests.support import auth

pytestmark = pytest.mark.slow


def ws_url(base: str, **query: object) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return base.replace("http://", "ws://") + "/api/v1/events" + (f"?{q}" if q else "")


async def read_until(ws, last_seq: int, timeout: float = 10.0) -> list[dict]:  # noqa: ANN001
    """Numbered events until `last_seq` (telemetry and other unnumbered ones are skipped)."""
    out: list[dict] = []
    while not out or out[-1]["seq"] < last_seq:
        msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if msg.get("seq") is not None:
            out.append(msg)
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    extra = ["--fleet", "none"]
    if backend == "postgresql":
        extra += ["--database-url", request.getfixturevalue("postgres").create_database("events")]
    ctl = Controller(tmp_path, support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER), extra)
    await asyncio.to_thread(ctl.start)
    try:
        stations = await asyncio.to_thread(ctl.get, "/api/v1/stations")
        seen: list[dict] = []
        async with websockets.connect(ws_url(ctl.url), additional_headers=auth("commander")) as ws:
            hello = json.loads(await ws.recv())
            for i, station in enumerate((support.STATION_A, support.STATION_B)):
                lat, lon = near(stations, station, 0.003 + i * 0.001)
                r = await asyncio.to_thread(ctl.post, "/api/v1/incidents", {"grade": 2, "category": "fire", "lat": lat, "lon": lon})
                assert r.status_code == 201
            health = await asyncio.to_thread(ctl.get, "/health")
            seen = await read_until(ws, health["last_event_seq"])
        assert [e["seq"] for e in seen] == list(range(hello["last_seq"] + 1, health["last_event_seq"] + 1))
        mark = seen[len(seen) // 2]["seq"]  # resume from the middle: half the replay predates the kill

        await asyncio.to_thread(ctl.kill)
        await asyncio.to_thread(ctl.start)
        lat, lon = near(stations, support.STATION_A, -0.004)
        r = await asyncio.to_thread(ctl.post, "/api/v1/incidents", {"grade": 1, "category": "violent_crime", "lat": lat, "lon": lon})
        assert r.status_code == 201
        last = (await asyncio.to_thread(ctl.get, "/health"))["last_event_seq"]
        assert last > health["last_event_seq"], "events after the restart continue the numbering"

        async with websockets.connect(ws_url(ctl.url, since=mark), additional_headers=auth("commander")) as ws:
            hello = json.loads(await ws.recv())
            assert hello["last_seq"] == last
            replay = await read_until(ws, last)
        seqs = [e["seq"] for e in replay]
        assert seqs == list(range(mark + 1, last + 1)), "every event after SEQ, once, in order"
        before = {e["seq"]: e for e in seen}
        for e in replay:
            if e["seq"] in before:  # what was seen before the kill comes back identical
                assert e == before[e["seq"]]
        assert any(e["type"] == "incident.created" and e["data"]["grade"] == 1 for e in replay)
    finally:
        await asyncio.to_thread(ctl.stop)
