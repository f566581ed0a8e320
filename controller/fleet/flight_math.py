"""Pure maths for flying a mission: orbit points around a scene.

(The battery needed to get home and where to land are the dispatch engine's
rule, in controller.dispatch.returns, so dispatch and flight cannot disagree.)
"""

from __future__ import annotations

from controller import geo


def orbit_points(lat: float, lon: float, radius_m: float, count: int) -> list[tuple[float, float]]:
    """`count` points on a circle around the scene, clockwise from north."""
    return [geo.destination(lat, lon, 360.0 * i / count, radius_m) for i in range(count)]
