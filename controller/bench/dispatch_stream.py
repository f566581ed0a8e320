"""`dronefleet bench dispatch`: a seeded 24-hour incident stream through greedy v1, the engine, and a lower bound.

The stream: Poisson arrivals with a daily profile (thinning), a grade and
category mix, locations weighted by district population (never inside a no-fly
zone), plus bursts of simultaneous calls close together. Each dispatcher sees
the same stream in a discrete-event simulation where a drone is busy for its
time out + time on scene + time back; every flight is timed with the engine's
flight model (wind, no-fly detours) whoever chose it, so the comparison is of
choices, not of models. Offers are taken as accepted at once.

The bound serves every incident with its best drone as if the whole fleet were
idle (no queueing, no conflicts): no dispatcher can beat it.
"""

from __future__ import annotations

import argparse
import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from controller.bench.common import machine, percentiles, progress, stamp
from controller.config import FleetConfig, load_config
from controller.dispatch.base import Dispatcher, DroneCandidate, IncidentRequest
from controller.dispatch.engine import DispatchEngine, StationSite
from controller.dispatch.nearest_eta import NearestEtaDispatcher
from controller.domain.states import DroneState

GRADES = (1, 2, 3, 4)
GRADE_MIX = (0.1, 0.3, 0.4, 0.2)
CATEGORIES = ("traffic_accident", "violent_crime", "fire", "missing_person", "other")
CATEGORY_MIX = (0.4, 0.15, 0.1, 0.1, 0.25)
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
RING_S = (60.0, 180.0, 300.0)
LANDING_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--calls-per-hour", type=float, default=40.0, help="mean Poisson rate over the day")
    parser.add_argument("--bursts", type=int, default=16, help="bursts of simultaneous calls over the period")
    parser.add_argument("--burst-size", type=int, default=8, help="calls per burst (max)")
    parser.add_argument("--stations-scale", type=int, default=10, help="also time the engine on a roster this many times larger (1: skip)")
    parser.add_argument("--quick", action="store_true", help="2 hours, fewer bursts, x3 roster: for tests")
    parser.add_argument("--config-dir", default=None)


# --- the stream ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    id: str
    t: float  # seconds since the start
    grade: int
    category: str
    x: float
    y: float
    k: int
    burst: bool


def daily_profile(hour: float) -> float:
    """Relative call rate by hour of day (quiet at 4-5 h, peak in the evening), mean about 1."""
    return 1.0 + 0.6 * math.sin((hour - 11.0) / 24.0 * 2 * math.pi)


def make_stream(config: FleetConfig, engine: DispatchEngine, rng: np.random.Generator, hours: float, rate_h: float,
                bursts: int, burst_size: int) -> list[Call]:
    """Seeded calls: thinned Poisson with the daily profile, plus bursts of simultaneous nearby calls."""
    districts = config.city.districts
    pops = np.array([d.population for d in districts], dtype=float)
    centres = np.array([config.frame.to_xy(d.lat, d.lon) for d in districts])
    radii = np.array([math.sqrt(d.area_km2 * 1e6 / math.pi) for d in districts])
    k_by_grade = config.policy.search.drones_by_grade

    def place(near: tuple[float, float] | None = None, spread: float = 0.0) -> tuple[float, float]:
        while True:
            if near is None:
                i = rng.choice(len(districts), p=pops / pops.sum())
                r = radii[i] * math.sqrt(rng.uniform()) * 0.9  # uniform in the district disc
                a = rng.uniform(0, 2 * math.pi)
                x, y = centres[i, 0] + r * math.cos(a), centres[i, 1] + r * math.sin(a)
            else:
                x, y = near[0] + rng.normal(0, spread), near[1] + rng.normal(0, spread)
            if not engine.router.inside(np.array([x]), np.array([y]))[0]:
                return x, y

    def call(t: float, xy: tuple[float, float], burst: bool) -> Call:
        grade = int(rng.choice(GRADES, p=GRADE_MIX))
        category = str(rng.choice(CATEGORIES, p=CATEGORY_MIX))
        k = k_by_grade.get(grade, 1) if category == "missing_person" else 1
        return Call("", t, grade, category, xy[0], xy[1], k, burst)

    calls: list[Call] = []
    horizon = hours * 3600.0
    peak = rate_h * 1.6 / 3600.0
    t = 0.0
    while True:
        t += rng.exponential(1.0 / peak)
        if t >= horizon:
            break
        if rng.uniform() < daily_profile(t / 3600.0 % 24) / 1.6:
            calls.append(call(t, place(), False))
    for _ in range(bursts):
        t = rng.uniform(0, horizon)
        centre = place()
        for _ in range(int(rng.integers(3, burst_size + 1))):
            calls.append(call(t, place(centre, 2500.0), True))
    calls.sort(key=lambda c: c.t)
    return [replace(c, id=f"C{i:05d}") for i, c in enumerate(calls)]


