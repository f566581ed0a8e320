"""A vehicle's MAVLink socket, where ArduCopter SITL would have it: TCP 5760 + 10·N.

Any number of ground stations may connect; each gets every message the
vehicle sends. With a signing key, outgoing messages are signed and incoming
unsigned or badly signed ones are dropped and counted, as a signed ArduPilot
link does. A link cut (fault injection) drops all traffic both ways.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from sitl.vehicle import SimCopter

log = logging.getLogger(__name__)

#: A client whose send buffer grows beyond this is too slow to keep: disconnect it.
MAX_CLIENT_BUFFER = 4 * 1024 * 1024


class VehicleEndpoint:
    def __init__(self, vehicle: SimCopter, host: str, port: int, signing_key: bytes | None = None) -> None:
        self.vehicle = vehicle
        self.host = host
        self.port = port
        self.signing_key = signing_key
        self._server: asyncio.base_events.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        self._readers: set[asyncio.Task[None]] = set()
        self.cut_until = 0.0  # monotonic
        self.rejected_unsigned = 0
        self.rx_messages = 0
        if signing_key is not None:
            vehicle.encoder.signing.secret_key = signing_key
            vehicle.encoder.signing.sign_outgoing = True
            vehicle.encoder.signing.link_id = 0
            vehicle.encoder.signing.timestamp = int((time.time() - 1420070400) * 100000)

    @property
    def cut(self) -> bool:
        return time.monotonic() < self.cut_until

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        for task in list(self._readers):
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._clients.clear()

    def drop_clients(self) -> None:
        for writer in list(self._clients):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._readers.add(task)
        self._clients.add(writer)
        parser = mavlink2.MAVLink(None, srcSystem=self.vehicle.sysid, srcComponent=1)
        parser.robust_parsing = True
        if self.signing_key is not None:
            parser.signing.secret_key = self.signing_key
            parser.signing.allow_unsigned_callback = lambda _mav, _msg_id: False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.cut:
                    continue
                try:
                    messages = parser.parse_buffer(data) or []
                except mavlink2.MAVError:
                    messages = []
                for msg in messages:
                    if msg.get_type() == "BAD_DATA":
                        continue
                    self.rx_messages += 1
                    self.vehicle.handle(msg)
                self.rejected_unsigned = parser.signing.reject_count
        except (ConnectionError, OSError):
            pass
        finally:
            self._clients.discard(writer)
            self._readers.discard(task)
            writer.close()

    def deliver(self, messages: list[Any]) -> None:
        """Pack once, write to every connected client (non-blocking)."""
        if not messages or not self._clients or self.cut:
            return
        enc = self.vehicle.encoder
        chunks = []
        for msg in messages:
            chunks.append(msg.pack(enc))
            enc.seq = (enc.seq + 1) % 256
        data = b"".join(chunks)
        for writer in list(self._clients):
            transport = writer.transport
            if transport.is_closing():
                self._clients.discard(writer)
                continue
            if transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                log.warning("vehicle %d: client too slow, disconnecting it", self.vehicle.sysid)
                writer.close()
                self._clients.discard(writer)
                continue
            transport.write(data)
