"""DroneLink without sockets: an in-memory transport, with the test playing a real ArduCopter.

Everything the vehicle says comes from the recorded SITL transcripts (packed to
MAVLink 2 bytes with each record's sysid/compid); everything the link writes is
parsed back and compared with what the recording's ground station sent.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.fleet.copter import STREAM_RATES_HZ, CopterMode, ekf_ready
from controller.fleet.drone_link import (
    GCS_COMPID,
    GCS_SYSID,
    LINK_TIMEOUT_S,
    RECONNECT_AFTER_S,
    CommandRejected,
    CommandTimeout,
    DroneLink,
    LinkConfig,
    LinkDown,
    MissionItem,
    MissionProtocolError,
    MissionRejected,
    MissionTimeout,
)
from controller.fleet.transport import Endpoint
from tests.fleet.memory_link import MemoryConnector, Record, Vehicle, build, load

ENDPOINT = Endpoint.parse("tcp:127.0.0.1:5760")
KEY = bytes(range(1, 33))

_TRANSCRIPTS: dict[str, list[Record]] = {}


def records(name: str) -> list[Record]:
    if name not in _TRANSCRIPTS:
        _TRANSCRIPTS[name] = load(name)[1]
    return _TRANSCRIPTS[name]


def rx(name: str, start: int = 0, stop: int | None = None) -> list[Record]:
    return [r for r in records(name)[start:stop] if r.dir == "rx"]


# --- the rig ----------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Listener:
    states: list[tuple[DroneLink, bool]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def link_state_changed(self, link: DroneLink, up: bool) -> None:
        self.states.append((link, up))

    def telemetry_received(self, link: DroneLink, kind: str) -> None:  # noqa: ARG002
        self.kinds.append(kind)


@dataclass
class Rig:
    link: DroneLink
    connector: MemoryConnector
    vehicle: Vehicle
    clock: FakeClock
    listener: Listener

    @property
    def transport(self) -> Any:
        return self.vehicle.transport

    async def feed(self, recs: Iterable[Record], sysid: int | None = None) -> None:
        """The vehicle says these (rx) records; returns once the link has handled them."""
        self.vehicle.send_records(recs, sysid)
        await self.transport.drain()


Factory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[Factory]:
    links: list[DroneLink] = []

    async def make(sysid: int = 1, signing_key: bytes | None = None, vehicle_key: bytes | None = None) -> Rig:
        connector = MemoryConnector()
        clock = FakeClock()
        listener = Listener()
        link = DroneLink(
            LinkConfig("drone-1", ENDPOINT, sysid=sysid, signing_key=signing_key), listener, clock=clock, connect=connector
        )
        links.append(link)
        link.start()
        transport = await connector.wait_connections(1)
        await transport.drain()  # connected, streams requested, waiting for the vehicle
        vehicle = Vehicle(transport, signing_key=vehicle_key, parse_key=signing_key)
        return Rig(link, connector, vehicle, clock, listener)

    yield make
    for link in links:
        await link.stop()


@pytest.fixture
async def rig(make_rig: Factory) -> Rig:
    return await make_rig()


def assert_fields(msg: Any, rec: Record) -> None:
    """The link's message carries the values the recording's ground station sent, from 255/190."""
    assert msg.get_type() == rec.type
    assert (msg.get_srcSystem(), msg.get_srcComponent()) == (GCS_SYSID, GCS_COMPID) == (rec.sysid, rec.compid)
    for name, want in rec.fields.items():
        got = getattr(msg, name)
        if isinstance(want, str):
            got = got.decode() if isinstance(got, bytes) else got
            assert got.rstrip("\x00") == want, name
        elif isinstance(got, int):
            assert got == want, f"{rec.type}.{name}: {got} != {want}"
        else:
            assert got == pytest.approx(want, rel=1e-6), f"{rec.type}.{name}"


async def converse(rig: Rig, recs: Sequence[Record], skip_tx: tuple[str, ...] = ("HEARTBEAT", "REQUEST_DATA_STREAM")) -> int:
    """Play the vehicle through a stretch of a transcript.

    Each `tx` record must be the next message of its type the link writes (compared field by
    field); each `rx` record is what the vehicle says, pushed as it comes. Returns the tx count.
    """
    checked = 0
    for rec in recs:
        if rec.dir == "tx":
            if rec.type in skip_tx:
                continue
            assert_fields(await rig.vehicle.expect(rec.type), rec)
            checked += 1
        else:
            rig.vehicle.send_records([rec])
    return checked


# --- telemetry folding ------------------------------------------------------------------------------


def oracle(recs: Sequence[Record]) -> dict[str, Any]:
    """What the recording says the vehicle's state is after `recs`: the last value of each field."""
    out: dict[str, Any] = {"armed": False, "texts": []}
    for r in recs:
        f = r.fields
        if r.dir != "rx":
            continue
        if r.type == "HEARTBEAT":
            out["mode"], out["armed"] = f["custom_mode"], bool(f["base_mode"] & 128)
        elif r.type == "GLOBAL_POSITION_INT":
            out["lat"], out["lon"], out["alt_rel_m"] = f["lat"] / 1e7, f["lon"] / 1e7, f["relative_alt"] / 1000
            out["alt_amsl_m"] = f["alt"] / 1000
        elif r.type in ("SYS_STATUS", "BATTERY_STATUS") and f["battery_remaining"] >= 0:
            out["battery_pct"] = f["battery_remaining"]
        elif r.type == "GPS_RAW_INT":
            out["gps_fix"] = f["fix_type"]
        elif r.type == "EKF_STATUS_REPORT":
            out["ekf_flags"] = f["flags"]
        elif r.type == "HOME_POSITION":
            out["home"] = (f["latitude"] / 1e7, f["longitude"] / 1e7, f["altitude"] / 1000)
        elif r.type == "MISSION_CURRENT":
            out["mission_seq"] = f["seq"]
        elif r.type == "MISSION_ITEM_REACHED":
            out["reached_seq"] = f["seq"]
        elif r.type == "STATUSTEXT":
            out["texts"].append((f["severity"], f["text"]))
    out["texts"] = out["texts"][-50:]
    return out


