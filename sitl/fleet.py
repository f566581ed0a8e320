"""Many simulated copters in one process: one clock (with a speed-up factor), one tick for all.

Each vehicle gets its own MAVLink endpoint on 127.0.0.1:5760 + 10·N, exactly
where ArduCopter SITL instance N would listen. Simulated time advances with
wall time × speedup, in small fixed steps, so boot timings, failsafe timeouts
and flight times are in simulated seconds as in SITL. Fault injection works on
the live vehicles (in process) or through `sitl.control` (out of process).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from sitl.kinematics import Home
from sitl.mavlink_endpoint import VehicleEndpoint
from sitl.vehicle import SimCopter

log = logging.getLogger(__name__)

#: Physics step in simulated seconds (grows with the speed-up so wall ticks stay near 100 Hz at most).
BASE_STEP_S = 0.05
MAX_TICK_HZ = 100.0


@dataclass(frozen=True)
class VehicleSpec:
    instance: int
    lat: float
    lon: float
    alt_m: float = 10.0
    heading_deg: float = 0.0
    sysid: int | None = None
    params: dict[str, float] = field(default_factory=dict)
    hover_current_a: float = 28.0
    signing_key: bytes | None = None
    warm: bool = False
    name: str = ""

    @property
    def port(self) -> int:
        return 5760 + 10 * self.instance

    @property
    def system_id(self) -> int:
        return self.sysid if self.sysid is not None else self.instance + 1


class SimFleet:
    def __init__(self, specs: list[VehicleSpec], speedup: float = 1.0, host: str = "127.0.0.1") -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.specs = specs
        self.speedup = speedup
        self.host = host
        self.vehicles: dict[int, SimCopter] = {}
        self.endpoints: dict[int, VehicleEndpoint] = {}
        self.step_s = max(BASE_STEP_S, speedup / MAX_TICK_HZ)
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.sim_time = 0.0
        self.lag_s = 0.0

    async def start(self) -> None:
        for spec in self.specs:
            vehicle = SimCopter(
                spec.system_id,
                Home(spec.lat, spec.lon, spec.alt_m),
                heading=spec.heading_deg,
                params=spec.params,
                hover_current_a=spec.hover_current_a,
                warm=spec.warm,
            )
            endpoint = VehicleEndpoint(vehicle, self.host, spec.port, spec.signing_key)
            await endpoint.start()
            self.vehicles[spec.instance] = vehicle
            self.endpoints[spec.instance] = endpoint
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-fleet")
        log.info(
            "simulator: %d copters on %s ports %d..%d, speedup %g",
            len(self.specs), self.host, min(s.port for s in self.specs), max(s.port for s in self.specs), self.speedup,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(e.stop() for e in self.endpoints.values()), return_exceptions=True)

    def vehicle(self, instance: int) -> SimCopter:
        return self.vehicles[instance]

    async def _run(self) -> None:
        wall0 = time.monotonic()
        done = 0.0
        tick_wall = self.step_s / self.speedup
        while True:
            target = (time.monotonic() - wall0) * self.speedup
            steps = 0
            while done + self.step_s <= target and steps < 50:
                done += self.step_s
                steps += 1
                self._tick(self.step_s)
            self.sim_time = done
            self.lag_s = max(0.0, target - done)
            if steps == 50:  # more than we can do in real time: drop the backlog rather than spiral
                done = target
            await asyncio.sleep(max(0.0, wall0 + (done + self.step_s) / self.speedup - time.monotonic(), tick_wall * 0.2))

    def _tick(self, dt: float) -> None:
        self.ticks += 1
        for instance, vehicle in self.vehicles.items():
            vehicle.step(dt)
            out = vehicle.outbox
            out.extend(vehicle.telemetry())
            vehicle.outbox = []
            self.endpoints[instance].deliver(out)

    # --- fault injection --------------------------------------------------------------

    def cut_link(self, instance: int, seconds: float) -> None:
        """Drop all traffic with this vehicle for `seconds` of wall time (it keeps flying)."""
        self.endpoints[instance].cut_until = time.monotonic() + seconds

    def ignore_command(self, instance: int, command: int, ignore: bool = True) -> None:
        faults = self.vehicles[instance].faults
        (faults.ignore_commands.add if ignore else faults.ignore_commands.discard)(command)

    def prearm_failure(self, instance: int, text: str | None) -> None:
        self.vehicles[instance].faults.prearm_failure = text

    def set_wind(self, instance: int, speed_ms: float, from_deg: float) -> None:
        v = self.vehicles[instance]
        v.params.set("SIM_WIND_SPD", speed_ms)
        v.params.set("SIM_WIND_DIR", from_deg)

    def set_battery_used(self, instance: int, consumed_mah: float) -> None:
        self.vehicles[instance].battery.consumed_mah = consumed_mah

    def truth(self, instance: int) -> dict[str, Any]:
        v = self.vehicles[instance]
        lat, lon = v.latlon()
        return {
            "instance": instance,
            "sysid": v.sysid,
            "t": round(v.t, 2),
            "lat": lat,
            "lon": lon,
            "alt_m": round(v.motion.alt, 2),
            "heading_deg": round(v.motion.heading, 1),
            "ground_speed_ms": round(v.motion.ground_speed, 2),
            "mode": v.mode,
            "armed": v.armed,
            "flying": v.flying,
            "battery_pct": v.battery.remaining_pct(v.params["BATT_CAPACITY"]),
            "consumed_mah": round(v.battery.consumed_mah, 1),
            "gcs_failsafe": v.gcs_failsafe,
            "battery_failsafe": v.battery_failsafe,
            "clients": self.endpoints[instance].clients,
            "rejected_unsigned": self.endpoints[instance].rejected_unsigned,
        }
