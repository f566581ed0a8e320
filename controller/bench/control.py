"""`dronefleet bench control`: pilot commands in flight, through the HTTP API, across a fleet in the air.

A real `dronefleet serve` with the built-in simulated fleet (140 drones by
default, real time) on loopback. Calls are placed near `--missions` stations and
a pilot bot accepts each offer with that station's pilot token; once the drones
are over their scenes, every one of those pilots directs their drone as a
person would: a command (fly to a point, change height, orbit a point, hold,
gimbal pitch, point the camera), then a few seconds' thought, and after a
fly-to, height change or orbit they watch the drone get there (the
`drone.telemetry` events the pilot page shows, 1 Hz) before the next one.

Measured for every command:
- the vehicle's acknowledgement as the controller timed it (`acked_in_ms` of the
  CommandOut: from the first MAVLink request to the last COMMAND_ACK / PARAM_VALUE
  echo; an orbit is three PARAM_SETs and a DO_REPOSITION),
- the HTTP round trip of `POST /drones/{id}/commands` as the pilot's client sees
  it (checks, the vehicle's acknowledgement, the timeline step and the event),
- for fly-to, height and orbit: whether the target was reached within a time
  budget (the flight there at 8 m/s, plus `--slack` s): a fly-to within the
  arrival radius (configs/flight.yaml), a height within 2 m, an orbit in CIRCLE
  at its radius within 5 m.

Target (issue 17): command -> vehicle acknowledgement p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml

from controller import geo
from controller.bench.api_latency import _tokens
from controller.bench.common import ControllerProcess, free_port, machine, percentiles, progress, stamp
from controller.config import default_config_dir, load_config
from sitl.fleet import free_base_port

COMMANDER = "bench-commander-token-000000001"
KINDS = ("fly_to", "altitude", "orbit", "hold", "gimbal", "roi")
#: How often each kind is chosen.
WEIGHTS = (0.30, 0.15, 0.15, 0.10, 0.15, 0.15)
#: Commands whose target is checked.
MOVES = ("fly_to", "altitude", "orbit")
ALT_REACHED_M = 2.0
ORBIT_REACHED_M = 5.0
#: Speed the time budget assumes for the flight to a target (the m3td cruises at 12 m/s).
BUDGET_SPEED_MS = 8.0
TARGET_P99_MS = 200.0
#: A 409 saying the drone no longer flies its mission: its pilot stops.
GONE = ("no mission in flight", "returning", "is not possible now")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drones", type=int, default=140, help="simulated fleet size")
    parser.add_argument("--missions", type=int, default=20, help="drones put in the air, each directed by its pilot")
    parser.add_argument("--window", type=float, default=180.0, help="seconds of pilot commands (wall time)")
    parser.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"),
                        help="a pilot's pause between commands (s, uniform)")
    parser.add_argument("--slack", type=float, default=20.0, help="seconds added to a target's time budget (simulated)")
    parser.add_argument("--speedup", type=float, default=1.0, help="simulator speed-up (default real time)")
    parser.add_argument("--seed", type=int, default=17)


def run(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(_run(args))


def _configs(dest: Path, base_port: int, speedup: float) -> Path:
    shutil.copytree(default_config_dir(), dest)
    flight = yaml.safe_load((dest / "flight.yaml").read_text())
    flight["links"]["base_port"] = base_port
    flight["failsafe"]["gcs_timeout_s"] = max(5, round(5 * speedup))  # heartbeats are 1 Hz in wall time
    (dest / "flight.yaml").write_text(yaml.safe_dump(flight))
    return dest


@dataclass
class Sent:
    kind: str
    drone_id: str
    status: int
    http_ms: float
    acked_ms: float | None
    reached: bool | None = None
    reach_s: float | None = None
    detail: str = ""
    #: The pilot's previous command to this drone.
    after: str = ""


@dataclass
class Fleet:
    """The latest `drone.telemetry` of every drone, from the commander's event stream."""

    telemetry: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: dict[str, float] = field(default_factory=dict)
    events: int = 0

    async def listen(self, url: str, token: str) -> None:
        async with websockets.connect(url, subprotocols=["dronefleet", token], max_queue=None, compression=None) as ws:
            async for raw in ws:
                if '"drone.telemetry"' not in raw:
                    continue
                e = json.loads(raw)
                d = e["data"]
                self.telemetry[d["drone_id"]] = d
                self.updated[d["drone_id"]] = time.monotonic()
                self.events += 1


