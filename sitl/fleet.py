"""Many simulated copters in one process: one asyncio loop, one clock with a speed-up factor, one tick for all.

Vehicle N listens on TCP base_port + 10·N (5760 + 10·N, exactly where
ArduCopter SITL instance N would) with sysid N + 1 unless its spec says
otherwise. Simulated time advances with wall time × speedup in fixed steps
(`step_s`); each wake-up runs every step that is due for every vehicle and then
writes each vehicle's messages in one batch, so a fast simulation costs steps,
not system calls. If the machine cannot keep up, simulated time slows down
(and `overruns` counts it) rather than jumping.

Fault injection works on the live vehicles here, or from another process
through `sitl.control`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sitl.camera_component import MAV_COMP_ID_CAMERA, CameraStreamSpec, SimCamera
from sitl.mavlink_endpoint import VehicleEndpoint
from sitl.vehicle import SimCopter

log = logging.getLogger(__name__)

DEFAULT_BASE_PORT = 5760


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP port on `host` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


#: ArduPilot SITL keeps its instance number (-I) in a byte: its MAVLink port is 5760 + 10·I for I < 256 only.
SITL_MAX_INSTANCE = 255


def free_sitl_instance(instances: int = 1, first: int = 20) -> int:
    """A first ArduPilot SITL instance number I with TCP 5760 + 10·(I..I+instances-1) free (and I + instances <= 256),
    away from instance 0 so a controller's own SITL fleet (5760..) keeps its ports."""
    rng = random.Random()
    top = SITL_MAX_INSTANCE + 1 - instances
    if top < first:
        raise RuntimeError(f"{instances} SITL instances do not fit below instance {SITL_MAX_INSTANCE}")
    for _ in range(200):
        i = rng.randrange(first, top + 1)
        if all(port_free(DEFAULT_BASE_PORT + 10 * (i + n)) for n in range(instances)):
            return i
    raise RuntimeError(f"no {instances} consecutive free SITL instance ports")


