"""Read configs/ once, validate everything, and fail at start with file, field and value named.

A bad configuration must stop the controller before it accepts a single call,
with a message a duty officer can act on, e.g.::

    configs/dispatch.yaml: offer_timeout_s = -5: Input should be greater than 0
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from controller.geo import LocalFrame
from controller.config.models import (
    City,
    DispatchPolicy,
    DroneModel,
    DroneModelCatalog,
    FlightProfile,
    MapConfig,
    NoFlyCollection,
    Station,
    StationRoster,
)

M = TypeVar("M", bound=BaseModel)

FILES = {
    "city": "city.yaml",
    "stations": "stations.json",
    "drone_models": "drone_models.yaml",
    "dispatch": "dispatch.yaml",
    "nofly": "nofly.geojson",
    "flight": "flight.yaml",
    #: Optional: the basemap (no file, or an empty one: no basemap unless the environment names one).
    "map": "map.yaml",
}


class ConfigError(Exception):
    """A configuration file is missing, unreadable or invalid; the message names file, field and value."""


def default_config_dir() -> Path:
    """configs/ beside the packages (editable install / checkout), unless DRONEFLEET_CONFIG_DIR says otherwise."""
    env = os.environ.get("DRONEFLEET_CONFIG_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class FleetConfig:
    """Everything read from configs/, validated and cross-checked."""

    directory: Path
    city: City
    roster: StationRoster
    drone_models: dict[str, DroneModel]
    policy: DispatchPolicy
    nofly: NoFlyCollection
    #: Metric east/north frame centred on the city's population-weighted centre.
    frame: LocalFrame
    flight: FlightProfile
    map: MapConfig = MapConfig()

    @property
    def stations(self) -> tuple[Station, ...]:
        return self.roster.stations

    def station(self, station_id: str) -> Station:
        for station in self.roster.stations:
            if station.id == station_id:
                return station
        raise KeyError(station_id)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.')}: {exc}") from exc


def _lookup(data: Any, loc: tuple[Any, ...]) -> Any:
    for key in loc:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return "<missing>"
    return data


def format_validation_error(path: Path, data: Any, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(part) for part in loc) or "<root>"
        value = _lookup(data, loc)
        shown = json.dumps(value, default=str) if value != "<missing>" else value
        if len(shown) > 80:
            shown = shown[:77] + "..."
        lines.append(f"{path}: {field} = {shown}: {err['msg']}")
    return "\n".join(lines)


def parse_file(path: Path, model: type[M]) -> M:
    data = _read(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, data, exc)) from None


def load_config(directory: Path | None = None) -> FleetConfig:
    """Load and cross-check every file in `directory` (default: the repository's configs/)."""
    directory = Path(directory) if directory else default_config_dir()
    city = parse_file(directory / FILES["city"], City)
    roster = parse_file(directory / FILES["stations"], StationRoster)
    catalog = parse_file(directory / FILES["drone_models"], DroneModelCatalog)
    policy = parse_file(directory / FILES["dispatch"], DispatchPolicy)
    nofly = parse_file(directory / FILES["nofly"], NoFlyCollection)
    flight = parse_file(directory / FILES["flight"], FlightProfile)
    map_path = directory / FILES["map"]
    map_config = MapConfig()
    if map_path.exists() and _read(map_path) is not None:
        map_config = parse_file(map_path, MapConfig)

    path = directory / FILES["stations"]
    drone_ids = {d.id for s in roster.stations for d in s.drones}
    for drone_id in flight.links.overrides:
        if drone_id not in drone_ids:
            raise ConfigError(f"{directory / FILES['flight']}: links.overrides.{drone_id}: no such drone in the roster")
    for i, station in enumerate(roster.stations):
        for j, drone in enumerate(station.drones):
            if drone.model not in catalog.models:
                raise ConfigError(
                    f"{path}: stations.{i}.drones.{j}.model = {json.dumps(drone.model)}: "
                    f"unknown drone model; known: {', '.join(sorted(catalog.models))}"
                )
    people = sum(d.population for d in city.districts)
    centre_lat = sum(d.lat * d.population for d in city.districts) / people
    centre_lon = sum(d.lon * d.population for d in city.districts) / people
    return FleetConfig(
        frame=LocalFrame(round(centre_lat, 4), round(centre_lon, 4)),
        directory=directory,
        city=city,
        roster=roster,
        drone_models=dict(catalog.models),
        policy=policy,
        nofly=nofly,
        flight=flight,
        map=map_config,
    )
