"""Where a drone goes after its work and the battery it takes to get there: one rule for dispatch and flight.

The engine accepts an offer only if the battery covers the flight out, the time
on scene, this return and the reserve; the mission runner turns for home when
the battery falls to this return plus the reserve, and when it must land away
from its own station it lands where this rule says. Both ask the same object,
so a drone is never sent on the strength of a landing the flight layer would
not make.

The return goes to the quickest station (routed around the no-fly zones, in
the configured wind) among the few nearest whose dock takes the drone's model,
then descends. Stations' answers are cached per scene: the engine asks for the
same waiting incidents on every pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from controller.config.models import DroneModel
from controller.dispatch.flight import battery_pct, return_seconds
from controller.dispatch.routing import NoFlyRouter

#: Nearest stations (straight line) routed when looking for where a drone can land after the scene.
RETURN_CANDIDATES = 4
#: Scenes whose return time is remembered.
BACK_CACHE = 8192


@dataclass(frozen=True, slots=True)
class StationSite:
    """Where drones can land and recharge (local metres), and which models its dock/chargers take."""

    id: str
    x: float
    y: float
    models: frozenset[str]


@dataclass(frozen=True, slots=True)
class ReturnSite:
    """The station a drone returns to from a point, and the routed, wind-corrected cruise time to it."""

    station_id: str
    x: float
    y: float
    flight_s: float


@dataclass(frozen=True, slots=True)
class _Sites:
    stations: tuple[StationSite, ...]
    xy: np.ndarray
    tree: cKDTree


class ReturnPlanner:
    """The return rule over a fixed set of stations and no-fly graph (answers depend only on the arguments)."""

    def __init__(self, stations: Sequence[StationSite], router: NoFlyRouter) -> None:
        self.router = router
        self.stations = tuple(stations)
        self._sites: dict[str | None, _Sites] = {}
        self._cache: dict[tuple[float, float, str, float], float] = {}
        if self.stations:
            model_ids = {m for s in self.stations for m in s.models}
            for key in (*model_ids, None):
                chosen = tuple(s for s in self.stations if key is None or key in s.models)
                xy = np.array([(s.x, s.y) for s in chosen])
                self._sites[key] = _Sites(chosen, xy, cKDTree(xy))

    @property
    def has_stations(self) -> bool:
        return bool(self._sites)

    def _for(self, model_id: str) -> _Sites:
        """Stations whose dock takes the model; every station if none does (better any landing than none)."""
        return self._sites.get(model_id) or self._sites[None]

    def _candidates(self, sites: _Sites, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
        k = min(RETURN_CANDIDATES, len(sites.xy))
        _, idx = sites.tree.query(np.stack([ix, iy], axis=1), k=k)
        return np.asarray(idx).reshape(len(ix), k)

    def flight_times(self, ix: np.ndarray, iy: np.ndarray, model_id: str, airspeed: float) -> np.ndarray:
        """Cruise seconds from each point to its return station (inf where none is reachable). Needs stations."""
        sites = self._for(model_id)
        keys = [(float(x), float(y), model_id, airspeed) for x, y in zip(ix, iy, strict=True)]
        out = np.array([self._cache.get(key, np.nan) for key in keys])
        todo = np.flatnonzero(np.isnan(out))
        if len(todo):
            idx = self._candidates(sites, ix[todo], iy[todo])
            sx, sy = sites.xy[idx, 0], sites.xy[idx, 1]
            t, _, _ = self.router.leg(ix[todo][:, None], iy[todo][:, None], sx, sy, airspeed)
            out[todo] = np.where(np.isfinite(t), t, np.inf).min(axis=1)
            if len(self._cache) > BACK_CACHE:
                self._cache.clear()
            self._cache.update((keys[i], float(out[i])) for i in todo)
        return out

    def site(self, x: float, y: float, model_id: str, airspeed: float) -> ReturnSite | None:
        """The station the rule returns to from (x, y), or None when no station is reachable (or none exist)."""
        if not self.has_stations:
            return None
        sites = self._for(model_id)
        idx = self._candidates(sites, np.array([x]), np.array([y]))[0]
        t, _, _ = self.router.leg(np.full(len(idx), x), np.full(len(idx), y), sites.xy[idx, 0], sites.xy[idx, 1], airspeed)
        t = np.where(np.isfinite(t), t, np.inf)
        best = int(np.argmin(t))
        if not np.isfinite(t[best]):
            return None
        s = sites.stations[int(idx[best])]
        return ReturnSite(s.id, s.x, s.y, float(t[best]))

    def flight_time_to(self, x: float, y: float, tx: float, ty: float, airspeed: float) -> float:
        """Routed cruise seconds from (x, y) to one given point, e.g. the drone's own station (inf if unreachable)."""
        t, _, _ = self.router.leg(np.array([x]), np.array([y]), np.array([tx]), np.array([ty]), airspeed)
        return float(t[0]) if np.isfinite(t[0]) else float("inf")

    def need_pct(self, flight_s: float, alt_m: float, model: DroneModel) -> float:
        """Battery (%) to fly `flight_s` of cruise home from `alt_m` and land, for one drone in flight."""
        return float(battery_pct(return_seconds(flight_s, alt_m, model.descent_rate_ms), model.endurance_min * 60.0))
