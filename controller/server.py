"""`dronefleet serve`: run the controller under uvicorn and tell the operator where everything is."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from controller.auth import TokenError
from controller.config import ConfigError
from controller.settings import Settings

log = logging.getLogger("dronefleet")

# --- how the HTTP server holds up against slow and abusive clients ---------------------------------------

#: Connections at once (HTTP and WebSocket). Over it a new connection gets 503 and is closed, and uvicorn
#: answers 503 to requests while it is handling this many.
LIMIT_CONCURRENCY = 2048
#: An idle kept-alive connection is closed after this many seconds.
TIMEOUT_KEEP_ALIVE_S = 5
#: A request's line and headers must arrive within this many seconds of its first byte (or of the
#: connection): a client sending headers a byte at a time gets 408 and is dropped (slowloris).
HEADER_TIMEOUT_S = 10.0
#: A request's line and headers may not exceed this (431).
MAX_HEAD_BYTES = 32 * 1024
#: A connection whose client has not taken what we sent for this long is dropped (it stopped reading).
WRITE_STALL_S = 30.0
#: A closing connection whose data the client does not take within this long is dropped.
CLOSE_DEADLINE_S = 10.0
#: Largest WebSocket message a client may send (clients only send pings).
WS_MAX_SIZE = 64 * 1024

try:  # uvicorn[standard] brings httptools; h11 otherwise
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpBase
except ImportError:  # pragma: no cover
    _HttpBase = H11Protocol  # type: ignore[misc, assignment]


class _DeadlineTransport:
    """The connection's transport, except that `close()` is followed by `abort()` after CLOSE_DEADLINE_S.

    asyncio closes a socket only once its write buffer has drained, which a client that stopped reading
    never lets happen: without a deadline such a socket (and its buffer) stays open for good.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, deadline_s: float) -> None:
        self._transport = transport
        self._loop = loop
        self._deadline_s = deadline_s
        self._armed = False

    def close(self) -> None:
        self._transport.close()
        if not self._armed:
            self._armed = True
            self._loop.call_later(self._deadline_s, self._transport.abort)  # a no-op once the socket is gone

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _WriteStallGuard:
    """Drop a connection whose client keeps its receive window closed for WRITE_STALL_S (it does not read)."""

    write_stall_s = WRITE_STALL_S
    close_deadline_s = CLOSE_DEADLINE_S
    loop: asyncio.AbstractEventLoop
    transport: Any

    def _guard_transport(self, transport: Any) -> Any:
        self._stall_timer: asyncio.TimerHandle | None = None
        if isinstance(transport, _DeadlineTransport):
            return transport
        return _DeadlineTransport(transport, self.loop, self.close_deadline_s)

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        if getattr(self, "_stall_timer", None) is None:
            self._stall_timer = self.loop.call_later(self.write_stall_s, self._stalled)

    def resume_writing(self) -> None:
        self._cancel_stall()
        super().resume_writing()  # type: ignore[misc]

    def _cancel_stall(self) -> None:
        timer = getattr(self, "_stall_timer", None)
        if timer is not None:
            timer.cancel()
            self._stall_timer = None

    def _stalled(self) -> None:
        self._stall_timer = None
        log.warning("dropping a connection whose client has not read for %.0f s", self.write_stall_s)
        self.transport.abort()


class GuardedHttpProtocol(_WriteStallGuard, _HttpBase):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol with a deadline and a size limit for each request head, a hard cap on
    connections, and the write-stall and close deadlines. (uvicorn itself times out only idle kept-alive
    connections: a client that sends nothing, or one header byte a second, would hold a socket for good.)"""

    header_timeout_s = HEADER_TIMEOUT_S
    max_head_bytes = MAX_HEAD_BYTES

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(self._guard_transport(transport))
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0
        if self.limit_concurrency is not None and len(self.connections) > self.limit_concurrency:
            self._refuse(503, "Service Unavailable", "too many connections; retry shortly")
            return
        self._start_head()

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if not self._in_head and (self.cycle is None or self.cycle.response_complete):
            self._start_head()  # the next request on a kept-alive connection
        if self._in_head:
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "Request Header Fields Too Large", f"request line and headers over {self.max_head_bytes} bytes")
                return
            self._head_bytes += len(data)
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", f"request headers not received within {self.header_timeout_s:g} s")

    def _refuse(self, status: int, phrase: str, message: str) -> None:
        self._cancel_head_timer()
        self._in_head = False
        body = message.encode()
        head = (
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._cancel_stall()
        super().connection_lost(exc)


class GuardedWebSocketProtocol(_WriteStallGuard, WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with the write-stall and close deadlines."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(self._guard_transport(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall()
        super().connection_lost(exc)


def uvicorn_config(app: Any, host: str, port: int, log_level: str = "info", **overrides: Any) -> uvicorn.Config:
    """The uvicorn settings the controller runs with (tests use the same, with their own overrides)."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "http": GuardedHttpProtocol,
        "ws": GuardedWebSocketProtocol,
        "ws_ping_interval": 20,
        "ws_ping_timeout": 20,
        "ws_max_size": WS_MAX_SIZE,
        # Events are small JSON; deflating each one costs more CPU than it saves on a LAN.
        "ws_per_message_deflate": False,
        "timeout_keep_alive": TIMEOUT_KEEP_ALIVE_S,
        "limit_concurrency": LIMIT_CONCURRENCY,
        "backlog": LIMIT_CONCURRENCY,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_graceful_shutdown": 10,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dev", action="store_true", help="development mode: generate and print tokens")
    parser.add_argument("--config-dir", type=Path, default=None, help="configs directory (default: the repo's)")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: $DATABASE_URL or var/ SQLite)")
    parser.add_argument("--var-dir", type=Path, default=None, help="working files (SQLite, dev tokens, logs)")
    parser.add_argument(
        "--fleet",
        choices=["sim", "external", "ardupilot", "none"],
        default=None,
        help="flight backend: built-in simulator (default with --dev), drones already listening, "
        "real ArduPilot SITL instances, or none",
    )
    parser.add_argument("--drones", type=int, default=None, help="how many drones to fly (default: the whole roster)")
    parser.add_argument("--speedup", type=float, default=1.0, help="simulator speed-up factor")
    parser.add_argument(
        "--scenario", type=Path, default=None,
        help="thermal search scenario(s) for the simulated cameras, a file or a folder (default with --dev: configs/scenarios)",
    )
    parser.add_argument(
        "--mbtiles", type=Path, default=None,
        help="basemap: a raster .mbtiles file served at /tiles/ (default: $DRONEFLEET_MBTILES, else configs/map.yaml)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--video-mode", choices=["forward", "reencode"], default="forward", help=argparse.SUPPRESS)


