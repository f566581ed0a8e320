"""A flying world for tests: the controller, its fleet link, and copters to fly (shared by e2e and browser tests).

The same tests run against the built-in simulator and against real ArduPilot
SITL (`--backend`); time runs faster than real time on both (SPEEDUP), so the
configs scale the ground-station failsafe timeout to stay 5 simulated seconds.

Faults are injected through `World.faults`, by drone id, the same way on both
backends (sitl/faults.py says how each backend does it). On ArduPilot the
controller reaches each SITL instance through a link proxy (sitl/link_proxy.py)
listening where the controller expects the drone, and the tests' own
connection uses the vehicle's second MAVLink port.
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
from sitl.faults import ArduPilotFaults, FaultInjector, SimFaults
from sitl.fleet import SimFleet, free_base_port
from sitl.roster import roster_specs
from tests import support

SPEEDUP = 10.0
DRONES = 12
#: Transit altitude for the tests: low, so a mission takes seconds of wall time.
TRANSIT_ALT_M = 40.0
NOFLY_STATION = 11  # not one of the stations the ten-mission test uses

T = TypeVar("T")


class Faults:
    """Fault injection by drone id, the same on both backends (the instance is the drone's place in the roster)."""

    def __init__(self, injector: FaultInjector, roster: list[str]) -> None:
        self.injector = injector
        self.roster = roster

    def instance(self, drone_id: str) -> int:
        return self.roster.index(drone_id)

    async def refuse_arming(self, drone_id: str) -> None:
        """A real pre-arm failure: the vehicle refuses to arm until `allow_arming`."""
        await self.injector.refuse_arming(self.instance(drone_id))

    async def allow_arming(self, drone_id: str) -> None:
        await self.injector.allow_arming(self.instance(drone_id))

    async def drop_command(self, drone_id: str, command: int) -> None:
        """This MAV_CMD never reaches the vehicle: no ACK, no action."""
        await self.injector.drop_command(self.instance(drone_id), command)

    async def cut_link(self, drone_id: str, seconds: float, mode: str = "drop") -> None:
        """No traffic either way for `seconds` of wall time ("close": the connection dropped and refused)."""
        await self.injector.cut_link(self.instance(drone_id), seconds, mode)

    async def drain_battery(self, drone_id: str, remaining_pct: float) -> None:
        """The battery has `remaining_pct` of its capacity left now."""
        await self.injector.drain_battery(self.instance(drone_id), remaining_pct)

    async def lose_gps(self, drone_id: str) -> None:
        """The vehicle's GPS stops; its EKF and failsafes react as ArduCopter's do."""
        await self.injector.lose_gps(self.instance(drone_id))

    async def armed(self, drone_id: str) -> bool:
        """Whether the vehicle itself says it is armed (not through the controller's link)."""
        return await self.injector.armed(self.instance(drone_id))

    async def flying(self, drone_id: str) -> bool:
        return await self.injector.flying(self.instance(drone_id))

    async def mode(self, drone_id: str) -> int:
        """The vehicle's flight mode (ArduCopter's number), as the vehicle itself says."""
        return await self.injector.mode(self.instance(drone_id))


@dataclass
class World:
    rt: Runtime
    backend: str
    sim: SimFleet | None
    speedup: float
    faults: Faults

    @property
    def slowdown(self) -> float:
        """Wall timeouts are written for SPEEDUP; a slower world (e.g. SITL at speed-up 1) gets them stretched."""
        return max(1.0, SPEEDUP / self.speedup)

    async def until(self, pred: Callable[[], Any], timeout: float, what: str) -> None:
        timeout *= self.slowdown
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
            await asyncio.sleep(0.05)

    async def eventually(self, read: Callable[[], Awaitable[T]], pred: Callable[[T], Any], timeout: float, what: str) -> T:
        """Poll an async read (the store, say) until `pred` holds: a state seen in memory is committed a moment later."""
        timeout *= self.slowdown
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

    The controller finds drone N on a free port base + 10·N, not on 5760.., so the suite runs beside a live
    controller: the simulator listens there itself; for ArduPilot a link proxy does, relaying to the SITL
    instance's own block of ports (sitl/ardupilot_harness.py), with the roster's system ids.
    """
    base = free_base_port(drones)
    cfg = world_configs(tmp_path, speedup, base)
    sim: SimFleet | None = None
    injector: FaultInjector
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sim":
            specs = roster_specs(cfg / "stations.json", cfg / "drone_models.yaml", drones, warm=True)
            sim = SimFleet(specs, speedup=speedup, base_port=base)
            await sim.start()
            stack.push_async_callback(sim.stop)
            injector = SimFaults(sim)
        else:
            injector = await _ardupilot(cfg, base, drones, speedup, stack)
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'world.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var",
            fleet="external", fleet_drones=drones,
        )
        rt = Runtime.build(settings, tokens=support.registry())
        await rt.start()
        stack.push_async_callback(rt.stop)
        roster = [d.id for s in rt.config.stations for d in s.drones]
        w = World(rt, backend, sim, speedup, Faults(injector, roster))
        await w.until(lambda: rt.fleet.configured == drones, 60, "every drone linked and configured")
        yield w


async def _ardupilot(cfg: Path, base: int, drones: int, speedup: float, stack: contextlib.AsyncExitStack) -> ArduPilotFaults:
    """ArduCopter SITL instances on ports of their own, each behind a link proxy on the controller's port for it."""
    from controller.config import load_config
    from sitl.ardupilot_control import VehicleControl
    from sitl.ardupilot_harness import ArduPilotFleet, SitlUnavailable, SitlVehicle, free_port_blocks
    from sitl.link_proxy import LinkProxy
    from sitl.roster import ardupilot_overrides

    c = load_config(cfg)
    roster = [(s, d) for s in c.stations for d in s.drones][:drones]
    controller_ports = [base + 10 * n for n in range(drones)]
    blocks = free_port_blocks(drones, avoid={p + k for p in controller_ports for k in range(10)})
    vehicles = [
        SitlVehicle(
            n, s.lat, s.lon, s.elevation_m, sysid=n + 1, base_port=blocks[n],
            params=ardupilot_overrides(d.model, c.drone_models[d.model].model_dump(), "models"),
        )
        for n, (s, d) in enumerate(roster)
    ]
    try:
        ardupilot = ArduPilotFleet(vehicles, speedup=speedup)
    except SitlUnavailable as exc:
        pytest.skip(str(exc))
    await ardupilot.start()
    stack.push_async_callback(ardupilot.stop)
    proxies = {n: LinkProxy(port, v.port, name=roster[n][1].id) for n, (port, v) in enumerate(zip(controller_ports, vehicles))}
    controls = {n: VehicleControl(v.control_port, v.system_id) for n, v in enumerate(vehicles)}
    faults = ArduPilotFaults(proxies, controls)
    stack.push_async_callback(faults.close)
    for proxy in proxies.values():
        await proxy.start()
        stack.push_async_callback(proxy.stop)
    return faults
