"""End-to-end tests run against the built-in simulator and against real ArduPilot SITL (`--backend`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.flying import DRONES, NOFLY_STATION, SPEEDUP, World, flying_world

__all__ = ["DRONES", "NOFLY_STATION", "SPEEDUP", "World"]


@pytest.fixture(params=["sim", "ardupilot"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    backend = request.param
    chosen = request.config.getoption("--backend")
    if chosen not in (backend, "both"):
        pytest.skip(f"--backend {chosen}")
    async with flying_world(tmp_path, backend, speedup=request.config.getoption("--speedup")) as w:
        yield w