def assert_like_oracle(link: DroneLink, want: dict[str, Any]) -> None:
    t = link.telemetry
    for name in ("mode", "armed", "gps_fix", "ekf_flags", "mission_seq", "reached_seq", "texts"):
        assert getattr(t, name) == want.get(name, None if name != "armed" else False), name
    for name in ("lat", "lon", "alt_rel_m", "alt_amsl_m", "battery_pct"):
        if want.get(name) is None:
            assert getattr(t, name) is None, name
        else:
            assert getattr(t, name) == pytest.approx(want[name]), name
    assert t.home == (pytest.approx(want["home"]) if "home" in want else None)
    assert t.ekf_ok == ("ekf_flags" in want and ekf_ready(want["ekf_flags"]))


# (transcript, last record replayed, expected) -- values read off the recording at that point
CHECKPOINTS = [
    pytest.param(
        "boot_to_armable", 10,
        dict(mode=CopterMode.GUIDED, armed=False, battery_pct=100.0, battery_voltage_v=12.6, lat=None, alt_rel_m=None,
             gps_fix=None, ekf_flags=None, ekf_ok=False, home=None),
        id="boot-first-arm-refused",
    ),
    pytest.param(
        "boot_to_armable", 58,
        dict(mode=CopterMode.GUIDED, armed=False, lat=32.0603, lon=118.7969, alt_amsl_m=10.1, alt_rel_m=0.0,
             gps_fix=6, satellites=10, ekf_flags=167, ekf_ok=False, home=None),
        id="boot-gps-fix-ekf-const-pos",
    ),
    pytest.param(
        "boot_to_armable", 170,
        dict(mode=CopterMode.GUIDED, armed=False, alt_rel_m=-0.002, ekf_flags=831, ekf_ok=True,
             home=(32.0603, 118.7969, 10.1)),
        id="boot-armable",
    ),
    pytest.param(
        "boot_to_armable", 178,
        dict(mode=CopterMode.GUIDED, armed=True, system_status=3, alt_rel_m=0.007, ekf_ok=True,
             home=(32.0603, 118.7969, 10.09)),
        id="boot-armed",
    ),
    pytest.param(
        "guided_flight", 222,
        dict(mode=CopterMode.GUIDED, armed=True, system_status=4, alt_rel_m=26.943, alt_amsl_m=37.03, battery_pct=96.0,
             battery_current_a=27.52, climb_ms=pytest.approx(1.1763276), ekf_ok=True),
        id="guided-climbing",
    ),
    pytest.param(
        "guided_flight", 535,
        dict(mode=CopterMode.GUIDED, armed=True, lat=32.0673834, lon=118.7969, alt_rel_m=59.627, battery_pct=74.0,
             ground_speed_ms=pytest.approx(4.3052778), heading_deg=359.0),
        id="guided-at-target",
    ),
    pytest.param(
        "guided_flight", 700,
        # SYS_STATUS said 64 % (record 670), the later BATTERY_STATUS 63 % (676): the latest wins
        dict(mode=CopterMode.RTL, armed=True, lat=32.0674977, lon=118.8009053, alt_rel_m=59.986, battery_pct=63.0,
             heading_deg=89.9),
        id="guided-rtl",
    ),
    pytest.param(
        "guided_flight", 1292,
        dict(mode=CopterMode.RTL, armed=False, system_status=3, alt_rel_m=0.008, battery_pct=25.0, battery_current_a=0.0,
             lat=32.0602999, lon=118.7968999),
        id="guided-landed",
    ),
    pytest.param(
        "mission_auto", 320,
        dict(mode=CopterMode.AUTO, armed=True, alt_rel_m=49.997, mission_seq=1, reached_seq=2, battery_pct=94.0),
        id="auto-climbing",
    ),
    pytest.param(
        "battery", 679,
        dict(mode=CopterMode.RTL, armed=False, system_status=5, battery_pct=6.0),
        id="battery-critical-landed",
    ),
]


@pytest.mark.parametrize(("name", "last", "want"), CHECKPOINTS)
async def test_telemetry_folds_the_transcript(rig: Rig, name: str, last: int, want: dict[str, Any]) -> None:
    await rig.feed(rx(name, 0, last + 1))
    t = rig.link.telemetry
    for key, value in want.items():
        got = getattr(t, key)
        if isinstance(value, float):
            assert got == pytest.approx(value, abs=1e-6), key
        elif isinstance(value, tuple):
            assert got == pytest.approx(value), key
        else:
            assert got == value, key
    assert_like_oracle(rig.link, oracle(records(name)[: last + 1]))


