"""`dronefleet bench dispatch`: a seeded 24-hour incident stream through greedy v1, the engine, and a lower bound.

The stream: Poisson arrivals with a daily profile (thinning), a grade and
category mix, locations weighted by district population (never inside a no-fly
zone), plus bursts of simultaneous calls close together. Each dispatcher sees
the same stream in a discrete-event simulation with one physical model for
everyone: every chosen flight is checked and timed by the engine's flight model
(wind, no-fly detours, battery for out + scene + return to a station + reserve,
with the drone's real charge) whoever chose it, so the comparison is of
choices, not of models. A refused flight is not flown; the call waits. Drones
drain while airborne, land at home (or the nearest station when home is out of
reach) and recharge on the dock. Offers are otherwise taken as accepted at once.

The bound serves every incident with its best drone as if the whole fleet were
idle (no queueing, no conflicts): no dispatcher can beat it.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from controller.bench.common import machine, percentiles, progress, stamp
from controller.config import FleetConfig, load_config
from controller.config.models import DroneModel
from controller.dispatch.base import Dispatcher, DroneCandidate, IncidentRequest
from controller.dispatch.engine import DispatchEngine
from controller.dispatch.returns import StationSite
from controller.dispatch.nearest_eta import NearestEtaDispatcher
from controller.domain.states import DroneState

GRADES = (1, 2, 3, 4)
GRADE_MIX = (0.1, 0.3, 0.4, 0.2)
CATEGORIES = ("traffic_accident", "violent_crime", "fire", "missing_person", "other")
CATEGORY_MIX = (0.4, 0.15, 0.1, 0.1, 0.25)
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
RING_S = (60.0, 180.0, 300.0)


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

#: Dock charging rate (about 20 -> 90 % in 35 min); a drone below 100 % is CHARGING (slower launch).
CHARGE_PCT_PER_MIN = 2.0
#: A refused offer (the flight fails the shared model's checks): the call is decided again this much
#: later, without that drone for RECHECK_S (its battery may have charged enough by then).
REFUSAL_S = 15.0
RECHECK_S = 600.0
#: While calls wait, decide again this often (batteries charge, drones land) whoever dispatches.
TICK_S = 30.0


@dataclass(slots=True)
class _Flight:
    call: str
    grade: int
    takeoff: float  # wheels up (battery drains from here); for a redirect, the redirect time
    climbed: float  # at transit altitude
    fx: float
    fy: float
    bat0: float  # battery at takeoff
    sx: float
    sy: float
    arrive: float
    leave: float
    land: float
    land_at: tuple[str, float, float]
    bat_land: float


@dataclass(slots=True)
class _Drone:
    base: Base
    station_id: str
    x: float
    y: float
    battery: float  # at `since`, on the ground
    since: float
    flight: _Flight | None = None
    ferry_at: float | None = None  # landed away from home: flies home once charged enough for the leg


@dataclass(slots=True)
class _Open:
    call: Call
    needed: int
    first_assigned: float | None = None
    arrivals: list[float] = field(default_factory=list)
    excluded: dict[str, float] = field(default_factory=dict)  # drone -> when it was refused


class _World:
    """The fleet's physical state over time: one flight model and battery model for every dispatcher."""

    def __init__(self, bases: Sequence[Base], config: FleetConfig, physics: DispatchEngine) -> None:
        self.config, self.physics = config, physics
        self.drones = {b.drone_id: _Drone(b, b.station_id, b.x, b.y, 100.0, 0.0) for b in bases}
        self.refused = 0

    def candidate(self, d: _Drone, now: float) -> DroneCandidate:
        model = self.config.drone_models[d.base.model_id]
        f = d.flight
        if f is not None and now >= f.land:  # landed: charging from here at the landing station
            d.station_id, d.x, d.y = f.land_at
            d.battery, d.since, d.flight, f = f.bat_land, f.land, None, None
            d.ferry_at = self._ferry_time(d, model) if d.station_id != d.base.station_id else None
        if f is None and d.ferry_at is not None and now >= d.ferry_at:
            d.flight = f = self._ferry(d, model)
            d.ferry_at = None
            if now >= f.land:
                return self.candidate(d, now)
        mid = grade = None
        if f is None:
            bat = min(100.0, d.battery + CHARGE_PCT_PER_MIN * (now - d.since) / 60.0)
            state, x, y = (DroneState.STANDBY if bat >= 100.0 else DroneState.CHARGING), d.x, d.y
        else:
            bat = f.bat0 - 100.0 * max(0.0, now - f.takeoff) / (model.endurance_min * 60.0)
            mid, grade = (f"{f.call}/{d.base.drone_id}", f.grade) if f.call else (None, None)
            if now < f.arrive:
                frac = min(1.0, max(0.0, (now - f.climbed) / max(f.arrive - f.climbed, 1e-9)))
                state, x, y = DroneState.ENROUTE, f.fx + frac * (f.sx - f.fx), f.fy + frac * (f.sy - f.fy)
            elif now < f.leave:
                state, x, y = DroneState.ON_SCENE, f.sx, f.sy
            else:
                state, x, y = DroneState.RETURNING, f.sx, f.sy
        return DroneCandidate(d.base.drone_id, d.station_id, d.base.model_id, model, state, bat, 0.0, 0.0, x, y,
                              True, mid, grade)

    def _home_leg(self, d: _Drone, model: DroneModel) -> tuple[float, float]:
        """(airborne seconds, battery %) of a ferry from where the drone stands to its home station."""
        t, _, _ = self.physics.router.leg(np.array([d.x]), np.array([d.y]), np.array([d.base.x]), np.array([d.base.y]),
                                          model.cruise_speed_ms)
        alt = self.config.policy.transit_altitude_m
        secs = alt / model.climb_rate_ms + float(t[0]) + alt / model.descent_rate_ms
        return secs, 100.0 * secs / (model.endurance_min * 60.0)

    def _ferry_time(self, d: _Drone, model: DroneModel) -> float | None:
        secs, need = self._home_leg(d, model)
        if not math.isfinite(secs):
            return None
        short = need + self.config.policy.battery_reserve_pct - d.battery
        return d.since + max(0.0, short) / CHARGE_PCT_PER_MIN * 60.0

    def _ferry(self, d: _Drone, model: DroneModel) -> _Flight:
        """The repositioning flight home (busy, not preemptible) starting at `ferry_at`."""
        t = d.ferry_at or d.since
        bat = min(100.0, d.battery + CHARGE_PCT_PER_MIN * (t - d.since) / 60.0)
        secs, need = self._home_leg(d, model)
        home = d.base
        return _Flight("", 0, t, t, d.x, d.y, bat, d.x, d.y, t, t, t + secs, (home.station_id, home.x, home.y), bat - need)

    def fly(self, req: IncidentRequest, cand: DroneCandidate, now: float) -> _Flight | None:
        """Start the flight if the shared model allows it (battery, route, wind), else None (refused)."""
        chk = self.physics.check_pair(req, cand)
        if chk.refused is not None:
            self.refused += 1
            return None
        d = self.drones[cand.id]
        d.ferry_at = None
        model = cand.model
        endurance = model.endurance_min * 60.0
        old = d.flight
        wait = max(0.0, old.climbed - now) if old is not None else 0.0  # redirected before reaching altitude
        takeoff = now + chk.launch_s
        arrive = now + wait + chk.eta_s
        leave = arrive + self.config.policy.on_scene_seconds(req.category)
        pct = 100.0 / endurance
        after_scene = cand.battery_pct - pct * (leave + chk.scene_climb_s - takeoff)
        home = d.base
        t_home, _, _ = self.physics.router.leg(np.array([req.x]), np.array([req.y]), np.array([home.x]),
                                               np.array([home.y]), model.cruise_speed_ms)
        t_home = float(t_home[0])
        reserve = self.config.policy.battery_reserve_pct
        if math.isfinite(t_home) and after_scene - pct * (t_home + chk.land_s) >= reserve:
            land_at, back = (home.station_id, home.x, home.y), t_home
        else:  # the nearest station taking the model (what the feasibility check planned with)
            site = self.physics.returns.site(req.x, req.y, cand.model_id, model.cruise_speed_ms)
            assert site is not None, "the engine accepted a flight with no station to return to"
            land_at, back = (site.station_id, site.x, site.y), site.flight_s
        land = leave + chk.scene_climb_s + back + chk.land_s
        f = _Flight(req.id, req.grade, takeoff, now + wait + chk.launch_s + chk.climb_s, cand.x, cand.y,
                    cand.battery_pct, req.x, req.y, arrive, leave, land, land_at, cand.battery_pct - pct * (land - takeoff))
        d.flight = f
        return f


