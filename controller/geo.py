"""Geodesy for the controller: pure functions on WGS84 coordinates.

Precise answers come from pyproj's geodesic solver. Dispatch ranks many drones
per decision, so the array forms take numpy arrays and solve them in one call.
A `LocalFrame` gives metric x/y (east/north) around a point for planar geometry
such as no-fly polygons, where shapely wants Cartesian coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pyproj import Geod, Transformer

_GEOD = Geod(ellps="WGS84")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance in metres."""
    _, _, dist = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist)


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial true bearing from point 1 to point 2, 0..360 degrees."""
    az, _, _ = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(az) % 360.0


def destination(lat: float, lon: float, bearing: float, dist_m: float) -> tuple[float, float]:
    """Point reached going `dist_m` metres from (lat, lon) on an initial bearing; returns (lat, lon)."""
    lon2, lat2, _ = _GEOD.fwd(lon, lat, bearing, dist_m)
    return float(lat2), float(lon2)


def distances_m(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    """Geodesic distances from one point to many, in one vectorised call."""
    lats = np.asarray(lats, dtype=float)
    if lats.size == 0:
        return np.zeros(0)
    _, _, dist = _GEOD.inv(np.full(lats.shape, lon), np.full(lats.shape, lat), np.asarray(lons, dtype=float), lats)
    return np.asarray(dist, dtype=float)


def circle_ring(lat: float, lon: float, radius_m: float, vertices: int = 64) -> list[tuple[float, float]]:
    """A closed GeoJSON ring ([lon, lat] pairs) approximating a geodesic circle."""
    if vertices < 8:
        raise ValueError("a circle needs at least 8 vertices")
    ring = []
    for i in range(vertices):
        lat2, lon2 = destination(lat, lon, 360.0 * i / vertices, radius_m)
        ring.append((round(lon2, 6), round(lat2, 6)))
    ring.append(ring[0])
    return ring


@dataclass(frozen=True)
class LocalFrame:
    """Azimuthal-equidistant east/north metres around an origin: exact distances from the origin,
    sub-metre errors across a city, which is what planar geometry (shapely) needs."""

    lat0: float
    lon0: float
    _fwd: Transformer = field(init=False, repr=False, compare=False)
    _inv: Transformer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        proj = f"+proj=aeqd +lat_0={self.lat0} +lon_0={self.lon0} +datum=WGS84 +units=m +no_defs"
        object.__setattr__(self, "_fwd", Transformer.from_crs("EPSG:4326", proj, always_xy=True))
        object.__setattr__(self, "_inv", Transformer.from_crs(proj, "EPSG:4326", always_xy=True))

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        x, y = self._fwd.transform(lon, lat)
        return float(x), float(y)

    def to_latlon(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self._inv.transform(x, y)
        return float(lat), float(lon)

    def ring_to_xy(self, ring: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
        """GeoJSON [lon, lat] positions to local (x, y) metres."""
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        xs, ys = self._fwd.transform(lons, lats)
        return list(zip((float(x) for x in xs), (float(y) for y in ys), strict=True))


def equirectangular_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Fast planar approximation (error < 0.1 % under 50 km): for cheap pre-filters only."""
    k = 111_320.0
    dx = (lon2 - lon1) * k * math.cos(math.radians((lat1 + lat2) / 2))
    dy = (lat2 - lat1) * 110_574.0
    return math.hypot(dx, dy)
