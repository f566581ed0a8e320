"""Coverage outputs: a PNG map (matplotlib, headless) and a GeoJSON of the 1/3/5-minute rings.

Rings are the union of grid cells within each time, converted back to WGS84,
so a GIS or the command page can overlay them on a real map.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.ops import transform, unary_union

from controller.config import FleetConfig
from controller.coverage.grid import RINGS_S, Coverage


def ring_polygons(cov: Coverage, config: FleetConfig) -> dict[float, Any]:
    """Per ring limit, the (lon, lat) geometry of the cells inside it, lightly simplified."""
    half = cov.cell_m / 2
    out = {}
    for limit in RINGS_S:
        inside = np.flatnonzero(cov.eta_s <= limit)
        boxes = shapely.box(cov.x[inside] - half, cov.y[inside] - half, cov.x[inside] + half, cov.y[inside] + half)
        merged = unary_union(boxes).simplify(cov.cell_m / 4)
        out[limit] = transform(lambda x, y: _to_lonlat(config, x, y), merged)
    return out


def _to_lonlat(config: FleetConfig, x: Any, y: Any) -> tuple[Any, Any]:
    lon, lat = config.frame._inv.transform(x, y)
    return lon, lat


def write_geojson(path: Path, cov: Coverage, config: FleetConfig, summary: dict[str, Any]) -> None:
    features = []
    shares = summary["rings"]
    for limit, geom in ring_polygons(cov, config).items():
        key = f"{limit / 60:g}min"
        features.append({"type": "Feature", "geometry": mapping(geom),
                         "properties": {"kind": "ring", "minutes": limit / 60, **shares[key]}})
    far = summary["farthest_point"]
    features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [far["lon"], far["lat"]]},
                     "properties": {"kind": "farthest_point", **far}})
    for s in config.stations:
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [s.lon, s.lat]},
                         "properties": {"kind": "station", "id": s.id}})
    for i, site in enumerate(summary.get("suggested_stations", [])):
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [site["lon"], site["lat"]]},
                         "properties": {"kind": "suggested_station", "rank": i + 1, **site}})
    doc = {"type": "FeatureCollection", "properties": {k: v for k, v in summary.items() if k != "suggested_stations"},
           "features": features}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def write_png(path: Path, cov: Coverage, config: FleetConfig, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    km = 1000.0
    xs = np.unique(cov.x)
    ys = np.unique(cov.y)
    grid = np.full((len(ys), len(xs)), np.nan)
    grid[np.searchsorted(ys, cov.y), np.searchsorted(xs, cov.x)] = np.minimum(cov.eta_s, 900.0) / 60.0
    fig, ax = plt.subplots(figsize=(9, 10), dpi=110)
    bounds = [0, 1, 3, 5, 10, 15.01]
    cmap = ListedColormap(["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"])
    mesh = ax.pcolormesh(xs / km, ys / km, np.ma.masked_invalid(grid), cmap=cmap, norm=BoundaryNorm(bounds, cmap.N), shading="nearest")
    ax.contour(xs / km, ys / km, np.nan_to_num(grid, nan=99), levels=[1, 3, 5], colors=["k"], linewidths=[0.6, 0.9, 1.2])
    for f in config.nofly.features:
        ring = np.array(config.frame.ring_to_xy(f.geometry.coordinates[0]))
        ax.fill(ring[:, 0] / km, ring[:, 1] / km, facecolor="none", edgecolor="purple", hatch="//", linewidth=1.2)
    ax.scatter(cov.station_xy[:, 0] / km, cov.station_xy[:, 1] / km, s=6, c="k", label="stations")
    far = summary["farthest_point"]
    fx, fy = config.frame.to_xy(far["lat"], far["lon"])
    ax.scatter([fx / km], [fy / km], marker="x", s=80, c="blue", label=f"farthest from a station ({far['distance_m'] / km:.1f} km)")
    for site in summary.get("suggested_stations", []):
        sx, sy = config.frame.to_xy(site["lat"], site["lon"])
        ax.scatter([sx / km], [sy / km], marker="*", s=90, c="cyan", edgecolors="k")
    rings = summary["rings"]
    ax.set_title(
        f"{config.city.name}: time to scene ({len(config.stations)} stations, wind {config.policy.wind.speed_ms:g} m/s)\n"
        + "  ".join(f"{k}: {v['area_share']:.0%} area / {v['population_share']:.0%} pop." for k, v in rings.items()),
        fontsize=9,
    )
    ax.set_xlabel("east, km")
    ax.set_ylabel("north, km")
    ax.set_aspect("equal")
    fig.colorbar(mesh, ax=ax, label="minutes (capped at 15)", shrink=0.7)
    ax.legend(loc="lower left", fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