@pytest.mark.parametrize("name", ["boot_to_armable", "guided_flight", "mission_auto", "rejections", "gcs_failsafe", "battery"])
async def test_whole_transcript_matches_the_recording(rig: Rig, name: str) -> None:
    recs = rx(name)
    await rig.feed(recs)
    assert rig.link.rx_messages == len(recs)
    assert rig.link.rx_bad == 0
    assert_like_oracle(rig.link, oracle(recs))
    assert rig.listener.kinds == [r.type for r in recs]


async def test_bytes_split_anywhere_parse_the_same(make_rig: Factory) -> None:
    whole, split = await make_rig(), await make_rig()
    recs = rx("boot_to_armable")
    await whole.feed(recs)
    data = b"".join(split.vehicle.pack_record(r) for r in recs)
    for i in range(0, len(data), 7):
        split.transport.push(data[i : i + 7])
    await split.transport.drain()
    assert split.link.rx_messages == whole.link.rx_messages == len(recs)
    assert split.link.telemetry.snapshot() == whole.link.telemetry.snapshot()
    assert split.link.telemetry.texts == whole.link.telemetry.texts
    assert split.link.telemetry.home == whole.link.telemetry.home == (32.0603, 118.7969, 10.09)


async def test_telemetry_is_stamped_with_the_injected_clock(rig: Rig) -> None:
    rig.clock.now = 42.5
    await rig.feed(rx("boot_to_armable", 0, 2))  # HEARTBEAT, SYS_STATUS
    rig.clock.now = 43.0
    await rig.feed(rx("boot_to_armable", 6, 7))  # HEARTBEAT
    assert rig.link.telemetry.last == {"HEARTBEAT": 43.0, "SYS_STATUS": 42.5}
    assert rig.link.last_rx == 43.0


# --- link up / down -------------------------------------------------------------------------------------


async def test_link_comes_up_on_the_first_message_from_its_sysid(rig: Rig) -> None:
    beat, status = rx("boot_to_armable", 0, 2)
    assert not rig.link.up
    await rig.feed([beat, status], sysid=2)  # another vehicle on a shared link
    assert not rig.link.up and rig.listener.states == [] and rig.listener.kinds == []
    assert rig.link.rx_messages == 0 and rig.link.telemetry.mode is None and rig.link.telemetry.battery_pct is None

    await rig.feed([beat])
    assert rig.link.up
    assert rig.listener.states == [(rig.link, True)]
    assert rig.link.telemetry.mode == CopterMode.STABILIZE

    await rig.feed(rx("boot_to_armable", 1, 60))
    assert rig.listener.states == [(rig.link, True)]  # said once
    assert rig.link.rx_messages == 1 + len(rx("boot_to_armable", 1, 60))


async def test_a_link_for_another_sysid_ignores_this_vehicle(make_rig: Factory) -> None:
    rig = await make_rig(sysid=2)
    await rig.feed(rx("boot_to_armable", 0, 60))
    assert not rig.link.up and rig.link.rx_messages == 0 and rig.link.telemetry.lat is None
    await rig.feed(rx("boot_to_armable", 0, 1), sysid=2)
    assert rig.link.up and rig.listener.states == [(rig.link, True)]


async def test_link_goes_down_after_link_timeout_and_comes_back(rig: Rig) -> None:
    rig.clock.now = 500.0
    await rig.feed(rx("guided_flight", 0, 1))
    assert rig.link.up

    rig.link.check_liveness(500.0 + LINK_TIMEOUT_S - 0.05)
    assert rig.link.up and rig.listener.states == [(rig.link, True)]

    rig.link.check_liveness(500.0 + LINK_TIMEOUT_S + 0.05)
    assert not rig.link.up
    assert rig.listener.states == [(rig.link, True), (rig.link, False)]
    rig.link.check_liveness(500.0 + LINK_TIMEOUT_S + 0.5)
    assert rig.listener.states[-1] == (rig.link, False) and len(rig.listener.states) == 2  # said once

    rig.clock.now = 504.0
    await rig.feed(rx("guided_flight", 1, 2))
    assert rig.link.up and rig.listener.states[-1] == (rig.link, True)
    rig.link.check_liveness(504.0 + 1.0)
    assert rig.link.up


async def test_garbage_counts_as_bad_data_and_does_not_bring_the_link_up(rig: Rig) -> None:
    rig.transport.push(b"\x00\x01garbage-without-a-magic-byte")
    await rig.transport.drain()
    good = rig.vehicle.pack_record(rx("boot_to_armable", 0, 1)[0])
    corrupt = bytearray(good)
    corrupt[12] ^= 0xFF  # a payload byte: the CRC no longer matches
    rig.transport.push(bytes(corrupt))
    await rig.transport.drain()
    assert rig.link.rx_bad >= 1
    assert not rig.link.up and rig.link.rx_messages == 0 and rig.link.telemetry.mode is None
    rig.transport.push(good)
    await rig.transport.drain()
    assert rig.link.up and rig.link.telemetry.mode == 0


