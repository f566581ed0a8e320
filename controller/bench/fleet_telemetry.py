"""`dronefleet bench fleet`: the controller holding 140 MAVLink links at real time.

Two processes, as deployed: the built-in simulator (`dronefleet sim`, one copter
per roster drone, real time, streaming the telemetry the controller asks for)
and `dronefleet serve --fleet external`. Over a steady window the benchmark
measures the telemetry messages the controller handled per second, the
controller's CPU (% of one core, from the kernel's accounting of its process),
its event-loop lag (a task inside the controller that sleeps 50 ms and records
how late it wakes), and, for missions accepted during the window, the time from
the pilot's accept to the drone being airborne (the mission's `launched` event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import psutil
import websockets

from controller import geo
from controller.bench.common import ControllerProcess, free_port, machine, percentiles, progress, stamp
from controller.config import load_config

COMMANDER = "bench-commander-token-000000001"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drones", type=int, default=140)
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, seconds")
    parser.add_argument("--missions", type=int, default=10, help="missions accepted during the window")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config()
    stations = [s for s in cfg.stations for _ in s.drones][: args.drones]
    tokens: dict[str, Any] = {COMMANDER: {"role": "commander", "name": "bench"}}
    pilot_of: dict[str, str] = {}
    for i, s in enumerate(cfg.stations):
        token = f"bench-pilot-{i:04d}-token-000000"
        tokens[token] = {"role": "pilot", "name": f"p{i}", "station_id": s.id}
        pilot_of[s.id] = token
    control_port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "sim", "--drones", str(args.drones), "--speedup", "1", "--warm",
         "--control-port", str(control_port), "--exit-with-parent"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        ready = json.loads(sim.stdout.readline() or b"{}")  # type: ignore[union-attr]
        if not ready.get("ready"):
            raise RuntimeError("simulator did not start")
        progress(f"simulator up: {ready['vehicles']} copters (pid {sim.pid})")
        with ControllerProcess(tokens, free_port(), ["--fleet", "external", "--drones", str(args.drones)]) as ctl:
            hdr = {"Authorization": f"Bearer {COMMANDER}"}
            async with httpx.AsyncClient(base_url=ctl.url, headers=hdr, timeout=30) as http:
                deadline = time.monotonic() + 120
                while True:
                    m = (await http.get("/api/v1/metrics")).json()
                    if m["fleet"]["links_up"] == args.drones:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {m['fleet']['links_up']} of {args.drones} links came up")
                    await asyncio.sleep(0.5)
                progress(f"controller linked to all {args.drones} drones; settling")
                await asyncio.sleep(5)
                proc, sim_proc = psutil.Process(ctl.pid), psutil.Process(sim.pid)
                m0 = (await http.get("/api/v1/metrics?reset=true")).json()
                cpu0, sim_cpu0, t0 = _cpu(proc), _cpu(sim_proc), time.monotonic()
                airborne = await _missions(ctl.url, http, stations, pilot_of, args)
                remaining = args.duration - (time.monotonic() - t0)
                if remaining > 0:
                    await asyncio.sleep(remaining)
                m1 = (await http.get("/api/v1/metrics")).json()
                wall = time.monotonic() - t0
                cpu = (_cpu(proc) - cpu0) / wall * 100
                sim_cpu = (_cpu(sim_proc) - sim_cpu0) / wall * 100
    finally:
        sim.terminate()
        sim.wait(15)
    rate = (m1["fleet"]["telemetry_messages"] - m0["fleet"]["telemetry_messages"]) / wall
    lag = m1["loop_lag"]
    return {
        "benchmark": "fleet",
        "date": stamp(),
        "machine": machine(),
        "drones": args.drones,
        "window_s": round(wall, 1),
        "links_up": m1["fleet"]["links_up"],
        "telemetry_msgs_per_s": round(rate, 1),
        "controller_cpu_pct_of_one_core": round(cpu, 1),
        "simulator_cpu_pct_of_one_core": round(sim_cpu, 1),
        "event_loop_lag": lag,
        "missions": len(airborne),
        "accept_to_airborne_s": percentiles(airborne),
        "target": {"controller_cpu_pct_below": 50, "loop_lag_p99_ms_below": 20},
        "meets_target": cpu < 50 and lag.get("p99_ms", 1e9) < 20,
    }


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


async def _missions(url: str, http: httpx.AsyncClient, stations, pilot_of, args) -> list[float]:  # noqa: ANN001
    """Accept missions spread over the window; time accept -> `launched` from the event stream."""
    ws_url = url.replace("http://", "ws://") + "/api/v1/events"
    launched: dict[str, float] = {}
    accepted: dict[str, float] = {}

    async def listen() -> None:
        async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {COMMANDER}"}, compression=None) as ws:
            async for raw in ws:
                e = json.loads(raw)
                if e.get("type") == "mission.updated" and e["data"].get("state") == "launched":
                    launched.setdefault(e["mission_id"], time.monotonic())

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.5)
    gap = args.duration / max(args.missions, 1) * 0.5
    step = max(1, len(stations) // max(args.missions, 1))
    for i in range(args.missions):
        s = stations[(i * step) % len(stations)]
        lat, lon = geo.destination(s.lat, s.lon, 45.0, 300.0)
        r = await http.post("/api/v1/incidents", json={"grade": 2, "category": "other", "lat": lat, "lon": lon, "description": f"fleet-bench-{i}"})
        r.raise_for_status()
        missions = (await http.get(f"/api/v1/missions?incident={r.json()['id']}")).json()
        offer = next(m for m in missions if m["state"] == "offered")
        t = time.monotonic()
        a = await http.post(f"/api/v1/missions/{offer['id']}/accept", headers={"Authorization": f"Bearer {pilot_of[offer['station_id']]}"})
        a.raise_for_status()
        accepted[offer["id"]] = t
        progress(f"  mission {i + 1}/{args.missions}: {offer['drone_id']} accepted")
        await asyncio.sleep(gap)
    deadline = time.monotonic() + 60
    while len(launched.keys() & accepted.keys()) < len(accepted) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    return [launched[m] - accepted[m] for m in accepted if m in launched]


def summarize(r: dict[str, Any]) -> str:
    lag, air = r["event_loop_lag"], r["accept_to_airborne_s"]
    return (
        f"fleet: {r['drones']} drones at real time, {r['window_s']} s window, {r['links_up']} links up\n"
        f"  telemetry handled: {r['telemetry_msgs_per_s']} msgs/s; controller CPU {r['controller_cpu_pct_of_one_core']} % "
        f"of one core (simulator {r['simulator_cpu_pct_of_one_core']} %)\n"
        f"  event-loop lag p50 {lag.get('p50_ms')} ms, p99 {lag.get('p99_ms')} ms, max {lag.get('max_ms')} ms\n"
        f"  accept -> airborne over {r['missions']} missions: p50 {air.get('p50')} s, max {air.get('max')} s\n"
        f"  targets (CPU < 50 %, lag p99 < 20 ms): {'met' if r['meets_target'] else 'NOT met'}"
    )
