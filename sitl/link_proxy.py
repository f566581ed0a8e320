"""A TCP relay between a ground station and one vehicle's MAVLink port, that can fail the way a radio link fails.

The controller connects to the proxy as it would to the vehicle; each
connection it opens gets its own connection to the vehicle (ArduPilot SITL's
SERIAL0 serves one client at a time), and bytes are relayed frame by frame in
both directions. Faults, all in wall time:

- `cut(seconds, "drop")`: nothing passes either way, the sockets stay open.
  The vehicle hears no ground-station HEARTBEAT, so its own GCS failsafe
  (FS_GCS_ENABLE, FS_GCS_TIMEOUT) really runs; the ground station hears
  nothing and must notice by itself.
- `cut(seconds, "close")`: the connection is dropped and new ones are refused
  (the port stops listening) until the cut ends.
- `drop_command(cmd)` / `drop_message(name)`: COMMAND_LONG/COMMAND_INT with
  that MAV_CMD, or messages of that type, from the ground station never reach
  the vehicle: it neither acts on them nor acknowledges them.

Frames are split by their MAVLink 1/2 headers only (no CRC check, no
decoding), so signed traffic and unknown messages pass unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Iterator

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

log = logging.getLogger(__name__)

STX_V1, STX_V2 = 0xFE, 0xFD
SIGNED = 0x01
COMMAND_LONG = mavlink2.MAVLINK_MSG_ID_COMMAND_LONG
COMMAND_INT = mavlink2.MAVLINK_MSG_ID_COMMAND_INT
#: Both COMMAND_LONG and COMMAND_INT carry `command` (uint16) at payload offset 28.
COMMAND_OFFSET = 28
READ_SIZE = 65536


class FrameSplitter:
    """Cuts a byte stream into MAVLink frames; bytes between frames come out as chunks of their own."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int | None, bytes]]:
        """(msgid, frame) for each whole frame now complete; (None, bytes) for noise between frames."""
        buf = self._buf
        buf += data
        i, n = 0, len(buf)
        while i < n:
            stx = buf[i]
            if stx not in (STX_V1, STX_V2):
                j = i + 1
                while j < n and buf[j] not in (STX_V1, STX_V2):
                    j += 1
                yield None, bytes(buf[i:j])
                i = j
                continue
            if stx == STX_V2:
                if n - i < 10:
                    break
                size = 12 + buf[i + 1] + (13 if buf[i + 2] & SIGNED else 0)
                msgid = buf[i + 7] | buf[i + 8] << 8 | buf[i + 9] << 16
            else:
                if n - i < 6:
                    break
                size = 8 + buf[i + 1]
                msgid = buf[i + 5]
            if n - i < size:
                break
            yield msgid, bytes(buf[i : i + size])
            i += size
        del buf[:i]


def command_of(msgid: int, frame: bytes) -> int | None:
    """The MAV_CMD of a COMMAND_LONG/COMMAND_INT frame (MAVLink 2 trims trailing zero bytes of the payload)."""
    if msgid not in (COMMAND_LONG, COMMAND_INT):
        return None
    header = 10 if frame[0] == STX_V2 else 6
    payload = frame[header : header + frame[1]]
    payload = payload + bytes(max(0, COMMAND_OFFSET + 2 - len(payload)))
    return struct.unpack_from("<H", payload, COMMAND_OFFSET)[0]


class _Session:
    """One ground-station connection and its own connection to the vehicle."""

    def __init__(self, proxy: LinkProxy, gcs: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 vehicle: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.gcs_reader, self.gcs_writer = gcs
        self.vehicle_reader, self.vehicle_writer = vehicle
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [
            loop.create_task(self._pump(self.gcs_reader, self.vehicle_writer, up=True), name=f"proxy-{self.proxy.name}-up"),
            loop.create_task(self._pump(self.vehicle_reader, self.gcs_writer, up=False), name=f"proxy-{self.proxy.name}-down"),
        ]
        for t in self.tasks:
            t.add_done_callback(lambda _t: self.close())

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        try:
            await self._relay(reader, writer, up)
        except (ConnectionError, OSError):
            pass  # either end went away: the session closes

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: bool) -> None:
        splitter = FrameSplitter()
        proxy = self.proxy
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            if proxy.cut_active():
                proxy.dropped_bytes += len(data)
                splitter = FrameSplitter()  # whatever was half-read is lost with the link
                continue
            out = []
            for msgid, frame in splitter.feed(data):
                if up and msgid is not None and proxy.filtered(msgid, frame):
                    continue
                out.append(frame)
            if out and not writer.is_closing():
                writer.write(b"".join(out))
                await writer.drain()

    def close(self) -> None:
        for t in self.tasks:
            if not t.done():
                t.cancel()
        for w in (self.gcs_writer, self.vehicle_writer):
            if not w.is_closing():
                w.close()
        self.proxy.sessions.discard(self)