async def test_silent_link_reconnects_and_asks_for_streams_again(rig: Rig) -> None:
    await rig.feed(rx("boot_to_armable", 0, 1))
    first = rig.transport
    rig.link.check_liveness(rig.link.last_rx + RECONNECT_AFTER_S + 0.1)
    assert not rig.link.up
    second = await rig.connector.wait_connections(2, timeout=3.0)  # after BACKOFF_S[0]
    assert first.closed
    await second.drain()
    assert rig.link.reconnects == 1 and rig.link.connected
    assert rig.connector.endpoints == [ENDPOINT, ENDPOINT]
    fresh = Vehicle(second)
    assert len(fresh.messages("REQUEST_DATA_STREAM")) == len(STREAM_RATES_HZ)
    fresh.send_records(rx("boot_to_armable", 6, 7))
    await second.drain()
    assert rig.link.telemetry.mode == CopterMode.GUIDED


# --- the bytes the link writes ------------------------------------------------------------------------


async def test_streams_are_requested_on_connect(rig: Rig) -> None:
    reqs = rig.vehicle.messages("REQUEST_DATA_STREAM")
    assert [(m.req_stream_id, m.req_message_rate) for m in reqs] == list(STREAM_RATES_HZ.items())
    for m in reqs:
        assert (m.target_system, m.target_component, m.start_stop) == (1, 1, 1)
        assert (m.get_srcSystem(), m.get_srcComponent()) == (255, 190)
    assert rig.transport.written[0] == 0xFD  # MAVLink 2


async def test_gcs_heartbeat_is_the_recorded_one(rig: Rig) -> None:
    rig.link.heartbeat()
    beat = await rig.vehicle.expect("HEARTBEAT")
    recorded = next(r for r in records("boot_to_armable") if r.dir == "tx" and r.type == "HEARTBEAT")
    assert_fields(beat, recorded)


async def test_arm_bytes_target_the_vehicle(make_rig: Factory) -> None:
    rig = await make_rig(sysid=7)
    task = asyncio.create_task(rig.link.command_long(400, [1], what="arm", timeout=0.05, retries=1))
    cmd = await rig.vehicle.expect("COMMAND_LONG")
    assert (cmd.target_system, cmd.target_component, cmd.command, cmd.confirmation) == (7, 1, 400, 0)
    assert cmd.param1 == 1.0 and [cmd.param2, cmd.param3, cmd.param4, cmd.param5, cmd.param6, cmd.param7] == [0.0] * 6
    raw = bytes(rig.transport.written)
    frame = raw[-len(cmd.get_msgbuf()) :]
    assert frame == bytes(cmd.get_msgbuf())
    assert frame[0] == 0xFD and frame[2] == 0  # MAVLink 2, unsigned
    assert (frame[5], frame[6]) == (255, 190)
    assert int.from_bytes(frame[7:10], "little") == mavlink2.MAVLINK_MSG_ID_COMMAND_LONG
    with pytest.raises(CommandTimeout):
        await task


# --- requests, confirmed as ArduCopter confirms them ----------------------------------------------------


async def test_arm_refused_with_the_vehicles_reasons(rig: Rig) -> None:
    boot = records("boot_to_armable")
    await rig.feed(rx("boot_to_armable", 0, 7))
    task = asyncio.create_task(rig.link.command_long(400, [1], what="arm", timeout=0.5, retries=1))
    assert await converse(rig, boot[7:11]) == 1  # COMMAND_LONG -> ACK 4, two STATUSTEXTs
    with pytest.raises(CommandRejected) as info:
        await task
    # ArduCopter refuses arming with MAV_RESULT_FAILED (4), not TEMPORARILY_REJECTED (1)
    assert info.value.result == mavlink2.MAV_RESULT_FAILED == 4
    assert info.value.texts == ["Arm: Accels inconsistent", "Arm: AHRS: waiting for home"]
    assert str(info.value) == "arm failed (Arm: Accels inconsistent; Arm: AHRS: waiting for home)"


async def test_refusal_reasons_arriving_just_after_the_ack_are_collected(rig: Rig) -> None:
    boot = records("boot_to_armable")
    await rig.feed(rx("boot_to_armable", 0, 104))  # includes "PreArm: Need Position Estimate" (record 103)
    task = asyncio.create_task(rig.link.command_long(400, [1], what="arm", timeout=0.5, retries=1))
    assert_fields(await rig.vehicle.expect("COMMAND_LONG"), boot[107])
    await rig.feed([boot[108]])  # COMMAND_ACK result 4 on its own
    assert not task.done()
    await rig.feed([boot[159], boot[109]])  # an informational text, then the reason (severity 2)
    with pytest.raises(CommandRejected) as info:
        await task
    # not the PreArm text from before the request, not the severity-6 EKF text
    assert info.value.texts == ["Arm: Need Position Estimate"]


async def test_refusal_reasons_survive_a_full_text_history(rig: Rig) -> None:
    await rig.feed(rx("gcs_failsafe"))  # 63 STATUSTEXTs: the history is full
    assert len(rig.link.telemetry.texts) == 50
    boot = records("boot_to_armable")
    task = asyncio.create_task(rig.link.command_long(400, [1], what="arm", timeout=0.5, retries=1))
    await converse(rig, boot[7:11])
    with pytest.raises(CommandRejected) as info:
        await task
    assert info.value.texts == ["Arm: Accels inconsistent", "Arm: AHRS: waiting for home"]


