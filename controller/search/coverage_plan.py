"""Coverage plans for a search: the area split among k drones, each sweeping lawnmower tracks.

Pure geometry in the city's metric frame (shapely). Track spacing comes from the
thermal camera's ground footprint at search altitude, less the overlap, so
adjacent sweeps see overlapping ground. Each drone's share is a strip of equal
area; its tracks run along the strip's long side and start at the end nearest
the last-known position, where the person most likely is. A small area for one
drone can use an expanding square centred on the last-known position instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shapely import LineString, MultiLineString, Point, Polygon, box
from shapely.affinity import rotate


@dataclass(frozen=True)
class Footprint:
    """Ground seen by a nadir camera: across-track width at a height."""

    hfov_deg: float
    altitude_m: float

    @property
    def width_m(self) -> float:
        return 2.0 * self.altitude_m * math.tan(math.radians(self.hfov_deg) / 2.0)


def track_spacing(footprint: Footprint, overlap: float) -> float:
    if not 0.0 <= overlap < 0.9:
        raise ValueError("overlap must be in [0, 0.9)")
    return footprint.width_m * (1.0 - overlap)


def split_equal_area(area: Polygon, parts: int) -> list[Polygon]:
    """Vertical strips of (nearly) equal area, cut along the polygon's long axis."""
    if parts < 1:
        raise ValueError("at least one part")
    if parts == 1:
        return [area]
    angle = _long_axis_angle(area)
    rotated = rotate(area, -angle, origin=area.centroid)
    minx, miny, maxx, maxy = rotated.bounds
    cuts = [minx]
    total = rotated.area
    for i in range(1, parts):
        target = total * i / parts
        lo, hi = cuts[-1], maxx
        for _ in range(50):  # bisection on the cut position
            mid = (lo + hi) / 2
            if rotated.intersection(box(minx, miny, mid, maxy)).area < target:
                lo = mid
            else:
                hi = mid
        cuts.append((lo + hi) / 2)
    cuts.append(maxx)
    strips = [rotated.intersection(box(a, miny, b, maxy)) for a, b in zip(cuts, cuts[1:])]
    return [rotate(s, angle, origin=area.centroid) for s in strips]


def _long_axis_angle(poly: Polygon) -> float:
    """Angle (degrees) of the minimum rotated rectangle's long side."""
    rect = poly.minimum_rotated_rectangle
    xs, ys = rect.exterior.coords.xy
    edges = [(xs[i + 1] - xs[i], ys[i + 1] - ys[i]) for i in range(2)]
    dx, dy = max(edges, key=lambda e: math.hypot(*e))
    return math.degrees(math.atan2(dy, dx))


def lawnmower(strip: Polygon, spacing: float, start_near: tuple[float, float]) -> list[tuple[float, float]]:
    """Boustrophedon waypoints covering `strip`: sweeps parallel to its long side, `spacing` apart,
    the first sweep on the side nearest `start_near`, each sweep entered from the end nearest the last."""
    angle = _long_axis_angle(strip)
    origin = strip.centroid
    r = rotate(strip, -angle, origin=origin)  # long side along x
    minx, miny, maxx, maxy = r.bounds
    # As few tracks as keep them at most `spacing` apart, spread evenly: each edge is then at most half a
    # spacing from the nearest track, inside its swath (a fixed start would leave a band along the far edge).
    n = max(1, math.ceil((maxy - miny) / spacing))
    ys = [miny + (i + 0.5) * (maxy - miny) / n for i in range(n)]
    start = rotate(Point(start_near), -angle, origin=origin)
    if abs(start.y - ys[-1]) < abs(start.y - ys[0]):
        ys.reverse()
    waypoints: list[tuple[float, float]] = []
    for y in ys:
        line = r.intersection(LineString([(minx - 1, y), (maxx + 1, y)]))
        if line.is_empty:
            continue
        parts = list(line.geoms) if isinstance(line, MultiLineString) else [line]
        xs = sorted(x for part in parts for x, _ in part.coords)
        a, b = (xs[0], y), (xs[-1], y)
        here = waypoints[-1] if waypoints else (start.x, start.y)
        if math.dist(here, b) < math.dist(here, a):
            a, b = b, a
        waypoints += [a, b]
    back = rotate(LineString(waypoints) if len(waypoints) > 1 else Point(waypoints[0]), angle, origin=origin)
    return [(x, y) for x, y in back.coords]


def expanding_square(centre: tuple[float, float], spacing: float, radius: float) -> list[tuple[float, float]]:
    """The classic search-and-rescue expanding square around the last-known position."""
    x, y = centre
    points = [(x, y)]
    leg, heading = 1, 0
    while leg * spacing / 2 <= radius + spacing:
        for _ in range(2):
            dx, dy = [(0, 1), (1, 0), (0, -1), (-1, 0)][heading % 4]
            x, y = x + dx * leg * spacing, y + dy * leg * spacing
            points.append((x, y))
            heading += 1
        leg += 1
    return points


def path_length(points: list[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in zip(points, points[1:]))


def covered_share(area: Polygon, paths: list[list[tuple[float, float]]], swath: float) -> float:
    """Share of the area inside the union of the sweeps' camera swaths (the planner's own check)."""
    seen = None
    for p in paths:
        geom = LineString(p).buffer(swath / 2, cap_style="flat") if len(p) > 1 else Point(p[0]).buffer(swath / 2)
        seen = geom if seen is None else seen.union(geom)
    return 0.0 if seen is None else area.intersection(seen).area / area.area