class LinkProxy:
    """Listens on `listen_port` for the ground station and relays to the vehicle at `vehicle_port`."""

    def __init__(self, listen_port: int, vehicle_port: int, host: str = "127.0.0.1", name: str = "") -> None:
        self.listen_port = listen_port
        self.vehicle_port = vehicle_port
        self.host = host
        self.name = name or str(listen_port)
        self.sessions: set[_Session] = set()
        self.dropped_commands: set[int] = set()
        self.dropped_messages: set[int] = set()
        #: How many frames each filter stopped, by (kind, id): ("command", 22), ("message", 11).
        self.filtered_counts: dict[tuple[str, int], int] = {}
        self.dropped_bytes = 0
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._cut_until = 0.0
        self._cut_mode = "drop"
        self._reopen: asyncio.TimerHandle | None = None

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)

    async def stop(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        self.drop_sessions()
        await self._stop_listening()
        await asyncio.sleep(0)

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_active() and self._cut_mode == "close":
            writer.close()
            return
        self.connections += 1
        # A new ground-station connection replaces the old one: the vehicle's port serves one client.
        self.drop_sessions()
        try:
            vehicle = await self._connect_vehicle()
        except OSError as exc:
            log.warning("link proxy %s: vehicle port %d unreachable: %s", self.name, self.vehicle_port, exc)
            writer.close()
            return
        session = _Session(self, (reader, writer), vehicle)
        self.sessions.add(session)
        session.start()

    async def _connect_vehicle(self, timeout: float = 10.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to the vehicle, waiting a little while it notices the previous client has gone."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await asyncio.wait_for(asyncio.open_connection(self.host, self.vehicle_port), 2.0)
            except (OSError, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise OSError(str(exc) or "timed out") from exc
                await asyncio.sleep(0.2)

    def drop_sessions(self) -> None:
        for s in list(self.sessions):
            s.close()

    # --- faults -------------------------------------------------------------------------------

    def cut_active(self) -> bool:
        return self._cut_until > time.monotonic()

    def cut(self, seconds: float, mode: str = "drop") -> None:
        """Lose the link for `seconds` of wall time: "drop" all traffic both ways, or "close" the connection and refuse new ones."""
        if mode not in ("drop", "close"):
            raise ValueError("mode must be 'drop' or 'close'")
        self._cut_until = time.monotonic() + seconds
        self._cut_mode = mode
        if mode == "close":
            self.drop_sessions()
            loop = asyncio.get_running_loop()
            loop.create_task(self._stop_listening())
            if self._reopen is not None:
                self._reopen.cancel()
            self._reopen = loop.call_later(seconds, lambda: loop.create_task(self._listen_again()))

    def restore(self) -> None:
        self._cut_until = 0.0
        if self._cut_mode == "close":
            if self._reopen is not None:
                self._reopen.cancel()
                self._reopen = None
            asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        self._reopen = None
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.listen_port)

    def drop_command(self, command: int, drop: bool = True) -> None:
        """Never pass COMMAND_LONG/COMMAND_INT with this MAV_CMD on to the vehicle (no ACK, no action)."""
        (self.dropped_commands.add if drop else self.dropped_commands.discard)(int(command))

    def drop_message(self, msg_type: str | int, drop: bool = True) -> None:
        """Never pass messages of this type ("SET_MODE", or a message id) on to the vehicle."""
        msgid = msg_type if isinstance(msg_type, int) else getattr(mavlink2, f"MAVLINK_MSG_ID_{msg_type.upper()}")
        (self.dropped_messages.add if drop else self.dropped_messages.discard)(int(msgid))

    def filtered(self, msgid: int, frame: bytes) -> bool:
        """Whether this ground-station frame is to be dropped (and count it)."""
        if msgid in self.dropped_messages:
            key = ("message", msgid)
        elif self.dropped_commands and (cmd := command_of(msgid, frame)) is not None and cmd in self.dropped_commands:
            key = ("command", cmd)
        else:
            return False
        self.filtered_counts[key] = self.filtered_counts.get(key, 0) + 1
        return True