async def test_arm_accepted_then_takeoff(rig: Rig) -> None:
    guided = records("guided_flight")
    await rig.feed(rx("guided_flight", 0, 163))
    assert not rig.link.telemetry.armed

    task = asyncio.create_task(rig.link.command_long(400, [1], what="arm", timeout=0.5, retries=1))
    await converse(rig, guided[163:165])  # COMMAND_LONG 400 -> ACK 0
    assert await task is None
    task = asyncio.create_task(rig.link.command_long(22, [0, 0, 0, 0, 0, 0, 30], what="takeoff", timeout=0.5, retries=1))
    await converse(rig, guided[165:179])  # COMMAND_LONG 22 (param7 30) -> "Arming motors", ACK 0, armed HEARTBEAT
    assert await task is None
    await rig.transport.drain()
    assert rig.link.telemetry.armed and rig.link.telemetry.mode == CopterMode.GUIDED
    assert rig.link.telemetry.texts[-1] == (6, "Arming motors")


async def test_an_ack_for_another_command_is_not_the_answer(rig: Rig) -> None:
    rej = records("rejections")
    task = asyncio.create_task(rig.link.command_long(22, [0, 0, 0, 0, 0, 0, 0], what="takeoff", timeout=0.5, retries=1))
    assert_fields(await rig.vehicle.expect("COMMAND_LONG"), rej[280])
    await rig.feed([rej[279]])  # COMMAND_ACK 400 accepted (the arm before it)
    assert not task.done()
    await rig.feed(rej[281:286])  # ... COMMAND_ACK 22 result 4
    with pytest.raises(CommandRejected) as info:
        await task
    assert info.value.result == 4 and info.value.texts == []


async def test_command_long_retries_then_times_out(rig: Rig) -> None:
    with pytest.raises(CommandTimeout, match="arm: no answer after 3 attempts"):
        await rig.link.command_long(400, [1], what="arm", timeout=0.03, retries=3)
    sent = rig.vehicle.messages("COMMAND_LONG")
    assert [m.confirmation for m in sent] == [0, 1, 2]  # MAVLink: confirmation counts retransmissions
    assert {(m.command, m.param1) for m in sent} == {(400, 1.0)}


async def test_a_late_ack_after_the_timeout_is_ignored(rig: Rig) -> None:
    boot = records("boot_to_armable")
    with pytest.raises(CommandTimeout):
        await rig.link.command_long(400, [1], timeout=0.03, retries=1)
    await rig.feed([boot[172]])  # ACK 400 accepted, too late: nothing waits for it
    assert rig.link.rx_messages == 1


async def test_command_int_reposition(rig: Rig) -> None:
    guided = records("guided_flight")
    task = asyncio.create_task(rig.link.command_int(192, [-1, 1], 32.0674999, 118.8009, 60, what="reposition", timeout=0.5))
    assert await converse(rig, guided[536:539]) == 1
    assert await task is None


async def test_position_target_is_the_recorded_one(rig: Rig) -> None:
    rig.link.send_position_target(32.0674999, 118.7969, 60)
    assert_fields(await rig.vehicle.expect("SET_POSITION_TARGET_GLOBAL_INT"), records("guided_flight")[223])


async def test_coordinates_round_to_the_nearest_1e7_degree(rig: Rig) -> None:
    rig.link.send_position_target(32.0675001, 118.7969, 60)
    assert (await rig.vehicle.expect("SET_POSITION_TARGET_GLOBAL_INT")).lat_int == 320675001


async def test_set_mode_confirmed_by_the_next_heartbeat(rig: Rig) -> None:
    boot = records("boot_to_armable")
    await rig.feed([boot[0]])  # STABILIZE
    task = asyncio.create_task(rig.link.set_mode(CopterMode.GUIDED, timeout=0.5, retries=2))
    assert await converse(rig, boot[5:7]) == 1  # SET_MODE (base_mode 1, custom_mode 4) -> HEARTBEAT mode 4
    assert await task is None
    assert rig.link.telemetry.mode == CopterMode.GUIDED
    assert len(rig.vehicle.messages("SET_MODE")) == 1


async def test_set_mode_is_resent_on_silence(rig: Rig) -> None:
    boot = records("boot_to_armable")
    await rig.feed([boot[0]])
    task = asyncio.create_task(rig.link.set_mode(CopterMode.GUIDED, timeout=0.1, retries=5))
    assert_fields(await rig.vehicle.expect("SET_MODE"), boot[5])
    await rig.feed([boot[0]])  # a heartbeat still in STABILIZE is no confirmation
    assert_fields(await rig.vehicle.expect("SET_MODE"), boot[5])  # resent after the timeout
    assert not task.done()
    await rig.feed([boot[6]])
    await task
    assert len(rig.vehicle.messages("SET_MODE")) == 2


async def test_set_mode_to_the_current_mode_sends_nothing(rig: Rig) -> None:
    await rig.feed(rx("boot_to_armable", 6, 7))  # GUIDED
    await rig.link.set_mode(CopterMode.GUIDED, timeout=0.05, retries=1)
    assert rig.vehicle.messages("SET_MODE") == []


async def test_set_mode_times_out_when_the_mode_never_shows(rig: Rig) -> None:
    await rig.feed(rx("rejections", 0, 1))
    with pytest.raises(CommandTimeout, match="mode AUTO"):
        await rig.link.set_mode(CopterMode.AUTO, timeout=0.03, retries=3)
    assert [m.custom_mode for m in rig.vehicle.messages("SET_MODE")] == [3, 3, 3]


