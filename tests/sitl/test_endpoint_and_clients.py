"""The simulator over real sockets: dronekit as an independent client, signing, the control channel, 140 copters."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from controller.fleet.drone_link import CommandTimeout, DroneLink, LinkConfig
from controller.fleet.transport import Endpoint
from sitl.control import ControlServer, request
from sitl.fleet import SimFleet
from sitl.params import ParamStore
from sitl.roster import roster_specs
from sitl.fleet import free_base_port
from tests.sitl.conftest import spec
from tests.support import free_port


def test_dronekit_connects_downloads_every_parameter_arms_and_takes_off(threaded_fleet: Any) -> None:
    """dronekit is a standard client: wait_ready (full parameter download), arming and simple_takeoff from a cold boot."""
    import dronekit

    base = free_base_port()
    tf = threaded_fleet([spec(0)], speedup=10, base_port=base)
    started = time.monotonic()
    vehicle = dronekit.connect(f"tcp:127.0.0.1:{base}", wait_ready=True, timeout=60, heartbeat_timeout=30)
    try:
        assert time.monotonic() - started < 20
        assert len(vehicle.parameters) == ParamStore.count()  # the full list downloaded
        assert vehicle.parameters["WPNAV_SPEED"] == 1000
        assert vehicle.mode.name == "STABILIZE"
        deadline = time.monotonic() + 40
        while not vehicle.is_armable:
            assert time.monotonic() < deadline, "never armable"
            time.sleep(0.2)
        vehicle.mode = dronekit.VehicleMode("GUIDED")
        while vehicle.mode.name != "GUIDED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        vehicle.armed = True
        while not vehicle.armed:
            assert time.monotonic() < deadline, "not armed"
            time.sleep(0.1)
        vehicle.simple_takeoff(20)
        while vehicle.location.global_relative_frame.alt < 19.0:
            assert time.monotonic() < deadline + 30, "did not reach 19 m"
            time.sleep(0.1)
        assert vehicle.home_location is not None
        assert tf.call(lambda: tf.fleet.vehicle(0).armed)
    finally:
        vehicle.close()


async def test_signed_link_drops_unsigned_traffic() -> None:
    key = os.urandom(32)
    base = free_base_port(3)
    fleet = SimFleet([spec(0, signing_key=key, warm=True), spec(2, warm=True)], speedup=5, base_port=base)
    await fleet.start()
    unsigned = DroneLink(LinkConfig("u", Endpoint.parse(f"tcp:127.0.0.1:{base}"), 1))
    signed = DroneLink(LinkConfig("s", Endpoint.parse(f"tcp:127.0.0.1:{base}"), 1, signing_key=key))
    # The controller expects drone 3 to sign, but it does not (an impostor or a misconfigured drone).
    expects_signed = DroneLink(LinkConfig("x", Endpoint.parse(f"tcp:127.0.0.1:{base + 20}"), 3, signing_key=key))
    try:
        unsigned.start()
        signed.start()
        expects_signed.start()
        await signed.wait_for(lambda t: t.mode is not None, 10, "heartbeat")
        assert await signed.set_param("RTL_ALT", 5000) == 5000
        with pytest.raises(CommandTimeout):
            await unsigned.set_param("RTL_ALT", 3000, timeout=0.5, retries=2)
        assert fleet.vehicle(0).params["RTL_ALT"] == 5000
        assert fleet.endpoint(0).rejected_unsigned >= 2
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
    base = free_base_port()
    fleet = SimFleet([spec(0, warm=True)], speedup=5, base_port=base)
    await fleet.start()
    control_port = free_port()
    control = ControlServer(fleet, port=control_port)
    await control.start()
    link = DroneLink(LinkConfig("c", Endpoint.parse(f"tcp:127.0.0.1:{base}"), 1))
    try:
        link.start()
        await link.wait_for(lambda t: t.mode is not None, 10, "heartbeat")
        # cut the link: the controller side notices within 3 s, and again when it comes back
        await request(control_port, {"cmd": "cut_link", "instance": 0, "seconds": 4})
        cut_at = time.monotonic()
        while link.up:
            link.check_liveness(time.monotonic())
            assert time.monotonic() - cut_at < 3.0
            await asyncio.sleep(0.05)
        await link.wait_for(lambda t: True, 8, "traffic after the cut")
        await request(control_port, {"cmd": "set_wind", "instance": 0, "speed_ms": 7, "from_deg": 270})
        await link.wait_for(lambda t: t.wind_speed_ms is not None and abs(t.wind_speed_ms - 7) < 0.5, 5, "wind report")
        capacity = fleet.vehicle(0).params["BATT_CAPACITY"]
        await request(control_port, {"cmd": "set_battery_used", "instance": 0, "consumed_mah": capacity / 2})
        await link.wait_for(lambda t: t.battery_pct is not None and abs(t.battery_pct - 50) <= 1, 5, "battery report")
        truth = (await request(control_port, {"cmd": "truth", "instance": 0}))["truth"]
        assert truth["sysid"] == 1
        with pytest.raises(RuntimeError, match="99"):
            await request(control_port, {"cmd": "truth", "instance": 99})
        with pytest.raises(RuntimeError, match="unknown command"):
            await request(control_port, {"cmd": "explode", "instance": 0})
    finally:
        await link.stop()
        await control.stop()
        await fleet.stop()


async def test_140_copters_start_and_stop_cleanly() -> None:
    before = len(asyncio.all_tasks())
    base = free_base_port(140)
    fleet = SimFleet(roster_specs(warm=True), speedup=1, base_port=base)
    assert len(fleet.specs) == 140 and fleet.port_of(139) == base + 10 * 139
    await fleet.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", base + 10 * 139)
    data = await asyncio.wait_for(reader.read(4096), 5)
    assert data[0] == 0xFD  # MAVLink 2
    writer.close()
    await fleet.stop()
    await asyncio.sleep(0.1)
    assert len(asyncio.all_tasks()) <= before
