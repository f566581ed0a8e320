"""Send CoT events to the teams' TAK endpoints over UDP or TCP, never holding up the controller.

UDP (often multicast, 239.2.3.1:6969 in ATAK's default mesh) is one datagram
per event. TCP (a TAK server's streaming input, usually port 8087) keeps one
connection per endpoint, reconnecting with backoff; each send has a timeout and
a few retries, after which the event is logged as undelivered to that
endpoint. Events go through a bounded queue per endpoint, so a dead endpoint
cannot grow memory or slow the others.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

QUEUE_LIMIT = 500


@dataclass(frozen=True, slots=True)
class CotEndpoint:
    scheme: str  # "udp" or "tcp"
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> CotEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tcp") or not parts.hostname or not parts.port:
            raise ValueError(f"CoT endpoint {url!r}: expected udp://host:port or tcp://host:port")
        return cls(parts.scheme, parts.hostname, parts.port)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


class _UdpProtocol(asyncio.DatagramProtocol):
    def error_received(self, exc: Exception) -> None:
        log.warning("CoT UDP send error: %s", exc)


class CotSender:
    """One worker per endpoint; `send` only enqueues."""

    def __init__(self, endpoints: list[CotEndpoint], timeout_s: float = 2.0, retries: int = 3) -> None:
        self.endpoints = endpoints
        self.timeout_s = timeout_s
        self.retries = retries
        self.sent: dict[str, int] = {str(e): 0 for e in endpoints}
        self.failed: dict[str, int] = {str(e): 0 for e in endpoints}
        self._queues: dict[CotEndpoint, asyncio.Queue[bytes]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for ep in self.endpoints:
            q: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_LIMIT)
            self._queues[ep] = q
            worker = self._udp_worker if ep.scheme == "udp" else self._tcp_worker
            self._tasks.append(loop.create_task(worker(ep, q), name=f"cot-{ep}"))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def send(self, xml: bytes) -> None:
        for ep, q in self._queues.items():
            try:
                q.put_nowait(xml)
            except asyncio.QueueFull:
                self.failed[str(ep)] += 1
                log.warning("CoT %s: queue full, event dropped", ep)

    async def _udp_worker(self, ep: CotEndpoint, q: asyncio.Queue[bytes]) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
        transport, _ = await loop.create_datagram_endpoint(_UdpProtocol, sock=sock)
        try:
            while True:
                xml = await q.get()
                transport.sendto(xml, (ep.host, ep.port))
                self.sent[str(ep)] += 1
        finally:
            transport.close()

    async def _tcp_worker(self, ep: CotEndpoint, q: asyncio.Queue[bytes]) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            while True:
                xml = await q.get()
                for attempt in range(1, self.retries + 1):
                    try:
                        if writer is None or writer.is_closing():
                            _, writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port), self.timeout_s)
                        writer.write(xml)
                        await asyncio.wait_for(writer.drain(), self.timeout_s)
                        self.sent[str(ep)] += 1
                        break
                    except (OSError, TimeoutError) as exc:
                        if writer is not None:
                            writer.close()
                        writer = None
                        if attempt == self.retries:
                            self.failed[str(ep)] += 1
                            log.warning("CoT %s: event not delivered after %d attempts: %s", ep, attempt, exc)
                        else:
                            await asyncio.sleep(min(2.0, 0.2 * 2**attempt))
        finally:
            if writer is not None:
                writer.close()
