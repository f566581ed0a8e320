"""Time to scene over a city grid, ring shares by area and population, farthest point, station suggestions.

The city outline is not published in configs/, so the region is approximated by
one disc per district (centre and area from city.yaml); each cell belongs to
the nearest district centre whose disc holds it, and a district's population is
spread evenly over its cells. Times come from the dispatch engine itself (all
drones on hot standby, full battery), so the map shows what dispatch would do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from controller.config import FleetConfig
from controller.dispatch.base import DroneCandidate
from controller.dispatch.engine import DispatchEngine
from controller.domain.states import DroneState

RINGS_S = (60.0, 180.0, 300.0)


@dataclass(frozen=True)
class Coverage:
    cell_m: float
    x: np.ndarray
    y: np.ndarray
    district: np.ndarray  # index into config.city.districts
    population: np.ndarray  # people per cell
    eta_s: np.ndarray  # inf where no drone can serve
    station_xy: np.ndarray
    in_nofly: np.ndarray  # cells inside a no-fly zone (nobody may fly there; left out of "farthest")

    def shares(self) -> dict[str, dict[str, float]]:
        """Share of area and of population within each ring (keys '1min', '3min', '5min')."""
        out = {}
        total_pop = float(self.population.sum())
        for limit in RINGS_S:
            inside = self.eta_s <= limit
            out[f"{limit / 60:g}min"] = {
                "area_share": float(inside.mean()),
                "population_share": float(self.population[inside].sum() / total_pop),
                "area_km2": float(inside.sum() * self.cell_m**2 / 1e6),
            }
        return out

    def farthest(self) -> tuple[int, float]:
        """The cell outside no-fly zones farthest (straight line) from any station, and that distance in metres."""
        dist, _ = cKDTree(self.station_xy).query(np.stack([self.x, self.y], 1))
        dist = np.where(self.in_nofly, -1.0, dist)
        i = int(np.argmax(dist))
        return i, float(dist[i])


def city_cells(config: FleetConfig, cell_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cell centres (x, y), their district and their population, over the union of district discs."""
    frame = config.frame
    centres = np.array([frame.to_xy(d.lat, d.lon) for d in config.city.districts])
    radii = np.array([math.sqrt(d.area_km2 * 1e6 / math.pi) for d in config.city.districts])
    lo = (centres - radii[:, None]).min(axis=0)
    hi = (centres + radii[:, None]).max(axis=0)
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], cell_m) + cell_m / 2, np.arange(lo[1], hi[1], cell_m) + cell_m / 2)
    x, y = gx.ravel(), gy.ravel()
    d = np.hypot(x[:, None] - centres[:, 0], y[:, None] - centres[:, 1])
    d_in = np.where(d <= radii, d, np.inf)
    district = np.argmin(d_in, axis=1)
    keep = np.isfinite(d_in[np.arange(len(x)), district])
    x, y, district = x[keep], y[keep], district[keep]
    counts = np.bincount(district, minlength=len(centres))
    pops = np.array([dd.population for dd in config.city.districts], dtype=float)
    population = pops[district] / np.maximum(counts[district], 1)
    return x, y, district, population


def standby_fleet(config: FleetConfig) -> list[DroneCandidate]:
    """Every rostered drone at its station on hot standby with a full battery and a pilot on duty."""
    out = []
    for s in config.stations:
        x, y = config.frame.to_xy(s.lat, s.lon)
        for d in s.drones:
            out.append(
                DroneCandidate(d.id, s.id, d.model, config.drone_models[d.model], DroneState.STANDBY, 100.0, s.lat, s.lon, x, y, True)
            )
    return out


def compute(
    config: FleetConfig,
    engine: DispatchEngine,
    cell_m: float = 500.0,
    progress: Callable[[str], None] = lambda _: None,
    chunk: int = 4000,
) -> Coverage:
    x, y, district, population = city_cells(config, cell_m)
    progress(f"{len(x)} cells of {cell_m:g} m over {len(config.city.districts)} districts")
    fleet = standby_fleet(config)
    eta = np.empty(len(x))
    for start in range(0, len(x), chunk):
        stop = min(start + chunk, len(x))
        eta[start:stop], _ = engine.point_etas(x[start:stop], y[start:stop], fleet)
        progress(f"time to scene: {stop}/{len(x)} cells")
    stations = np.array([config.frame.to_xy(s.lat, s.lon) for s in config.stations])
    return Coverage(cell_m, x, y, district, population, eta, stations, engine.router.inside(x, y))


def suggest_stations(
    cov: Coverage, k: int, engine: DispatchEngine, config: FleetConfig, model_id: str, candidates: int = 500
) -> list[dict[str, float]]:
    """Greedy: k new stations (one `model_id` drone each) that most raise 3-minute population coverage.

    Candidate sites are a spread of uncovered cells; each one's reach is computed with the engine's
    own time model (a one-drone fleet at the site), so wind, no-fly detours and battery all count.
    """
    model = config.drone_models[model_id]
    covered = cov.eta_s <= 180.0
    pool = np.flatnonzero(~covered)
    if len(pool) == 0 or k <= 0:
        return []
    rng = np.random.default_rng(0)
    sites = rng.choice(pool, size=min(candidates, len(pool)), replace=False)
    tree = cKDTree(np.stack([cov.x, cov.y], 1))
    reach_m = (180.0 - 60.0) * (model.cruise_speed_ms + config.policy.wind.speed_ms)  # a bound; exact check follows
    gains: dict[int, np.ndarray] = {}
    for s in sites:
        near = np.array(tree.query_ball_point((cov.x[s], cov.y[s]), reach_m), dtype=int)
        near = near[~covered[near]]
        if len(near) == 0:
            continue
        drone = DroneCandidate("new", "new", model_id, model, DroneState.STANDBY, 100.0, 0.0, 0.0, float(cov.x[s]), float(cov.y[s]), True)
        eta, _ = engine.point_etas(cov.x[near], cov.y[near], [drone], nearest=1)
        gains[int(s)] = near[eta <= 180.0]
    chosen: list[dict[str, float]] = []
    newly = np.zeros(len(cov.x), dtype=bool)
    total = float(cov.population.sum())
    for _ in range(k):
        best, best_gain = None, 0.0
        for s, cells in gains.items():
            g = float(cov.population[cells[~newly[cells]]].sum())
            if g > best_gain:
                best, best_gain = s, g
        if best is None:
            break
        newly[gains.pop(best)] = True
        lat, lon = config.frame.to_latlon(float(cov.x[best]), float(cov.y[best]))
        chosen.append({"lat": round(lat, 6), "lon": round(lon, 6), "population_gain": round(best_gain),
                       "population_share_gain": best_gain / total})
    return chosen