# --- the fleet ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Base:
    drone_id: str
    station_id: str
    model_id: str
    x: float
    y: float


def roster(config: FleetConfig, scale: int, rng: np.random.Generator) -> tuple[list[Base], list[StationSite]]:
    """The configured stations, or `scale` copies of each jittered by up to ~2 km (a larger synthetic roster)."""
    bases, sites = [], []
    for s in config.stations:
        x0, y0 = config.frame.to_xy(s.lat, s.lon)
        for copy in range(scale):
            dx, dy = (0.0, 0.0) if copy == 0 else rng.normal(0, 1200.0, 2)
            sid = s.id if copy == 0 else f"{s.id}-x{copy}"
            models = frozenset(d.model for d in s.drones)
            sites.append(StationSite(sid, x0 + dx, y0 + dy, models))
            for d in s.drones:
                bases.append(Base(d.id if copy == 0 else f"{d.id}-x{copy}", sid, d.model, x0 + dx, y0 + dy))
    return bases, sites


# --- the simulation ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Flight:
    call: str
    grade: int
    start: float
    sx: float
    sy: float
    arrive: float
    leave: float
    free: float


@dataclass(slots=True)
class _Open:
    call: Call
    needed: int
    first_assigned: float | None = None
    arrivals: list[float] = field(default_factory=list)


def simulate(calls: Sequence[Call], bases: Sequence[Base], config: FleetConfig, dispatcher: Dispatcher,
             physics: DispatchEngine) -> dict[str, Any]:
    """Run the stream through `dispatcher`; flights are timed by `physics`. Returns per-call outcomes."""
    policy = config.policy
    models = config.drone_models
    flights: dict[str, _Flight] = {}
    waiting: dict[str, _Open] = {}
    done: dict[str, _Open] = {}
    latencies: list[float] = []
    preemptions = 0
    events: list[tuple[float, int, str]] = [(c.t, 0, c.id) for c in calls]
    by_id = {c.id: c for c in calls}
    heapq.heapify(events)
    seq = len(events)

    def candidates(now: float) -> list[DroneCandidate]:
        out = []
        for b in bases:
            f = flights.get(b.drone_id)
            state, x, y, mid, grade = DroneState.STANDBY, b.x, b.y, None, None
            if f is not None and now < f.free:
                if now < f.arrive:
                    frac = (now - f.start) / max(f.arrive - f.start, 1e-9)
                    state, x, y = DroneState.ENROUTE, b.x + frac * (f.sx - b.x), b.y + frac * (f.sy - b.y)
                elif now < f.leave:
                    state, x, y = DroneState.ON_SCENE, f.sx, f.sy
                else:
                    state = DroneState.RETURNING
                mid, grade = f"{f.call}/{b.drone_id}", f.grade
            out.append(DroneCandidate(b.drone_id, b.station_id, b.model_id, models[b.model_id], state, 100.0,
                                      0.0, 0.0, x, y, True, mid, grade))
        return out

    base_of = {b.drone_id: b for b in bases}
    while events:
        now, _, key = heapq.heappop(events)
        if key in by_id:
            c = by_id[key]
            waiting[c.id] = _Open(c, c.k)
        while events and events[0][0] <= now:  # everything at this instant (bursts) is decided together
            _, _, key = heapq.heappop(events)
            if key in by_id:
                c = by_id[key]
                waiting[c.id] = _Open(c, c.k)
        if not waiting:
            continue
        drones = candidates(now)
        wall = T0 + timedelta(seconds=now)
        requests = [
            IncidentRequest(o.call.id, o.call.grade, o.call.category, 0.0, 0.0, o.call.x, o.call.y,
                            T0 + timedelta(seconds=o.call.t), o.needed)
            for o in waiting.values()
        ]
        t0 = time.perf_counter()
        decisions = dispatcher.decide(requests, drones, wall)
        latencies.append(time.perf_counter() - t0)
        cand = {d.id: d for d in drones}
        for dec in decisions:
            o = waiting[dec.incident_id]
            for a in dec.assignments:
                d = cand[a.drone_id]
                if a.preempts is not None:  # the displaced call waits again for one drone
                    preemptions += 1
                    old = flights[a.drone_id]
                    prev = done.pop(old.call, None) or waiting.get(old.call)
                    if prev is not None:
                        if old.arrive in prev.arrivals:
                            prev.arrivals.remove(old.arrive)
                        prev.needed += 1
                        waiting[old.call] = prev
                req = next(r for r in requests if r.id == o.call.id)
                eta, _ = physics.pair_eta(req, d)
                on_scene = policy.on_scene_seconds(o.call.category)
                b = base_of[a.drone_id]
                back, _ = physics.pair_eta(replace(req, x=b.x, y=b.y), replace(d, x=o.call.x, y=o.call.y, state=DroneState.ENROUTE))
                f = _Flight(o.call.id, o.call.grade, now, o.call.x, o.call.y, now + eta, now + eta + on_scene, 0.0)
                f.free = f.leave + back + LANDING_S
                flights[a.drone_id] = f
                seq += 1
                heapq.heappush(events, (f.free, seq, f"free:{a.drone_id}"))
                o.arrivals.append(now + eta)
                o.needed -= 1
                if o.first_assigned is None:
                    o.first_assigned = now
            if o.needed <= 0:
                done[o.call.id] = waiting.pop(o.call.id)
    for o in waiting.values():
        done[o.call.id] = o
    return {"outcomes": done, "latencies": latencies, "preemptions": preemptions}


