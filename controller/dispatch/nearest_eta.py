"""Dispatch v1: for each waiting incident, most urgent first, offer the feasible drone with the lowest ETA.

Greedy, one incident at a time, over an incidents x drones matrix computed in
one go (positions are metres in the city's local frame). Incidents with no
feasible drone at all cost no Python work beyond the matrix; their per-drone
reasons are worded only when asked for. The engine of the dispatch issue
replaces this behind the same interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from datetime import datetime

import numpy as np

from controller.config.models import DispatchPolicy
from controller.dispatch.base import (
    Assignment,
    Decision,
    Dispatcher,
    DroneCandidate,
    IncidentRequest,
    unavailable_reason,
)
from controller.dispatch.eta import battery_needed_pct, time_to_scene_s
from controller.dispatch.flight import launch_delay_s

#: How many of the nearest ruled-out drones keep their individual reason in a decision.
REASONS_KEPT = 8

R_EXCLUDED = "declined or expired for this incident"
R_BATTERY = "battery"
R_TAKEN = "offered to a more urgent incident"
R_SLOWER = "slower than the chosen drone"


class NearestEtaDispatcher(Dispatcher):
    def __init__(self, policy: DispatchPolicy) -> None:
        self._policy = policy

    def decide(
        self,
        incidents: Sequence[IncidentRequest],
        drones: Sequence[DroneCandidate],
        now: datetime,
        freed: frozenset[str] | None = None,
        must: frozenset[str] = frozenset(),
    ) -> list[Decision]:
        policy = self._policy
        if freed is not None:
            rest = [inc for inc in incidents if inc.id not in must]
            incidents = [inc for inc in incidents if inc.id in must] + self._could_use(
                rest, [d for d in drones if d.id in freed]
            )
        order = sorted(incidents, key=lambda inc: (inc.grade, inc.created_at, inc.id))
        if not order:
            return []
        if not drones:
            return [Decision(inc.id, (), {"no drones in the fleet": 1}) for inc in order]

        n = len(drones)
        ids = [d.id for d in drones]
        index = {drone_id: j for j, drone_id in enumerate(ids)}
        dx = np.array([d.x for d in drones])
        dy = np.array([d.y for d in drones])
        cruise = np.array([d.model.cruise_speed_ms for d in drones])
        climb = np.array([d.model.climb_rate_ms for d in drones])
        descent = np.array([d.model.descent_rate_ms for d in drones])
        endurance = np.array([d.model.endurance_min * 60.0 for d in drones])
        battery = np.array([d.battery_pct for d in drones])
        launch = np.array([launch_delay_s(policy, d.state) for d in drones])
        static = [unavailable_reason(d) for d in drones]
        free = np.array([r is None for r in static])
        static_counts: dict[str, int] = {}
        for r in static:
            if r is not None:
                static_counts[r] = static_counts.get(r, 0) + 1

        ix = np.array([inc.x for inc in order])[:, None]
        iy = np.array([inc.y for inc in order])[:, None]
        on_scene = np.array([policy.on_scene_seconds(inc.category) for inc in order])[:, None]
        dist = np.hypot(ix - dx, iy - dy)
        eta = time_to_scene_s(dist, cruise, climb, launch, policy.transit_altitude_m)
        need = battery_needed_pct(dist, cruise, climb, descent, endurance, on_scene, policy.transit_altitude_m)
        short = battery - need < policy.battery_reserve_pct
        excluded = np.zeros(dist.shape, dtype=bool)
        for row, inc in enumerate(order):
            for drone_id in inc.excluded:
                j = index.get(drone_id)
                if j is not None:
                    excluded[row, j] = True
        ok = free & ~short & ~excluded  # feasible if nobody more urgent takes it first

        # Greedy in priority order; only rows with some feasible drone need Python work.
        taken = np.zeros(n, dtype=bool)
        chosen_by_row: dict[int, list[int]] = {}
        taken_before: dict[int, np.ndarray] = {}
        for row in np.flatnonzero(ok.any(axis=1)):
            inc = order[row]
            feasible = ok[row] & ~taken
            taken_before[row] = taken.copy()
            if not feasible.any():
                continue
            masked = np.where(feasible, eta[row], np.inf)
            k = min(inc.drones_needed, int(feasible.sum()))
            best = np.argpartition(masked, k - 1)[:k] if k < n else np.arange(n)
            chosen = sorted((int(j) for j in best if feasible[j]), key=lambda j: masked[j])[: inc.drones_needed]
            chosen_by_row[row] = chosen
            taken[chosen] = True

        pass_data = _PassData(ids, static, excluded, short, battery, need, dist)
        n_excluded = (free & excluded).sum(axis=1)
        n_battery = (free & ~excluded & short).sum(axis=1)
        decisions: list[Decision] = []
        for row, inc in enumerate(order):
            chosen = chosen_by_row.get(row, [])
            counts = dict(static_counts)
            if n_excluded[row]:
                counts[R_EXCLUDED] = int(n_excluded[row])
            if n_battery[row]:
                counts[R_BATTERY] = int(n_battery[row])
            before = taken_before.get(row)
            if before is not None:
                lost = int((ok[row] & before).sum())
                slower = int((ok[row] & ~before).sum()) - len(chosen)
                if lost:
                    counts[R_TAKEN] = lost
                if slower:
                    counts[R_SLOWER] = slower
            assignments = tuple(
                Assignment(ids[j], drones[j].station_id, float(eta[row, j]), float(dist[row, j])) for j in chosen
            )
            explain = partial(self._explain, pass_data, row, tuple(chosen), before)
            decisions.append(Decision(inc.id, assignments, counts, explain))
        return decisions

    def _could_use(self, incidents: Sequence[IncidentRequest], freed: list[DroneCandidate]) -> list[IncidentRequest]:
        """The incidents that at least one freed drone could serve, by the same feasibility rule as `decide`."""
        freed = [d for d in freed if unavailable_reason(d) is None]
        if not freed or not incidents:
            return []
        policy = self._policy
        dx = np.array([d.x for d in freed])
        dy = np.array([d.y for d in freed])
        ix = np.array([inc.x for inc in incidents])[:, None]
        iy = np.array([inc.y for inc in incidents])[:, None]
        on_scene = np.array([policy.on_scene_seconds(inc.category) for inc in incidents])[:, None]
        need = battery_needed_pct(
            np.hypot(ix - dx, iy - dy),
            np.array([d.model.cruise_speed_ms for d in freed]),
            np.array([d.model.climb_rate_ms for d in freed]),
            np.array([d.model.descent_rate_ms for d in freed]),
            np.array([d.model.endurance_min * 60.0 for d in freed]),
            on_scene,
            policy.transit_altitude_m,
        )
        ok = np.array([d.battery_pct for d in freed]) - need >= policy.battery_reserve_pct
        for col, d in enumerate(freed):
            for row, inc in enumerate(incidents):
                if d.id in inc.excluded:
                    ok[row, col] = False
        return [inc for row, inc in enumerate(incidents) if ok[row].any()]

    def _explain(
        self, p: _PassData, row: int, chosen: tuple[int, ...], taken_before: np.ndarray | None
    ) -> dict[str, str]:
        """Word the reasons for the nearest drones not chosen for the incident in `row`."""
        reserve = self._policy.battery_reserve_pct
        dist = p.dist[row]
        kept = min(REASONS_KEPT + len(chosen), len(p.ids))
        nearest = np.argpartition(dist, kept - 1)[:kept] if kept < len(p.ids) else np.arange(len(p.ids))
        reasons: dict[str, str] = {}
        for j in sorted(nearest, key=lambda j: dist[j]):
            if j in chosen or len(reasons) >= REASONS_KEPT:
                continue
            if p.static[j] is not None:
                reason = p.static[j]
            elif p.excluded[row, j]:
                reason = R_EXCLUDED
            elif p.short[row, j]:
                reason = f"{R_BATTERY}: has {p.battery[j]:.0f}%, needs {p.need[row, j]:.0f}% + {reserve:.0f}% reserve"
            elif taken_before is not None and taken_before[j]:
                reason = R_TAKEN
            else:
                reason = R_SLOWER
            reasons[p.ids[int(j)]] = reason
        return reasons


@dataclass(frozen=True, slots=True)
class _PassData:
    """The matrices of one pass, kept so reasons can be worded later on demand."""

    ids: list[str]
    static: list[str | None]
    excluded: np.ndarray
    short: np.ndarray
    battery: np.ndarray
    need: np.ndarray
    dist: np.ndarray
