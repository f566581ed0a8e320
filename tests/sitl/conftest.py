"""Fixtures for the simulator tests: free port ranges, a simulator in its own thread for blocking clients."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pymavlink import mavutil

from sitl.fleet import SimFleet, VehicleSpec
from sitl.vehicle import SimCopter

HOME = (32.0603, 118.7969, 10.0)  # where the transcripts were recorded


def spec(instance: int = 0, **kw: Any) -> VehicleSpec:
    return VehicleSpec(instance, *HOME, **kw)


def copter(warm: bool = True, **kw: Any) -> SimCopter:
    return SimCopter(1, SimpleNamespace(lat=HOME[0], lon=HOME[1], alt_amsl=HOME[2]), warm=warm, **kw)


class ThreadedFleet:
    """A SimFleet running in its own thread and event loop, so blocking clients (dronekit, pymavlink) can talk to it."""

    def __init__(self, fleet: SimFleet) -> None:
        self.fleet = fleet
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name="sim-fleet")

    def _main(self) -> None:
        async def run() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.fleet.start()
            except BaseException as exc:  # noqa: BLE001 - reported to the test thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.fleet.stop()

        asyncio.run(run())

    def start(self) -> ThreadedFleet:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("simulator did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the simulator's loop (fault injection from the test thread)."""
        assert self.loop is not None
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn(*args)
            except BaseException as exc:  # noqa: BLE001
                box["error"] = exc
            done.set()

        self.loop.call_soon_threadsafe(run)
        assert done.wait(5)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "simulator thread did not stop"


@pytest.fixture
def threaded_fleet() -> Iterator[Any]:
    """Factory: threaded_fleet(specs, speedup=..) -> ThreadedFleet (stopped after the test)."""
    started: list[ThreadedFleet] = []

    def make(specs: list[VehicleSpec], speedup: float = 10.0, **kw: Any) -> ThreadedFleet:
        tf = ThreadedFleet(SimFleet(specs, speedup=speedup, **kw)).start()
        started.append(tf)
        return tf

    yield make
    for tf in started:
        tf.stop()


def gcs(port: int, **kw: Any) -> Any:
    """A pymavlink ground station (sysid 255, compid 190) on the simulator's TCP port."""
    return mavutil.mavlink_connection(f"tcp:127.0.0.1:{port}", source_system=255, source_component=190, autoreconnect=False, **kw)
