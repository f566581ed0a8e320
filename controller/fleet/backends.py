"""What runs the drones when the controller is not connected to real ones.

- `SimulatorProcess`: the built-in simulator (`dronefleet sim`) as a child
  process, one copter per roster drone, video uplinks included. A separate
  process, like real drones: killing the controller does not land them, and
  the controller's CPU is measured apart from the simulation's.
- `ArduPilotBackend`: real ArduCopter SITL instances at the station homes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from controller.config import FleetConfig

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 90.0


class SimulatorProcess:
    def __init__(
        self,
        config: FleetConfig,
        drones: int,
        speedup: float,
        log_path: Path,
        video_url: str | None = None,
        video_tokens: Path | None = None,
        control_port: int = 5700,
        warm: bool = True,
        scenario: Path | None = None,
    ) -> None:
        #: The copters listen where the controller's links look for them (configs/flight.yaml links.base_port).
        self.base_port = config.flight.links.base_port
        self.args = [
            sys.executable, "-m", "controller.cli", "sim",
            "--stations", str(config.directory / "stations.json"),
            "--drone-models", str(config.directory / "drone_models.yaml"),
            "--drones", str(drones), "--speedup", f"{speedup:g}", "--control-port", str(control_port),
            "--base-port", str(self.base_port), "--exit-with-parent",
        ]
        if warm:
            self.args.append("--warm")
        if video_url and video_tokens:
            self.args += ["--video-url", video_url, "--video-tokens", str(video_tokens)]
            if scenario is not None:
                self.args += ["--scenario", str(scenario)]
        self.log_path = log_path
        self.control_port = control_port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        for port in (self.base_port, self.control_port):
            if await _port_in_use(port):
                raise RuntimeError(
                    f"port {port} is already in use: another simulator (or SITL) is running. Stop it, "
                    "or run the controller with --fleet external to fly the drones already there."
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        stderr = self.log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=stderr, stdin=asyncio.subprocess.DEVNULL,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        stderr.close()
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), READY_TIMEOUT_S)
            info = json.loads(line or b"{}")
        except (asyncio.TimeoutError, json.JSONDecodeError):
            info = {}
        if not info.get("ready"):
            await self.stop()
            raise RuntimeError(f"the simulator did not start; see {self.log_path}")
        log.info("simulator running (pid %d): %d copters from port %d; log %s", self.proc.pid, info["vehicles"], info["first_port"], self.log_path)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


class ArduPilotBackend:
    def __init__(self, config: FleetConfig, drones: int, speedup: float) -> None:
        from sitl.ardupilot_harness import ArduPilotFleet, SitlVehicle

        from sitl.roster import ardupilot_overrides

        roster = [(s, d) for s in config.stations for d in s.drones][:drones]
        # each instance gets its drone model's battery capacity and speeds, as the built-in simulator does
        vehicles = [
            SitlVehicle(
                n, s.lat, s.lon, s.elevation_m,
                params=ardupilot_overrides(d.model, config.drone_models[d.model].model_dump(), "drone_models.yaml"),
            )
            for n, (s, d) in enumerate(roster)
        ]
        self.fleet = ArduPilotFleet(vehicles, speedup=speedup)

    async def start(self) -> None:
        await self.fleet.start()

    async def stop(self) -> None:
        await self.fleet.stop()


async def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True
