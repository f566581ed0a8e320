"""DroneLink.upload_mission over bytes: the recorded real vehicle, the strict simulator, many links at once.

In memory, the vehicle is either the real ArduCopter's recorded words
(tests/sitl/transcripts/mission_upload_edge_cases.jsonl) or a built-in
simulator copter (sitl.vehicle.SimCopter, whose mission protocol answers as
ArduPilot does: INVALID_SEQUENCE for a repeated item, a re-request after 1 s, a
give-up after 8 s) stepped in fast simulated time, with faults injected on the
wire. Over TCP, a SimFleet of copters and one DroneLink each upload at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from controller.fleet.drone_link import (
    CommandRejected,
    DroneLink,
    LinkConfig,
    LinkDown,
    MissionItem,
    MissionRejected,
    MissionTimeout,
)
from controller.fleet.transport import Endpoint
from sitl.fleet import SimFleet, VehicleSpec, free_base_port
from sitl.vehicle import SimCopter
from tests.fleet.memory_link import MemoryConnector, MemoryTransport, Record, load
from tests.fleet.test_drone_link import Factory, Rig, converse, make_rig, rig  # noqa: F401 - the fixtures

HOME = (32.0603, 118.7969, 10.0)
EDGES = "mission_upload_edge_cases"


def window(name: str) -> list[Record]:
    recs = load(EDGES)[1]
    start = next(i for i, r in enumerate(recs) if r.dir == "event" and r.fields["case"] == name)
    end = next((i for i, r in enumerate(recs) if i > start and r.dir == "event"), len(recs))
    return recs[start + 1 : end]


def recorded_items(recs: list[Record]) -> list[MissionItem]:
    by_seq: dict[int, MissionItem] = {}
    for r in recs:
        if r.dir == "tx" and r.type == "MISSION_ITEM_INT" and (r.sysid, r.compid) == (255, 190):
            f = r.fields
            by_seq.setdefault(
                f["seq"],
                MissionItem(f["command"], f["frame"], (f["param1"], f["param2"], f["param3"], f["param4"]), f["x"] / 1e7, f["y"] / 1e7, f["z"]),
            )
    return [by_seq[s] for s in sorted(by_seq)]


def sweep(n: int, alt: float) -> list[MissionItem]:
    """Home, takeoff, n-3 waypoints, RTL (what controller/fleet/sweep.py uploads), at `alt` so missions can be told apart."""
    items = [MissionItem(mav.MAV_CMD_NAV_WAYPOINT), MissionItem(mav.MAV_CMD_NAV_TAKEOFF, alt=alt)]
    items += [MissionItem(mav.MAV_CMD_NAV_WAYPOINT, lat=HOME[0] + 0.0005 * k, lon=HOME[1] + 0.0003 * (k % 2), alt=alt) for k in range(1, n - 2)]
    items.append(MissionItem(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH))
    return items


def stored(v: SimCopter) -> list[tuple[int, float, int, int]]:
    return [(i.command, round(i.z, 2), i.x, i.y) for i in v.mission.items[1:]]


def expected(items: list[MissionItem]) -> list[tuple[int, float, int, int]]:
    located = {mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_TAKEOFF}
    return [(i.command, round(i.alt, 2) if i.command in located else 0.0, round(i.lat * 1e7) if i.command in located else 0, round(i.lon * 1e7) if i.command in located else 0) for i in items[1:]]


# --- the real vehicle's recorded words ---------------------------------------------------------------------------------


async def test_the_e2e_failure_a_late_answer_meets_the_re_request(rig: Rig) -> None:
    """Recorded from real ArduCopter: request 2 answered late, the vehicle asked again, got item 2 twice, said INVALID_SEQUENCE.

    The old upload took that MISSION_ACK 13 for a refusal ("mission upload result 13"); now both requests are
    answered and the upload is accepted.
    """
    recs = window("late_answer")
    task = asyncio.create_task(rig.link.upload_mission(recorded_items(recs), timeout=0.5, retries=1))
    assert await converse(rig, recs) == 8  # COUNT, items 0-5 with item 2 twice
    await task
    assert [m.seq for m in rig.vehicle.messages("MISSION_ITEM_INT")] == [0, 1, 2, 2, 3, 4, 5]


@pytest.mark.parametrize("name", ["upload", "duplicate_item", "download_during_upload", "other_gcs", "fence_during_upload"])
async def test_recorded_uploads_are_accepted(make_rig: Factory, name: str) -> None:
    """The vehicle's side of each recorded upload, pushed as it was said: the link answers and ends accepted."""
    rig = await make_rig()
    recs = window(name)
    task = asyncio.create_task(rig.link.upload_mission(recorded_items(recs), timeout=0.5, retries=1))
    await rig.vehicle.expect("MISSION_COUNT")
    for r in recs:
        if r.dir == "rx" and not task.done():
            rig.vehicle.send_records([r])
            await rig.transport.drain()
    await asyncio.wait_for(task, 2.0)


