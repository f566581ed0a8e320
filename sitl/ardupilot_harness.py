"""Launch real ArduCopter SITL instances at station homes, wait until they are ready, stop them cleanly.

The binary comes from ARDUPILOT_SITL_BIN and the defaults file from
ARDUPILOT_SITL_DEFAULTS (nothing of ArduPilot lives in this repository). Each
instance N gets its own working directory (it writes eeprom.bin, logs/ and
terrain/ there), its own sysid, and serves MAVLink on TCP 5760 + 10·N, or on a
block of ten ports of its own (`base_port`, see `free_port_blocks`): SERIAL0 at
base, SERIAL1 at base + 2 (a second MAVLink port: a test's own control
connection, see sitl/ardupilot_control.py), SERIAL2 at base + 3, and SITL's
UDP ports (RC in, simulator in/out, IRLock) at base + 4..7. SITL keeps its
instance number in a byte, so `-I` alone cannot place an instance above port
8310: explicit ports are how a test suite keeps away from 5760.. . The
processes are kept as children: ArduPilot SITL exits when its parent dies, and
`stop()` terminates them in order.

SITL simulates an RC receiver whose throttle stick sits at the bottom, and
ArduCopter reads the throttle stick as a climb rate in CIRCLE (and LOITER): a
SITL copter put in CIRCLE sank into the ground at 2.5 m/s (measured). So each
instance's sticks are centred once it is ready (`centre_sticks`) and the
instances are told their throttle is centre-sprung (PILOT_THR_BHV=1, in
sitl.roster.SITL_RC_PARAMS: arming and auto-disarm then take mid-stick as
"throttle at rest"), as a transmitter at rest is.

"Ready" means what the controller needs before it can fly: a HEARTBEAT, and an
EKF_STATUS_REPORT with the position flags set and constant-position mode clear
(the readiness signal observed on a real ArduCopter 4.7).
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

log = logging.getLogger(__name__)

ENV_BIN = "ARDUPILOT_SITL_BIN"
ENV_DEFAULTS = "ARDUPILOT_SITL_DEFAULTS"
#: If set, instances work in a new directory under it, kept afterwards (their arducopter.log, logs/) for a post-mortem.
ENV_KEEP = "ARDUPILOT_SITL_KEEP"
EKF_READY = 0x1F
EKF_CONST_POS = 0x80
#: Offsets in a vehicle's port block: SERIAL0..2 (TCP), then SITL's UDP ports.
SERIAL0, SERIAL1, SERIAL2 = 0, 2, 3
RC_IN, SIM_IN, SIM_OUT, IRLOCK = 4, 5, 6, 7
PORT_BLOCK = 10


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
    #: First port of the vehicle's own block of PORT_BLOCK ports; None: SITL's defaults (5760 + 10·instance).
    base_port: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.instance <= 255:  # SITL keeps it in a uint8_t: 300 would become 44
            raise ValueError(f"SITL instance {self.instance} out of range 0..255 (give a base_port instead)")

    @property
    def port(self) -> int:
        """SERIAL0: the MAVLink port a ground station connects to."""
        return self.base_port + SERIAL0 if self.base_port is not None else 5760 + 10 * self.instance

    @property
    def rc_in_port(self) -> int:
        """SITL's simulated RC receiver (UDP): 8 or 16 little-endian uint16 PWM values per packet."""
        return self.base_port + RC_IN if self.base_port is not None else 5501 + 10 * self.instance

    @property
    def control_port(self) -> int:
        """SERIAL1: a second MAVLink port (SITL's default device for it is tcp:2)."""
        return self.port + SERIAL1 - SERIAL0

    @property
    def system_id(self) -> int:
        return self.sysid if self.sysid is not None else self.instance + 1


def _tcp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def block_free(base: int) -> bool:
    """Whether every port a SITL instance with this base_port binds can be bound now."""
    return all(_tcp_free(base + k) for k in (SERIAL0, SERIAL1, SERIAL2)) and all(
        _udp_free(base + k) for k in (RC_IN, SIM_IN, SIM_OUT, IRLOCK)
    )


def free_port_blocks(count: int, low: int = 20000, high: int = 60000, avoid: set[int] | None = None) -> list[int]:
    """`count` base ports of free blocks of PORT_BLOCK ports, one per SITL instance, none in `avoid`."""
    rng = random.Random()
    taken = set(avoid or ())
    blocks: list[int] = []
    for _ in range(count * 50):
        if len(blocks) == count:
            return blocks
        base = rng.randrange(low, high - PORT_BLOCK, PORT_BLOCK)
        if any(p in taken for p in range(base, base + PORT_BLOCK)) or not block_free(base):
            continue
        blocks.append(base)
        taken.update(range(base, base + PORT_BLOCK))
    if len(blocks) == count:
        return blocks
    raise RuntimeError(f"no {count} free blocks of {PORT_BLOCK} ports on 127.0.0.1")


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
        keep = os.environ.get(ENV_KEEP)
        self._own_workdir = workdir is None and not keep
        if workdir is None:
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="ardupilot-sitl-", dir=keep or None))
        self.workdir = workdir
        self.processes: dict[int, asyncio.subprocess.Process] = {}

    def command(self, v: SitlVehicle) -> list[str]:
        defaults = str(self.defaults)
        if v.params:  # a second defaults file in the instance's directory (ArduPilot takes a comma-separated list)
            extra = self.workdir / f"instance-{v.instance}" / "dronefleet.parm"
            extra.parent.mkdir(parents=True, exist_ok=True)
            extra.write_text("".join(f"{name} {value:g}\n" for name, value in sorted(v.params.items())))
            defaults = f"{defaults},{extra}"
        ports: list[str] = []
        if v.base_port is not None:  # before -I, which only moves ports still at their defaults
            b = v.base_port
            ports = [
                "--base-port", str(b), "--rc-in-port", str(b + RC_IN), "--sim-port-in", str(b + SIM_IN),
                "--sim-port-out", str(b + SIM_OUT), "--irlock-port", str(b + IRLOCK),
            ]
        return [
            str(self.binary), "--model", "+", "--speedup", f"{self.speedup:g}", "--defaults", defaults, *ports,
            "-I", str(v.instance), "--home", f"{v.lat},{v.lon},{v.alt_m},{v.heading_deg}", "-w",
            "--sysid", str(v.system_id), "--serial0", f"tcp:{SERIAL0}", "--serial1", f"tcp:{SERIAL1}",
            "--serial2", f"tcp:{SERIAL2}",
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
                centre_sticks(v.rc_in_port)
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


#: SITL's own default inputs (AP_RCProtocol_UDP) with the throttle centred: channels 5-8 are switches (5 the flight mode
#: switch: changing it would change the mode), kept where SITL has them. SITL keeps the last values it received.
CENTRED_STICKS = (1500, 1500, 1500, 1500, 1800, 1000, 1000, 1800)


def centre_sticks(rc_in_port: int, repeat: int = 3) -> None:
    """Send SITL's simulated RC receiver the sticks centred (UDP, a few times in case one is lost)."""
    packet = struct.pack(f"<{len(CENTRED_STICKS)}H", *CENTRED_STICKS)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(repeat):
            s.sendto(packet, ("127.0.0.1", rc_in_port))


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
