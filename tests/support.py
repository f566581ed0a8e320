"""Helpers shared by the controller tests: tokens, config copies, a live uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from controller.auth import TokenRegistry

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

#: Two stations the tests use: a central one and a neighbour.
STATION_A = "NJ-XW-01"
STATION_B = "NJ-XW-02"

TOKENS: dict[str, dict[str, Any]] = {
    "test-commander-token-0001": {"role": "commander", "name": "cmd"},
    "test-admin-token-00000001": {"role": "admin", "name": "admin"},
    "test-search-team-token-01": {"role": "search_team", "name": "team1"},
    "test-pilot-a-token-000001": {"role": "pilot", "name": "pilot-a", "station_id": STATION_A},
    "test-pilot-b-token-000001": {"role": "pilot", "name": "pilot-b", "station_id": STATION_B},
    "test-drone-a1-token-00001": {"role": "drone", "name": "drone-a1", "drone_id": f"{STATION_A}-D1"},
}
TOKEN = {
    "commander": "test-commander-token-0001",
    "admin": "test-admin-token-00000001",
    "search_team": "test-search-team-token-01",
    "pilot_a": "test-pilot-a-token-000001",
    "pilot_b": "test-pilot-b-token-000001",
    "drone_a1": "test-drone-a1-token-00001",
}


def registry() -> TokenRegistry:
    return TokenRegistry.from_document({"tokens": TOKENS}, "tests")


def auth(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN[who]}"}


#: Stations kept by a small test config: enough for declines, redirects and neighbours, a tenth of the roster.
SMALL_ROSTER = 12


def copy_configs(dest: Path, stations: int | None = None, **policy: Any) -> Path:
    """A private copy of configs/ with dispatch policy overrides (e.g. offer_timeout_s=0.5).

    `stations`: keep only this many stations, the nearest to STATION_A (it and STATION_B always kept), for
    tests where the whole roster is not the point: a runtime with 12 stations starts in a fraction of the time.
    """
    shutil.copytree(CONFIGS, dest)
    if stations is not None:
        path = dest / "stations.json"
        doc = json.loads(path.read_text())
        by_id = {s["id"]: s for s in doc["stations"]}
        a = by_id[STATION_A]
        near = sorted(doc["stations"], key=lambda s: (s["lat"] - a["lat"]) ** 2 + ((s["lon"] - a["lon"]) * 0.85) ** 2)
        keep = [STATION_A, STATION_B]
        keep += [s["id"] for s in near if s["id"] not in keep][: max(stations - 2, 0)]
        doc["stations"] = [s for s in doc["stations"] if s["id"] in keep]
        path.write_text(json.dumps(doc, indent=1))
    if policy:
        path = dest / "dispatch.yaml"
        doc = yaml.safe_load(path.read_text())
        doc.update(policy)
        path.write_text(yaml.safe_dump(doc))
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws_per_message_deflate=False
        ))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