def lower_bound(calls: Sequence[Call], bases: Sequence[Base], config: FleetConfig, physics: DispatchEngine) -> dict[str, float]:
    """Each call's time to scene with the whole fleet idle: its best drone, no queue, no conflict."""
    models = config.drone_models
    fleet = [DroneCandidate(b.drone_id, b.station_id, b.model_id, models[b.model_id], DroneState.STANDBY, 100.0, 0.0, 0.0,
                            b.x, b.y, True) for b in bases]
    out: dict[str, float] = {}
    for category in {c.category for c in calls}:
        sel = [c for c in calls if c.category == category]
        eta, _ = physics.point_etas(np.array([c.x for c in sel]), np.array([c.y for c in sel]), fleet, category=category)
        out.update({c.id: float(e) for c, e in zip(sel, eta, strict=True)})
    return out


# --- metrics ----------------------------------------------------------------------------------


def _tts(calls: Sequence[Call], outcomes: dict[str, _Open]) -> dict[str, float]:
    return {c.id: (min(outcomes[c.id].arrivals) - c.t) if outcomes[c.id].arrivals else math.inf for c in calls}


def report(calls: Sequence[Call], tts: dict[str, float], config: FleetConfig, waits: dict[str, float] | None = None) -> dict[str, Any]:
    weights = config.policy.engine
    served = [c for c in calls if math.isfinite(tts[c.id])]
    out: dict[str, Any] = {"calls": len(calls), "served": len(served)}
    per_grade = {}
    for g in GRADES:
        v = [tts[c.id] for c in served if c.grade == g]
        per_grade[str(g)] = {"n": len(v), "mean_s": round(float(np.mean(v)), 1) if v else None,
                             "p90_s": round(float(np.percentile(v, 90)), 1) if v else None}
    out["time_to_scene_by_grade"] = per_grade
    all_t = np.array([tts[c.id] for c in calls])
    out["within"] = {f"{r / 60:g}min": round(float((all_t <= r).mean()), 4) for r in RING_S}

    def weighted(sel: Sequence[Call]) -> float | None:
        sel = [c for c in sel if math.isfinite(tts[c.id])]
        if not sel:
            return None
        w = np.array([weights.weight(c.grade) for c in sel])
        return round(float((w * np.array([tts[c.id] for c in sel])).sum() / w.sum()), 2)

    out["grade_weighted_mean_s"] = weighted(calls)
    out["grade_weighted_mean_s_bursts"] = weighted([c for c in calls if c.burst])
    if waits is not None:
        out["queue_wait_s"] = percentiles([waits[c.id] for c in calls if c.id in waits])
    return out


def _run_one(name: str, calls, bases, config, dispatcher, physics) -> dict[str, Any]:
    started = time.perf_counter()
    sim = simulate(calls, bases, config, dispatcher, physics)
    outcomes = sim["outcomes"]
    waits = {cid: (o.first_assigned - o.call.t) for cid, o in outcomes.items() if o.first_assigned is not None}
    res = report(calls, _tts(calls, outcomes), config, waits)
    res["decision_latency_ms"] = percentiles(sim["latencies"], 1000.0)
    res["preemptions"] = sim["preemptions"]
    res["wall_s"] = round(time.perf_counter() - started, 1)
    progress(f"  {name}: {res['served']}/{res['calls']} served, weighted mean {res['grade_weighted_mean_s']} s, "
             f"p99 decision {res['decision_latency_ms'].get('p99')} ms ({res['wall_s']} s)")
    return res