async def test_set_param_confirmed_by_the_echo(rig: Rig) -> None:
    bat = records("battery")
    got = []
    for name, value, first, last in [
        ("SIM_BATT_CAP_AH", 0.5, 42, 43),
        ("BATT_CAPACITY", 500, 44, 45),
        ("BATT_LOW_MAH", 300, 46, 47),
        ("BATT_FS_LOW_ACT", 2, 48, 49),
    ]:
        task = asyncio.create_task(rig.link.set_param(name, value, timeout=0.5, retries=1))
        assert await converse(rig, bat[first : last + 1]) == 1
        got.append(await task)
    assert got == [0.5, 500.0, 300.0, 2.0]


async def test_set_param_unknown_name_gets_no_answer(rig: Rig) -> None:
    rej = records("rejections")
    task = asyncio.create_task(rig.link.set_param("NO_SUCH_PARAM", 1.0, timeout=0.1, retries=2))
    # PARAM_SET, then everything the vehicle said until the recording's next request (a STAT_RUNTIME PARAM_VALUE too)
    assert await converse(rig, rej[171:232]) == 1
    with pytest.raises(CommandTimeout, match="set NO_SUCH_PARAM=1"):
        await task
    sets = rig.vehicle.messages("PARAM_SET")
    assert len(sets) == 2 and {m.param_id for m in sets} == {"NO_SUCH_PARAM"}


async def test_set_param_kept_value_is_a_rejection(rig: Rig) -> None:
    fs = records("gcs_failsafe")
    task = asyncio.create_task(rig.link.set_param("FS_GCS_TIMEOUT", 7, timeout=0.5, retries=1))
    await rig.vehicle.expect("PARAM_SET")
    await rig.feed([fs[11]])  # the vehicle echoes FS_GCS_TIMEOUT = 5
    with pytest.raises(CommandRejected) as info:
        await task
    assert info.value.result == mavlink2.MAV_RESULT_DENIED and info.value.texts == ["vehicle kept 5"]


async def test_read_param(rig: Rig) -> None:
    bat = records("battery")
    task = asyncio.create_task(rig.link.read_param("SIM_BATT_CAP_AH", timeout=0.5))
    await converse(rig, bat[4:6])
    assert await task == 0.0
    task = asyncio.create_task(rig.link.read_param("BATT_MONITOR", timeout=0.5))
    await converse(rig, bat[15:42])  # the answer comes after 25 telemetry messages
    assert await task == 4.0


def mission_items() -> list[MissionItem]:
    """The mission the recording uploaded (home, takeoff, speed, 4 WPs, loiter, RTL), in degrees."""
    return [
        MissionItem(
            command=r.fields["command"],
            frame=r.fields["frame"],
            params=tuple(float(r.fields[f"param{i}"]) for i in range(1, 5)),  # type: ignore[arg-type]
            lat=r.fields["x"] / 1e7,
            lon=r.fields["y"] / 1e7,
            alt=r.fields["z"],
        )
        for r in records("mission_auto")[55:78]
        if r.dir == "tx" and r.type == "MISSION_ITEM_INT"
    ]


async def test_upload_mission_as_recorded(rig: Rig) -> None:
    items = mission_items()
    assert len(items) == 9
    task = asyncio.create_task(rig.link.upload_mission(items, timeout=0.5, retries=1))
    # MISSION_COUNT 9 -> MISSION_REQUEST 0 -> item 0 -> ... -> item 8 -> MISSION_ACK accepted
    assert await converse(rig, records("mission_auto")[53:80]) == 10
    assert await task is None
    assert [m.seq for m in rig.vehicle.messages("MISSION_ITEM_INT")] == list(range(9))


async def test_upload_mission_refused_by_a_mission_ack_error(rig: Rig) -> None:
    auto, rej = records("mission_auto"), records("rejections")
    task = asyncio.create_task(rig.link.upload_mission(mission_items(), timeout=0.5, retries=1))
    await converse(rig, auto[53:58])  # COUNT -> REQUEST 0 -> item 0 -> REQUEST 1 -> item 1
    await rig.feed([rej[145]])  # MISSION_ACK type 1 (MAV_MISSION_ERROR), as ArduCopter answered a bad item
    with pytest.raises(MissionRejected) as info:
        await task
    assert isinstance(info.value, CommandRejected)  # callers catching CommandRejected still do
    assert info.value.result == mavlink2.MAV_MISSION_ERROR == 1 and info.value.item == 1
    assert str(info.value).startswith("drone-1: mission upload: refused at item 1 (command 22): MISSION_ACK MAV_MISSION_ERROR")
    assert info.value.texts == ["MISSION_ACK MAV_MISSION_ERROR (Generic error / not accepting mission commands at all right now.)"]
    assert len(rig.vehicle.messages("MISSION_ITEM_INT")) == 2


