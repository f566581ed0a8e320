"""A control channel for a simulator running in another process: JSON lines over TCP on loopback.

One request per line, one response per line:
  {"cmd": "truth", "instance": 0}
  {"cmd": "cut_link", "instance": 0, "seconds": 10}
  {"cmd": "ignore_command", "instance": 0, "command": 22, "ignore": true}
  {"cmd": "prearm_failure", "instance": 0, "text": "PreArm: Compass not calibrated"}   (text null clears)
  {"cmd": "set_wind", "instance": 0, "speed_ms": 8, "from_deg": 270}
  {"cmd": "set_battery_used", "instance": 0, "consumed_mah": 9000}
Responses are {"ok": true, ...} or {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sitl.fleet import SimFleet

log = logging.getLogger(__name__)


class ControlServer:
    def __init__(self, fleet: SimFleet, host: str = "127.0.0.1", port: int = 5700) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = {"ok": True, **(self.handle(json.loads(line)) or {})}
                except (KeyError, ValueError, TypeError) as exc:
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def handle(self, req: dict[str, Any]) -> dict[str, Any] | None:
        fleet, cmd = self.fleet, req["cmd"]
        instance = int(req["instance"])
        if instance not in fleet.vehicles:
            raise KeyError(f"no vehicle instance {instance}")
        if cmd == "truth":
            return {"truth": fleet.truth(instance)}
        if cmd == "cut_link":
            fleet.cut_link(instance, float(req["seconds"]))
        elif cmd == "ignore_command":
            fleet.ignore_command(instance, int(req["command"]), bool(req.get("ignore", True)))
        elif cmd == "prearm_failure":
            fleet.prearm_failure(instance, req.get("text"))
        elif cmd == "set_wind":
            fleet.set_wind(instance, float(req["speed_ms"]), float(req["from_deg"]))
        elif cmd == "set_battery_used":
            fleet.set_battery_used(instance, float(req["consumed_mah"]))
        else:
            raise ValueError(f"unknown command {cmd!r}")
        log.info("control: %s", req)
        return None


async def request(port: int, req: dict[str, Any], host: str = "127.0.0.1", timeout: float = 5.0) -> dict[str, Any]:
    """Send one control request and return the response (raises on a refused request)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(json.dumps(req).encode() + b"\n")
        reply = json.loads(await asyncio.wait_for(reader.readline(), timeout))
    finally:
        writer.close()
    if not reply.get("ok"):
        raise RuntimeError(f"simulator refused {req}: {reply.get('error')}")
    return reply
