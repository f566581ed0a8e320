"""`dronefleet bench api`: time from `POST /incidents` to the offer arriving on the pilot's WebSocket.

Set-up, as in production: a real `dronefleet serve` process on loopback with the
140-station roster, one pilot WebSocket per station, and 200 open incidents
already in the controller. Those 200 lie beyond every drone's range, so they
stay open and queued, and every dispatch pass re-evaluates them: the heavy case.

Each measured call is placed near a random station; the clock starts just
before the POST and stops when the matching `offer.created` event is read from
that station's pilot socket (matched by a unique description, since the event
can arrive before the POST returns). The incident is then cancelled to free the
drone.

Two phases: latency, one call at a time (the controller's own response time),
then throughput, closed-loop workers at the given concurrency (how many calls a
second it sustains, and what latency looks like when it is that busy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from typing import Any

import httpx
import websockets

from controller import geo
from controller.bench.common import ControllerProcess, free_port, machine, percentiles, progress, stamp
from controller.config import load_config

CATEGORIES = ("traffic_accident", "violent_crime", "fire", "other")
COMMANDER = "bench-commander-token-000000001"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--incidents", type=int, default=1000, help="measured incidents per phase (default 1000)")
    parser.add_argument("--preload", type=int, default=200, help="open incidents present before measuring")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop workers in the throughput phase")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured incidents first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--port", type=int, default=0, help="controller port (default: a free one)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


def _tokens(station_ids: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    tokens: dict[str, Any] = {COMMANDER: {"role": "commander", "name": "bench"}}
    pilots = {}
    for i, sid in enumerate(station_ids):
        token = f"bench-pilot-{i:04d}-token-000000"
        tokens[token] = {"role": "pilot", "name": f"p{i}", "station_id": sid}
        pilots[sid] = token
    return tokens, pilots


def _remote_points(cfg, n: int, rng: random.Random) -> list[tuple[float, float]]:
    """Points 100-140 km from the centre and over 20 km from every station: no drone can reach them."""
    lat0, lon0 = cfg.frame.lat0, cfg.frame.lon0
    out: list[tuple[float, float]] = []
    while len(out) < n:
        lat, lon = geo.destination(lat0, lon0, rng.uniform(0, 360), rng.uniform(100_000, 140_000))
        if all(geo.equirectangular_m(lat, lon, s.lat, s.lon) > 20_000 for s in cfg.stations) and all(
            geo.equirectangular_m(lat, lon, a, b) > 500 for a, b in out
        ):
            out.append((lat, lon))
    return out


async def _pilot_socket(url: str, token: str, arrivals: dict[str, float], waiters: dict[str, asyncio.Future]) -> None:
    async with websockets.connect(url, subprotocols=["dronefleet", token], max_queue=None, compression=None) as ws:
        async for raw in ws:
            if '"offer.created"' not in raw:
                continue
            event = json.loads(raw)
            key = event["data"]["incident"]["description"]
            now = time.perf_counter()
            arrivals.setdefault(key, now)
            fut = waiters.get(key)
            if fut is not None and not fut.done():
                fut.set_result(now)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config()
    rng = random.Random(args.seed)
    tokens, pilots = _tokens([s.id for s in cfg.stations])
    port = args.port or free_port()
    hdr = {"Authorization": f"Bearer {COMMANDER}"}
    with ControllerProcess(tokens, port, ["--fleet", "none"]) as ctl:
        async with httpx.AsyncClient(base_url=ctl.url, headers=hdr, timeout=30, limits=httpx.Limits(max_connections=64)) as http:
            progress(f"controller up on {ctl.url} (pid {ctl.pid}); preloading {args.preload} open incidents")
            for i, (lat, lon) in enumerate(_remote_points(cfg, args.preload, rng)):
                body = {"grade": 4, "category": "other", "lat": lat, "lon": lon, "description": f"preload-{i}"}
                r = await http.post("/api/v1/incidents", json=body)
                r.raise_for_status()
            health = (await http.get("/health")).json()
            assert health["open_incidents"] >= args.preload, health

            ws_url = ctl.url.replace("http://", "ws://") + "/api/v1/events"
            arrivals: dict[str, float] = {}
            waiters: dict[str, asyncio.Future] = {}
            sockets = [asyncio.create_task(_pilot_socket(ws_url, t, arrivals, waiters)) for t in pilots.values()]
            await asyncio.sleep(1.0)
            progress(f"{len(sockets)} pilot sockets connected; measuring {args.incidents} incidents at concurrency {args.concurrency}")

            stations = list(cfg.stations)
            loop = asyncio.get_running_loop()
            serial = 0

            async def one(latencies: list[float], posts: list[float], measure: bool) -> bool:
                """One call: POST, wait for its offer on the pilot socket, cancel. False if it merged."""
                nonlocal serial
                serial += 1
                s = rng.choice(stations)
                lat, lon = geo.destination(s.lat, s.lon, rng.uniform(0, 360), rng.uniform(300, 1500))
                key = f"bench-{serial}"
                body = {"grade": rng.randint(1, 3), "category": rng.choice(CATEGORIES), "lat": lat, "lon": lon, "description": key}
                fut = loop.create_future()
                waiters[key] = fut
                t0 = time.perf_counter()
                r = await http.post("/api/v1/incidents", json=body)
                t_post = time.perf_counter()
                r.raise_for_status()
                if r.status_code == 200:  # merged into an open incident near by: no new offer to time
                    waiters.pop(key, None)
                    return False
                t_offer = arrivals[key] if key in arrivals else await asyncio.wait_for(fut, 30)
                waiters.pop(key, None)
                if measure:
                    latencies.append(t_offer - t0)
                    posts.append(t_post - t0)
                (await http.post(f"/api/v1/incidents/{r.json()['id']}/cancel", json={"reason": "benchmark"})).raise_for_status()
                return True

            async def phase(name: str, concurrency: int) -> dict[str, Any]:
                latencies: list[float] = []
                posts: list[float] = []
                merged = 0
                for _ in range(args.warmup):
                    await one([], [], False)
                remaining = iter(range(args.incidents))

                async def worker() -> None:
                    nonlocal merged
                    for _ in remaining:
                        if not await one(latencies, posts, True):
                            merged += 1
                        if latencies and len(latencies) % 250 == 0:
                            progress(f"  {name}: {len(latencies)}/{args.incidents}")

                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                wall = time.perf_counter() - started
                lat = percentiles(latencies, 1000)
                progress(f"{name}: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, {len(latencies) / wall:.1f} incidents/s")
                return {
                    "concurrency": concurrency,
                    "incidents_measured": len(latencies),
                    "merged_skipped": merged,
                    "post_to_offer_ms": lat,
                    "post_response_ms": percentiles(posts, 1000),
                    "incidents_per_s": round(len(latencies) / wall, 1),
                }

            latency_phase = await phase("latency", 1)
            throughput_phase = await phase("throughput", args.concurrency)
            for task in sockets:
                task.cancel()
            await asyncio.gather(*sockets, return_exceptions=True)
            final = (await http.get("/health")).json()

    p99 = latency_phase["post_to_offer_ms"].get("p99", float("inf"))
    return {
        "benchmark": "api",
        "date": stamp(),
        "machine": machine(),
        "stations": len(cfg.stations),
        "drones": sum(len(s.drones) for s in cfg.stations),
        "preloaded_open_incidents": args.preload,
        "open_incidents_at_end": final["open_incidents"],
        "pilot_sockets": len(pilots),
        "latency": latency_phase,
        "throughput": throughput_phase,
        "target": {"p99_ms_below": 50},
        "meets_target": p99 < 50,
    }


def summarize(r: dict[str, Any]) -> str:
    lines = [
        f"api: {r['stations']} stations / {r['drones']} drones, {r['preloaded_open_incidents']} open incidents "
        f"preloaded, {r['pilot_sockets']} pilot sockets"
    ]
    for name in ("latency", "throughput"):
        p = r[name]
        lat = p["post_to_offer_ms"]
        lines.append(
            f"  {name:10s} (concurrency {p['concurrency']}): {p['incidents_measured']} incidents, POST -> offer "
            f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms, {p['incidents_per_s']} incidents/s"
        )
    lines.append(f"  target p99 < 50 ms (latency phase): {'met' if r['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