def run(args: argparse.Namespace) -> dict[str, Any]:
    from controller.settings import Settings

    config = load_config(args.config_dir or Settings().config_dir)
    hours = 2.0 if args.quick else args.hours
    bursts = 3 if args.quick else args.bursts
    scale = min(args.stations_scale, 3) if args.quick else args.stations_scale
    rng = np.random.default_rng(args.seed)
    physics = DispatchEngine.from_config(config)
    calls = make_stream(config, physics, rng, hours, args.calls_per_hour, bursts, args.burst_size)
    bases, _ = roster(config, 1, rng)
    progress(f"dispatch bench: {len(calls)} calls over {hours:g} h ({sum(c.burst for c in calls)} in {bursts} bursts), "
             f"{len(bases)} drones, seed {args.seed}")
    result: dict[str, Any] = {
        "bench": "dispatch", "when": stamp(), "machine": machine(), "seed": args.seed, "hours": hours,
        "calls": len(calls), "burst_calls": sum(c.burst for c in calls), "stations": len(config.stations),
        "wind": config.policy.wind.model_dump(), "preempt_margin_s": config.policy.engine.preempt_margin_s,
    }
    result["greedy_v1"] = _run_one("greedy v1", calls, bases, config, NearestEtaDispatcher(config.policy), physics)
    result["engine"] = _run_one("engine", calls, bases, config, physics, physics)
    bound = lower_bound(calls, bases, config, physics)
    result["lower_bound"] = report(calls, bound, config)
    e, g, lb = (result[k]["grade_weighted_mean_s"] for k in ("engine", "greedy_v1", "lower_bound"))
    eb, gb, lbb = (result[k]["grade_weighted_mean_s_bursts"] for k in ("engine", "greedy_v1", "lower_bound"))
    result["comparison"] = {
        "engine_vs_greedy_weighted_mean_pct": round(100 * (e - g) / g, 2),
        "engine_vs_greedy_weighted_mean_bursts_pct": round(100 * (eb - gb) / gb, 2) if eb and gb else None,
        "engine_gap_to_bound_pct": round(100 * (e - lb) / lb, 2),
        "greedy_gap_to_bound_pct": round(100 * (g - lb) / lb, 2),
    }
    if scale > 1:
        big_bases, big_sites = roster(config, scale, np.random.default_rng(args.seed + 1))
        zones = physics.router.zones
        big = DispatchEngine(config.policy, big_sites, zones, config.drone_models)
        progress(f"engine on a x{scale} roster ({len(big_sites)} stations, {len(big_bases)} drones):")
        result[f"engine_x{scale}"] = _run_one(f"engine x{scale}", calls, big_bases, config, big, big)
        result[f"engine_x{scale}"]["stations"] = len(big_sites)
    return result


def summarize(r: dict[str, Any]) -> str:
    lines = [f"dispatch bench ({r['calls']} calls, {r['burst_calls']} in bursts, {r['hours']:g} h, seed {r['seed']}, wind {r['wind']['speed_ms']:g} m/s):"]
    keys = [k for k in ("greedy_v1", "engine", "lower_bound") if k in r] + [k for k in r if k.startswith("engine_x")]
    for k in keys:
        v = r[k]
        grades = " ".join(f"g{g}:{d['mean_s']}/{d['p90_s']}" for g, d in v["time_to_scene_by_grade"].items())
        lat = v.get("decision_latency_ms")
        lat_s = f" decision p50/p99 {lat.get('p50')}/{lat.get('p99')} ms," if lat else ""
        within = " ".join(f"{kk}:{vv:.0%}" for kk, vv in v["within"].items())
        lines.append(f"  {k:12s}{lat_s} weighted mean {v['grade_weighted_mean_s']} s (bursts {v['grade_weighted_mean_s_bursts']} s), "
                     f"mean/p90 by grade {grades}, within {within}, preemptions {v.get('preemptions', '-')}")
    c = r["comparison"]
    lines.append(f"  engine vs greedy: {c['engine_vs_greedy_weighted_mean_pct']:+.1f}% (bursts {c['engine_vs_greedy_weighted_mean_bursts_pct']:+.1f}%); "
                 f"gap to bound: engine {c['engine_gap_to_bound_pct']:+.1f}%, greedy {c['greedy_gap_to_bound_pct']:+.1f}%")
    return "\n".join(lines)
