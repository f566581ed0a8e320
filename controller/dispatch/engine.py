"""Dispatch engine: wind- and no-fly-aware time to scene, full feasibility, joint assignment, preemption.

Replaces dispatch v1 (controller.dispatch.nearest_eta) behind the same
`Dispatcher` interface. One pass:

1. rules out drones that cannot take any call now (maintenance, link, busy,
   no pilot, wind above the model's limit), keeping the reason;
2. for each waiting incident, computes exact time to scene only for the drones
   that could matter (a cheap lower bound certifies the rest are slower);
3. checks each pair's battery for out + time on scene (by category) + return
   to the nearest station that can take the model + reserve;
4. assigns all waiting slots together (grade-weighted, grades strictly first);
5. lets a preempting grade (1) take a drone flying a low-grade mission when it
   arrives sooner than the best free drone by more than the margin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from controller.config.models import DispatchPolicy, DroneModel
from controller.dispatch.assignment import assign_slots, unserved_costs
from controller.dispatch.base import (
    AVAILABLE,
    Assignment,
    Decision,
    Dispatcher,
    DroneCandidate,
    IncidentRequest,
    unavailable_reason,
)
from controller.dispatch.flight import arrival_s, battery_pct, launch_delay_s, vertical_legs_s, wind_vector
from controller.dispatch.returns import ReturnPlanner, ReturnSite, StationSite
from controller.dispatch.routing import NoFlyRouter
from controller.domain.states import AIRBORNE, DroneState

if TYPE_CHECKING:
    from controller.config import FleetConfig

IN_FLIGHT_ON_MISSION = frozenset({DroneState.ENROUTE, DroneState.ON_SCENE})
REASONS_KEPT = 8
#: Waiting calls a freed drone could serve that one incremental pass decides again (see decide).
RETRY_CAP = 32
RETRY_CAP_PER_FREED = 2
_STATES = tuple(DroneState)
_STATE_CODE = {s: i for i, s in enumerate(_STATES)}
_AVAILABLE_CODE = np.array([s in AVAILABLE for s in _STATES])
_IN_FLIGHT_CODE = np.array([s in IN_FLIGHT_ON_MISSION for s in _STATES])
_AIRBORNE_CODE = np.array([s in AIRBORNE for s in _STATES])
R_EXCLUDED = "declined or expired for this incident"
R_BATTERY = "battery"
R_NOFLY_SCENE = "scene inside a no-fly zone"
R_NO_ROUTE = "no flyable route (wind or no-fly zones)"
R_NO_RETURN = "no station reachable after the scene"
R_TAKEN = "assigned to another incident"
R_SLOWER = "slower than the chosen drone"
R_PREEMPT_MARGIN = "in flight on a lower-grade mission; taking it would not save the preemption margin"

# Per-pair codes (0 = feasible).
OK, EXCLUDED, NOFLY_SCENE, NO_ROUTE, NO_RETURN, BATTERY = range(6)
CODE_REASON = {EXCLUDED: R_EXCLUDED, NOFLY_SCENE: R_NOFLY_SCENE, NO_ROUTE: R_NO_ROUTE, NO_RETURN: R_NO_RETURN, BATTERY: R_BATTERY}


@dataclass(frozen=True, slots=True)
class _Fleet:
    """The per-pass arrays of the drones (one entry per drone in the order given)."""

    ids: list[str]
    x: np.ndarray
    y: np.ndarray
    cruise: np.ndarray
    climb_s: np.ndarray  # straight up before flying out: the departure height from the ground, none in the air
    rise_s: np.ndarray  # climb to the scene height during the leg (0 in the air)
    launch: np.ndarray
    battery: np.ndarray
    endurance: np.ndarray
    legs: dict[str, np.ndarray]
    static: list[str | None]
    preemptible: np.ndarray
    free: np.ndarray  # static is None


@dataclass(frozen=True, slots=True)
class _Pairs:
    """Exact evaluation of some incidents x some drones."""

    cols: np.ndarray  # drone indices
    eta: np.ndarray
    dist: np.ndarray
    need: np.ndarray
    code: np.ndarray
    #: (incident, drone in the whole fleet): certified short of battery by a bound and never routed.
    pruned: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class PairCheck:
    """One flight judged by the engine's model: refusal reason (None = flyable) and its timings."""

    refused: str | None
    eta_s: float
    distance_m: float
    need_pct: float  # battery for out + scene + back to the nearest station + landing (before the reserve)
    launch_s: float
    climb_s: float
    scene_climb_s: float
    land_s: float


