"""A test's own MAVLink connection to one ArduPilot SITL vehicle: parameters, commands, and what the vehicle reports.

It uses the vehicle's SERIAL1 (see sitl/ardupilot_harness.py), not the
ground station's SERIAL0, so it works whatever happens to the controller's
link (a cut, a proxy dropping messages). It never sends a HEARTBEAT and its
system id is not MAV_GCS_SYSID (255): it cannot keep the vehicle's
ground-station failsafe away. What it reads is the vehicle's own report (its
"truth" as far as a test can know it): armed, mode, position, battery, GPS fix,
and every STATUSTEXT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

log = logging.getLogger(__name__)

CONTROL_SYSID = 250
CONTROL_COMPID = 191
#: Streams asked for on this connection (Hz of simulated time): HEARTBEAT comes anyway.
STREAMS = ((mavlink2.MAV_DATA_STREAM_EXTENDED_STATUS, 2), (mavlink2.MAV_DATA_STREAM_POSITION, 2))
#: Above this height (m above home) an armed vehicle counts as flying.
FLYING_ALT_M = 1.0


class ControlError(Exception):
    pass


@dataclass
class VehicleReport:
    """The latest of what the vehicle said on the control connection."""

    armed: bool | None = None
    mode: int | None = None
    lat: float | None = None
    lon: float | None = None
    alt_rel_m: float | None = None
    battery_pct: int | None = None
    voltage_v: float | None = None
    gps_fix: int | None = None
    landed_state: int | None = None
    heartbeats: int = 0
    texts: list[str] = field(default_factory=list)

    @property
    def flying(self) -> bool:
        return bool(self.armed) and (self.alt_rel_m or 0.0) > FLYING_ALT_M


class VehicleControl:
    def __init__(self, port: int, sysid: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.sysid = sysid
        self.host = host
        self.report = VehicleReport()
        self._mav = mavlink2.MAVLink(None, srcSystem=CONTROL_SYSID, srcComponent=CONTROL_COMPID)
        self._mav.robust_parsing = True
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._acks: dict[int, int] = {}  # MAV_CMD -> last COMMAND_ACK result
        self._params: dict[str, float] = {}

    # --- life cycle -------------------------------------------------------------------------

    async def connect(self, timeout: float = 10.0) -> None:
        if self._task is not None and not self._task.done():
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 2.0)
                break
            except (OSError, asyncio.TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise ControlError(f"vehicle {self.sysid}: control port {self.port} unreachable: {exc}") from exc
                await asyncio.sleep(0.2)
        self._task = asyncio.get_running_loop().create_task(self._read(reader), name=f"sitl-control-{self.sysid}")
        for stream, hz in STREAMS:
            self._send(self._mav.request_data_stream_encode(self.sysid, 1, stream, hz, 1))
        await self.wait_for(lambda r: r.heartbeats > 0 and r.alt_rel_m is not None, timeout, "the vehicle's first reports")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 2)
            self._writer = None

    def _send(self, msg: Any) -> None:
        if self._writer is None or self._writer.is_closing():
            raise ControlError(f"vehicle {self.sysid}: control connection not open")
        self._writer.write(msg.pack(self._mav))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        r = self.report
        while True:
            data = await reader.read(65536)
            if not data:
                log.warning("vehicle %d: control connection closed", self.sysid)
                return
            for msg in self._mav.parse_buffer(data) or ():
                if msg.get_srcSystem() != self.sysid:
                    continue
                kind = msg.get_type()
                if kind == "HEARTBEAT" and msg.get_srcComponent() == 1:
                    r.heartbeats += 1
                    r.armed = bool(msg.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED)
                    r.mode = msg.custom_mode
                elif kind == "GLOBAL_POSITION_INT":
                    r.lat, r.lon, r.alt_rel_m = msg.lat / 1e7, msg.lon / 1e7, msg.relative_alt / 1000.0
                elif kind == "SYS_STATUS":
                    r.battery_pct = msg.battery_remaining
                    r.voltage_v = msg.voltage_battery / 1000.0
                elif kind == "GPS_RAW_INT":
                    r.gps_fix = msg.fix_type
                elif kind == "EXTENDED_SYS_STATE":
                    r.landed_state = msg.landed_state
                elif kind == "STATUSTEXT":
                    r.texts.append(msg.text)
                elif kind == "COMMAND_ACK":
                    self._acks[msg.command] = msg.result
                elif kind == "PARAM_VALUE":
                    self._params[msg.param_id] = msg.param_value
                else:
                    continue
                self._changed.set()

    async def wait_for(self, pred: Callable[[VehicleReport], Any], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not pred(self.report):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ControlError(f"vehicle {self.sysid}: timed out after {timeout:g} s waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    # --- requests ---------------------------------------------------------------------------

    async def set_param(self, name: str, value: float, timeout: float = 2.0, retries: int = 3) -> float:
        """PARAM_SET, confirmed by the PARAM_VALUE echo with the new value."""
        await self.connect()
        ptype = mavlink2.MAV_PARAM_TYPE_REAL32
        for _ in range(retries):
            self._params.pop(name, None)
            self._send(self._mav.param_set_encode(self.sysid, 1, name.encode(), float(value), ptype))
            try:
                await self.wait_for(lambda _r: name in self._params, timeout, f"{name} echoed")
            except ControlError:
                continue
            got = self._params[name]
            if abs(got - value) > 1e-3 * max(1.0, abs(value)):
                raise ControlError(f"vehicle {self.sysid}: {name} set to {value:g} reads back {got:g}")
            return got
        raise ControlError(f"vehicle {self.sysid}: PARAM_SET {name}={value:g}: no answer after {retries} attempts")

    async def command(self, command: int, params: Sequence[float] = (), timeout: float = 2.0, retries: int = 3) -> int:
        """COMMAND_LONG confirmed by its COMMAND_ACK; returns the MAV_RESULT."""
        await self.connect()
        p = [float(x) for x in params] + [0.0] * (7 - len(params))
        for attempt in range(retries):
            self._acks.pop(command, None)
            self._send(self._mav.command_long_encode(self.sysid, 1, command, attempt, *p))
            try:
                await self.wait_for(lambda _r: command in self._acks, timeout, f"the ACK of command {command}")
            except ControlError:
                continue
            return self._acks[command]
        raise ControlError(f"vehicle {self.sysid}: command {command}: no answer after {retries} attempts")

    async def fresh(self, timeout: float = 5.0) -> VehicleReport:
        """The report after the next HEARTBEAT and position (so it is not older than the call)."""
        await self.connect()
        hb = self.report.heartbeats
        await self.wait_for(lambda r: r.heartbeats >= hb + 2, timeout, "a fresh heartbeat")
        return self.report
