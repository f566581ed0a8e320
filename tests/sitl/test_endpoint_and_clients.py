"""The simulator over real sockets: dronekit as an independent client, signing, fault injection, 140 copters."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest

from controller.fleet.drone_link import CommandTimeout, DroneLink, LinkConfig
from controller.fleet.transport import Endpoint
from sitl.control import ControlServer, request
from sitl.fleet import SimFleet, VehicleSpec
from sitl.roster import roster_specs
from tests.support import free_port

HOME = (32.0603, 118.7969, 10.0)


def spec(instance: int, **kw) -> VehicleSpec:  # noqa: ANN003
    return VehicleSpec(instance, *HOME, **kw)


@pytest.fixture
def threaded_sim() -> Iterator[SimFleet]:
    """A cold-booting simulator at speedup 10 in its own thread, for blocking clients such as dronekit."""
    fleet = SimFleet([spec(31)], speedup=10)
    ready, stop = threading.Event(), threading.Event()

    def run() -> None:
        async def main() -> None:
            await fleet.start()
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await fleet.stop()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fleet
    stop.set()
    thread.join(10)


def test_dronekit_connects_arms_and_takes_off(threaded_sim: SimFleet) -> None:
    import dronekit

    started = time.monotonic()
    vehicle = dronekit.connect(f"tcp:127.0.0.1:{5760 + 310}", wait_ready=True, timeout=60, heartbeat_timeout=30)
    try:
        assert time.monotonic() - started < 10
        assert len(vehicle.parameters) == threaded_sim.vehicle(31).params.count()  # the full list downloaded
        assert vehicle.parameters["WPNAV_SPEED"] == 1000
        assert vehicle.mode.name == "STABILIZE"
        deadline = time.monotonic() + 30
        while not vehicle.is_armable:
            assert time.monotonic() < deadline, "never armable"
            time.sleep(0.2)
        vehicle.mode = dronekit.VehicleMode("GUIDED")
        while vehicle.mode.name != "GUIDED":
            time.sleep(0.1)
        vehicle.armed = True
        while not vehicle.armed:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        vehicle.simple_takeoff(20)
        while vehicle.location.global_relative_frame.alt < 19.0:
            assert time.monotonic() < deadline + 30, "did not reach 19 m"
            time.sleep(0.1)
        assert vehicle.home_location is not None
    finally:
        vehicle.close()


async def test_signed_link_drops_unsigned_traffic() -> None:
    key = os.urandom(32)
    fleet = SimFleet([spec(32, signing_key=key, warm=True), spec(34, warm=True)], speedup=5)
    await fleet.start()
    port = 5760 + 320
    unsigned = DroneLink(LinkConfig("u", Endpoint.parse(f"tcp:127.0.0.1:{port}"), 33))
    signed = DroneLink(LinkConfig("s", Endpoint.parse(f"tcp:127.0.0.1:{port}"), 33, signing_key=key))
    # The controller expects drone 35 to sign, but this one does not (an impostor or a misconfigured drone).
    expects_signed = DroneLink(LinkConfig("x", Endpoint.parse(f"tcp:127.0.0.1:{5760 + 340}"), 35, signing_key=key))
    try:
        unsigned.start()
        signed.start()
        expects_signed.start()
        await signed.wait_for(lambda t: t.mode is not None, 10, "heartbeat")
        assert await signed.set_param("RTL_ALT", 5000) == 5000
        with pytest.raises(CommandTimeout):
            await unsigned.set_param("RTL_ALT", 3000, timeout=0.5, retries=2)
        assert fleet.vehicle(32).params["RTL_ALT"] == 5000
        assert fleet.endpoints[32].rejected_unsigned >= 2
        # controller side: unsigned traffic from a drone configured for signing is dropped and counted
        await asyncio.sleep(1.0)
        assert expects_signed.rejected_unsigned > 3
        assert expects_signed.telemetry.mode is None and not expects_signed.up
        assert signed.rejected_unsigned == 0
    finally:
        await expects_signed.stop()
        await unsigned.stop()
        await signed.stop()
        await fleet.stop()


async def test_control_channel_fault_injection() -> None:
    fleet = SimFleet([spec(33, warm=True)], speedup=5)
    await fleet.start()
    control_port = free_port()
    control = ControlServer(fleet, port=control_port)
    await control.start()
    link = DroneLink(LinkConfig("c", Endpoint.parse(f"tcp:127.0.0.1:{5760 + 330}"), 34))
    try:
        link.start()
        await link.wait_for(lambda t: t.mode is not None, 10, "heartbeat")
        # cut the link: the controller side notices within 3 s, and again when it comes back
        await request(control_port, {"cmd": "cut_link", "instance": 33, "seconds": 4})
        cut_at = time.monotonic()
        while link.up:
            link.check_liveness(time.monotonic())
            assert time.monotonic() - cut_at < 3.0
            await asyncio.sleep(0.05)
        await link.wait_for(lambda t: True, 8, "traffic after the cut")
        await request(control_port, {"cmd": "set_wind", "instance": 33, "speed_ms": 7, "from_deg": 270})
        await link.wait_for(lambda t: t.wind_speed_ms == 7, 5, "wind report")
        await request(control_port, {"cmd": "set_battery_used", "instance": 33, "consumed_mah": 1650})
        await link.wait_for(lambda t: t.battery_pct == 50, 5, "battery report")
        truth = (await request(control_port, {"cmd": "truth", "instance": 33}))["truth"]
        assert truth["battery_pct"] == 50 and truth["sysid"] == 34
        with pytest.raises(RuntimeError, match="no vehicle instance 99"):
            await request(control_port, {"cmd": "truth", "instance": 99})
    finally:
        await link.stop()
        await control.stop()
        await fleet.stop()


async def test_140_copters_start_and_stop_cleanly() -> None:
    before = len(asyncio.all_tasks())
    fleet = SimFleet(roster_specs(warm=True), speedup=1)
    assert len(fleet.specs) == 140 and fleet.specs[-1].port == 5760 + 10 * 139
    await fleet.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", 5760 + 10 * 139)
    data = await asyncio.wait_for(reader.read(4096), 5)
    assert data[0] == 0xFD  # MAVLink 2
    writer.close()
    await fleet.stop()
    await asyncio.sleep(0.1)
    assert len(asyncio.all_tasks()) <= before