async def test_upload_mission_answers_request_int_and_sends_nothing_unasked(rig: Rig) -> None:
    items = mission_items()[:3]
    task = asyncio.create_task(rig.link.upload_mission(items, timeout=0.2, retries=3, item_timeout=2.0))
    count = await rig.vehicle.expect("MISSION_COUNT")
    assert (count.count, count.target_system, count.mission_type) == (3, 1, 0)
    for seq in range(3):
        rig.vehicle.send(mavlink2.MAVLink_mission_request_int_message(255, 190, seq, 0))
        item = await rig.vehicle.expect("MISSION_ITEM_INT")
        assert item.seq == seq and item.command == items[seq].command
    await asyncio.sleep(0.5)  # no answer to item 2 yet: the vehicle asks again if it wants it; nothing is re-sent
    assert [m.seq for m in rig.vehicle.messages("MISSION_ITEM_INT")] == [0, 1, 2]
    assert len(rig.vehicle.messages("MISSION_COUNT")) == 1
    rig.vehicle.send(mavlink2.MAVLink_mission_ack_message(255, 190, mavlink2.MAV_MISSION_ACCEPTED, 0))
    await task


async def test_upload_mission_ignores_other_mission_types(rig: Rig) -> None:
    task = asyncio.create_task(rig.link.upload_mission(mission_items()[:1], timeout=0.3, retries=1))
    await rig.vehicle.expect("MISSION_COUNT")
    fence = mavlink2.MAV_MISSION_TYPE_FENCE
    rig.vehicle.send(mavlink2.MAVLink_mission_ack_message(255, 190, mavlink2.MAV_MISSION_ERROR, fence))
    await rig.transport.drain()
    assert not task.done()
    rig.vehicle.send(mavlink2.MAVLink_mission_request_message(255, 190, 0, 0))
    await rig.vehicle.expect("MISSION_ITEM_INT")
    rig.vehicle.send(mavlink2.MAVLink_mission_ack_message(255, 190, mavlink2.MAV_MISSION_ACCEPTED, 0))
    await task


async def test_upload_mission_request_out_of_range(rig: Rig) -> None:
    task = asyncio.create_task(rig.link.upload_mission(mission_items()[:2], timeout=0.3, retries=1))
    await rig.vehicle.expect("MISSION_COUNT")
    rig.vehicle.send(mavlink2.MAVLink_mission_request_message(255, 190, 5, 0))  # before request 0: an earlier transfer's
    await rig.transport.drain()
    assert not task.done() and not rig.vehicle.messages("MISSION_ITEM_INT")
    rig.vehicle.send(mavlink2.MAVLink_mission_request_message(255, 190, 0, 0))
    await rig.vehicle.expect("MISSION_ITEM_INT")
    rig.vehicle.send(mavlink2.MAVLink_mission_request_message(255, 190, 5, 0))  # in this transfer: the vehicle is confused
    with pytest.raises(MissionProtocolError, match="asked for item 5 of a 2-item upload"):
        await task


async def test_upload_mission_times_out(rig: Rig) -> None:
    with pytest.raises(MissionTimeout, match="no MISSION_REQUEST after 2 MISSION_COUNTs") as info:
        await rig.link.upload_mission(mission_items(), timeout=0.03, retries=2, transfers=1)
    assert isinstance(info.value, CommandTimeout)
    assert len(rig.vehicle.messages("MISSION_COUNT")) == 2


async def test_stop_fails_pending_requests(rig: Rig) -> None:
    task = asyncio.create_task(rig.link.command_long(400, [1], timeout=5.0, retries=1))
    await rig.vehicle.expect("COMMAND_LONG")
    await rig.link.stop()
    with pytest.raises(LinkDown):
        await task
    assert rig.transport.closed and not rig.link.connected
    with pytest.raises(LinkDown):
        rig.link.send_position_target(32.06, 118.79, 30)


# --- signing -------------------------------------------------------------------------------------------


def frames(data: bytes) -> list[bytes]:
    """Split a MAVLink 2 byte stream into frames (no resync: the link writes whole frames)."""
    out, i = [], 0
    while i < len(data):
        assert data[i] == 0xFD
        length = 10 + data[i + 1] + 2 + (13 if data[i + 2] & 1 else 0)
        out.append(data[i : i + length])
        i += length
    return out


async def test_signed_link_signs_what_it_writes(make_rig: Factory) -> None:
    rig = await make_rig(signing_key=KEY, vehicle_key=KEY)
    task = asyncio.create_task(rig.link.command_long(400, [1], timeout=0.05, retries=1))
    cmd = await rig.vehicle.expect("COMMAND_LONG")  # parsed with the key: signature checked
    assert cmd.get_signed() and cmd.command == 400 and cmd.target_system == 1
    written = frames(bytes(rig.transport.written))
    assert len(written) == len(STREAM_RATES_HZ) + 1
    assert all(f[2] & mavlink2.MAVLINK_IFLAG_SIGNED for f in written)
    assert all(m.get_signed() for m in rig.vehicle.messages())
    assert rig.vehicle.parser.signing.goodsig_count == len(written)

    wrong = mavlink2.MAVLink(None)
    wrong.robust_parsing = True
    wrong.signing.secret_key = bytes(32)
    wrong.signing.allow_unsigned_callback = lambda _m, _i: False
    parsed = wrong.parse_buffer(bytes(rig.transport.written)) or []
    assert {m.get_type() for m in parsed} == {"BAD_DATA"}
    assert wrong.signing.badsig_count == len(written)
    with pytest.raises(CommandTimeout):
        await task