def static_reason(drone: DroneCandidate, wind_ms: float) -> str | None:
    """Why a drone cannot take any new incident right now, or None: the shared rule, then this engine's wind limit."""
    reason = unavailable_reason(drone)
    if reason is not None:
        return reason
    if wind_ms > drone.model.max_wind_ms:
        return f"wind {wind_ms:.0f} m/s above the model's {drone.model.max_wind_ms:.0f} m/s limit"
    return None


class DispatchEngine(Dispatcher):
    """The dispatch engine. Its answers depend only on its inputs (precomputed stations and no-fly graph,
    plus caches keyed by scene location)."""

    def __init__(
        self,
        policy: DispatchPolicy,
        stations: Sequence[StationSite] = (),
        nofly: Sequence[Polygon] = (),
        models: Mapping[str, DroneModel] | None = None,
    ) -> None:
        self._policy = policy
        self._wind = wind_vector(policy.wind)
        speeds = {m.cruise_speed_ms for m in (models or {}).values()}
        self.router = NoFlyRouter(nofly, policy.engine.nofly_buffer_m, speeds, self._wind)
        if stations:
            self.router.precompute_origins(np.array([(s.x, s.y) for s in stations]), speeds)
        #: Where drones go after the scene and what it costs: shared with the flight layer (MissionRunner).
        self.returns = ReturnPlanner(stations, self.router)

    @classmethod
    def from_config(cls, config: FleetConfig) -> DispatchEngine:
        frame = config.frame
        stations = [
            StationSite(s.id, *frame.to_xy(s.lat, s.lon), frozenset(d.model for d in s.drones)) for s in config.stations
        ]
        zones = [Polygon(frame.ring_to_xy(f.geometry.coordinates[0])) for f in config.nofly.features]
        return cls(config.policy, stations, zones, config.drone_models)

    # --- per-pass data -----------------------------------------------------------

    def _fleet(self, drones: Sequence[DroneCandidate], preempt: bool) -> _Fleet:
        """Per-drone arrays, built with one cheap pass per attribute (this runs on every decision)."""
        policy = self._policy
        eng = policy.engine
        n = len(drones)
        model_rows: dict[str, int] = {}
        models: list[DroneModel] = []
        for d in drones:  # distinct models; usually two
            if d.model_id not in model_rows:
                model_rows[d.model_id] = len(models)
                models.append(d.model)
        mi = np.fromiter((model_rows[d.model_id] for d in drones), dtype=np.intp, count=n)
        table = np.array([
            (m.cruise_speed_ms, m.climb_rate_ms, m.descent_rate_ms, m.endurance_min * 60.0, m.max_wind_ms, m.acceleration_ms2)
            for m in models
        ]).reshape(-1, 6)[mi]
        cruise, climb, descent, endurance, max_wind, accel = table.T
        legs = vertical_legs_s(policy, climb, descent, cruise, accel)
        state = np.fromiter((_STATE_CODE[d.state] for d in drones), dtype=np.intp, count=n)
        pilot = np.fromiter((d.pilot_on_duty for d in drones), dtype=bool, count=n)
        wind_ok = policy.wind.speed_ms <= max_wind
        free = _AVAILABLE_CODE[state] & pilot & wind_ok
        static: list[str | None] = [None] * n
        for j in np.flatnonzero(~free):
            static[j] = static_reason(drones[j], policy.wind.speed_ms)
        if preempt:
            grade = np.fromiter((d.mission_grade or 0 for d in drones), dtype=np.intp, count=n)
            preemptible = _IN_FLIGHT_CODE[state] & np.isin(grade, eng.preemptible_grades) & pilot & wind_ok
        else:
            preemptible = np.zeros(n, dtype=bool)
        in_air = _AIRBORNE_CODE[state]
        climb_now = np.where(in_air, 0.0, legs["takeoff"])
        rise = np.where(in_air, 0.0, legs["rise"])
        launch = np.array([launch_delay_s(policy, s) for s in _STATES])[state] if n else np.zeros(0)
        return _Fleet(
            ids=[d.id for d in drones],
            x=np.fromiter((d.x for d in drones), dtype=float, count=n),
            y=np.fromiter((d.y for d in drones), dtype=float, count=n),
            cruise=cruise,
            climb_s=climb_now,
            rise_s=rise,
            launch=launch,
            battery=np.fromiter((d.battery_pct for d in drones), dtype=float, count=n),
            endurance=endurance,
            legs=legs,
            static=static,
            preemptible=preemptible,
            free=free,
        )

    def _return_time(
        self, ix: np.ndarray, iy: np.ndarray, model_id: str, airspeed: float, home: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """Seconds from each scene to the station the shared return rule picks (routed, in the wind)."""
        if not self.returns.has_stations:  # no station list: come back to where the drone started
            t, _, _ = self.router.leg(ix[:, None], iy[:, None], home[0][None, :], home[1][None, :], airspeed)
            return t
        return self.returns.flight_times(ix, iy, model_id, airspeed)

    def _evaluate(self, rows: Sequence[IncidentRequest], fleet: _Fleet, cols: np.ndarray, drones: Sequence[DroneCandidate]) -> _Pairs:
        """Exact time to scene, path length, battery need and feasibility code for rows x cols."""
        policy = self._policy
        n, m = len(rows), len(cols)
        ix = np.array([inc.x for inc in rows])
        iy = np.array([inc.y for inc in rows])
        if m == 0:
            z = np.zeros((n, 0))
            return _Pairs(cols, z, z, z, np.zeros((n, 0), dtype=np.int8))
        out_t, dist, _ = self.router.leg(fleet.x[cols][None, :], fleet.y[cols][None, :], ix[:, None], iy[:, None], fleet.cruise[cols][None, :])
        legs = {k: v[cols] for k, v in fleet.legs.items()}
        leg_t = arrival_s(out_t, legs["speed_change"], fleet.rise_s[cols])
        eta = fleet.launch[cols] + fleet.climb_s[cols] + leg_t
        back = np.full((n, m), np.inf)
        for model_id in {drones[j].model_id for j in cols}:
            sel = np.array([drones[j].model_id == model_id for j in cols])
            j0 = int(cols[sel][0])
            home = (fleet.x[cols][sel], fleet.y[cols][sel])
            t = self._return_time(ix, iy, model_id, float(fleet.cruise[j0]), home)
            back[:, sel] = t if t.ndim == 2 else t[:, None]
        on_scene = np.array([policy.on_scene_seconds(inc.category) for inc in rows])[:, None]
        airborne = fleet.climb_s[cols] + leg_t + on_scene + legs["scene_climb"] + back + legs["land"]
        need = battery_pct(airborne, fleet.endurance[cols])
        code = np.zeros((n, m), dtype=np.int8)
        code[fleet.battery[cols] - need < policy.battery_reserve_pct] = BATTERY
        code[~np.isfinite(back)] = NO_RETURN
        code[~np.isfinite(out_t)] = NO_ROUTE
        code[self.router.inside(ix, iy), :] = NOFLY_SCENE
        index = {int(j): c for c, j in enumerate(cols)}
        id_to_col = {fleet.ids[j]: c for j, c in index.items()}
        for r, inc in enumerate(rows):
            for drone_id in inc.excluded:
                c = id_to_col.get(drone_id)
                if c is not None:
                    code[r, c] = EXCLUDED
        eta = np.where(code == OK, eta, np.inf)
        return _Pairs(cols, eta, dist, need, code)

    def _lower_bound(self, rows: Sequence[IncidentRequest], fleet: _Fleet, cols: np.ndarray) -> np.ndarray:
        """A time to scene no drone can beat: straight line with the full wind behind it."""
        ix = np.array([inc.x for inc in rows])[:, None]
        iy = np.array([inc.y for inc in rows])[:, None]
        straight = np.hypot(fleet.x[cols] - ix, fleet.y[cols] - iy)
        fastest = fleet.cruise[cols] + self._policy.wind.speed_ms
        return fleet.launch[cols] + fleet.climb_s[cols] + straight / fastest + fleet.legs["speed_change"][cols]

    def _candidates(
        self, rows: Sequence[IncidentRequest], fleet: _Fleet, usable: np.ndarray, wanted: int, drones: Sequence[DroneCandidate]
    ) -> _Pairs:
        """Evaluate exactly just enough drones that every row's `wanted` best feasible ones are certified.

        A drone left out has a lower bound above the `wanted`-th best exact time of every row, so it
        cannot be part of an optimal assignment (exchange argument) and is truly slower.
        """
        usable_idx = np.flatnonzero(usable)
        if len(rows) == 0 or len(usable_idx) == 0:
            return self._evaluate(rows, fleet, usable_idx, drones)
        lb = self._lower_bound(rows, fleet, usable_idx)
        # A drone whose battery cannot cover even the straight, wind-assisted flight is certainly refused:
        # it is counted as a battery refusal without being routed (far calls that wait would otherwise
        # route the whole fleet on every pass).
        need_lb = self._need_lower_bound(rows, fleet, usable_idx, lb, drones)
        hopeless = np.isfinite(need_lb) & (fleet.battery[usable_idx] - need_lb < self._policy.battery_reserve_pct)
        lb = np.where(hopeless, np.inf, lb)
        possible = ~hopeless.all(axis=0)
        order = np.argsort(lb, axis=1)
        take = min(len(usable_idx), wanted + 4)
        fresh = np.unique(order[:, :take])
        fresh = fresh[possible[fresh]]
        parts: list[_Pairs] = []
        evaluated = ~possible
        for round_no in range(64):
            parts.append(self._evaluate(rows, fleet, usable_idx[fresh], drones))
            evaluated[fresh] = True
            if evaluated.all():
                break
            eta = np.hstack([p.eta for p in parts])
            grow = np.zeros(len(usable_idx), dtype=bool)
            for r in range(len(rows)):
                feas = np.sort(eta[r][np.isfinite(eta[r])])
                lb_rest = np.where(evaluated, np.inf, lb[r])
                if len(feas) >= wanted:
                    grow |= lb_rest < feas[wanted - 1]
                elif round_no >= 2:  # few feasible drones for this call: settle it with every possible drone
                    grow |= np.isfinite(lb_rest)
                else:
                    nxt = order[r][np.isfinite(lb_rest[order[r]])][: 4 * take]
                    grow[nxt] = True
            if not grow.any():
                break
            fresh = np.flatnonzero(grow)
        cols = np.concatenate([p.cols for p in parts])
        pruned = np.zeros((len(rows), len(fleet.ids)), dtype=bool)
        pruned[:, usable_idx] = hopeless
        pruned[:, cols] = False
        return _Pairs(
            cols,
            np.hstack([p.eta for p in parts]),
            np.hstack([p.dist for p in parts]),
            np.hstack([p.need for p in parts]),
            np.hstack([p.code for p in parts]),
            pruned,
        )

    def _need_lower_bound(
        self, rows: Sequence[IncidentRequest], fleet: _Fleet, cols: np.ndarray, lb: np.ndarray, drones: Sequence[DroneCandidate]
    ) -> np.ndarray:
        """Battery % no flight can use less of: straight out with the wind behind it, the time on scene,
        the exact return to the nearest station (0 without a station list) and the vertical legs."""
        if not self.returns.has_stations:
            back = np.zeros(lb.shape)
        else:
            ix = np.array([inc.x for inc in rows])
            iy = np.array([inc.y for inc in rows])
            back = np.zeros(lb.shape)
            model_of = np.array([drones[j].model_id for j in cols])
            for model_id in np.unique(model_of):
                sel = model_of == model_id
                t = self._return_time(ix, iy, str(model_id), float(fleet.cruise[cols][sel][0]), (ix[:0], iy[:0]))
                back[:, sel] = t[:, None]
        on_scene = np.array([self._policy.on_scene_seconds(inc.category) for inc in rows])[:, None]
        legs = fleet.legs
        airborne = lb - fleet.launch[cols] + on_scene + legs["scene_climb"][cols] + back + legs["land"][cols]
        return battery_pct(airborne, fleet.endurance[cols])

    def point_etas(
        self, px: np.ndarray, py: np.ndarray, drones: Sequence[DroneCandidate], *, nearest: int = 8, category: str = "default"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best feasible time to scene at many points (coverage maps), and the drone index giving it.

        Only the `nearest` free drones (straight line) of each point are routed exactly, which is what
        keeps a city-wide grid cheap; points no drone can serve get inf and index -1.
        """
        fleet = self._fleet(drones, False)
        free = np.flatnonzero(fleet.free)
        px, py = np.asarray(px, dtype=float), np.asarray(py, dtype=float)
        if len(free) == 0 or len(px) == 0:
            return np.full(len(px), np.inf), np.full(len(px), -1)
        k = min(nearest, len(free))
        _, idx = cKDTree(np.stack([fleet.x[free], fleet.y[free]], 1)).query(np.stack([px, py], 1), k=k)
        cols = free[np.asarray(idx).reshape(len(px), k)]
        out_t, _, _ = self.router.leg(fleet.x[cols], fleet.y[cols], px[:, None], py[:, None], fleet.cruise[cols])
        legs = {name: v[cols] for name, v in fleet.legs.items()}
        leg_t = arrival_s(out_t, legs["speed_change"], fleet.rise_s[cols])
        eta = fleet.launch[cols] + fleet.climb_s[cols] + leg_t
        back = np.full(cols.shape, np.inf)
        for model_id in {drones[j].model_id for j in np.unique(cols)}:
            sel = np.vectorize(lambda j: drones[j].model_id == model_id)(cols)
            j0 = int(cols[sel][0])
            if self.returns.has_stations:
                t = self._return_time(px, py, model_id, float(fleet.cruise[j0]), (fleet.x[:0], fleet.y[:0]))
                back = np.where(sel, t[:, None], back)
            else:  # no station list: back to where each drone started
                t, _, _ = self.router.leg(px[:, None], py[:, None], fleet.x[cols], fleet.y[cols], fleet.cruise[cols])
                back = np.where(sel, t, back)
        airborne = (
            fleet.climb_s[cols] + leg_t + self._policy.on_scene_seconds(category)
            + legs["scene_climb"] + back + legs["land"]
        )
        need = battery_pct(airborne, fleet.endurance[cols])
        ok = np.isfinite(out_t) & (fleet.battery[cols] - need >= self._policy.battery_reserve_pct)
        ok &= ~self.router.inside(px, py)[:, None]
        eta = np.where(ok, eta, np.inf)
        best = np.argmin(eta, axis=1)
        best_eta = eta[np.arange(len(px)), best]
        return best_eta, np.where(np.isfinite(best_eta), cols[np.arange(len(px)), best], -1)

    def check_pair(self, incident: IncidentRequest, drone: DroneCandidate) -> PairCheck:
        """This engine's full verdict on one flight, whoever proposed it (the benchmark's shared physics).

        Static reasons (busy, wind) are not applied: the caller says what state the drone is in.
        """
        fleet = self._fleet([drone], False)
        p = self._evaluate([incident], fleet, np.array([0]), [drone])
        code = int(p.code[0, 0])
        refused = CODE_REASON.get(code)
        if self._policy.wind.speed_ms > drone.model.max_wind_ms:
            refused = "wind above the model's limit"
        eta, _, _ = self.router.leg(fleet.x, fleet.y, np.array([incident.x]), np.array([incident.y]), fleet.cruise)
        eta = fleet.launch + fleet.climb_s + arrival_s(eta, fleet.legs["speed_change"], fleet.rise_s)
        legs = {k: float(v[0]) for k, v in fleet.legs.items()}
        return PairCheck(refused, float(eta[0]), float(p.dist[0, 0]), float(p.need[0, 0]),
                         float(fleet.launch[0]), float(fleet.climb_s[0]), legs["scene_climb"], legs["land"])

    def return_site(self, x: float, y: float, model_id: str, airspeed: float) -> ReturnSite | None:
        """The station a drone flying from (x, y) returns to under the shared rule (see dispatch.returns)."""
        return self.returns.site(x, y, model_id, airspeed)

    def pair_eta(self, incident: IncidentRequest, drone: DroneCandidate) -> tuple[float, float]:
        """(time to scene, path length) of one drone to one incident under this engine's flight model,
        ignoring feasibility: what a flight would actually take, whoever chose it (used by the benchmark)."""
        fleet = self._fleet([drone], False)
        out_t, dist, _ = self.router.leg(fleet.x, fleet.y, np.array([incident.x]), np.array([incident.y]), fleet.cruise)
        eta = fleet.launch + fleet.climb_s + arrival_s(out_t, fleet.legs["speed_change"], fleet.rise_s)
        return float(eta[0]), float(dist[0])

    # --- the decision ---------------------------------------------------------------

    def decide(
        self,
        incidents: Sequence[IncidentRequest],
        drones: Sequence[DroneCandidate],
        now: datetime,
        freed: frozenset[str] | None = None,
        must: frozenset[str] = frozenset(),
    ) -> list[Decision]:
        eng = self._policy.engine
        if freed is not None:
            rest = [inc for inc in incidents if inc.id not in must]
            usable = self._could_use(rest, drones, freed)
            cap = max(RETRY_CAP, RETRY_CAP_PER_FREED * len(freed))
            if len(usable) > cap:
                # A few freed drones and a queue of calls they could serve (a storm): decide again only the most
                # urgent, oldest ones; grades come strictly first, so the rest would rank below them anyway, and
                # they get the next freed drone. Deciding them all would stall the event loop for seconds.
                usable = sorted(usable, key=lambda inc: (inc.grade, inc.created_at, inc.id))[:cap]
            incidents = [inc for inc in incidents if inc.id in must] + usable
        order = sorted(incidents, key=lambda inc: (inc.grade, inc.created_at, inc.id))
        if not order:
            return []
        if not drones:
            return [Decision(inc.id, (), {"no drones in the fleet": 1}) for inc in order]

        preempting = np.array([inc.grade in eng.preempting_grades for inc in order])
        fleet = self._fleet(drones, bool(preempting.any()))
        free = fleet.free
        n_slots = sum(inc.drones_needed for inc in order)
        wanted = min(n_slots, int(free.sum())) or 1
        pairs = self._candidates(order, fleet, free, wanted, drones)
        pre_idx = np.flatnonzero(fleet.preemptible)
        pre = self._evaluate(order, fleet, pre_idx, drones)
        pre_eta = np.where(preempting[:, None], pre.eta, np.inf)

        # Slots: one per drone each incident still needs.
        slot_row = np.array([r for r, inc in enumerate(order) for _ in range(inc.drones_needed)], dtype=int)
        weights = np.array([eng.weight(order[r].grade) for r in slot_row])
        ages = np.array([(now - order[r].created_at).total_seconds() for r in slot_row])
        grades = np.array([order[r].grade for r in slot_row])
        cost = weights[:, None] * pairs.eta[slot_row]
        finite = cost[np.isfinite(cost)]
        unserved = unserved_costs(grades, weights, ages, float(finite.max()) if finite.size else 1.0)
        col_of = assign_slots(cost, unserved)

        # Preemption: a preempting slot takes a drone in flight if it beats its free drone by the margin.
        taken_pre: dict[int, tuple[int, float]] = {}  # slot -> (pre col, saving s)
        used_pre: set[int] = set()
        for s in np.flatnonzero(preempting[slot_row]):
            row = slot_row[s]
            current = pairs.eta[row, col_of[s]] if col_of[s] >= 0 else np.inf
            options = [(pre_eta[row, c], c) for c in range(len(pre_idx)) if c not in used_pre and np.isfinite(pre_eta[row, c])]
            if not options:
                continue
            eta_p, c = min(options)
            if current - eta_p > eng.preempt_margin_s:
                taken_pre[int(s)] = (c, float(current - eta_p))
                used_pre.add(c)
        if taken_pre:  # re-plan the other slots: the free drones those slots held may serve someone else
            keep = np.array([s not in taken_pre for s in range(len(slot_row))])
            sub = assign_slots(cost[keep], unserved[keep])
            col_of = np.full(len(slot_row), -1, dtype=int)
            col_of[np.flatnonzero(keep)] = sub

        chosen_free: dict[int, list[int]] = {}
        owner = np.full(len(pairs.cols), -1, dtype=int)
        for s, c in enumerate(col_of):
            if c >= 0:
                chosen_free.setdefault(int(slot_row[s]), []).append(int(c))
                owner[c] = slot_row[s]
        chosen_pre: dict[int, list[tuple[int, float]]] = {}
        pre_owner = np.full(len(pre_idx), -1, dtype=int)
        for s, (c, saving) in taken_pre.items():
            chosen_pre.setdefault(int(slot_row[s]), []).append((c, saving))
            pre_owner[c] = slot_row[s]

        static_counts: dict[str, int] = {}
        for reason in fleet.static:
            if reason is not None:
                static_counts[reason] = static_counts.get(reason, 0) + 1
        n_unevaluated = int(free.sum()) - len(pairs.cols)

        decisions: list[Decision] = []
        for row, inc in enumerate(order):
            made: list[Assignment] = []
            for c in chosen_free.get(row, []):
                j = int(pairs.cols[c])
                made.append(Assignment(fleet.ids[j], drones[j].station_id, float(pairs.eta[row, c]), float(pairs.dist[row, c])))
            for c, saving in chosen_pre.get(row, []):
                j = int(pre_idx[c])
                why = (
                    f"redirected to grade-{inc.grade} {inc.id}: there {saving:.0f} s sooner than the best free drone"
                    if np.isfinite(saving)
                    else f"redirected to grade-{inc.grade} {inc.id}: no free drone could reach it"
                )
                made.append(
                    Assignment(
                        fleet.ids[j], drones[j].station_id, float(pre.eta[row, c]), float(pre.dist[row, c]),
                        preempts=drones[j].mission_id, preempt_reason=why,
                    )
                )
            made.sort(key=lambda a: a.eta_s)
            counts = dict(static_counts)
            for c, pre_row in enumerate(pre_owner):
                if pre_row >= 0:  # a redirected drone is no longer "busy" for anyone in this pass
                    reason = fleet.static[int(pre_idx[c])]
                    if reason is not None:
                        counts[reason] -= 1
                        if not counts[reason]:
                            del counts[reason]
                    if pre_row != row:
                        counts[R_TAKEN] = counts.get(R_TAKEN, 0) + 1
            codes = pairs.code[row]
            short = int(pairs.pruned[row].sum()) if pairs.pruned is not None else 0
            for code, reason in CODE_REASON.items():
                k = int((codes == code).sum()) + (short if code == BATTERY else 0)
                if k:
                    counts[reason] = k
            feasible = codes == OK
            mine = set(chosen_free.get(row, []))
            lost = int(sum(1 for c in np.flatnonzero(feasible) if owner[c] >= 0 and owner[c] != row))
            slower = int(feasible.sum()) - lost - len(mine) + (n_unevaluated - short if made else 0)
            if lost:
                counts[R_TAKEN] = counts.get(R_TAKEN, 0) + lost
            if slower > 0:
                counts[R_SLOWER] = slower
            explain = partial(self._explain, drones, fleet, pairs, owner, pre_idx, pre_owner, row, inc, tuple(a.drone_id for a in made))
            decisions.append(Decision(inc.id, tuple(made), counts, explain))
        return decisions

    def _could_use(
        self, incidents: Sequence[IncidentRequest], drones: Sequence[DroneCandidate], freed: frozenset[str]
    ) -> list[IncidentRequest]:
        """The incidents at least one freed drone could serve, by the same rules as `decide`."""
        if not incidents or not freed:
            return []
        fleet = self._fleet(drones, False)
        cols = np.array(
            [j for j, d in enumerate(drones) if d.id in freed and fleet.static[j] is None], dtype=int
        )
        if not len(cols):
            return []
        pairs = self._evaluate(incidents, fleet, cols, drones)
        ok = (pairs.code == OK).any(axis=1)
        return [inc for inc, usable in zip(incidents, ok.tolist()) if usable]

    def _explain(
        self,
        drones: Sequence[DroneCandidate],
        fleet: _Fleet,
        pairs: _Pairs,
        owner: np.ndarray,
        pre_idx: np.ndarray,
        pre_owner: np.ndarray,
        row: int,
        inc: IncidentRequest,
        chosen: tuple[str, ...],
    ) -> dict[str, str]:
        """Word the reasons for the nearest drones not chosen (computed only when someone reads them)."""
        reserve = self._policy.battery_reserve_pct
        dist = np.hypot(fleet.x - inc.x, fleet.y - inc.y)
        col_of = {int(j): c for c, j in enumerate(pairs.cols)}
        pre_of = {int(j): c for c, j in enumerate(pre_idx)}
        reasons: dict[str, str] = {}
        for j in np.argsort(dist, kind="stable"):
            if len(reasons) >= REASONS_KEPT:
                break
            j = int(j)
            drone_id = fleet.ids[j]
            if drone_id in chosen:
                continue
            c = col_of.get(j)
            p = pre_of.get(j)
            if p is not None and pre_owner[p] >= 0:
                reason = R_TAKEN
            elif fleet.static[j] is not None:
                reason = fleet.static[j]
                if p is not None and inc.grade in self._policy.engine.preempting_grades:
                    reason = f"{reason}; {R_PREEMPT_MARGIN}"
            elif c is None and pairs.pruned is not None and pairs.pruned[row, j]:  # routed now, for the wording
                one = self._evaluate([inc], fleet, np.array([j]), drones)
                code = int(one.code[0, 0])
                reason = (f"{R_BATTERY}: has {fleet.battery[j]:.0f}%, needs {one.need[0, 0]:.0f}% + {reserve:.0f}% reserve"
                          if code in (BATTERY, OK) else CODE_REASON[code])
            elif c is None:
                reason = R_SLOWER
            else:
                code = int(pairs.code[row, c])
                if code == BATTERY:
                    reason = f"{R_BATTERY}: has {fleet.battery[j]:.0f}%, needs {pairs.need[row, c]:.0f}% + {reserve:.0f}% reserve"
                elif code != OK:
                    reason = CODE_REASON[code]
                elif owner[c] >= 0 and owner[c] != row:
                    reason = R_TAKEN
                else:
                    reason = R_SLOWER
            reasons[drone_id] = reason
        return reasons
