"""A flying world for tests: the controller, its fleet link, and copters to fly (shared by e2e and browser tests).

The same tests run against the built-in simulator and against real ArduPilot
SITL (`--backend`); time runs faster than real time on both (SPEEDUP), so the
configs scale the ground-station failsafe timeout to stay 5 simulated seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from controller.runtime import Runtime
from controller.settings import Settings
from sitl.fleet import SimFleet, free_base_port
from sitl.roster import roster_specs
from tests import support

SPEEDUP = 10.0
DRONES = 12
#: Transit altitude for the tests: low, so a mission takes seconds of wall time.
TRANSIT_ALT_M = 40.0
NOFLY_STATION = 11  # not one of the stations the ten-mission test uses

T = TypeVar("T")


@dataclass
class World:
    rt: Runtime
    backend: str
    sim: SimFleet | None
    speedup: float

    async def until(self, pred: Callable[[], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            await asyncio.sleep(0.05)

    async def eventually(self, read: Callable[[], Awaitable[T]], pred: Callable[[T], Any], timeout: float, what: str) -> T:
        """Poll an async read (the store, say) until `pred` holds: a state seen in memory is committed a moment later."""
        deadline = time.monotonic() + timeout
        while True:
            value = await read()
            if pred(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last read: {value!r}")
            await asyncio.sleep(0.05)


def world_configs(tmp: Path, speedup: float, base_port: int = 5760) -> Path:
    cfg = support.copy_configs(tmp / "configs", transit_altitude_m=TRANSIT_ALT_M, offer_timeout_s=120)
    flight = yaml.safe_load((cfg / "flight.yaml").read_text())
    flight["failsafe"]["gcs_timeout_s"] = 5 * speedup  # heartbeats are 1 Hz in wall time
    flight["on_scene"] = "hold"
    flight["links"]["base_port"] = base_port  # away from 5760.., where `make run`'s simulator may be listening
    (cfg / "flight.yaml").write_text(yaml.safe_dump(flight))
    # A small no-fly zone 400 m north of station NOFLY_STATION, for the refusal test.
    from controller import geo
    from controller.config import load_config

    station = load_config(cfg).stations[NOFLY_STATION]
    lat, lon = geo.destination(station.lat, station.lon, 0.0, 400.0)
    zones = json.loads((cfg / "nofly.geojson").read_text())
    zones["features"].append(
        {
            "type": "Feature",
            "properties": {"id": "test-zone", "name": "test zone (hospital helipad)", "reason": "test"},
            "geometry": {"type": "Polygon", "coordinates": [geo.circle_ring(lat, lon, 150.0, 16)]},
        }
    )
    (cfg / "nofly.geojson").write_text(json.dumps(zones))
    return cfg


@contextlib.asynccontextmanager
async def flying_world(tmp_path: Path, backend: str = "sim", drones: int = DRONES, speedup: float = SPEEDUP) -> AsyncIterator[World]:
    """Start copters (built-in simulator or ArduPilot SITL) and a controller flying them.

    Both listen on a free range of ports (base + 10·N), not on 5760.., so the suite runs beside a live
    controller; ArduPilot's port follows its instance number (-I), so its instances are numbered from
    (base - 5760) / 10 with the roster's system ids.
    """
    base = free_base_port(drones)
    cfg = world_configs(tmp_path, speedup, base)
    sim: SimFleet | None = None
    ardupilot = None
    if backend == "sim":
        specs = roster_specs(cfg / "stations.json", cfg / "drone_models.yaml", drones, warm=True)
        sim = SimFleet(specs, speedup=speedup, base_port=base)
        await sim.start()
    else:
        from controller.config import load_config
        from sitl.ardupilot_harness import ArduPilotFleet, SitlUnavailable, SitlVehicle

        try:
            c = load_config(cfg)
            from sitl.roster import model_overrides

            roster = [(s, d) for s in c.stations for d in s.drones][:drones]
            first = (base - 5760) // 10
            vehicles = [
                SitlVehicle(
                    first + n, s.lat, s.lon, s.elevation_m, sysid=n + 1,
                    params=model_overrides(d.model, c.drone_models[d.model].model_dump(), "models")[0],
                )
                for n, (s, d) in enumerate(roster)
            ]
            ardupilot = ArduPilotFleet(vehicles, speedup=speedup)
        except SitlUnavailable as exc:
            pytest.skip(str(exc))
        await ardupilot.start()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'world.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var",
        fleet="external", fleet_drones=drones,
    )
    rt = Runtime.build(settings, tokens=support.registry())
    await rt.start()
    w = World(rt, backend, sim, speedup)
    try:
        await w.until(lambda: rt.fleet.configured == drones, 60, "every drone linked and configured")
        yield w
    finally:
        await rt.stop()
        if sim is not None:
            await sim.stop()
        if ardupilot is not None:
            await ardupilot.stop()