async def test_signed_link_drops_unsigned_and_badly_signed_messages(make_rig: Factory) -> None:
    rig = await make_rig(signing_key=KEY, vehicle_key=KEY)
    beat = rx("boot_to_armable", 6, 7)[0]
    unsigned = Vehicle(rig.transport)
    unsigned.send_records([beat])
    await rig.transport.drain()
    assert rig.link.rejected_unsigned == 1
    assert not rig.link.up and rig.link.rx_messages == 0 and rig.link.telemetry.mode is None

    forger = Vehicle(rig.transport, signing_key=bytes(32))
    forger.send_records([beat])
    await rig.transport.drain()
    assert rig.link.rejected_unsigned == 2 and not rig.link.up

    await rig.feed([beat])  # signed with the shared key
    assert rig.link.up and rig.link.telemetry.mode == CopterMode.GUIDED and rig.link.rx_messages == 1
    assert rig.link.rejected_unsigned == 2


async def test_unsigned_link_accepts_signed_and_unsigned(make_rig: Factory) -> None:
    rig = await make_rig(vehicle_key=KEY)
    await rig.feed(rx("boot_to_armable", 0, 1))
    Vehicle(rig.transport).send_records(rx("boot_to_armable", 6, 7))
    await rig.transport.drain()
    assert rig.link.rx_messages == 2 and rig.link.rejected_unsigned == 0
    assert rig.link.telemetry.mode == CopterMode.GUIDED


async def test_a_forged_frame_cannot_lock_out_the_real_vehicle(make_rig: Factory) -> None:
    rig = await make_rig(signing_key=KEY, vehicle_key=KEY)
    beat = rx("boot_to_armable", 6, 7)[0]
    await rig.feed([beat])
    assert rig.link.rx_messages == 1
    forger = Vehicle(rig.transport, signing_key=bytes(32))
    forger.pack(build("HEARTBEAT", beat.fields))  # creates its encoder ...
    forger.encoder(1, 1).signing.timestamp += 3600 * 100_000  # ... and moves its clock an hour ahead
    forger.send_records([beat])
    await rig.transport.drain()
    assert rig.link.rejected_unsigned == 1
    await rig.feed([beat])  # the real vehicle, correctly signed
    assert rig.link.rx_messages == 2


# --- the camera mount's pitch ---------------------------------------------------------------------------


def gimbal_status(pitch_deg: float, device: int = 1) -> Any:
    """GIMBAL_DEVICE_ATTITUDE_STATUS as ArduCopter packs it for a servo mount (roll 0, yaw 0, flags 44)."""
    half = math.radians(pitch_deg) / 2
    nan = float("nan")
    return mavlink2.MAVLink_gimbal_device_attitude_status_message(
        0, 0, 1000, 44, [math.cos(half), 0.0, math.sin(half), 0.0], nan, nan, nan, 0, nan, nan, device
    )


async def test_gimbal_pitch_from_the_recorded_mount_case(rig: Rig) -> None:
    """ArduCopter's servo mount (MNT1_TYPE 1) reports itself only by GIMBAL_DEVICE_ATTITUDE_STATUS from the
    autopilot (component 1, gimbal 1): DO_MOUNT_CONTROL to -90, then 0, then -30 as the recording has it."""
    recs = records("pilot_commands")
    assert rig.link.telemetry.gimbal_pitch_deg is None
    await rig.feed(rx("pilot_commands", 0, 60))
    assert rig.link.telemetry.gimbal_pitch_deg == pytest.approx(-45.0, abs=0.1)
    start = next(r.index for r in recs if r.type == "CASE" and r.fields.get("case") == "mount")
    stop = next(r.index for r in recs if r.type == "CASE" and r.fields.get("case") == "roi")
    seen = []
    for rec in rx("pilot_commands", start, stop):
        await rig.feed([rec])
        if rec.type == "GIMBAL_DEVICE_ATTITUDE_STATUS":
            assert (rec.sysid, rec.compid, rec.fields["gimbal_device_id"]) == (1, 1, 1)
            pitch = round(rig.link.telemetry.gimbal_pitch_deg)
            if not seen or seen[-1] != pitch:
                seen.append(pitch)
    assert seen[0] == -45 and seen[1:] == [-90, 0, -30], seen
    assert rig.link.telemetry.snapshot()["gimbal_pitch_deg"] == pytest.approx(-30.1, abs=0.1)


async def test_gimbal_pitch_from_a_mavlink_gimbal_not_from_a_camera_nor_a_second_gimbal(rig: Rig) -> None:
    await rig.feed(rx("boot_to_armable", 0, 1))
    t = rig.link.telemetry
    rig.vehicle.send(gimbal_status(-60.0, device=0), compid=154)  # a MAVLink gimbal (MAV_COMP_ID_GIMBAL) itself
    await rig.transport.drain()
    assert t.gimbal_pitch_deg == pytest.approx(-60.0)
    rig.vehicle.send(gimbal_status(-10.0, device=0), compid=100)  # a camera component: not the mount
    rig.vehicle.send(gimbal_status(-20.0, device=2))  # the autopilot's second gimbal: not the camera's
    nan_q = gimbal_status(-5.0)
    nan_q.q = [float("nan")] * 4  # the mount does not know its attitude
    rig.vehicle.send(nan_q)
    await rig.transport.drain()
    assert t.gimbal_pitch_deg == pytest.approx(-60.0)
    rig.vehicle.send(gimbal_status(-89.5))
    await rig.transport.drain()
    assert t.gimbal_pitch_deg == pytest.approx(-89.5)
    assert rig.link.components == {}  # a gimbal's status makes no component (only HEARTBEATs do)
