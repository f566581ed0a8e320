"""No-fly enforcement: every point and straight leg the controller sends is checked against the zones.

Polygons are projected once into the city's metric frame; a check is a shapely
`contains`/`intersects` on prepared geometry (microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import dijkstra
from shapely import LineString, Point, Polygon, prepare

from controller.config.models import NoFlyCollection
from controller.geo import LocalFrame


#: Detours keep this far outside a zone's edge (GPS error, wind drift, braking).
DETOUR_MARGIN_M = 150.0


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    polygon: Polygon


class NoFlyViolation(Exception):
    def __init__(self, zone: Zone, what: str) -> None:
        super().__init__(f"{what} is inside no-fly zone {zone.id} ({zone.name})")
        self.zone = zone


class NoFlyGuard:
    def __init__(self, zones: NoFlyCollection, frame: LocalFrame) -> None:
        self._frame = frame
        self.zones: list[Zone] = []
        for feature in zones.features:
            outer, *holes = (frame.ring_to_xy(ring) for ring in feature.geometry.coordinates)
            poly = Polygon(outer, holes)
            prepare(poly)
            self.zones.append(Zone(feature.properties.id, feature.properties.name, poly))

    def zone_at(self, lat: float, lon: float) -> Zone | None:
        p = Point(self._frame.to_xy(lat, lon))
        return next((z for z in self.zones if z.polygon.contains(p)), None)

    def zone_crossed(self, a: tuple[float, float], b: tuple[float, float]) -> Zone | None:
        """The first zone a straight leg from a to b (lat, lon) passes through, if any."""
        line = LineString([self._frame.to_xy(*a), self._frame.to_xy(*b)])
        return next((z for z in self.zones if z.polygon.intersects(line)), None)

    def zone_within(self, lat: float, lon: float, margin_m: float) -> tuple[Zone, float] | None:
        """The nearest zone closer than `margin_m` to a point (0 m: inside it), and the distance, if any."""
        p = Point(self._frame.to_xy(lat, lon))
        near = [(z, z.polygon.distance(p)) for z in self.zones]
        near = [(z, d) for z, d in near if d < margin_m or z.polygon.contains(p)]
        return min(near, key=lambda zd: zd[1]) if near else None

    def zone_near_leg(self, a: tuple[float, float], b: tuple[float, float], margin_m: float) -> Zone | None:
        """The first zone a straight leg from a to b passes within `margin_m` of (through it when 0)."""
        line = LineString([self._frame.to_xy(*a), self._frame.to_xy(*b)])
        return next((z for z in self.zones if z.polygon.distance(line) < margin_m or z.polygon.intersects(line)), None)

    def zone_near_circle(self, centre: tuple[float, float], radius_m: float, margin_m: float) -> Zone | None:
        """The first zone a circle of `radius_m` around `centre` (an orbit) passes within `margin_m` of."""
        ring = Point(self._frame.to_xy(*centre)).buffer(radius_m, 16).exterior
        return next((z for z in self.zones if z.polygon.distance(ring) < margin_m or z.polygon.intersects(ring)), None)

    def check_point(self, lat: float, lon: float, what: str) -> None:
        zone = self.zone_at(lat, lon)
        if zone is not None:
            raise NoFlyViolation(zone, what)

    def route(self, a: tuple[float, float], b: tuple[float, float], margin_m: float = DETOUR_MARGIN_M) -> list[tuple[float, float]]:
        """Waypoints (lat, lon) from a to b that keep out of every zone: [b] when the straight leg is clear,
        else the shortest path through the corners of the zones grown by `margin_m` (a visibility graph,
        as the dispatch engine assumes when it times the flight). Raises NoFlyViolation if b is in a zone
        or no path exists."""
        self.check_point(*b, "the destination")
        if self.zone_crossed(a, b) is None:
            return [b]
        grown = [z.polygon.buffer(margin_m, 4) for z in self.zones]
        inner = [z.polygon.buffer(margin_m * 0.5, 4) for z in self.zones]
        for p in inner:
            prepare(p)
        nodes = [self._frame.to_xy(*a), self._frame.to_xy(*b)]
        for g in grown:
            nodes.extend(list(g.exterior.coords)[:-1])
        n = len(nodes)
        weights = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                seg = LineString([nodes[i], nodes[j]])
                if not any(p.intersects(seg) for p in inner):
                    weights[i, j] = weights[j, i] = seg.length
        dist, pred = dijkstra(weights, directed=False, indices=0, return_predecessors=True)
        if not np.isfinite(dist[1]):
            raise NoFlyViolation(self.zone_crossed(a, b), "every path to the destination")  # type: ignore[arg-type]
        path, k = [], 1
        while k != 0:
            path.append(k)
            k = int(pred[k])
        return [self._frame.to_latlon(*nodes[k]) for k in reversed(path)]

    def check_leg(self, a: tuple[float, float], b: tuple[float, float], what: str) -> None:
        self.check_point(*b, what)
        zone = self.zone_crossed(a, b)
        if zone is not None:
            raise NoFlyViolation(zone, f"the straight path of {what}")
