"""Time to scene as flown against the dispatch engine's prediction, on the built-in simulator or real ArduPilot SITL.

`dronefleet bench eta [--backend sim|ardupilot] [--flights 10] [--speedup 5] --json`

One drone per station (the first stations of the roster) flies one call each,
at distances spread from 300 m to 5 km, all at once; a pilot bot accepts each
offer at once. The controller runs in this process as in production (dispatch,
MAVLink link, mission runner). Every time is read on the vehicle's own clock
(GLOBAL_POSITION_INT.time_boot_ms), so a simulation running faster than real
time, or slower on a loaded machine, is measured in flight seconds.

Reported per flight and as p50/p90: accept -> airborne (2 m up), airborne ->
on scene, and the engine's predicted time to scene (the offer's `eta_s`)
against the flown one: in all (accept -> on scene) and for the flight alone
(airborne -> on scene against the prediction less its launch delay). The wind
is calm in both the vehicles and the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from controller import geo
from controller.auth import Principal, Role, TokenRegistry
from controller.bench.common import machine, percentiles, progress, stamp
from controller.center import NewIncident
from controller.config import default_config_dir, load_config
from controller.dispatch.flight import launch_delay_s
from controller.domain.states import DroneState, MissionState
from controller.fleet.nofly import NoFlyGuard
from controller.runtime import Runtime
from controller.settings import Settings
from sitl.fleet import DEFAULT_BASE_PORT, SimFleet, free_base_port, free_sitl_instance
from sitl.roster import ardupilot_overrides, roster_specs

COMMANDER = Principal(Role.COMMANDER, "bench-commander")
ADMIN = Principal(Role.ADMIN, "bench-admin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("sim", "ardupilot"), default="sim")
    parser.add_argument("--flights", type=int, default=10, help="flights, one drone each, flown at once")
    parser.add_argument("--min-m", type=float, default=300.0)
    parser.add_argument("--max-m", type=float, default=5000.0)
    parser.add_argument("--speedup", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="wall seconds for all flights to reach their scenes")


@dataclass
class Flight:
    drone_id: str
    station_id: str
    distance_m: float
    predicted_s: float = math.nan
    launch_delay_s: float = math.nan
    mission_id: str = ""
    accepted_ms: float = math.nan
    airborne_ms: float = math.nan
    on_scene_ms: float = math.nan
    #: Why the flight ended before the scene (e.g. the battery reserve), or "" if it arrived.
    ended: str = ""

    @property
    def accept_to_airborne_s(self) -> float:
        return (self.airborne_ms - self.accepted_ms) / 1000.0

    @property
    def airborne_to_scene_s(self) -> float:
        return (self.on_scene_ms - self.airborne_ms) / 1000.0

    @property
    def accept_to_scene_s(self) -> float:
        return (self.on_scene_ms - self.accepted_ms) / 1000.0


def bench_configs(dest: Path, stations: int, speedup: float, base_port: int) -> Path:
    """configs/ cut to the first `stations` stations, a calm wind, failsafes scaled to the speed-up."""
    shutil.copytree(default_config_dir(), dest)
    doc = json.loads((dest / "stations.json").read_text())
    doc["stations"] = doc["stations"][:stations]
    (dest / "stations.json").write_text(json.dumps(doc))
    flight = yaml.safe_load((dest / "flight.yaml").read_text())
    flight["failsafe"]["gcs_timeout_s"] = 5 * speedup
    flight["on_scene"] = "hold"
    flight["links"]["base_port"] = base_port
    (dest / "flight.yaml").write_text(yaml.safe_dump(flight))
    policy = yaml.safe_load((dest / "dispatch.yaml").read_text())
    policy["offer_timeout_s"] = 600
    policy["wind"] = {"speed_ms": 0, "from_deg": 0}
    (dest / "dispatch.yaml").write_text(yaml.safe_dump(policy))
    return dest


def scene_for(guard: NoFlyGuard, lat: float, lon: float, distance_m: float, rng: np.random.Generator) -> tuple[float, float]:
    """A scene `distance_m` from (lat, lon) whose straight leg crosses no no-fly zone."""
    start = float(rng.uniform(0, 360))
    for k in range(36):
        p = geo.destination(lat, lon, (start + 10 * k) % 360, distance_m)
        if guard.zone_at(*p) is None and guard.zone_crossed((lat, lon), p) is None:
            return p
    raise RuntimeError(f"no clear scene {distance_m:.0f} m from {lat:.5f}, {lon:.5f}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.flights
    rng = np.random.default_rng(args.seed)
    distances = np.geomspace(args.min_m, args.max_m, n)
    if args.min_m <= 500.0 <= args.max_m:  # the reference call: 500 m from a standby drone
        distances[int(np.argmin(np.abs(distances - 500.0)))] = 500.0
    with tempfile.TemporaryDirectory(prefix="dronefleet-eta-") as tmp:
        tmp_path = Path(tmp)
        # SITL's port follows its instance number, which must stay below 256
        base = DEFAULT_BASE_PORT + 10 * free_sitl_instance(n) if args.backend == "ardupilot" else free_base_port(n)
        cfg_dir = bench_configs(tmp_path / "configs", n, args.speedup, base)
        cfg = load_config(cfg_dir)
        backend = await _start_backend(args, cfg_dir, cfg, n, base)
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'eta.sqlite3'}", config_dir=cfg_dir, var_dir=tmp_path / "var",
            fleet="external", fleet_drones=n,
        )
        rt = Runtime.build(settings, tokens=TokenRegistry({}))
        await rt.start()
        try:
            flights = await _fly(rt, cfg, distances, rng, args)
        finally:
            await rt.stop()
            await backend.stop()
    return _result(args, flights)


async def _start_backend(args: argparse.Namespace, cfg_dir: Path, cfg: Any, n: int, base: int) -> Any:
    if args.backend == "sim":
        sim = SimFleet(roster_specs(cfg_dir / "stations.json", cfg_dir / "drone_models.yaml", n, warm=True),
                       speedup=args.speedup, base_port=base)
        await sim.start()
        return sim
    from sitl.ardupilot_harness import ArduPilotFleet, SitlVehicle

    roster = [(s, d) for s in cfg.stations for d in s.drones][:n]
    first = (base - DEFAULT_BASE_PORT) // 10  # the instance numbers that put SITL's ports where the links look
    vehicles = [
        SitlVehicle(first + i, s.lat, s.lon, s.elevation_m, sysid=i + 1,
                    params=ardupilot_overrides(d.model, cfg.drone_models[d.model].model_dump(), "models"))
        for i, (s, d) in enumerate(roster)
    ]
    fleet = ArduPilotFleet(vehicles, speedup=args.speedup)
    await fleet.start()
    return fleet


async def _fly(rt: Runtime, cfg: Any, distances: np.ndarray, rng: np.random.Generator, args: argparse.Namespace) -> list[Flight]:
    deadline = time.monotonic() + 300
    assert rt.fleet is not None
    while rt.fleet.configured < len(distances) or any(
        rt.fleet.links[d].telemetry.time_boot_ms is None or not rt.fleet.links[d].telemetry.ekf_ok for d in rt.fleet.links
    ):
        if time.monotonic() > deadline:
            raise RuntimeError("drones did not link up and get a position estimate within 300 s")
        await asyncio.sleep(0.2)
    # vehicle clock samples per drone: (wall monotonic, time_boot_ms)
    clock: dict[str, list[tuple[float, int]]] = {d: [] for d in rt.fleet.links}
    rt.fleet.position_listeners.append(lambda d, t: clock[d].append((time.monotonic(), t.time_boot_ms)))
    roster = [(s, d.id) for s in cfg.stations for d in s.drones]
    guard = NoFlyGuard(cfg.nofly, cfg.frame)
    flights: list[Flight] = []
    marks: dict[str, dict[str, float]] = {}
    sub = rt.center.bus.subscribe(lambda e: e.type in ("mission.updated",))
    for (station, drone_id), dist in zip(roster, distances):
        lat, lon = scene_for(guard, station.lat, station.lon, float(dist), rng)
        others = [d for d in rt.center.drones.values() if d.id != drone_id and d.state in (DroneState.STANDBY, DroneState.CHARGING)]
        for d in others:
            await rt.center.set_maintenance(d.id, True, ADMIN, "eta bench: one drone per call")
        inc, _ = await rt.center.create_incident(NewIncident(grade=2, category="traffic_accident", lat=lat, lon=lon), COMMANDER)
        (m,) = [m for m in rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
        if m.drone_id != drone_id:
            raise RuntimeError(f"{inc.id} was offered to {m.drone_id}, not {drone_id}")
        f = Flight(drone_id, station.id, float(dist), predicted_s=m.eta_s,
                   launch_delay_s=launch_delay_s(cfg.policy, m.drone_prior_state), mission_id=m.id)
        await rt.center.accept(m.id, Principal(Role.PILOT, "bench-pilot", m.station_id))
        marks[m.id] = {"accepted": time.monotonic()}
        for d in others:
            await rt.center.set_maintenance(d.id, False, ADMIN, "eta bench")
        flights.append(f)
    progress(f"{len(flights)} flights accepted ({', '.join(f'{f.distance_m:.0f}' for f in flights)} m)")
    by_mission = {f.mission_id: f for f in flights}
    end = time.monotonic() + args.timeout
    try:
        while any("on_scene" not in marks[f.mission_id] and not f.ended for f in flights):
            if time.monotonic() > end:
                raise RuntimeError(f"flights not on scene within {args.timeout:g} s: "
                                   f"{[f.mission_id for f in flights if 'on_scene' not in marks[f.mission_id]]}")
            try:
                item = await asyncio.wait_for(sub.queue.get(), 1.0)
            except TimeoutError:
                continue
            if item is None:
                sub = rt.center.bus.subscribe(lambda e: e.type in ("mission.updated",))
                continue
            event, _ = item
            f = by_mission.get(event.mission_id or "")
            if f is None:
                continue
            state = event.data.get("state")
            if state == "launched" and "airborne" not in marks[f.mission_id]:
                marks[f.mission_id]["airborne"] = time.monotonic()
            elif state == "on_scene" and "on_scene" not in marks[f.mission_id]:
                marks[f.mission_id]["on_scene"] = time.monotonic()
                progress(f"  {f.drone_id} on scene {f.distance_m:.0f} m away")
            elif state in ("returning", "aborted", "completed") and "on_scene" not in marks[f.mission_id]:
                f.ended = f"{state}: {event.data.get('reason') or ''}".strip(": ")
                progress(f"  {f.drone_id} ({f.distance_m:.0f} m) did not reach the scene: {f.ended}")
    finally:
        rt.center.bus.unsubscribe(sub)
    await asyncio.sleep(0.5)  # a few more clock samples after the last arrival
    for f in flights:
        samples = np.array(clock[f.drone_id], dtype=float)
        to_boot = lambda wall: float(np.interp(wall, samples[:, 0], samples[:, 1]))  # noqa: E731
        mk = marks[f.mission_id]
        f.accepted_ms = to_boot(mk["accepted"])
        f.airborne_ms = to_boot(mk["airborne"]) if "airborne" in mk else math.nan
        f.on_scene_ms = to_boot(mk["on_scene"]) if "on_scene" in mk else math.nan
    return flights


def _result(args: argparse.Namespace, all_flights: list[Flight]) -> dict[str, Any]:
    flights = [f for f in all_flights if not f.ended]
    total_err = [(f.predicted_s - f.accept_to_scene_s) / f.accept_to_scene_s * 100 for f in flights]
    flight_err = [((f.predicted_s - f.launch_delay_s) - f.airborne_to_scene_s) / f.airborne_to_scene_s * 100 for f in flights]
    near = min(flights, key=lambda f: abs(f.distance_m - 500.0))
    return {
        "benchmark": "eta",
        "when": stamp(),
        "machine": machine(),
        "backend": args.backend,
        "speedup": args.speedup,
        "flights": [
            {**asdict(f), "accept_to_airborne_s": round(f.accept_to_airborne_s, 2),
             "airborne_to_scene_s": round(f.airborne_to_scene_s, 2), "accept_to_scene_s": round(f.accept_to_scene_s, 2),
             "error_pct": round(te, 1), "flight_error_pct": round(fe, 1)}
            for f, te, fe in zip(flights, total_err, flight_err)
        ],
        "not_on_scene": [{"distance_m": round(f.distance_m), "drone_id": f.drone_id, "why": f.ended} for f in all_flights if f.ended],
        "accept_to_airborne_s": percentiles([f.accept_to_airborne_s for f in flights]),
        "airborne_to_scene_s": percentiles([f.airborne_to_scene_s for f in flights]),
        "eta_error_pct_abs": percentiles([abs(e) for e in total_err]),
        "flight_error_pct_abs": percentiles([abs(e) for e in flight_err]),
        "near_call": {"distance_m": round(near.distance_m), "accept_to_scene_s": round(near.accept_to_scene_s, 1)},
        "target": {"eta_error_p90_pct_below": 10, "on_scene_500m_s_below": 60},
    }


def summarize(result: dict[str, Any]) -> str:
    lines = [f"eta bench on {result['backend']} at speed-up {result['speedup']:g}, {len(result['flights'])} flights:"]
    lines.append("  distance   accept->air  air->scene   predicted  error (all / flight)")
    for f in result["flights"]:
        lines.append(
            f"  {f['distance_m']:7.0f} m  {f['accept_to_airborne_s']:8.1f} s {f['airborne_to_scene_s']:9.1f} s"
            f" {f['predicted_s']:9.1f} s  {f['error_pct']:+6.1f} % / {f['flight_error_pct']:+6.1f} %"
        )
    a, b = result["accept_to_airborne_s"], result["airborne_to_scene_s"]
    e, fe = result["eta_error_pct_abs"], result["flight_error_pct_abs"]
    lines.append(f"  accept->airborne p50 {a['p50']:.1f} s, p90 {a['p90']:.1f} s; airborne->scene p50 {b['p50']:.1f} s, p90 {b['p90']:.1f} s")
    lines.append(f"  |ETA error| p50 {e['p50']:.1f} %, p90 {e['p90']:.1f} % (flight part: p50 {fe['p50']:.1f} %, p90 {fe['p90']:.1f} %)")
    nc = result["near_call"]
    lines.append(f"  the {nc['distance_m']} m call: accept -> on scene {nc['accept_to_scene_s']:.1f} s")
    for f in result["not_on_scene"]:
        lines.append(f"  not on scene: {f['distance_m']} m ({f['drone_id']}): {f['why']}")
    return "\n".join(lines)