async def test_a_vehicle_side_timeout_is_reported_by_name(rig: Rig) -> None:
    """The recorded unanswered request: re-requests, then MISSION_ACK OPERATION_CANCELLED (if our own timeout is longer)."""
    recs = window("unanswered_request")
    rx = [r for r in recs if r.dir == "rx"]
    items = recorded_items(window("upload"))  # the same 6-item shape; the recording only got to send items 0 and 1
    task = asyncio.create_task(rig.link.upload_mission(items, timeout=0.5, retries=1, item_timeout=5.0, transfers=1))
    await rig.vehicle.expect("MISSION_COUNT")
    await rig.feed(rx)
    with pytest.raises(MissionRejected, match="the vehicle cancelled the upload at item 2 .*MAV_MISSION_OPERATION_CANCELLED") as info:
        await task
    assert info.value.result == mav.MAV_MISSION_OPERATION_CANCELLED and info.value.item == 2


async def test_a_refused_item_is_named_as_a_mission_result(rig: Rig) -> None:
    recs = window("bad_item")
    rx = [r for r in recs if r.dir == "rx"]
    upto_refusal = rx[: next(i for i, r in enumerate(rx) if r.type == "MISSION_ACK") + 1]
    task = asyncio.create_task(rig.link.upload_mission(recorded_items(recs), timeout=0.5, retries=1))
    await rig.vehicle.expect("MISSION_COUNT")
    await rig.feed(upto_refusal)
    with pytest.raises(CommandRejected) as info:
        await task
    assert "MISSION_ACK MAV_MISSION_UNSUPPORTED (Command is not supported.)" in str(info.value)
    assert "result 3" not in str(info.value)


# --- the strict simulator, in memory -------------------------------------------------------------------------------


@dataclass
class Faults:
    drop_counts: int = 0  # the vehicle never hears the first N MISSION_COUNTs
    drop_items: set[int] = field(default_factory=set)  # ... nor the first copy of these items
    repeat_requests: bool = False  # every request is said twice (a duplicating radio)
    latency: float = 0.0  # wall seconds the vehicle's words take to reach the link (a slow radio, a busy controller)
    chatter: bool = False  # fence requests and other stations' refusals on the same link
    mute_after: int | None = None  # the vehicle hears no item after this many (it asks again, then gives up)
    silent_after: int | None = None  # after hearing this many items the vehicle's words are lost (it seems to stop asking)
    heal_on_count: bool = False  # mute_after / silent_after end with the next MISSION_COUNT (a passing fault)


class SimOnWire:
    """A SimCopter at the far end of a MemoryTransport, stepped `speedup` times faster than the wall clock."""

    def __init__(self, transport: MemoryTransport, sysid: int, speedup: float = 20.0, faults: Faults | None = None) -> None:
        self.transport = transport
        self.v = SimCopter(sysid, SimpleNamespace(lat=HOME[0], lon=HOME[1], alt_amsl=HOME[2]), warm=True, seed=sysid)
        self.faults = faults or Faults()
        self.speedup = speedup
        self._enc = mav.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self._other = mav.MAVLink(None, srcSystem=sysid, srcComponent=1)
        self._parser = mav.MAVLink(None)
        self._parser.robust_parsing = True
        self._read = 0
        self.heard: list[str] = []
        self._items_heard = 0
        self._dropped: set[int] = set()
        self._in_flight: list[tuple[float, bytes]] = []  # (deliver at, bytes) on the way to the link
        self._task: asyncio.Task[None] | None = None

    def start(self) -> SimOnWire:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _to_vehicle(self, msg: Any) -> None:
        f, kind = self.faults, msg.get_type()
        if kind == "MISSION_COUNT" and f.drop_counts > 0:
            f.drop_counts -= 1
            return
        if kind == "MISSION_COUNT" and f.heal_on_count and (f.mute_after is not None or f.silent_after is not None):
            if self._items_heard > 0:
                f.mute_after = f.silent_after = None
        if kind == "MISSION_ITEM_INT":
            if msg.seq in f.drop_items and msg.seq not in self._dropped:
                self._dropped.add(msg.seq)
                return
            self._items_heard += 1
            if f.mute_after is not None and self._items_heard > f.mute_after:
                return
        self.heard.append(kind)
        self.v.handle(msg)

    def _to_link(self, msgs: list[Any]) -> None:
        if self.faults.silent_after is not None and self._items_heard >= self.faults.silent_after:
            return
        out = bytearray()
        for m in msgs:
            copies = 2 if self.faults.repeat_requests and m.get_type() == "MISSION_REQUEST" else 1
            for _ in range(copies):
                out += m.pack(self._enc)
        if self.faults.chatter and msgs:
            out += mav.MAVLink_mission_request_message(255, 190, 0, mav.MAV_MISSION_TYPE_FENCE).pack(self._other)
            out += mav.MAVLink_mission_ack_message(254, 190, mav.MAV_MISSION_DENIED, 0).pack(self._other)
            out += mav.MAVLink_mission_ack_message(255, 190, mav.MAV_MISSION_OPERATION_CANCELLED, mav.MAV_MISSION_TYPE_RALLY).pack(self._other)
        if out:
            self._in_flight.append((asyncio.get_running_loop().time() + self.faults.latency, bytes(out)))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(0.005)
            new = bytes(self.transport.written[self._read :])
            self._read = len(self.transport.written)
            for msg in self._parser.parse_buffer(new) or ():
                if msg.get_type() != "BAD_DATA":
                    self._to_vehicle(msg)
            now = loop.time()
            self.v.step(min(now - last, 0.05) * self.speedup)
            last = now
            mission = [m for m in self.v.outbox if m.get_type().startswith("MISSION_")]
            self.v.outbox.clear()
            self._to_link(mission)
            while self._in_flight and self._in_flight[0][0] <= now:
                self.transport.push(self._in_flight.pop(0)[1])


