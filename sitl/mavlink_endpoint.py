"""A vehicle's MAVLink sockets, where ArduCopter SITL has them: TCP 5760 + 10·N (and optionally UDP).

Any number of ground stations may connect; each gets every message the vehicle
sends, packed once (MAVLink 2, the vehicle's sysid, compid 1) and written in one
batch per tick. With a signing key (given at start or by SETUP_SIGNING) the
vehicle signs what it sends, and incoming messages that are unsigned or badly
signed are dropped and counted, as a signed ArduPilot link does. A slow client
is disconnected rather than allowed to grow memory without bound.

Fault injection: `cut(seconds, mode)` drops all traffic both ways ("drop") or
closes the sockets and refuses connections ("close") for a while; the vehicle
keeps flying either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.vehicle import SimCopter

log = logging.getLogger(__name__)

#: A client whose unsent bytes exceed this is too slow to keep.
MAX_CLIENT_BUFFER = 8 * 1024 * 1024
#: Largest UDP datagram the endpoint sends (several MAVLink messages each).
UDP_CHUNK = 8192
#: Incoming messages accepted on a signed link even when unsigned (ArduPilot lets radio status through).
UNSIGNED_OK = frozenset({mav.MAVLINK_MSG_ID_RADIO_STATUS})


class _Client(asyncio.Protocol):
    """One ground-station TCP connection."""

    def __init__(self, endpoint: VehicleEndpoint) -> None:
        self.endpoint = endpoint
        self.transport: asyncio.Transport | None = None
        self.parser = endpoint.new_parser()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.endpoint.clients.add(self)

    def data_received(self, data: bytes) -> None:
        self.endpoint.received(self.parser, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.forget(self)


class _UdpPeerProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: VehicleEndpoint) -> None:
        self.endpoint = endpoint
        self.parser = endpoint.new_parser()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.endpoint.cut_active():
            self.endpoint.udp_peers.add(addr)
        self.endpoint.received(self.parser, data)


class VehicleEndpoint:
    def __init__(self, vehicle: SimCopter, host: str, port: int, udp_port: int | None = None) -> None:
        self.vehicle = vehicle
        #: The vehicle's other MAVLink components on this link (cameras): they hear every message too.
        self.components: list[Any] = []
        self.host = host
        self.port = port
        self.udp_port = udp_port
        self.clients: set[_Client] = set()
        self.udp_peers: set[tuple[str, int]] = set()
        self._server: asyncio.base_events.Server | None = None
        self._udp: _UdpPeerProtocol | None = None
        self._parsers: list[Any] = []
        self._signing_version = -1
        self._cut_until = 0.0
        self._cut_mode = "drop"
        self._reopen: asyncio.TimerHandle | None = None
        self._pending: list[Any] = []
        self.rx_messages = 0
        self.rx_bad = 0
        self._rejected_closed = 0
        self.tx_bytes = 0
        self.slow_clients_dropped = 0

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Client(self), self.host, self.port, reuse_address=True)
        if self.udp_port is not None:
            _, proto = await loop.create_datagram_endpoint(lambda: _UdpPeerProtocol(self), local_addr=(self.host, self.udp_port))
            self._udp = proto

    async def stop(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_clients()
        if server is not None:
            await server.wait_closed()
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
            self._udp = None

    def drop_clients(self) -> None:
        for client in list(self.clients):
            if client.transport is not None:
                client.transport.close()
        self.clients.clear()

    def forget(self, client: _Client) -> None:
        self.clients.discard(client)
        if client.parser in self._parsers:
            self._rejected_closed += client.parser.signing.reject_count
            self._parsers.remove(client.parser)

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def client_count(self) -> int:
        return len(self.clients) + len(self.udp_peers)

    @property
    def rejected_unsigned(self) -> int:
        """Messages dropped because they were unsigned or badly signed while signing was on."""
        return self._rejected_closed + sum(p.signing.reject_count for p in self._parsers)

    # --- incoming ----------------------------------------------------------------------------

    def new_parser(self) -> Any:
        parser = mav.MAVLink(None, srcSystem=self.vehicle.sysid, srcComponent=1)
        parser.robust_parsing = True
        self._parsers.append(parser)
        self._key_parser(parser)
        return parser

    def _key_parser(self, parser: Any) -> None:
        key = self.vehicle.signing_key
        parser.signing.secret_key = key
        parser.signing.allow_unsigned_callback = (lambda _mav, msgid: msgid in UNSIGNED_OK) if key is not None else None

    def _sync_signing(self) -> None:
        if self._signing_version != self.vehicle.signing_changes:
            self._signing_version = self.vehicle.signing_changes
            for parser in self._parsers:
                self._key_parser(parser)

    def received(self, parser: Any, data: bytes) -> None:
        if self.cut_active():
            return
        self._sync_signing()
        try:
            messages = parser.parse_buffer(data) or []
        except mav.MAVError:
            self.rx_bad += 1
            return
        vehicle = self.vehicle
        for msg in messages:
            if msg.get_type() == "BAD_DATA":
                self.rx_bad += 1
                continue
            self.rx_messages += 1
            try:
                vehicle.handle(msg)
                for component in self.components:
                    component.handle(msg)
            except Exception:  # noqa: BLE001 - a message the simulator chokes on must not kill the link
                log.exception("vehicle %d: error handling %s", vehicle.sysid, msg.get_type())
        self._sync_signing()  # a SETUP_SIGNING takes effect for what follows

    # --- outgoing ----------------------------------------------------------------------------

    def queue(self, messages: list[Any]) -> None:
        self._pending.extend(messages)

    def flush(self) -> None:
        """Pack what the vehicle said since the last flush and write it to every client in one go."""
        pending, self._pending = self._pending, []
        if not pending or self.cut_active() or not (self.clients or self.udp_peers):
            return
        enc = self.vehicle.encoder
        chunks = []
        for msg in pending:
            own = getattr(msg, "_sim_encoder", None) or enc  # another component of the vehicle (a camera) packs its own
            try:
                chunks.append(msg.pack(own))
            except Exception:  # noqa: BLE001 - one bad message must not silence the vehicle
                log.exception("vehicle %d: cannot pack %s; dropped", self.vehicle.sysid, msg.get_type())
                continue
            own.seq = (own.seq + 1) & 0xFF
        data = b"".join(chunks)
        for client in list(self.clients):
            transport = client.transport
            if transport is None or transport.is_closing():
                self.clients.discard(client)
                continue
            if transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
                log.warning("vehicle %d: a client is too slow to keep up; disconnecting it", self.vehicle.sysid)
                self.slow_clients_dropped += 1
                transport.close()
                self.clients.discard(client)
                continue
            transport.write(data)
            self.tx_bytes += len(data)
        if self._udp is not None and self._udp.transport is not None and self.udp_peers:
            for start in range(0, len(data), UDP_CHUNK):
                chunk = data[start : start + UDP_CHUNK]
                for peer in self.udp_peers:
                    self._udp.transport.sendto(chunk, peer)

    @property
    def has_listeners(self) -> bool:
        return bool(self.clients or self.udp_peers) and not self.cut_active()

    # --- fault injection ---------------------------------------------------------------------

    def cut_active(self) -> bool:
        return self._cut_until > 0 and time.monotonic() < self._cut_until

    def cut(self, seconds: float, mode: str = "drop") -> None:
        """Lose the link for `seconds` of wall time: "drop" all traffic, or "close" the sockets and refuse new ones."""
        if mode not in ("drop", "close"):
            raise ValueError("mode must be 'drop' or 'close'")
        self._cut_until = time.monotonic() + seconds
        self._cut_mode = mode
        self._pending.clear()
        if mode == "close":
            self.drop_clients()
            if self._server is not None:
                self._server.close()
                self._server = None
            loop = asyncio.get_running_loop()
            if self._reopen is not None:
                self._reopen.cancel()
            self._reopen = loop.call_later(seconds, lambda: loop.create_task(self._listen_again()))

    def restore(self) -> None:
        """End a cut early."""
        self._cut_until = 0.0
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
            asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        self._reopen = None
        self._cut_until = 0.0
        if self._server is None:
            try:
                self._server = await asyncio.get_running_loop().create_server(lambda: _Client(self), self.host, self.port, reuse_address=True)
            except OSError as exc:
                log.error("vehicle %d: cannot listen on port %d again: %s", self.vehicle.sysid, self.port, exc)
