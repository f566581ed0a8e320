"""No-fly enforcement: every point and straight leg the controller sends is checked against the zones.

Polygons are projected once into the city's metric frame; a check is a shapely
`contains`/`intersects` on prepared geometry (microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely import LineString, Point, Polygon, prepare

from controller.config.models import NoFlyCollection
from controller.geo import LocalFrame


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

    def check_point(self, lat: float, lon: float, what: str) -> None:
        zone = self.zone_at(lat, lon)
        if zone is not None:
            raise NoFlyViolation(zone, what)

    def check_leg(self, a: tuple[float, float], b: tuple[float, float], what: str) -> None:
        self.check_point(*b, what)
        zone = self.zone_crossed(a, b)
        if zone is not None:
            raise NoFlyViolation(zone, f"the straight path of {what}")