def settings_from_args(args: argparse.Namespace) -> Settings:
    values: dict = {
        "host": args.host,
        "port": args.port,
        "dev": args.dev,
        "log_level": args.log_level,
        "sim_speedup": args.speedup,
        "video_mode": args.video_mode,
        "fleet": args.fleet or ("sim" if args.dev else "none"),
    }
    if args.drones is not None:
        values["fleet_drones"] = args.drones
    if args.scenario is not None:
        values["sim_scenario"] = args.scenario
    elif args.dev:
        values["sim_scenario"] = Path(__file__).resolve().parents[1] / "configs" / "scenarios"
    if args.mbtiles is not None:
        values["mbtiles"] = args.mbtiles
    if args.config_dir:
        values["config_dir"] = args.config_dir
    if args.database_url:
        values["database_url"] = args.database_url
    if args.var_dir:
        values["var_dir"] = args.var_dir
        if not args.database_url:
            values["database_url"] = f"sqlite:///{args.var_dir / 'dronefleet.sqlite3'}"
    return Settings(**values)


def print_banner(settings: Settings, dev_tokens: dict | None, evidence_key: Any = None) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "dronefleet controller",
        f"  API + OpenAPI docs : {base}/docs",
        f"  command page       : {base}/command",
        f"  pilot page         : {base}/pilot",
        f"  search-team page   : {base}/team",
        f"  event stream (WS)  : ws://{settings.host}:{settings.port}/api/v1/events",
        f"  database           : {settings.database_url}",
    ]
    if dev_tokens:
        by_role: dict[str, list[tuple[str, dict]]] = {}
        for token, grant in dev_tokens["tokens"].items():
            by_role.setdefault(grant["role"], []).append((token, grant))
        lines.append("  development tokens (send as 'Authorization: Bearer TOKEN'):")
        for role in ("commander", "admin", "search_team"):
            for token, grant in by_role.get(role, []):
                lines.append(f"    {role:12s} {token}")
        pilots = sorted(by_role.get("pilot", []), key=lambda tg: tg[1]["station_id"])
        for token, grant in pilots[:3]:
            lines.append(f"    pilot        {token}   (station {grant['station_id']})")
        if len(pilots) > 3:
            lines.append(f"    ... and {len(pilots) - 3} more pilot tokens in {settings.var_dir / 'dev-tokens.json'}")
        if by_role.get("drone"):
            lines.append(f"    drone tokens (video publishing) for {len(by_role['drone'])} drones in the same file")
        if evidence_key is not None:
            lines.append(f"  evidence signing key (Ed25519, id {evidence_key.id}; private key: {evidence_key.source}):")
            lines.append(f"    public key {evidence_key.public_b64()}   (dronefleet evidence verify FILE --key THIS_KEY)")
    if settings.sim_scenario is not None and settings.fleet == "sim":
        lines.append(f"  thermal search scenarios (open a missing_person incident there): {settings.sim_scenario}")
    lines.append("")
    print("\n".join(lines), file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    from controller.api.app import create_app
    from controller.runtime import Runtime

    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    try:
        settings = settings_from_args(args)
        runtime = Runtime.build(settings)
    except (ConfigError, TokenError) as exc:
        print(f"dronefleet: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"dronefleet: bad setting: {exc}", file=sys.stderr)
        return 2
    app = create_app(runtime)
    print_banner(settings, runtime.dev_tokens, runtime.evidence.key if runtime.evidence is not None else None)
    config = uvicorn_config(app, settings.host, settings.port, settings.log_level)
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    return 0
