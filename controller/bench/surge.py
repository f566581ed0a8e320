"""`dronefleet bench surge --queued 2000`: the controller holding a surge of calls it cannot serve yet.

A real `dronefleet serve` with the simulated 140-drone fleet (its own process,
on a free port range) is loaded with N calls that stay queued: they lie 100-140
km away, beyond every drone's battery. While they wait, the benchmark measures:

- event-loop lag (the controller's own monitor, reset at the start of the window);
- API latency of cheap reads under that load (`GET /me`, `GET /drones`, `GET /health`);
- call -> offer for new feasible calls (near a station; the offer read on the
  station pilot's WebSocket), each cancelled once offered;
- then the time to cancel every queued call.

Targets (issue): at 2,000 queued, loop lag p99 < 50 ms, API p99 < 100 ms,
call -> offer p99 < 100 ms, and all 2,000 cancelled in under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml

from controller import geo
from controller.bench.api_latency import _remote_points, _tokens
from controller.bench.common import ControllerProcess, free_port, machine, percentiles, progress, stamp
from controller.config import default_config_dir, load_config
from sitl.fleet import free_base_port

COMMANDER = "bench-commander-token-000000001"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queued", type=int, default=2000, help="calls preloaded that stay queued")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients posting the preload")
    parser.add_argument("--calls", type=int, default=100, help="feasible calls measured while the queue is full")
    parser.add_argument("--reads", type=int, default=600, help="API reads measured while the queue is full")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured with the queue full")
    parser.add_argument("--drones", type=int, default=140)
    parser.add_argument("--fleet", choices=("sim", "none"), default="sim", help="simulated fleet, or none (dispatch only)")
    parser.add_argument(
        "--where", choices=("far", "near"), default="far",
        help="far: the queued calls are beyond every drone; near: inside the city, more calls than drones (every drone "
        "offered, offers expiring unanswered and passed on: the churn of a storm)",
    )
    parser.add_argument("--seed", type=int, default=11)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


def _configs(dest: Path, base_port: int) -> Path:
    shutil.copytree(default_config_dir(), dest)
    flight = yaml.safe_load((dest / "flight.yaml").read_text())
    flight["links"]["base_port"] = base_port
    (dest / "flight.yaml").write_text(yaml.safe_dump(flight))
    return dest


def _city_points(cfg, n: int, rng: random.Random) -> list[tuple[float, float]]:  # noqa: ANN001
    """Points 0.5-4 km from stations, over 350 m apart (no repeat-call merge): every one a drone can serve."""
    stations = list(cfg.stations)
    out: list[tuple[float, float]] = []
    while len(out) < n:
        s = rng.choice(stations)
        p = geo.destination(s.lat, s.lon, rng.uniform(0, 360), rng.uniform(500, 4000))
        if all(geo.equirectangular_m(p[0], p[1], a, b) > 350 for a, b in out[-400:]):
            out.append(p)
    return out


async def _pilot_socket(url: str, token: str, waiters: dict[str, asyncio.Future]) -> None:
    async with websockets.connect(url, subprotocols=["dronefleet", token], max_queue=None, compression=None) as ws:
        async for raw in ws:
            if '"offer.created"' not in raw:
                continue
            key = json.loads(raw)["data"]["incident"]["description"]
            fut = waiters.get(key)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config()
    rng = random.Random(args.seed)
    tokens, pilots = _tokens([s.id for s in cfg.stations])
    tmp = Path(tempfile.mkdtemp(prefix="dronefleet-surge-"))
    cfg_dir = _configs(tmp / "configs", free_base_port(args.drones))
    hdr = {"Authorization": f"Bearer {COMMANDER}"}
    extra = ["--fleet", args.fleet, "--drones", str(args.drones)]
    with ControllerProcess(tokens, free_port(), extra, config_dir=cfg_dir) as ctl:
        limits = httpx.Limits(max_connections=args.clients + 8)
        async with httpx.AsyncClient(base_url=ctl.url, headers=hdr, timeout=60, limits=limits) as http:
            progress(f"controller with {args.drones} simulated drones up on {ctl.url}; waiting for the fleet")
            deadline = time.monotonic() + (120 if args.fleet == "sim" else 0)
            while True:
                fleet = (await http.get("/api/v1/metrics")).json().get("fleet", {})
                if fleet.get("links_up", 0) >= args.drones or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            progress(f"{fleet.get('links_up', 0)} links up; preloading {args.queued} calls from {args.clients} clients")
            points = _remote_points(cfg, args.queued, rng) if args.where == "far" else _city_points(cfg, args.queued, rng)
            queue: asyncio.Queue[tuple[int, tuple[float, float]]] = asyncio.Queue()
            for item in enumerate(points):
                queue.put_nowait(item)
            post_ms: list[float] = []
            ids: list[str] = []

            async def poster() -> None:
                while not queue.empty():
                    i, (lat, lon) = queue.get_nowait()
                    body = {"grade": 4, "category": "other", "lat": lat, "lon": lon, "description": f"surge-{i}"}
                    t0 = time.perf_counter()
                    r = await http.post("/api/v1/incidents", json=body)
                    post_ms.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    if r.status_code == 201:  # a repeat call merged (200) is the same incident
                        ids.append(r.json()["id"])

            t0 = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(args.clients)))
            preload_s = time.perf_counter() - t0
            progress(f"preloaded {len(ids)} in {preload_s:.1f} s ({len(ids) / preload_s:.0f}/s); measuring for {args.window:g} s")

            ws_url = ctl.url.replace("http://", "ws://") + "/api/v1/events"
            waiters: dict[str, asyncio.Future] = {}
            sockets = [asyncio.create_task(_pilot_socket(ws_url, t, waiters)) for t in pilots.values()]
            await asyncio.sleep(1.0)
            await http.get("/api/v1/metrics?reset=true")
            read_ms: list[float] = []
            offer_ms: list[float] = []
            window_end = time.monotonic() + args.window

            async def reader() -> None:
                paths = ("/api/v1/me", "/api/v1/drones", "/health")
                n = 0
                while time.monotonic() < window_end and n < args.reads:
                    t = time.perf_counter()
                    (await http.get(paths[n % len(paths)])).raise_for_status()
                    read_ms.append((time.perf_counter() - t) * 1000)
                    n += 1
                    await asyncio.sleep(args.window / args.reads)

            async def caller() -> None:
                stations = list(cfg.stations)
                n = 0
                while time.monotonic() < window_end and n < args.calls:
                    s = rng.choice(stations)
                    lat, lon = geo.destination(s.lat, s.lon, rng.uniform(0, 360), rng.uniform(200, 800))
                    key = f"feasible-{n}"
                    fut = asyncio.get_running_loop().create_future()
                    waiters[key] = fut
                    t = time.perf_counter()
                    r = await http.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": lat, "lon": lon, "description": key})
                    r.raise_for_status()
                    inc = r.json()
                    if not inc.get("merged"):
                        try:
                            offer_ms.append((await asyncio.wait_for(fut, 10) - t) * 1000)
                        except TimeoutError:
                            offer_ms.append(10_000.0)
                        (await http.post(f"/api/v1/incidents/{inc['id']}/cancel", json={"reason": "bench"})).raise_for_status()
                    n += 1
                    await asyncio.sleep(args.window / args.calls)

            await asyncio.gather(reader(), caller())
            metrics = (await http.get("/api/v1/metrics")).json()
            lag = metrics["loop_lag"]
            progress(f"cancelling the {len(ids)} queued calls")
            t0 = time.perf_counter()
            cancel_q: asyncio.Queue[str] = asyncio.Queue()
            for i in ids:
                cancel_q.put_nowait(i)

            async def canceller() -> None:
                while not cancel_q.empty():
                    (await http.post(f"/api/v1/incidents/{cancel_q.get_nowait()}/cancel", json={"reason": "surge over"})).raise_for_status()

            await asyncio.gather(*(canceller() for _ in range(args.clients)))
            cancel_s = time.perf_counter() - t0
            health = (await http.get("/health")).json()
            for task in sockets:
                task.cancel()
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "benchmark": "surge",
        "when": stamp(),
        "machine": machine(),
        "queued": args.queued,
        "fleet": args.fleet,
        "where": args.where,
        "preload": {"seconds": round(preload_s, 2), "per_s": round(len(ids) / preload_s, 1), "post_ms": percentiles(post_ms)},
        "window_s": args.window,
        "loop_lag_ms": lag,
        "api_read_ms": percentiles(read_ms),
        "call_to_offer_ms": percentiles(offer_ms),
        "cancel_all_s": round(cancel_s, 2),
        "open_after": health["open_incidents"],
        "target": {"loop_lag_p99_ms": 50, "api_p99_ms": 100, "call_to_offer_p99_ms": 100, "cancel_all_s": 10},
    }


def summarize(result: dict[str, Any]) -> str:
    lag, api, offer = result["loop_lag_ms"], result["api_read_ms"], result["call_to_offer_ms"]
    return "\n".join([
        f"surge bench: {result['queued']} calls queued (preloaded at {result['preload']['per_s']:.0f}/s, POST p99 "
        f"{result['preload']['post_ms'].get('p99', 0):.0f} ms)",
        f"  while queued ({result['window_s']:g} s): loop lag p99 {lag.get('p99_ms', 0):.1f} ms (max {lag.get('max_ms', 0):.0f}), "
        f"API p99 {api.get('p99', 0):.1f} ms, call->offer p99 {offer.get('p99', 0):.1f} ms",
        f"  cancelling all {result['queued']}: {result['cancel_all_s']:.1f} s; open afterwards: {result['open_after']}",
    ])
