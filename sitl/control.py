"""Control channel for a simulator running in another process: JSON lines over TCP on loopback.

So a test can kill and restart the controller while the copters keep flying in
a `dronefleet sim` process, and still see the truth and inject faults.
One request per line, one response per line, {"ok": true, ...} or
{"ok": false, "error": "..."}. "instance" may be a number or "all".

  {"cmd": "ping"}                                       -> sim_time, speedup, lag, overruns
  {"cmd": "truth", "instance": 0}                       -> {"truth": {...}} ("all": {"truth": [...]})
  {"cmd": "cut_link", "instance": 0, "seconds": 10, "mode": "drop"|"close"}
  {"cmd": "restore_link", "instance": 0}
  {"cmd": "ignore_command", "instance": 0, "command": 22, "ignore": true}
  {"cmd": "ignore_message", "instance": 0, "type": "SET_MODE", "ignore": true}
  {"cmd": "prearm_failure", "instance": 0, "text": "Compass not calibrated"}   (null clears)
  {"cmd": "set_wind", "instance": "all", "speed_ms": 8, "from_deg": 270}
  {"cmd": "set_battery", "instance": 0, "remaining_pct": 20}   (or "consumed_mah": 4000)
  {"cmd": "set_position_noise", "instance": 0, "sigma_m": 3}
  {"cmd": "set_param", "instance": 0, "name": "WPNAV_SPEED", "value": 1200}
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sitl.fleet import SimFleet

log = logging.getLogger(__name__)

MAX_LINE = 64 * 1024


class ControlServer:
    def __init__(self, fleet: SimFleet, host: str = "127.0.0.1", port: int = 5700) -> None:
        self.fleet = fleet
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True, limit=MAX_LINE)
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    reply = {"ok": True, **self.handle(request)}
                except (KeyError, ValueError, TypeError) as exc:
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._conns.discard(task)
            writer.close()

    def _instances(self, request: dict[str, Any]) -> list[int]:
        which = request.get("instance")
        if which == "all":
            return [s.instance for s in self.fleet.specs]
        if which is None:
            raise KeyError("instance")
        instance = int(which)
        if instance not in self.fleet.vehicles:
            raise KeyError(f"no vehicle instance {instance}")
        return [instance]

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        fleet, cmd = self.fleet, request.get("cmd")
        if cmd == "ping":
            return fleet.status()
        if cmd == "truth":
            truths = [fleet.truth(i) for i in self._instances(request)]
            return {"truth": truths if request.get("instance") == "all" else truths[0]}
        actions = {
            "cut_link": lambda i: fleet.cut_link(i, float(request["seconds"]), str(request.get("mode", "drop"))),
            "restore_link": lambda i: fleet.restore_link(i),
            "ignore_command": lambda i: fleet.ignore_command(i, int(request["command"]), bool(request.get("ignore", True))),
            "ignore_message": lambda i: fleet.ignore_message(i, str(request["type"]), bool(request.get("ignore", True))),
            "prearm_failure": lambda i: fleet.prearm_failure(i, request.get("text")),
            "set_wind": lambda i: fleet.set_wind(i, float(request["speed_ms"]), float(request["from_deg"])),
            "set_battery": lambda i: fleet.set_battery(
                i,
                remaining_pct=None if request.get("remaining_pct") is None else float(request["remaining_pct"]),
                consumed_mah=None if request.get("consumed_mah") is None else float(request["consumed_mah"]),
            ),
            "set_battery_used": lambda i: fleet.set_battery(i, consumed_mah=float(request["consumed_mah"])),
            "set_position_noise": lambda i: fleet.set_position_noise(i, float(request["sigma_m"])),
            "set_param": lambda i: fleet.set_param(i, str(request["name"]), float(request["value"])),
        }
        action = actions.get(str(cmd))
        if action is None:
            raise ValueError(f"unknown command {cmd!r}; known: ping, truth, {', '.join(actions)}")
        instances = self._instances(request)
        for i in instances:
            action(i)
        log.info("control: %s", request)
        return {"instances": instances}


async def request(port: int, req: dict[str, Any], host: str = "127.0.0.1", timeout: float = 5.0) -> dict[str, Any]:
    """Send one control request and return the reply; raises RuntimeError if the simulator refused it."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(json.dumps(req).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    if not line:
        raise RuntimeError(f"simulator control port {port} closed the connection")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError(f"simulator refused {req}: {reply.get('error')}")
    return reply