class PilotBot:
    def __init__(self, args: argparse.Namespace, http: httpx.AsyncClient, pilots: dict[str, str], fleet: Fleet,
                 arrival_m: float, rng: random.Random) -> None:
        self.a = args
        self.http = http
        self.pilots = pilots
        self.fleet = fleet
        self.arrival_m = arrival_m
        self.rng = rng
        self.sent: list[Sent] = []
        #: Drones whose pilot stopped: why.
        self.lost: dict[str, str] = {}

    def _hdr(self, station_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.pilots[station_id]}"}

    def _command(self, kind: str, scene: tuple[float, float], here: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """A command body and what reaching it means (None: nothing to reach)."""
        rng = self.rng
        if kind == "fly_to":
            lat, lon = geo.destination(*scene, rng.uniform(0, 360), rng.uniform(60, 250))
            alt = round(rng.uniform(30, 90))
            return {"kind": kind, "lat": lat, "lon": lon, "alt_m": alt}, ("point", lat, lon, alt)
        if kind == "altitude":
            alt = round(rng.uniform(30, 90))
            return {"kind": kind, "alt_m": alt}, ("alt", alt)
        if kind == "orbit":
            lat, lon = geo.destination(*scene, rng.uniform(0, 360), rng.uniform(0, 150))
            radius = round(rng.uniform(30, 120))
            body = {"kind": kind, "lat": lat, "lon": lon, "radius_m": radius, "direction": rng.choice(("cw", "ccw")),
                    "speed_ms": round(rng.uniform(4, 10), 1)}
            return body, ("orbit", lat, lon, radius)
        if kind == "gimbal":
            return {"kind": kind, "pitch_deg": round(rng.uniform(-90, 0))}, None
        if kind == "roi":
            lat, lon = geo.destination(*scene, rng.uniform(0, 360), rng.uniform(0, 100))
            return {"kind": kind, "lat": lat, "lon": lon}, None
        return {"kind": kind}, None

    def _budget_s(self, goal: Any, here: dict[str, Any]) -> float:
        """Simulated seconds allowed to reach `goal` from `here`."""
        if goal[0] == "alt":
            dist = abs(goal[1] - (here.get("alt_rel_m") or 0))
        elif goal[0] == "point":
            dist = geo.distance_m(here["lat"], here["lon"], goal[1], goal[2]) + abs(goal[3] - (here.get("alt_rel_m") or 0))
        else:
            dist = geo.distance_m(here["lat"], here["lon"], goal[1], goal[2]) + goal[3]
        return dist / BUDGET_SPEED_MS + self.a.slack

    def _reached(self, goal: Any, t: dict[str, Any]) -> bool:
        if t.get("lat") is None:
            return False
        if goal[0] == "alt":
            return abs((t.get("alt_rel_m") or 0) - goal[1]) <= ALT_REACHED_M
        if goal[0] == "point":
            return geo.distance_m(t["lat"], t["lon"], goal[1], goal[2]) <= self.arrival_m
        # an orbit: circling, at its radius
        return t.get("mode") == 7 and abs(geo.distance_m(t["lat"], t["lon"], goal[1], goal[2]) - goal[3]) <= ORBIT_REACHED_M

    async def fly(self, mission: dict[str, Any], scene: tuple[float, float], until: float) -> None:
        """One pilot directing one drone until the window ends."""
        drone, station = mission["drone_id"], mission["station_id"]
        rng = self.rng
        previous = ""
        await asyncio.sleep(rng.uniform(0, self.a.think[1]))  # pilots do not all start at once
        while time.monotonic() < until:
            kind = rng.choices(KINDS, WEIGHTS)[0]
            here = self.fleet.telemetry.get(drone) or {}
            if here.get("lat") is None:
                await asyncio.sleep(1.0)
                continue
            body, goal = self._command(kind, scene, here)
            t0 = time.perf_counter()
            try:
                r = await self.http.post(f"/api/v1/drones/{drone}/commands", json=body, headers=self._hdr(station))
            except httpx.HTTPError as exc:
                self.sent.append(Sent(kind, drone, 0, (time.perf_counter() - t0) * 1000, None, detail=str(exc)))
                await asyncio.sleep(1.0)
                continue
            http_ms = (time.perf_counter() - t0) * 1000
            try:
                out = r.json()
            except ValueError:
                out = {"detail": r.text}
            s = Sent(kind, drone, r.status_code, http_ms, out.get("acked_in_ms") if r.status_code == 200 else None,
                     detail="" if r.status_code == 200 else str(out.get("detail"))[:300], after=previous)
            self.sent.append(s)
            previous_kind, previous = previous or "-", kind
            if r.status_code >= 500 or (r.status_code == 409 and any(w in s.detail for w in GONE)):
                # the drone left its mission (a server error, a failsafe, gone home): its pilot stops here
                self.lost[drone] = f"{r.status_code} to {kind} (after {previous_kind}): {s.detail}"
                return
            if r.status_code == 200 and goal is not None:
                budget = self._budget_s(goal, here) / self.a.speedup
                sent_at = time.monotonic()
                s.reached = False
                while time.monotonic() - sent_at < budget:
                    t = self.fleet.telemetry.get(drone) or {}
                    if self.fleet.updated.get(drone, 0) > sent_at and self._reached(goal, t):
                        s.reached, s.reach_s = True, round((time.monotonic() - sent_at) * self.a.speedup, 1)
                        break
                    await asyncio.sleep(0.2)
            await asyncio.sleep(rng.uniform(*self.a.think))


async def _launch(args: argparse.Namespace, http: httpx.AsyncClient, cfg: Any, pilots: dict[str, str],
                  rng: random.Random) -> list[tuple[dict[str, Any], tuple[float, float]]]:
    """Calls near `missions` stations of the simulated roster, each offer accepted by its station's pilot; returns
    the missions on scene with their scenes."""
    flying = [s for s in cfg.stations if s.drones][: args.drones]
    stations = rng.sample(flying, min(args.missions, len(flying)))
    scenes: dict[str, tuple[float, float]] = {}
    for i, s in enumerate(stations):
        lat, lon = geo.destination(s.lat, s.lon, rng.uniform(0, 360), rng.uniform(200, 400))
        body = {"grade": 2, "category": "traffic_accident", "lat": lat, "lon": lon, "description": f"control-{i}"}
        r = await http.post("/api/v1/incidents", json=body)
        r.raise_for_status()
        scenes[r.json()["id"]] = (lat, lon)
    accepted: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60
    while len(accepted) < len(scenes) and time.monotonic() < deadline:
        offers = (await http.get("/api/v1/missions", params={"state": "offered", "limit": 1000})).json()
        for m in offers:
            if m["incident_id"] in scenes and m["id"] not in accepted and m["station_id"] in pilots:
                r = await http.post(f"/api/v1/missions/{m['id']}/accept",
                                    headers={"Authorization": f"Bearer {pilots[m['station_id']]}"})
                if r.status_code == 200:
                    accepted[m["id"]] = r.json()
        await asyncio.sleep(0.5)
    progress(f"{len(accepted)} of {len(scenes)} offers accepted; waiting for the drones on scene")
    on_scene: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 60 + 240 / args.speedup
    while accepted and time.monotonic() < deadline:
        for mid in list(accepted):
            m = (await http.get(f"/api/v1/missions/{mid}")).json()
            if m["state"] == "on_scene":
                on_scene[mid] = accepted.pop(mid)
            elif m["state"] not in ("accepted", "launched"):
                progress(f"  {mid} ended {m['state']} before the scene: {m.get('reason')}")
                accepted.pop(mid)
        await asyncio.sleep(1.0)
    return [(m, scenes[m["incident_id"]]) for m in on_scene.values()]


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config()
    rng = random.Random(args.seed)
    tokens, pilots = _tokens([s.id for s in cfg.stations])
    tmp = Path(tempfile.mkdtemp(prefix="dronefleet-control-"))
    cfg_dir = _configs(tmp / "configs", free_base_port(args.drones), args.speedup)
    arrival_m = float(yaml.safe_load((cfg_dir / "flight.yaml").read_text())["arrival_radius_m"])
    hdr = {"Authorization": f"Bearer {COMMANDER}"}
    extra = ["--fleet", "sim", "--drones", str(args.drones), "--speedup", str(args.speedup)]
    started = time.monotonic()
    with ControllerProcess(tokens, free_port(), extra, config_dir=cfg_dir) as ctl:
        async with httpx.AsyncClient(base_url=ctl.url, headers=hdr, timeout=30,
                                     limits=httpx.Limits(max_connections=args.missions + 8)) as http:
            progress(f"controller with {args.drones} simulated drones ({args.speedup:g}x) up on {ctl.url}; waiting for the fleet")
            deadline = time.monotonic() + 120
            while True:
                links = (await http.get("/api/v1/metrics")).json().get("fleet", {}).get("links_up", 0)
                if links >= args.drones or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            progress(f"{links} links up; calls near {args.missions} stations, the pilot bot accepts")
            fleet = Fleet()
            ws_url = ctl.url.replace("http://", "ws://") + "/api/v1/events"
            listener = asyncio.create_task(fleet.listen(ws_url, COMMANDER))
            in_air = await _launch(args, http, cfg, pilots, rng)
            launch_s = time.monotonic() - started
            progress(f"{len(in_air)} drones on scene after {launch_s:.0f} s; {len(in_air)} pilots directing them for {args.window:g} s")
            bot = PilotBot(args, http, pilots, fleet, arrival_m, rng)
            await http.get("/api/v1/metrics?reset=true")
            t0 = time.monotonic()
            until = t0 + args.window

            async def report() -> None:
                while True:
                    await asyncio.sleep(15)
                    ok = [s for s in bot.sent if s.status == 200]
                    progress(f"  {time.monotonic() - t0:.0f} s: {len(bot.sent)} commands, {len(ok)} acknowledged")

            reporter = asyncio.create_task(report())
            await asyncio.gather(*(bot.fly(m, scene, until) for m, scene in in_air))
            wall = time.monotonic() - t0
            reporter.cancel()
            metrics = (await http.get("/api/v1/metrics")).json()
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener
    shutil.rmtree(tmp, ignore_errors=True)
    return _result(args, bot, len(in_air), wall, launch_s, fleet.events, metrics, arrival_m)


def _result(args: argparse.Namespace, bot: PilotBot, in_air: int, wall: float, launch_s: float, events: int,
            metrics: dict[str, Any], arrival_m: float) -> dict[str, Any]:
    sent = bot.sent
    ok = [s for s in sent if s.status == 200]
    acked = [s.acked_ms for s in ok if s.acked_ms is not None]
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        mine = [s for s in sent if s.kind == kind]
        mine_ok = [s for s in mine if s.status == 200]
        entry: dict[str, Any] = {
            "sent": len(mine), "acknowledged": len(mine_ok),
            "acked_ms": percentiles([s.acked_ms for s in mine_ok if s.acked_ms is not None]),
            "http_ms": percentiles([s.http_ms for s in mine_ok]),
        }
        if kind in MOVES:
            judged = [s for s in mine_ok if s.reached is not None]
            entry["reached"] = sum(1 for s in judged if s.reached)
            entry["judged"] = len(judged)
            entry["reached_share"] = round(entry["reached"] / len(judged), 3) if judged else None
            entry["time_to_reach_s"] = percentiles([s.reach_s for s in judged if s.reach_s is not None])
        by_kind[kind] = entry
    judged = [s for s in ok if s.reached is not None]
    reached = sum(1 for s in judged if s.reached)
    refusals = Counter(f"{s.status}" for s in sent if s.status != 200)
    p99 = percentiles(acked).get("p99", float("inf"))
    http_p99 = percentiles([s.http_ms for s in ok]).get("p99", float("inf"))
    return {
        "benchmark": "control",
        "date": stamp(),
        "machine": machine(),
        "fleet": {"drones": args.drones, "speedup": args.speedup, "in_air": in_air, "launch_s": round(launch_s, 1)},
        "window_s": round(wall, 1),
        "think_s": list(args.think),
        "commands": len(sent),
        "acknowledged": len(ok),
        "commands_per_s": round(len(sent) / wall, 2) if wall else 0.0,
        "refused": dict(refusals),
        "refusal_samples": sorted({f"{s.status} {s.kind} (after {s.after or '-'}): {s.detail}" for s in sent if s.status != 200})[:8],
        "server_errors": sum(1 for s in sent if s.status >= 500),
        "drones_lost": bot.lost,
        "acked_ms": percentiles(acked),
        "http_ms": percentiles([s.http_ms for s in ok]),
        "by_kind": by_kind,
        "targets_judged": len(judged),
        "targets_reached": reached,
        "reached_share": round(reached / len(judged), 3) if judged else None,
        "reach_rules": {
            "budget": f"distance / {BUDGET_SPEED_MS:g} m/s + {args.slack:g} s (simulated)",
            "fly_to_within_m": arrival_m, "altitude_within_m": ALT_REACHED_M, "orbit_radius_within_m": ORBIT_REACHED_M,
        },
        "telemetry_events": events,
        "loop_lag_ms": metrics.get("loop_lag", {}),
        "target": {"acked_p99_ms_below": TARGET_P99_MS},
        "meets_target": p99 < TARGET_P99_MS and http_p99 < TARGET_P99_MS,
    }


def summarize(r: dict[str, Any]) -> str:
    a, h = r["acked_ms"], r["http_ms"]
    lines = [
        f"control: {r['fleet']['in_air']} drones in the air of {r['fleet']['drones']} ({r['fleet']['speedup']:g}x), "
        f"{r['commands']} pilot commands in {r['window_s']:g} s ({r['commands_per_s']:g}/s), {r['acknowledged']} acknowledged, "
        f"refused {r['refused'] or 'none'}",
        f"  command -> vehicle ack p50 {a.get('p50', 0):.1f} ms, p99 {a.get('p99', 0):.1f} ms (max {a.get('max', 0):.1f}); "
        f"HTTP round trip p50 {h.get('p50', 0):.1f} ms, p99 {h.get('p99', 0):.1f} ms",
    ]
    for kind, k in r["by_kind"].items():
        reach = (f", reached {k['reached']}/{k['judged']} (median {k['time_to_reach_s'].get('p50', 0):.0f} s)"
                 if "reached" in k else "")
        lines.append(f"  {kind:8s} {k['acknowledged']:4d}/{k['sent']:<4d} ack p50 {k['acked_ms'].get('p50', 0):6.1f} "
                     f"p99 {k['acked_ms'].get('p99', 0):6.1f} ms, HTTP p99 {k['http_ms'].get('p99', 0):6.1f} ms{reach}")
    for drone, why in r["drones_lost"].items():
        lines.append(f"  pilot of {drone} stopped: {why}")
    share = r["reached_share"]
    lines.append(f"  targets reached: {r['targets_reached']}/{r['targets_judged']}"
                 + (f" ({share * 100:.1f} %)" if share is not None else ""))
    if r["server_errors"]:
        lines.append(f"  SERVER ERRORS: {r['server_errors']}")
    lines.append(f"  target ack and HTTP p99 < {TARGET_P99_MS:g} ms: {'met' if r['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
