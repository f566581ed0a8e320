"""Joint assignment of drones to incident slots (one slot per drone an incident needs).

Why joint: in a burst, serving calls one at a time in priority order gives the
first call its nearest drone even when that drone is the only one that can
reach the next call quickly. Solving all slots together (Hungarian method,
scipy's linear_sum_assignment) minimises the grade-weighted sum of times to
scene instead.

Grades still come first: a slot left unserved costs more than any way of
serving the less urgent slots, so the solver never leaves a grade-1 call
waiting to shave seconds off grade-3 calls. Within a grade, an unserved slot
also costs its weighted wait so far, so the older call is served first on ties.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def unserved_costs(grades: np.ndarray, weights: np.ndarray, age_s: np.ndarray, finite_max: float) -> np.ndarray:
    """Cost of leaving each slot without a drone: lexicographic by grade, then weighted age."""
    n = len(grades)
    if n == 0:
        return np.zeros(0)
    ages = weights * np.maximum(age_s, 0.0)
    base = (n + 1) * (finite_max + float(ages.max()) + 1.0)
    levels = sorted(set(int(g) for g in grades), reverse=True)  # least urgent first
    level_cost: dict[int, float] = {}
    for g in levels:
        level_cost[g] = base
        base *= n + 1
    return np.array([level_cost[int(g)] for g in grades]) + ages


def assign_slots(cost: np.ndarray, unserved: np.ndarray) -> np.ndarray:
    """Column chosen for each row of `cost` (inf = not allowed), or -1 for rows better left unserved.

    Each column is used at most once. Pure; O((rows + cols)^3) in the worst case,
    so callers prune columns no row can use.
    """
    rows, cols = cost.shape
    out = np.full(rows, -1, dtype=int)
    if rows == 0:
        return out
    big = float(unserved.max()) * 4.0 + 1.0
    full = np.full((rows, cols + rows), big)
    full[:, :cols] = np.where(np.isfinite(cost), cost, big)
    full[np.arange(rows), cols + np.arange(rows)] = unserved
    r, c = linear_sum_assignment(full)
    for row, col in zip(r, c, strict=True):
        if col < cols and np.isfinite(cost[row, col]):
            out[row] = col
    return out