@dataclass
class Pair:
    link: DroneLink
    sim: SimOnWire


@pytest.fixture
async def pairs() -> Any:
    made: list[Pair] = []

    async def make(n: int, faults: Callable[[int], Faults | None] = lambda _i: None, speedup: float = 20.0) -> list[Pair]:
        out = []
        for i in range(n):
            connector = MemoryConnector()
            link = DroneLink(LinkConfig(f"drone-{i + 1}", Endpoint.parse(f"tcp:127.0.0.1:{5760 + 10 * i}"), sysid=i + 1), connect=connector)
            link.start()
            transport = await connector.wait_connections(1)
            pair = Pair(link, SimOnWire(transport, i + 1, speedup, faults(i)).start())
            made.append(pair)
            out.append(pair)
        return out

    yield make
    for p in made:
        await p.sim.stop()
        await p.link.stop()


async def test_against_the_strict_simulator(pairs: Any) -> None:
    (p,) = await pairs(1)
    items = sweep(12, 40.0)
    await p.link.upload_mission(items)
    assert stored(p.sim.v) == expected(items) and p.sim.v.mission.count == 12


@pytest.mark.parametrize(
    ("faults", "what"),
    [
        (Faults(drop_counts=2), "two MISSION_COUNTs lost: re-sent until the vehicle asks"),
        (Faults(drop_items={3, 7}), "items lost on the way: the vehicle asks again after 1 s, and gets them"),
        (Faults(repeat_requests=True), "every request twice: every item twice, INVALID_SEQUENCE each time"),
        (Faults(latency=0.08), "the vehicle's words arrive 1.6 simulated s late: it has asked again before the answer"),
        (Faults(chatter=True), "fence requests and other stations' refusals on the same link"),
    ],
)
async def test_faults_on_the_wire_do_not_fail_the_upload(pairs: Any, faults: Faults, what: str) -> None:
    (p,) = await pairs(1, lambda _i: faults)
    items = sweep(10, 35.0)
    await p.link.upload_mission(items, timeout=0.3, retries=5)
    assert stored(p.sim.v) == expected(items), what


async def test_many_links_upload_at_once_each_to_its_own_vehicle(pairs: Any) -> None:
    """Six copters, six links, six missions at once, each with its own faults: each vehicle gets its own mission."""
    profiles = [Faults(), Faults(repeat_requests=True), Faults(drop_counts=1), Faults(drop_items={2, 5}), Faults(chatter=True), Faults(latency=0.07)]
    ps = await pairs(6, lambda i: profiles[i])
    missions = [sweep(8 + 2 * i, 30.0 + i) for i in range(6)]
    await asyncio.gather(*(p.link.upload_mission(m, timeout=0.3, retries=5) for p, m in zip(ps, missions, strict=True)))
    for p, m in zip(ps, missions, strict=True):
        assert stored(p.sim.v) == expected(m), p.link.drone_id


async def test_one_link_uploads_one_mission_at_a_time(pairs: Any) -> None:
    (p,) = await pairs(1)
    first, second = sweep(8, 30.0), sweep(6, 50.0)
    await asyncio.gather(p.link.upload_mission(first), p.link.upload_mission(second))
    assert stored(p.sim.v) == expected(second)
    assert p.sim.heard.count("MISSION_COUNT") == 2


