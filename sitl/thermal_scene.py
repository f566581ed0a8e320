"""Seeded thermal worlds for search scenarios: a missing person among the warm things that look like one.

A scenario file (YAML, see configs/scenarios/) names a last-known point, a
search radius, a seed, the night's conditions, where the person is (or lets
the seed place them) and how many decoys of each kind to scatter. Expanding
the file with its seed always gives the same world, so a benchmark or a test
can score detections against the truth it planted.

Sizes and temperatures are what a long-wave camera sees at night from above:
a person lying is about 1.7 x 0.5 m of clothed surface at 26–31 °C; standing,
seen from above, only head and shoulders (0.5 x 0.4 m); cars keep a warm
bonnet for an hour; animals are smaller and warmer; rocks and roofs give back
the day's sun at a few degrees above the ground.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sitl.camera_render import METRES_PER_DEG_LAT, ThermalConditions, ThermalSource

#: kind -> (length range m, width range m, temperature range °C)
KINDS: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "person_lying": ((1.5, 1.8), (0.45, 0.6), (26.0, 31.0)),
    "person_standing": ((0.45, 0.6), (0.35, 0.45), (28.0, 32.0)),
    "warm_car": ((4.2, 4.9), (1.7, 1.9), (18.0, 30.0)),
    "animal": ((0.5, 0.9), (0.25, 0.35), (30.0, 34.0)),
    "rock": ((0.6, 2.5), (0.5, 2.0), (12.0, 16.0)),
    "roof": ((8.0, 16.0), (6.0, 12.0), (12.0, 15.0)),
}
PERSON_KINDS = frozenset({"person_lying", "person_standing"})


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and the field named."""


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    lat: float
    lon: float
    radius_m: float
    conditions: ThermalConditions
    sources: list[ThermalSource] = field(default_factory=list)
    description: str = ""
    #: How many drones the search asks for.
    drones: int = 2

    @property
    def people(self) -> list[ThermalSource]:
        """The planted people: what a search must find."""
        return [s for s in self.sources if s.kind in PERSON_KINDS]

    @property
    def area_km2(self) -> float:
        return math.pi * self.radius_m**2 / 1e6


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """A point east/north metres away (equirectangular, as the renderer uses)."""
    return (
        lat + north_m / METRES_PER_DEG_LAT,
        lon + east_m / (METRES_PER_DEG_LAT * 1.00336 * math.cos(math.radians(lat))),
    )


def _source(kind: str, lat: float, lon: float, rng: np.random.Generator) -> ThermalSource:
    (l0, l1), (w0, w1), (t0, t1) = KINDS[kind]
    return ThermalSource(
        lat=lat, lon=lon,
        length_m=float(rng.uniform(l0, l1)), width_m=float(rng.uniform(w0, w1)),
        heading_deg=float(rng.uniform(0, 180)), temp_c=float(rng.uniform(t0, t1)), kind=kind,
    )


def _random_point(rng: np.random.Generator, radius_m: float) -> tuple[float, float]:
    """Uniform over the disc (east, north)."""
    r = radius_m * math.sqrt(float(rng.random()))
    a = float(rng.uniform(0, 2 * math.pi))
    return r * math.cos(a), r * math.sin(a)


def build_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Expand a scenario description with its seed (pure: same input, same world)."""

    def need(key: str, kind: type) -> Any:
        if key not in data:
            raise ScenarioError(f"{source}: field {key!r} is missing")
        try:
            return kind(data[key])
        except (TypeError, ValueError) as exc:
            raise ScenarioError(f"{source}: field {key!r}: bad value {data[key]!r}") from exc

    name, seed = need("name", str), need("seed", int)
    lat, lon, radius = need("lat", float), need("lon", float), need("radius_m", float)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ScenarioError(f"{source}: lat/lon out of range: {lat}, {lon}")
    if not 10 <= radius <= 5000:
        raise ScenarioError(f"{source}: field 'radius_m': {radius} is not within 10..5000 m")
    cond = data.get("conditions") or {}
    try:
        conditions = ThermalConditions(**{k: float(v) for k, v in cond.items()})
    except TypeError as exc:
        raise ScenarioError(f"{source}: field 'conditions': {exc}") from exc
    rng = np.random.default_rng(seed)
    sources: list[ThermalSource] = []
    for person in data.get("people") or [{"kind": "person_lying"}]:
        kind = person.get("kind", "person_lying")
        if kind not in PERSON_KINDS:
            raise ScenarioError(f"{source}: people: kind {kind!r} is not one of {sorted(PERSON_KINDS)}")
        if "east_m" in person or "north_m" in person:
            east, north = float(person.get("east_m", 0.0)), float(person.get("north_m", 0.0))
        else:
            east, north = _random_point(rng, 0.85 * radius)
        sources.append(_source(kind, *offset(lat, lon, east, north), rng))
    for kind, count in (data.get("decoys") or {}).items():
        if kind not in KINDS or kind in PERSON_KINDS:
            raise ScenarioError(f"{source}: decoys: {kind!r} is not one of {sorted(set(KINDS) - PERSON_KINDS)}")
        if not isinstance(count, int) or not 0 <= count <= 500:
            raise ScenarioError(f"{source}: decoys.{kind}: {count!r} is not a count within 0..500")
        for _ in range(count):
            sources.append(_source(kind, *offset(lat, lon, *_random_point(rng, radius)), rng))
    drones = int(data.get("drones", 2))
    if not 1 <= drones <= 8:
        raise ScenarioError(f"{source}: field 'drones': {drones} is not within 1..8")
    return Scenario(name, seed, lat, lon, radius, conditions, sources, str(data.get("description", "")), drones)


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario: {exc}") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of fields")
    return build_scenario(data, str(path))


def scenario_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def load_scenarios(path: Path | str) -> list[Scenario]:
    """One scenario file, or every *.yaml in a folder (their worlds lie in different parts of the city)."""
    path = Path(path)
    files = scenario_files(path) if path.is_dir() else [path]
    if not files:
        raise ScenarioError(f"{path}: no scenario files")
    return [load_scenario(f) for f in files]