def simulate(calls: Sequence[Call], bases: Sequence[Base], config: FleetConfig, dispatcher: Dispatcher,
             physics: DispatchEngine) -> dict[str, Any]:
    """Run the stream through `dispatcher`; every chosen flight is checked and timed by `physics`.

    A flight the shared model refuses (battery with the drone's real charge, no route, wind) is not
    flown: the drone is excluded for that call and the call is decided again shortly, whoever chose it.
    """
    world = _World(bases, config, physics)
    waiting: dict[str, _Open] = {}
    done: dict[str, _Open] = {}
    latencies: list[float] = []
    preemptions = 0
    events: list[tuple[float, int, str]] = [(c.t, 0, c.id) for c in calls]
    by_id = {c.id: c for c in calls}
    heapq.heapify(events)
    seq = len(events)
    next_tick = math.inf
    end = (calls[-1].t if calls else 0.0) + 3 * 3600.0  # calls still waiting 3 h after the last one count as unserved

    def push(t: float, key: str) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, key))

    while events:
        now, _, key = heapq.heappop(events)
        keys = [key]
        while events and events[0][0] <= now:  # everything at this instant (bursts) is decided together
            keys.append(heapq.heappop(events)[2])
        for key in keys:
            if key in by_id:
                c = by_id[key]
                waiting[c.id] = _Open(c, c.k)
            elif key == "tick":
                next_tick = math.inf
        if not waiting:
            continue
        drones = [world.candidate(d, now) for d in world.drones.values()]
        wall = T0 + timedelta(seconds=now)
        requests = {
            o.call.id: IncidentRequest(o.call.id, o.call.grade, o.call.category, 0.0, 0.0, o.call.x, o.call.y,
                                       T0 + timedelta(seconds=o.call.t), o.needed,
                                       frozenset(k for k, t in o.excluded.items() if now - t < RECHECK_S))
            for o in waiting.values()
        }
        t0 = time.perf_counter()
        decisions = dispatcher.decide(list(requests.values()), drones, wall)
        latencies.append(time.perf_counter() - t0)
        cand = {d.id: d for d in drones}
        refused = False
        for dec in decisions:
            o = waiting[dec.incident_id]
            for a in dec.assignments:
                d = cand[a.drone_id]
                old = world.drones[a.drone_id].flight
                f = world.fly(requests[o.call.id], d, now)
                if f is None:
                    o.excluded[a.drone_id] = now
                    refused = True
                    continue
                if a.preempts is not None and old is not None:  # the displaced call waits again for one drone
                    preemptions += 1
                    prev = done.pop(old.call, None) or waiting.get(old.call)
                    if prev is not None:
                        if old.arrive > now and old.arrive in prev.arrivals:  # not there yet: that arrival is lost
                            prev.arrivals.remove(old.arrive)
                        prev.needed += 1
                        waiting[old.call] = prev
                push(f.land, f"land:{a.drone_id}")
                o.arrivals.append(f.arrive)
                o.needed -= 1
                if o.first_assigned is None:
                    o.first_assigned = now
            if o.needed <= 0:
                done[o.call.id] = waiting.pop(o.call.id)
        if refused:
            push(now + REFUSAL_S, "retry")
        if waiting and next_tick > now + TICK_S and now < end:
            next_tick = now + TICK_S
            push(next_tick, "tick")
    for o in waiting.values():
        done[o.call.id] = o
    return {"outcomes": done, "latencies": latencies, "preemptions": preemptions, "refused": world.refused}


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
    res["refused_offers"] = sim["refused"]
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
    if scale > 1:  # the same stream on a denser synthetic roster: decision latency at that size
        big_bases, big_sites = roster(config, scale, np.random.default_rng(args.seed + 1))
        zones = physics.router.zones
        big = DispatchEngine(config.policy, big_sites, zones, config.drone_models)
        progress(f"engine on a x{scale} roster ({len(big_sites)} stations, {len(big_bases)} drones):")
        result[f"engine_x{scale}"] = _run_one(f"engine x{scale}", calls, big_bases, config, big, big)
        result[f"engine_x{scale}"]["stations"] = len(big_sites)
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
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
        wait = v.get("queue_wait_s", {})
        lines.append(f"  {k:12s}{lat_s} weighted mean {v['grade_weighted_mean_s']} s (bursts {v['grade_weighted_mean_s_bursts']} s), "
                     f"served {v['served']}/{v['calls']}, mean/p90 by grade {grades}, within {within}, "
                     f"queue wait mean/p99/max {wait.get('mean', '-')}/{wait.get('p99', '-')}/{wait.get('max', '-')} s, "
                     f"preemptions {v.get('preemptions', '-')}, refused offers {v.get('refused_offers', '-')}")
    c = r["comparison"]
    lines.append(f"  engine vs greedy: {c['engine_vs_greedy_weighted_mean_pct']:+.1f}% (bursts {c['engine_vs_greedy_weighted_mean_bursts_pct']:+.1f}%); "
                 f"gap to bound: engine {c['engine_gap_to_bound_pct']:+.1f}%, greedy {c['greedy_gap_to_bound_pct']:+.1f}%")
    return "\n".join(lines)
