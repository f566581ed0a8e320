"""The fault tools the end-to-end tests use: the link proxy (faults on the wire) and the simulator's GPS loss.

The proxy is tested against a fake vehicle port here (no ArduPilot needed);
on real SITL it is exercised by tests/e2e (`--backend ardupilot`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.faults import EKF_FLAGS_CONST_POS, EKF_FLAGS_NO_POSITION, lose_gps
from sitl.fleet import free_base_port
from sitl.link_proxy import FrameSplitter, LinkProxy, command_of
from sitl.modes import Mode
from tests.sitl.conftest import copter
from tests.sitl.test_vehicle_parts import command, run

GCS = mav.MAVLink(None, srcSystem=255, srcComponent=190)


def pack(msg: mav.MAVLink_message, encoder: mav.MAVLink = GCS) -> bytes:
    return msg.pack(encoder)


def cmd_long(cmd: int, *params: float) -> bytes:
    p = list(params) + [0.0] * (7 - len(params))
    return pack(mav.MAVLink_command_long_message(1, 1, cmd, 0, *p))


# --- framing -------------------------------------------------------------------------------------------


def test_frames_are_cut_at_their_headers_whatever_the_reads() -> None:
    v1 = mav.MAVLink(None, srcSystem=1, srcComponent=1)
    v1.WIRE_PROTOCOL_VERSION = "1.0"
    frames = [
        cmd_long(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 40),
        pack(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)),
        pack(mav.MAVLink_command_int_message(1, 1, 0, mav.MAV_CMD_DO_REPOSITION, 0, 0, 0, 0, 0, 0, 1, 2, 3.0)),
        pack(mav.MAVLink_statustext_message(4, b"hello"), mav.MAVLink(None, 1, 1)),
    ]
    stream = b"".join(frames)
    for size in (1, 3, 7, len(stream)):
        splitter = FrameSplitter()
        out: list[tuple[int | None, bytes]] = []
        for i in range(0, len(stream), size):
            out.extend(splitter.feed(stream[i : i + size]))
        assert [f for _, f in out] == frames
        assert [m for m, _ in out] == [mav.MAVLINK_MSG_ID_COMMAND_LONG, mav.MAVLINK_MSG_ID_HEARTBEAT,
                                       mav.MAVLINK_MSG_ID_COMMAND_INT, mav.MAVLINK_MSG_ID_STATUSTEXT]
    assert [command_of(m, f) for m, f in out] == [mav.MAV_CMD_NAV_TAKEOFF, None, mav.MAV_CMD_DO_REPOSITION, None]


def test_command_of_a_trimmed_payload_and_noise_between_frames() -> None:
    arm = cmd_long(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1)  # MAVLink 2 trims the payload's trailing zeros
    assert arm[1] < 33
    out = list(FrameSplitter().feed(b"\x00\x01junk" + arm))
    assert out[0] == (None, b"\x00\x01junk")
    assert command_of(*out[1]) == mav.MAV_CMD_COMPONENT_ARM_DISARM


# --- the proxy -------------------------------------------------------------------------------------------


class FakeVehicle:
    """A vehicle port that records what reaches it and sends a heartbeat every 50 ms; one client at a time."""

    def __init__(self) -> None:
        self.port = free_base_port(1)
        self.received = bytearray()
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._enc = mav.MAVLink(None, srcSystem=1, srcComponent=1)

    async def __aenter__(self) -> FakeVehicle:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1

        async def beat() -> None:
            while True:
                writer.write(pack(mav.MAVLink_heartbeat_message(2, 3, 0, 4, 4, 3), self._enc))
                await asyncio.sleep(0.05)

        task = asyncio.get_running_loop().create_task(beat())
        try:
            while data := await reader.read(4096):
                self.received += data
        except ConnectionError:
            pass
        finally:
            task.cancel()
            writer.close()

    def messages(self) -> list[str]:
        parser = mav.MAVLink(None)
        return [m.get_type() for m in parser.parse_buffer(bytes(self.received)) or []]


@contextlib.asynccontextmanager
async def proxied() -> AsyncIterator[tuple[FakeVehicle, LinkProxy, asyncio.StreamReader, asyncio.StreamWriter]]:
    async with FakeVehicle() as vehicle:
        proxy = LinkProxy(free_base_port(1), vehicle.port)
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
        try:
            yield vehicle, proxy, reader, writer
        finally:
            writer.close()
            await proxy.stop()


async def heard(reader: asyncio.StreamReader, seconds: float) -> int:
    """Bytes the ground station hears in `seconds`."""
    got = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            data = await asyncio.wait_for(reader.read(4096), left)
        except asyncio.TimeoutError:
            break
        if not data:
            break
        got += len(data)
    return got


async def settle(vehicle: FakeVehicle, count: int) -> None:
    for _ in range(100):
        if len(vehicle.messages()) >= count:
            return
        await asyncio.sleep(0.02)


async def test_the_proxy_relays_both_ways_and_drops_the_chosen_command() -> None:
    async with proxied() as (vehicle, proxy, reader, writer):
        assert await heard(reader, 0.2) > 0
        proxy.drop_command(mav.MAV_CMD_NAV_TAKEOFF)
        writer.write(cmd_long(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) + cmd_long(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 40))
        writer.write(pack(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)))
        await settle(vehicle, 2)
        await asyncio.sleep(0.1)
        parser = mav.MAVLink(None)
        got = parser.parse_buffer(bytes(vehicle.received)) or []
        assert [m.get_type() for m in got] == ["COMMAND_LONG", "HEARTBEAT"]
        assert got[0].command == mav.MAV_CMD_COMPONENT_ARM_DISARM
        assert proxy.filtered_counts == {("command", mav.MAV_CMD_NAV_TAKEOFF): 1}
        proxy.drop_message("HEARTBEAT")
        proxy.drop_command(mav.MAV_CMD_NAV_TAKEOFF, drop=False)
        writer.write(pack(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)) + cmd_long(mav.MAV_CMD_NAV_TAKEOFF))
        await settle(vehicle, 3)
        await asyncio.sleep(0.1)
        assert vehicle.messages() == ["COMMAND_LONG", "HEARTBEAT", "COMMAND_LONG"]


async def test_a_drop_cut_silences_both_ways_with_the_sockets_open_then_heals() -> None:
    async with proxied() as (vehicle, proxy, reader, writer):
        assert await heard(reader, 0.2) > 0
        proxy.cut(0.6)
        await asyncio.sleep(0.1)  # what was in flight before the cut
        writer.write(pack(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)))
        assert await heard(reader, 0.4) == 0
        assert vehicle.messages() == []
        await asyncio.sleep(0.2)
        assert await heard(reader, 0.3) > 0  # healed, same connection
        writer.write(pack(mav.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3)))
        await settle(vehicle, 1)
        assert vehicle.messages() == ["HEARTBEAT"]
        assert vehicle.connections == 1


async def test_a_close_cut_drops_the_connection_and_refuses_new_ones_until_it_ends() -> None:
    async with proxied() as (vehicle, proxy, reader, _writer):
        assert await heard(reader, 0.2) > 0
        proxy.cut(0.8, "close")
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                pass
        await asyncio.sleep(0.1)
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", proxy.listen_port)
        await asyncio.sleep(0.9)
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
        assert await heard(reader2, 0.3) > 0
        assert vehicle.connections == 2
        writer2.close()


async def test_a_new_ground_station_connection_replaces_the_old_one() -> None:
    async with proxied() as (vehicle, proxy, reader, _writer):
        assert await heard(reader, 0.2) > 0
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
        assert await heard(reader2, 0.3) > 0
        # the old one was closed: whatever it still had in flight, then end of stream (not merely a quiet moment)
        await asyncio.wait_for(reader.read(-1), 5)
        assert reader.at_eof()
        assert len(proxy.sessions) == 1 and vehicle.connections == 2
        writer2.close()


# --- GPS loss on the built-in simulator -------------------------------------------------------------------


def gps_fix(v) -> int:  # noqa: ANN001
    (msg,) = v.build_message(mav.MAVLINK_MSG_ID_GPS_RAW_INT)
    return msg.fix_type


def test_gps_loss_in_guided_flight_lands_by_the_ekf_failsafe_as_arducopter_does() -> None:
    v = copter()
    v.change_mode(Mode.GUIDED)
    assert command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == [(mav.MAV_CMD_COMPONENT_ARM_DISARM, 0)]
    assert command(v, mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 40) == [(mav.MAV_CMD_NAV_TAKEOFF, 0)]
    run(v, 30)
    assert v.flying and gps_fix(v) == mav.GPS_FIX_TYPE_RTK_FIXED
    good_flags = v.ekf_flags()
    said = len(v.statustexts)
    lose_gps(v)
    run(v, 1)
    assert gps_fix(v) == mav.GPS_FIX_TYPE_NO_FIX and v.ekf_flags() == good_flags and v.mode == Mode.GUIDED
    run(v, 6.5)  # 7.5 s
    assert v.ekf_flags() == EKF_FLAGS_NO_POSITION and v.mode == Mode.GUIDED
    run(v, 1)  # 8.5 s
    assert v.mode == Mode.LAND
    assert [t for _, t in v.statustexts[said:]] == ["EKF variance", "EKF Failsafe: changed to LAND Mode"]
    assert not v.change_mode(Mode.GUIDED), "no position, no GUIDED"
    run(v, 7)
    assert v.ekf_flags() == EKF_FLAGS_CONST_POS
    assert [t for _, t in v.statustexts[said:]][2:] == ["EKF3 IMU0 stopped aiding", "EKF3 IMU1 stopped aiding"]
    run(v, 60)
    assert not v.armed and not v.flying


def test_gps_loss_on_the_ground_refuses_arming_and_takes_no_action() -> None:
    v = copter()
    v.change_mode(Mode.GUIDED)
    lose_gps(v)
    run(v, 9)
    said = [t for _, t in v.statustexts]
    assert "EKF variance" in said and not any(t.startswith("EKF Failsafe") for t in said)
    assert v.mode == Mode.GUIDED
    assert "Need Position Estimate" in v.arm_failures(arming=True)