async def test_a_vehicle_that_stops_asking_times_out_and_a_new_upload_restarts_cleanly(pairs: Any) -> None:
    (p,) = await pairs(1, lambda _i: Faults(silent_after=3))
    items = sweep(8, 30.0)
    with pytest.raises(MissionTimeout, match="stopped asking for items 0.2 s ago \\(item 2 of 8 last sent"):
        await p.link.upload_mission(items, timeout=0.3, retries=2, item_timeout=0.2, transfers=1)
    assert p.sim.v.mission_transfer.protocol.uploading  # the vehicle still waits for item 3 ...
    p.sim.faults.silent_after = None
    again = sweep(8, 45.0)
    await p.link.upload_mission(again)  # ... and our new MISSION_COUNT restarts it
    assert stored(p.sim.v) == expected(again)
    await asyncio.sleep(0.6)  # 12 simulated seconds: no late OPERATION_CANCELLED from the abandoned upload
    assert not p.sim.v.mission_transfer.protocol.uploading


@pytest.mark.parametrize(
    ("faults", "stall"),
    [
        (Faults(silent_after=3, heal_on_count=True), "our timeout: the vehicle's requests stopped reaching us"),
        (Faults(mute_after=3, heal_on_count=True), "the vehicle's: it got no item for 8 s and cancelled"),
    ],
)
async def test_a_stalled_transfer_is_started_over_once(pairs: Any, faults: Faults, stall: str) -> None:
    (p,) = await pairs(1, lambda _i: faults)
    items = sweep(8, 30.0)
    await p.link.upload_mission(items, item_timeout=0.3)
    assert stored(p.sim.v) == expected(items), stall
    assert p.sim.heard.count("MISSION_COUNT") == 2


async def test_after_the_vehicle_cancels_a_new_upload_works(pairs: Any) -> None:
    (p,) = await pairs(1, lambda _i: Faults(mute_after=2))
    with pytest.raises(MissionRejected, match="OPERATION_CANCELLED"):
        await p.link.upload_mission(sweep(6, 30.0), item_timeout=2.0)  # 8 simulated s = 0.4 s: the vehicle gives up first
    assert p.sim.heard.count("MISSION_COUNT") == 2  # it was started over once, and cancelled again
    p.sim.faults.mute_after = None
    items = sweep(6, 31.0)
    await p.link.upload_mission(items)
    assert stored(p.sim.v) == expected(items)


async def test_after_a_refused_item_a_new_upload_works(pairs: Any) -> None:
    (p,) = await pairs(1)
    old = sweep(8, 20.0)
    await p.link.upload_mission(old)
    bad = sweep(6, 30.0)
    bad[3] = MissionItem(31999, lat=HOME[0], lon=HOME[1], alt=30.0)
    with pytest.raises(MissionRejected, match=r"refused at item 3 \(command 31999\): MISSION_ACK MAV_MISSION_UNSUPPORTED") as info:
        await p.link.upload_mission(bad)
    assert info.value.result == mav.MAV_MISSION_UNSUPPORTED
    assert p.sim.heard.count("MISSION_COUNT") == 2  # a refused item is not retried
    # as on ArduPilot, a failed upload leaves a mixed mission: cut to the new count, new items 1-2, old items 3-5
    assert stored(p.sim.v) == expected(bad)[:2] + expected(old)[2:5]
    items = sweep(6, 31.0)
    await p.link.upload_mission(items)
    assert stored(p.sim.v) == expected(items)


async def test_stopping_the_link_ends_its_upload(pairs: Any) -> None:
    (p,) = await pairs(1, lambda _i: Faults(drop_counts=100))
    task = asyncio.create_task(p.link.upload_mission(sweep(6, 30.0), timeout=5.0))
    await asyncio.sleep(0.1)
    await p.link.stop()
    with pytest.raises(LinkDown):
        await task


# --- the simulator over TCP ----------------------------------------------------------------------------------------


async def test_concurrent_uploads_over_tcp_to_a_fast_simulator() -> None:
    """Eight copters at speedup 40 (the vehicle asks again after 25 ms of wall time): duplicates happen; all succeed."""
    base = free_base_port(8)
    specs = [VehicleSpec(i, HOME[0] + 0.001 * i, HOME[1], HOME[2], warm=True) for i in range(8)]
    rng = random.Random(1)
    async with SimFleet(specs, speedup=40.0, base_port=base) as fleet:
        links = [DroneLink(LinkConfig(f"drone-{i + 1}", Endpoint.parse(f"tcp:127.0.0.1:{fleet.port_of(i)}"), sysid=i + 1)) for i in range(8)]
        for link in links:
            link.start()
        try:
            while not all(lk.connected for lk in links):
                await asyncio.sleep(0.01)
            missions = [sweep(rng.randrange(8, 30), 30.0 + i) for i in range(8)]
            await asyncio.wait_for(asyncio.gather(*(lk.upload_mission(m) for lk, m in zip(links, missions, strict=True))), 60)
            for i, m in enumerate(missions):
                assert stored(fleet.vehicle(i)) == expected(m), i
        finally:
            for link in links:
                await link.stop()
