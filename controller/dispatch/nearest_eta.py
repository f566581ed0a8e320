"""Dispatch v1: for each waiting incident, most urgent first, offer the feasible drone with the lowest ETA.

Greedy, one incident at a time, over an incidents x drones matrix computed in
one go (positions are metres in the city's local frame, so a pass over 200
waiting incidents and 200 drones costs about a millisecond). The engine of the
dispatch issue replaces it behind the same interface.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from controller.config.models import DispatchPolicy
from controller.dispatch.base import Assignment, Decision, Dispatcher, DroneCandidate, IncidentRequest
from controller.dispatch.eta import battery_needed_pct, launch_delay_s, time_to_scene_s
from controller.domain.states import DroneState

AVAILABLE = frozenset({DroneState.STANDBY, DroneState.CHARGING, DroneState.LANDED})
#: How many of the nearest ruled-out drones keep their individual reason in a decision.
REASONS_KEPT = 8

R_EXCLUDED = "declined or expired for this incident"
R_BATTERY = "battery"
R_TAKEN = "offered to a more urgent incident"
R_SLOWER = "slower than the chosen drone"


def unavailable_reason(drone: DroneCandidate) -> str | None:
    """Why a drone cannot take any new incident right now, or None."""
    if drone.state is DroneState.MAINTENANCE:
        return "in maintenance"
    if drone.state is DroneState.LOST_LINK:
        return "link lost"
    if drone.state not in AVAILABLE:
        return f"busy ({drone.state.value})"
    if not drone.pilot_on_duty:
        return "no pilot on duty"
    return None


class NearestEtaDispatcher(Dispatcher):
    def __init__(self, policy: DispatchPolicy) -> None:
        self._policy = policy

    def decide(
        self, incidents: Sequence[IncidentRequest], drones: Sequence[DroneCandidate], now: datetime
    ) -> list[Decision]:
        policy = self._policy
        order = sorted(incidents, key=lambda inc: (inc.grade, inc.created_at, inc.id))
        if not order:
            return []
        if not drones:
            return [Decision(inc.id, (), {}, {"no drones in the fleet": 1}) for inc in order]

        n = len(drones)
        ids = [d.id for d in drones]
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
        static_counts = Counter(r for r in static if r is not None)

        ix = np.array([inc.x for inc in order])[:, None]
        iy = np.array([inc.y for inc in order])[:, None]
        on_scene = np.array([policy.on_scene_seconds(inc.category) for inc in order])[:, None]
        dist = np.hypot(ix - dx, iy - dy)
        eta = time_to_scene_s(dist, cruise, climb, launch, policy.transit_altitude_m)
        need = battery_needed_pct(dist, cruise, climb, descent, endurance, on_scene, policy.transit_altitude_m)
        short = battery - need < policy.battery_reserve_pct
        index = {drone_id: j for j, drone_id in enumerate(ids)}

        taken = ~free
        decisions: list[Decision] = []
        for row, inc in enumerate(order):
            excluded = np.zeros(n, dtype=bool)
            for drone_id in inc.excluded:
                j = index.get(drone_id)
                if j is not None:
                    excluded[j] = True
            ok = free & ~short[row] & ~excluded
            feasible = ok & ~taken
            chosen: list[int] = []
            if feasible.any():
                masked = np.where(feasible, eta[row], np.inf)
                k = min(inc.drones_needed, int(feasible.sum()))
                best = np.argpartition(masked, k - 1)[:k] if k < n else np.arange(n)
                chosen = sorted((int(j) for j in best if feasible[j]), key=lambda j: masked[j])[: inc.drones_needed]
            assignments = tuple(
                Assignment(ids[j], drones[j].station_id, float(eta[row, j]), float(dist[row, j])) for j in chosen
            )
            not_chosen = np.ones(n, dtype=bool)
            not_chosen[chosen] = False
            counts = Counter(static_counts)
            counts[R_EXCLUDED] = int(np.sum(free & excluded))
            counts[R_BATTERY] = int(np.sum(free & ~excluded & short[row]))
            counts[R_TAKEN] = int(np.sum(ok & taken & not_chosen))
            counts[R_SLOWER] = int(np.sum(feasible & not_chosen))
            reasons: dict[str, str] = {}
            nearest = np.argpartition(dist[row], min(REASONS_KEPT + len(chosen), n - 1))[: REASONS_KEPT + len(chosen)]
            for j in sorted(nearest, key=lambda j: dist[row, j]):
                if len(reasons) < REASONS_KEPT and not_chosen[j]:
                    reasons[ids[j]] = self._reason(static[j], excluded[j], short[row, j], taken[j], battery[j], need[row, j])
            for j in chosen:
                taken[j] = True
            decisions.append(Decision(inc.id, assignments, reasons, {k: v for k, v in counts.items() if v}))
        return decisions

    def _reason(
        self, static: str | None, excluded: bool, short: bool, taken: bool, battery: float, need: float
    ) -> str:
        if static is not None:
            return static
        if excluded:
            return R_EXCLUDED
        if short:
            reserve = self._policy.battery_reserve_pct
            return f"{R_BATTERY}: has {battery:.0f}%, needs {need:.0f}% + {reserve:.0f}% reserve"
        if taken:
            return R_TAKEN
        return R_SLOWER
