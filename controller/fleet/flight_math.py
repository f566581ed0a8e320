"""Pure maths for flying a mission: orbit points, the battery needed to get home, the nearest landing site."""

from __future__ import annotations

from collections.abc import Sequence

from controller import geo
from controller.config.models import DroneModel


def orbit_points(lat: float, lon: float, radius_m: float, count: int) -> list[tuple[float, float]]:
    """`count` points on a circle around the scene, clockwise from north."""
    return [geo.destination(lat, lon, 360.0 * i / count, radius_m) for i in range(count)]


def battery_to_return_pct(distance_m: float, alt_m: float, model: DroneModel) -> float:
    """Share of a full battery the flight home takes: cruise back, then descend."""
    seconds = distance_m / model.cruise_speed_ms + max(alt_m, 0.0) / model.descent_rate_ms
    return 100.0 * seconds / (model.endurance_min * 60.0)


def nearest_site(lat: float, lon: float, sites: Sequence[tuple[str, float, float]]) -> tuple[str, float]:
    """(site id, distance m) of the nearest of `sites` given as (id, lat, lon)."""
    best = min(sites, key=lambda s: geo.equirectangular_m(lat, lon, s[1], s[2]))
    return best[0], geo.distance_m(lat, lon, best[1], best[2])
