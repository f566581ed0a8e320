"""An in-memory byte transport for DroneLink, and the test playing the vehicle at its other end.

No sockets: the link reads what the test pushes and writes into a buffer the
test parses back with pymavlink. The vehicle's words come from the recorded
ArduCopter SITL transcripts (tests/sitl/transcripts/*.jsonl), packed to real
MAVLink 2 bytes with the sysid/compid of each record.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.fleet.transport import Endpoint

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "sitl" / "transcripts"

_CLASSES = {c.msgname: c for c in mavlink2.mavlink_map.values()}


# --- transcripts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One line of a transcript: `rx` is what the vehicle sent, `tx` what the ground station sent."""

    index: int  # position among the transcript's records (header excluded)
    t: float  # wall seconds of the recording
    dir: str
    type: str
    sysid: int
    compid: int
    fields: dict[str, Any]


def load(name: str) -> tuple[dict[str, Any], list[Record]]:
    lines = (TRANSCRIPTS / f"{name}.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    records = []
    for i, line in enumerate(lines[1:]):
        r = json.loads(line)
        records.append(Record(i, r["t"], r["dir"], r["type"], r["sysid"], r["compid"], r["fields"]))
    return header, records


def build(rec_type: str, fields: dict[str, Any]) -> Any:
    """A pymavlink message object of `rec_type` from recorded (JSON) fields; missing fields are 0."""
    cls = _CLASSES[rec_type]
    values = {}
    for name, kind in zip(cls.fieldnames, cls.fieldtypes, strict=True):
        value = fields.get(name, 0)
        if kind == "char" and isinstance(value, str):
            value = value.encode()
        elif kind in ("float", "double") and isinstance(value, str):
            value = float(value)  # "nan" (JSON has no NaN: the recorder wrote it as a string)
        values[name] = value
    return cls(**values)


# --- the transport ----------------------------------------------------------------------------------


class MemoryTransport:
    """Transport protocol in memory: `push` bytes for the link to read; `written` holds what it wrote."""

    def __init__(self) -> None:
        self._rx: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._wrote = asyncio.Event()
        self.written = bytearray()
        self.closed = False

    # the link's side
    async def read(self) -> bytes:
        if self._rx.empty():
            self._idle.set()  # everything pushed so far has been read and handled
        data = await self._rx.get()
        if data is None:
            raise ConnectionError("memory transport closed")
        return data

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError("memory transport closed")
        self.written += data
        self._wrote.set()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._rx.put_nowait(None)

    # the test's side
    def push(self, data: bytes) -> None:
        self._idle.clear()
        self._rx.put_nowait(data)

    async def drain(self, timeout: float = 2.0) -> None:
        """Wait until the link has read and handled every pushed byte."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def wait_written(self, timeout: float) -> None:
        self._wrote.clear()
        await asyncio.wait_for(self._wrote.wait(), timeout)


class MemoryConnector:
    """The link's `connect=`: hands out a fresh MemoryTransport per connection and remembers them."""

    def __init__(self) -> None:
        self.transports: list[MemoryTransport] = []
        self.endpoints: list[Endpoint] = []
        self._connected = asyncio.Event()

    async def __call__(self, endpoint: Endpoint) -> MemoryTransport:
        self.endpoints.append(endpoint)
        transport = MemoryTransport()
        self.transports.append(transport)
        self._connected.set()
        return transport

    async def wait_connections(self, n: int, timeout: float = 2.0) -> MemoryTransport:
        async def until() -> None:
            while len(self.transports) < n:
                self._connected.clear()
                await self._connected.wait()

        await asyncio.wait_for(until(), timeout)
        return self.transports[n - 1]


# --- the vehicle ------------------------------------------------------------------------------------


def signing_timestamp() -> int:
    """MAVLink signing time: 10 us units since 2015-01-01."""
    return int((time.time() - 1420070400) * 100000)


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class Vehicle:
    """The test playing ArduCopter on a MemoryTransport: packs messages to bytes, parses what the link wrote."""

    def __init__(self, transport: MemoryTransport, signing_key: bytes | None = None, parse_key: bytes | None = None) -> None:
        self.transport = transport
        self._signing_key = signing_key
        self._encoders: dict[tuple[int, int], mavlink2.MAVLink] = {}
        # parses the link's bytes; with `parse_key` it checks (and records) their signatures
        self._parser = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
        self._parser.robust_parsing = True
        if parse_key is not None:
            self._parser.signing.secret_key = parse_key
            self._parser.signing.timestamp = signing_timestamp()
            self._parser.signing.allow_unsigned_callback = lambda _mav, _msg_id: False
        self._parsed_upto = 0
        self.received: list[Any] = []
        self._cursors: dict[str, int] = {}

    @property
    def parser(self) -> mavlink2.MAVLink:
        return self._parser

    def encoder(self, sysid: int, compid: int) -> mavlink2.MAVLink:
        enc = self._encoders.get((sysid, compid))
        if enc is None:
            sink = _Sink()
            enc = mavlink2.MAVLink(sink, srcSystem=sysid, srcComponent=compid)
            if self._signing_key is not None:
                enc.signing.secret_key = self._signing_key
                enc.signing.link_id = 0
                enc.signing.sign_outgoing = True
                enc.signing.timestamp = signing_timestamp()
            self._encoders[(sysid, compid)] = enc
        return enc

    def pack(self, msg: Any, sysid: int = 1, compid: int = 1) -> bytes:
        enc = self.encoder(sysid, compid)
        sink = enc.file
        start = len(sink.data)
        enc.send(msg)
        return bytes(sink.data[start:])

    def pack_record(self, rec: Record, sysid: int | None = None) -> bytes:
        assert rec.dir == "rx", f"record {rec.index} is the ground station's, not the vehicle's"
        return self.pack(build(rec.type, rec.fields), rec.sysid if sysid is None else sysid, rec.compid)

    def send(self, msg: Any, sysid: int = 1, compid: int = 1) -> None:
        self.transport.push(self.pack(msg, sysid, compid))

    def send_records(self, records: Iterable[Record], sysid: int | None = None) -> int:
        """Push the vehicle's (rx) records as one stream of bytes; returns how many were sent."""
        data = bytearray()
        n = 0
        for rec in records:
            if rec.dir == "rx":
                data += self.pack_record(rec, sysid)
                n += 1
        if data:
            self.transport.push(bytes(data))
        return n

    # what the link wrote
    def _parse(self) -> None:
        new = bytes(self.transport.written[self._parsed_upto :])
        self._parsed_upto = len(self.transport.written)
        for msg in self._parser.parse_buffer(new) or ():
            self.received.append(msg)

    def messages(self, *kinds: str) -> list[Any]:
        """Everything the link has written so far (of `kinds`, if given)."""
        self._parse()
        return [m for m in self.received if not kinds or m.get_type() in kinds]

    async def expect(self, kind: str, timeout: float = 2.0) -> Any:
        """The next message of `kind` the link writes that `expect` has not returned before."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            of_kind = self.messages(kind)
            seen = self._cursors.get(kind, 0)
            if seen < len(of_kind):
                self._cursors[kind] = seen + 1
                return of_kind[seen]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"the link wrote no {kind} within {timeout:g} s")
            try:
                await self.transport.wait_written(remaining)
            except TimeoutError:
                pass