def free_base_port(instances: int = 1) -> int:
    """A base port P with P + 10·N free for N < instances, away from SITL's 5760.. so other simulators may run
    (a controller on its real fleet, the test suite, another benchmark)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - 10 * instances, 10)
        if all(port_free(base + 10 * n) for n in range(instances)):
            return base
    raise RuntimeError(f"no free range of {instances} ports (10 apart) on 127.0.0.1")
#: Simulated seconds per physics step.
STEP_S = 0.05
#: Wake up at least this often (wall seconds), however fast the simulation runs.
MIN_WAKE_S = 0.01
#: Behind by more than this much simulated time: stop trying to catch up.
MAX_BACKLOG_S = 1.0


@dataclass(frozen=True)
class Home:
    lat: float
    lon: float
    alt_amsl: float = 0.0
    heading: float = 0.0


@dataclass(frozen=True)
class VehicleSpec:
    """One simulated copter: where it stands, who it is, and how it differs from a default ArduCopter quad."""

    instance: int
    lat: float
    lon: float
    alt_m: float = 10.0  # ground altitude AMSL at the home position (as SITL's --home)
    heading_deg: float = 0.0
    sysid: int | None = None  # default instance + 1
    params: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    hover_current_a: float = 28.0
    max_airspeed_ms: float = 20.0
    signing_key: bytes | None = None
    warm: bool = False
    name: str = ""
    port: int | None = None  # default base_port + 10 * instance
    udp_port: int | None = None
    #: Cameras announced over MAVLink as mavlink-camera-manager would (components 100, 101, …; see camera_component).
    cameras: tuple[CameraStreamSpec, ...] = ()

    @property
    def home(self) -> Home:
        return Home(self.lat, self.lon, self.alt_m, self.heading_deg)

    @property
    def system_id(self) -> int:
        return self.sysid if self.sysid is not None else self.instance + 1

    def tcp_port(self, base_port: int = DEFAULT_BASE_PORT) -> int:
        return self.port if self.port is not None else base_port + 10 * self.instance


class SimFleet:
    def __init__(
        self,
        specs: Iterable[VehicleSpec],
        speedup: float = 1.0,
        host: str = "127.0.0.1",
        base_port: int = DEFAULT_BASE_PORT,
        step_s: float = STEP_S,
    ) -> None:
        self.specs = list(specs)
        if not self.specs:
            raise ValueError("a fleet needs at least one vehicle")
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        instances = [s.instance for s in self.specs]
        if len(set(instances)) != len(instances):
            raise ValueError("vehicle instances must be unique")
        self.speedup = float(speedup)
        self.host = host
        self.base_port = base_port
        self.step_s = step_s
        self.vehicles: dict[int, SimCopter] = {}
        self.endpoints: dict[int, VehicleEndpoint] = {}
        self._task: asyncio.Task[None] | None = None
        self.sim_time = 0.0  # simulated seconds since start
        self.steps = 0
        self.wakeups = 0
        self.overruns = 0
        self.lag_s = 0.0

    def port_of(self, instance: int) -> int:
        return self.spec(instance).tcp_port(self.base_port)

    def spec(self, instance: int) -> VehicleSpec:
        for s in self.specs:
            if s.instance == instance:
                return s
        raise KeyError(f"no vehicle instance {instance}")

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            for spec in self.specs:
                vehicle = SimCopter(
                    spec.system_id,
                    spec.home,
                    heading=spec.heading_deg,
                    params=dict(spec.params),
                    hover_current_a=spec.hover_current_a,
                    warm=spec.warm,
                    max_airspeed=spec.max_airspeed_ms,
                    signing_key=spec.signing_key,
                    seed=spec.instance,
                )
                endpoint = VehicleEndpoint(vehicle, self.host, spec.tcp_port(self.base_port), spec.udp_port)
                endpoint.components = [
                    SimCamera(spec.system_id, MAV_COMP_ID_CAMERA + i, cam, vehicle.encoder) for i, cam in enumerate(spec.cameras)
                ]
                self.vehicles[spec.instance] = vehicle
                self.endpoints[spec.instance] = endpoint
                await endpoint.start()
        except BaseException:
            await self._close_endpoints()
            raise
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-fleet-clock")
        ports = [self.port_of(s.instance) for s in self.specs]
        log.info("simulator: %d copters on %s ports %d..%d, speedup %g", len(self.specs), self.host, min(ports), max(ports), self.speedup)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_endpoints()

    async def _close_endpoints(self) -> None:
        await asyncio.gather(*(e.stop() for e in self.endpoints.values()), return_exceptions=True)

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def vehicle(self, instance: int) -> SimCopter:
        return self.vehicles[instance]

    def endpoint(self, instance: int) -> VehicleEndpoint:
        return self.endpoints[instance]

    # --- the clock ----------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        done = 0.0
        dt = self.step_s
        wake = max(MIN_WAKE_S, dt / self.speedup)
        pairs = [(self.vehicles[s.instance], self.endpoints[s.instance]) for s in self.specs]
        while True:
            target = (loop.time() - wall0) * self.speedup
            if target - done > MAX_BACKLOG_S:
                self.overruns += 1
                wall0 += (target - done - dt) / self.speedup  # let simulated time slow down instead of jumping
                target = done + dt
            ran = 0
            while done + dt <= target + 1e-9:
                done += dt
                ran += 1
                for vehicle, endpoint in pairs:
                    try:
                        vehicle.step(dt)
                    except Exception:  # noqa: BLE001 - one broken vehicle must not stop the others
                        log.exception("vehicle %d: simulation step failed", vehicle.sysid)
                    for component in endpoint.components:
                        component.step(dt)
                    if endpoint.has_listeners:
                        out = vehicle.outbox
                        if out:
                            endpoint.queue(out)
                            vehicle.outbox = []
                        for component in endpoint.components:
                            if component.outbox:
                                endpoint.queue(component.outbox)
                                component.outbox = []
                        tele = vehicle.telemetry()
                        if tele:
                            endpoint.queue(tele)
                    else:
                        vehicle.outbox = []
                        for component in endpoint.components:
                            component.outbox = []
            if ran:
                for _, endpoint in pairs:
                    endpoint.flush()
                self.steps += ran
            self.wakeups += 1
            self.sim_time = done
            self.lag_s = max(0.0, target - done)
            next_due = wall0 + (done + dt) / self.speedup
            await asyncio.sleep(max(next_due - loop.time(), wake if ran == 0 else 0.0, 0.0005))

    # --- fault injection ----------------------------------------------------------------------

    def cut_link(self, instance: int, seconds: float, mode: str = "drop") -> None:
        """Lose the link for `seconds` (wall): "drop" all traffic both ways, or "close" the sockets. It keeps flying."""
        self.endpoints[instance].cut(seconds, mode)

    def restore_link(self, instance: int) -> None:
        self.endpoints[instance].restore()

    def ignore_command(self, instance: int, command: int, ignore: bool = True) -> None:
        """Never ACK (nor act on) this MAV_CMD."""
        faults = self.vehicles[instance].faults
        (faults.ignore_commands.add if ignore else faults.ignore_commands.discard)(int(command))

    def ignore_message(self, instance: int, msg_type: str, ignore: bool = True) -> None:
        """Drop incoming messages of this type (e.g. "SET_MODE", "MISSION_ITEM_INT")."""
        faults = self.vehicles[instance].faults
        (faults.ignore_messages.add if ignore else faults.ignore_messages.discard)(msg_type.upper())

    def prearm_failure(self, instance: int, text: str | None) -> None:
        """Refuse arming with "Arm: <text>" and report "PreArm: <text>" until cleared with None."""
        self.vehicles[instance].faults.prearm_failure = text or None

    def set_wind(self, instance: int, speed_ms: float, from_deg: float) -> None:
        v = self.vehicles[instance]
        v.params.set("SIM_WIND_SPD", speed_ms)
        v.params.set("SIM_WIND_DIR", from_deg)

    def set_battery(self, instance: int, remaining_pct: float | None = None, consumed_mah: float | None = None) -> None:
        """Set the battery state (remaining share of BATT_CAPACITY, or mAh consumed); a recharge clears its failsafe."""
        v = self.vehicles[instance]
        if remaining_pct is not None:
            v.battery.set_remaining(remaining_pct, v.capacity_mah)
        elif consumed_mah is not None:
            v.battery.consumed_mah = max(0.0, float(consumed_mah))
        else:
            raise ValueError("give remaining_pct or consumed_mah")
        v.failsafes.battery_recharged()

    def set_battery_used(self, instance: int, consumed_mah: float) -> None:
        self.set_battery(instance, consumed_mah=consumed_mah)

    def set_position_noise(self, instance: int, sigma_m: float) -> None:
        """Add Gaussian noise (standard deviation in metres) to the positions the vehicle reports."""
        if sigma_m < 0:
            raise ValueError("sigma_m must not be negative")
        self.vehicles[instance].faults.position_noise_m = float(sigma_m)

    def set_param(self, instance: int, name: str, value: float) -> float:
        return self.vehicles[instance].params.set(name, value)

    def truth(self, instance: int) -> dict[str, Any]:
        v = self.vehicles[instance]
        e = self.endpoints[instance]
        spec = self.spec(instance)
        return {
            "instance": instance,
            "name": spec.name,
            "port": e.port,
            "clients": e.client_count,
            "link_cut": e.cut_active(),
            "rejected_unsigned": e.rejected_unsigned,
            **v.truth(),
        }

    def status(self) -> dict[str, Any]:
        return {
            "vehicles": len(self.specs),
            "speedup": self.speedup,
            "sim_time": round(self.sim_time, 3),
            "lag_s": round(self.lag_s, 3),
            "overruns": self.overruns,
            "steps": self.steps,
            "wall_time": time.time(),
        }
