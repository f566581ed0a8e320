"""Byte transport to one vehicle: TCP (ArduPilot SITL's serial0) or UDP, with connect timeouts.

Kept apart from MAVLink so the link logic can run over either, and so
reconnecting is one place.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol


class Transport(Protocol):
    async def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Endpoint:
    """Where a vehicle speaks MAVLink: `tcp:HOST:PORT` (we connect) or `udp:HOST:PORT` (we send and listen)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        try:
            scheme, host, port = url.split(":")
            if scheme not in ("tcp", "udp"):
                raise ValueError
            return cls(scheme, host, int(port))
        except ValueError:
            raise ValueError(f"bad MAVLink endpoint {url!r}: expected tcp:HOST:PORT or udp:HOST:PORT") from None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.host}:{self.port}"


class TcpTransport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        data = await self._reader.read(65536)
        if not data:
            raise ConnectionError("vehicle closed the connection")
        return data

    def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            raise ConnectionError("connection is closing")
        self._writer.write(data)

    async def close(self) -> None:
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        self.error: Exception | None = None

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # noqa: ARG002
        if not self.queue.full():
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.error = exc


class UdpTransport:
    def __init__(self, transport: asyncio.DatagramTransport, protocol: _Datagrams) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self) -> bytes:
        return await self._protocol.queue.get()

    def write(self, data: bytes) -> None:
        self._transport.sendto(data)

    async def close(self) -> None:
        self._transport.close()


async def open_transport(endpoint: Endpoint, timeout: float = 3.0) -> Transport:
    if endpoint.scheme == "tcp":
        reader, writer = await asyncio.wait_for(asyncio.open_connection(endpoint.host, endpoint.port), timeout)
        return TcpTransport(reader, writer)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _Datagrams, remote_addr=(endpoint.host, endpoint.port)
    )
    return UdpTransport(transport, protocol)
