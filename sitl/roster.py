"""Vehicle specs from the controller's roster files (read as plain data: `sitl` does not import `controller`).

Drone N in roster order becomes SITL instance N at its station (port 5760 + 10·N,
sysid N + 1), which is exactly how the controller maps drones to links. The
battery is sized from the drone model: capacity, and a hover current such that
a full battery lasts the model's endurance.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sitl.fleet import VehicleSpec

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def roster_specs(
    stations_file: Path = REPO_CONFIGS / "stations.json",
    models_file: Path = REPO_CONFIGS / "drone_models.yaml",
    limit: int | None = None,
    warm: bool = False,
) -> list[VehicleSpec]:
    stations = json.loads(Path(stations_file).read_text())["stations"]
    models = yaml.safe_load(Path(models_file).read_text())["models"]
    specs: list[VehicleSpec] = []
    for station in stations:
        for drone in station["drones"]:
            if limit is not None and len(specs) >= limit:
                return specs
            model = models[drone["model"]]
            capacity = float(model["battery_capacity_mah"])
            hover_a = capacity / 1000.0 / (float(model["endurance_min"]) / 60.0)
            specs.append(
                VehicleSpec(
                    instance=len(specs),
                    lat=station["lat"],
                    lon=station["lon"],
                    alt_m=float(station.get("elevation_m", 10.0)),
                    params={"BATT_CAPACITY": capacity},
                    hover_current_a=hover_a,
                    warm=warm,
                    name=drone["id"],
                )
            )
    return specs
