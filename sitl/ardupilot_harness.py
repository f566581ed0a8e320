"""Launch real ArduCopter SITL instances at station homes, wait until they are ready, stop them cleanly.

The binary comes from ARDUPILOT_SITL_BIN and the defaults file from
ARDUPILOT_SITL_DEFAULTS (nothing of ArduPilot lives in this repository). Each
instance N gets its own working directory (it writes eeprom.bin, logs/ and
terrain/ there), its own sysid, and serves MAVLink on TCP 5760 + 10·N. The
processes are kept as children: ArduPilot SITL exits when its parent dies, and
`stop()` terminates them in order.

"Ready" means what the controller needs before it can fly: a HEARTBEAT, and an
EKF_STATUS_REPORT with the position flags set and constant-position mode clear
(the readiness signal observed on a real ArduCopter 4.7).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncio
import logging
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

log = logging.getLogger(__name__)

ENV_BIN = "ARDUPILOT_SITL_BIN"
ENV_DEFAULTS = "ARDUPILOT_SITL_DEFAULTS"
EKF_READY = 0x1F
EKF_CONST_POS = 0x80


class SitlUnavailable(Exception):
    """No ArduPilot SITL binary or defaults file is configured here."""


@dataclass(frozen=True)
class SitlVehicle:
    instance: int
    lat: float
    lon: float
    alt_m: float = 10.0
    heading_deg: float = 0.0
    sysid: int | None = None
    #: Parameters this vehicle differs in from the defaults file (e.g. its model's battery capacity and speeds).
    params: Mapping[str, float] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return 5760 + 10 * self.instance

    @property
    def system_id(self) -> int:
        return self.sysid if self.sysid is not None else self.instance + 1


def sitl_paths() -> tuple[Path, Path]:
    """(binary, defaults) from the environment, or SitlUnavailable saying what is missing."""
    binary, defaults = os.environ.get(ENV_BIN), os.environ.get(ENV_DEFAULTS)
    missing = [name for name, value in ((ENV_BIN, binary), (ENV_DEFAULTS, defaults)) if not value]
    if missing:
        raise SitlUnavailable(f"ArduPilot SITL not configured: set {' and '.join(missing)}")
    b, d = Path(binary), Path(defaults)  # type: ignore[arg-type]
    if not b.is_file() or not os.access(b, os.X_OK):
        raise SitlUnavailable(f"{ENV_BIN}={b} is not an executable file")
    if not d.is_file():
        raise SitlUnavailable(f"{ENV_DEFAULTS}={d} is not a file")
    return b, d


class ArduPilotFleet:
    def __init__(
        self,
        vehicles: list[SitlVehicle],
        *,
        speedup: float = 1.0,
        binary: Path | None = None,
        defaults: Path | None = None,
        workdir: Path | None = None,
    ) -> None:
        if binary is None or defaults is None:
            binary, defaults = sitl_paths()
        self.vehicles = vehicles
        self.speedup = speedup
        self.binary = binary
        self.defaults = defaults
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ardupilot-sitl-"))
        self.processes: dict[int, asyncio.subprocess.Process] = {}

    def command(self, v: SitlVehicle) -> list[str]:
        defaults = str(self.defaults)
        if v.params:  # a second defaults file in the instance's directory (ArduPilot takes a comma-separated list)
            extra = self.workdir / f"instance-{v.instance}" / "dronefleet.parm"
            extra.parent.mkdir(parents=True, exist_ok=True)
            extra.write_text("".join(f"{name} {value:g}\n" for name, value in sorted(v.params.items())))
            defaults = f"{defaults},{extra}"
        return [
            str(self.binary), "--model", "+", "--speedup", f"{self.speedup:g}", "--defaults", defaults,
            "-I", str(v.instance), "--home", f"{v.lat},{v.lon},{v.alt_m},{v.heading_deg}", "-w",
            "--sysid", str(v.system_id), "--serial0", "tcp:0",
        ]

    async def start(self, ready_timeout: float = 180.0) -> None:
        for v in self.vehicles:
            cwd = self.workdir / f"instance-{v.instance}"
            cwd.mkdir(parents=True, exist_ok=True)
            out = (cwd / "arducopter.log").open("ab")
            self.processes[v.instance] = await asyncio.create_subprocess_exec(
                *self.command(v), cwd=cwd, stdout=out, stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL
            )
            out.close()
        log.info("launched %d ArduCopter SITL instances (speedup %g) in %s", len(self.vehicles), self.speedup, self.workdir)
        try:
            await asyncio.wait_for(asyncio.gather(*(self._wait_ready(v) for v in self.vehicles)), ready_timeout)
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self, v: SitlVehicle) -> None:
        started = time.monotonic()
        while True:
            proc = self.processes[v.instance]
            if proc.returncode is not None:
                log_path = self.workdir / f"instance-{v.instance}" / "arducopter.log"
                tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
                raise RuntimeError(f"SITL instance {v.instance} exited with {proc.returncode}:\n{tail}")
            try:
                await _probe_ready(v)
                log.info("SITL instance %d (sysid %d, port %d) ready after %.1f s", v.instance, v.system_id, v.port, time.monotonic() - started)
                return
            except (OSError, asyncio.TimeoutError, ConnectionError):
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        for proc in self.processes.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        self.processes.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


async def _probe_ready(v: SitlVehicle, timeout: float = 5.0) -> None:
    """Connect, ask for EKF status, and return once the EKF reports a usable position."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", v.port), timeout)
    mav = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    mav.robust_parsing = True
    try:
        request = mav.request_data_stream_encode(v.system_id, 1, mavlink2.MAV_DATA_STREAM_EXTRA3, 2, 1).pack(mav)
        writer.write(request)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(4096), timeout)
            if not data:
                raise ConnectionError("closed")
            for msg in mav.parse_buffer(data) or ():
                if msg.get_type() == "EKF_STATUS_REPORT" and (msg.flags & EKF_READY) == EKF_READY and not msg.flags & EKF_CONST_POS:
                    return
        raise asyncio.TimeoutError
    finally:
        writer.close()
