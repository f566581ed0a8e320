"""Pilot commands on the wire: the bytes DroneLink writes for each, and how it reads the vehicle's answers.

A DroneLink on an in-memory transport (tests/fleet/memory_link.py); the test plays ArduCopter: it parses what the
link wrote with pymavlink and answers with COMMAND_ACK / PARAM_VALUE / STATUSTEXT frames.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.control import mavlink as wire
from controller.control.commands import Direction
from controller.fleet.copter import CopterMode
from controller.fleet.drone_link import CommandRejected, CommandTimeout
from tests.fleet.test_drone_link import Factory, Rig, make_rig  # noqa: F401  (the fixture)

LAT, LON = 32.0612345, 118.7798765
mav = mavlink2.MAVLink(None)


def ack(command: int, result: int = mavlink2.MAV_RESULT_ACCEPTED) -> Any:
    return mav.command_ack_encode(command, result)


def param_value(name: str, value: float) -> Any:
    return mav.param_value_encode(name.encode(), value, mavlink2.MAV_PARAM_TYPE_REAL32, 900, 1)


async def answer(rig: Rig, kind: str) -> Any:
    """The next `kind` the link wrote, acknowledged as ArduCopter would."""
    msg = await rig.vehicle.expect(kind)
    if kind == "PARAM_SET":
        name = msg.param_id if isinstance(msg.param_id, str) else msg.param_id.decode()
        rig.vehicle.send(param_value(name.rstrip("\x00"), msg.param_value))
    else:
        rig.vehicle.send(ack(msg.command))
    return msg


@pytest.fixture
async def rig(make_rig: Factory) -> Rig:  # noqa: F811
    r = await make_rig(sysid=3)
    r.vehicle.send(mav.heartbeat_encode(2, 3, 0, int(CopterMode.GUIDED), 4), sysid=3)
    await r.transport.drain()
    return r


def sysid3(rig: Rig) -> None:
    # the vehicle answers as system 3 (the link listens to its own sysid only)
    send = rig.vehicle.send
    rig.vehicle.send = lambda msg, sysid=3, compid=1: send(msg, sysid, compid)  # type: ignore[method-assign]


async def test_fly_to_is_do_reposition_in_the_relative_frame_with_change_mode(rig: Rig) -> None:
    sysid3(rig)
    task = asyncio.create_task(wire.send(rig.link, [wire.reposition(LAT, LON, 60.0)], timeout=0.5))
    msg = await answer(rig, "COMMAND_INT")
    assert msg.command == mavlink2.MAV_CMD_DO_REPOSITION == 192
    assert (msg.target_system, msg.target_component) == (3, 1)
    assert msg.frame == mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    assert msg.param1 == -1.0 and int(msg.param2) == mavlink2.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE == 1
    assert (msg.x, msg.y, msg.z) == (320612345, 1187798765, 60.0)
    ms = await task
    assert ms >= 0.0


async def test_orbit_sets_the_circle_in_centimetres_and_degrees_per_second_then_flies_to_the_centre(rig: Rig) -> None:
    sysid3(rig)
    requests = wire.orbit_setup(LAT, LON, 50.0, 80.0, 6.0, Direction.CCW)
    task = asyncio.create_task(wire.send(rig.link, requests, timeout=0.5))
    got = {}
    for _ in range(3):
        p = await answer(rig, "PARAM_SET")
        got[(p.param_id if isinstance(p.param_id, str) else p.param_id.decode()).rstrip("\x00")] = p.param_value
    assert got["CIRCLE_RADIUS"] == 8000.0  # centimetres
    assert got["CIRCLE_RATE"] == pytest.approx(-4.297, abs=1e-3)  # 6 m/s on 80 m: 4.3 deg/s, negative = counter-clockwise
    assert got["CIRCLE_OPTIONS"] == 12.0  # INIT_AT_CENTER + ROI_AT_CENTER
    msg = await answer(rig, "COMMAND_INT")
    assert msg.command == mavlink2.MAV_CMD_DO_REPOSITION and msg.z == 50.0
    await task
    # and once over the centre, CIRCLE by DO_SET_MODE
    task = asyncio.create_task(wire.send(rig.link, [wire.set_mode(CopterMode.CIRCLE)], timeout=0.5))
    msg = await answer(rig, "COMMAND_LONG")
    assert msg.command == mavlink2.MAV_CMD_DO_SET_MODE and (msg.param1, msg.param2) == (1.0, 7.0)
    await task


async def test_an_orbits_parameter_sets_go_out_together_one_round_trip_not_three(rig: Rig) -> None:
    sysid3(rig)
    task = asyncio.create_task(wire.send(rig.link, wire.orbit_setup(LAT, LON, 50.0, 80.0, 6.0, Direction.CW), timeout=0.5))
    sets = [await rig.vehicle.expect("PARAM_SET") for _ in range(3)]  # all three written before any echo came back
    names = {(m.param_id if isinstance(m.param_id, str) else m.param_id.decode()).rstrip("\x00") for m in sets}
    assert names == {"CIRCLE_RADIUS", "CIRCLE_RATE", "CIRCLE_OPTIONS"}
    assert not task.done()
    for m in reversed(sets):  # echoes in any order are matched by name
        name = (m.param_id if isinstance(m.param_id, str) else m.param_id.decode()).rstrip("\x00")
        rig.vehicle.send(param_value(name, m.param_value))
    msg = await answer(rig, "COMMAND_INT")  # the reposition only after every echo
    assert msg.command == mavlink2.MAV_CMD_DO_REPOSITION
    await task


def test_circle_rate_is_capped_and_signed() -> None:
    assert wire.circle_rate_deg_s(100.0, 10.0, Direction.CW) == pytest.approx(5.73, abs=0.01)
    assert wire.circle_rate_deg_s(1.0, 100.0, Direction.CW) == 90.0
    assert wire.circle_rate_deg_s(1.0, 100.0, Direction.CCW) == -90.0


async def test_camera_commands(rig: Rig) -> None:
    sysid3(rig)
    task = asyncio.create_task(wire.send(rig.link, [wire.roi(LAT, LON), wire.roi_clear(), wire.gimbal_pitch(-45.0)], timeout=0.5))
    roi = await answer(rig, "COMMAND_INT")
    assert roi.command == mavlink2.MAV_CMD_DO_SET_ROI_LOCATION == 195 and roi.frame == mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    assert (roi.x, roi.y, roi.z) == (320612345, 1187798765, 0.0)
    clear = await answer(rig, "COMMAND_LONG")
    assert clear.command == mavlink2.MAV_CMD_DO_SET_ROI_NONE == 197
    mount = await answer(rig, "COMMAND_LONG")
    assert mount.command == mavlink2.MAV_CMD_DO_MOUNT_CONTROL == 205
    assert (mount.param1, mount.param2, mount.param3, mount.param7) == (-45.0, 0.0, 0.0, float(mavlink2.MAV_MOUNT_MODE_MAVLINK_TARGETING))
    await task


async def test_a_refusal_quotes_the_vehicles_statustext(rig: Rig) -> None:
    sysid3(rig)
    task = asyncio.create_task(wire.send(rig.link, [wire.reposition(LAT, LON, 60.0)], timeout=0.5, retries=1))
    msg = await rig.vehicle.expect("COMMAND_INT")
    rig.vehicle.send(ack(msg.command, mavlink2.MAV_RESULT_DENIED))
    rig.vehicle.send(mav.statustext_encode(mavlink2.MAV_SEVERITY_WARNING, b"Reposition: outside fence"))
    with pytest.raises(CommandRejected) as info:
        await task
    assert info.value.result == mavlink2.MAV_RESULT_DENIED
    assert info.value.texts == ["Reposition: outside fence"]


async def test_silence_is_a_timeout_after_the_retries(rig: Rig) -> None:
    task = asyncio.create_task(wire.send(rig.link, [wire.gimbal_pitch(-10.0)], timeout=0.05, retries=2))
    with pytest.raises(CommandTimeout):
        await task
    assert len(rig.vehicle.messages("COMMAND_LONG")) == 2
