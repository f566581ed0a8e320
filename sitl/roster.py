"""Vehicle specs from station files (read as plain data: `sitl` does not import `controller`).

A stations file is {"stations": [{"id", "name", "district", "lat", "lon",
"elevation_m"?, "drones": [{"id", "model"}, ...]}, ...]}, the shape of the
controller's configs/stations.json. Drone N in file order becomes instance N at
its station (TCP 5760 + 10·N, sysid N + 1), which is how the controller maps
drones to links. With a drone-models file, each copter gets its model's speeds,
acceleration and battery: WPNAV_SPEED/_UP/_DN, WPNAV_ACCEL, BATT_CAPACITY, and a
hover current at which a full battery lasts the model's endurance.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sitl.fleet import VehicleSpec

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_ELEVATION_M = 10.0


class RosterError(ValueError):
    pass


def load_models(models_file: Path | None) -> dict[str, dict[str, Any]]:
    if models_file is None:
        return {}
    try:
        data = yaml.safe_load(Path(models_file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RosterError(f"{models_file}: cannot read drone models: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise RosterError(f"{models_file}: expected a top-level 'models' mapping")
    return models


def model_overrides(name: str, model: dict[str, Any], source: Path | str) -> tuple[dict[str, float], float, float]:
    """(parameter overrides, hover current A, max airspeed m/s) for one drone model."""
    try:
        capacity = float(model["battery_capacity_mah"])
        endurance_h = float(model["endurance_min"]) / 60.0
        params = {
            "WPNAV_SPEED": float(model["cruise_speed_ms"]) * 100.0,
            "BATT_CAPACITY": capacity,
        }
        if "climb_rate_ms" in model:
            params["WPNAV_SPEED_UP"] = float(model["climb_rate_ms"]) * 100.0
        if "descent_rate_ms" in model:
            params["WPNAV_SPEED_DN"] = float(model["descent_rate_ms"]) * 100.0
        if "acceleration_ms2" in model:
            params["WPNAV_ACCEL"] = float(model["acceleration_ms2"]) * 100.0
        max_speed = float(model.get("max_speed_ms", 20.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise RosterError(f"{source}: drone model {name!r}: missing or bad field {exc}") from exc
    if capacity <= 0 or endurance_h <= 0:
        raise RosterError(f"{source}: drone model {name!r}: capacity and endurance must be positive")
    return params, capacity / 1000.0 / endurance_h, max_speed


#: A camera on a servo tilt gimbal, as every fleet drone carries (ArduPilot SITL's default has no mount, and then
#: MAV_CMD_DO_MOUNT_CONTROL is FAILED): tilt on SERVO9 (function 7, mount tilt), -90 (straight down) .. 0 degrees.
#: The built-in simulator takes the same parameters.
SITL_GIMBAL_PARAMS: dict[str, float] = {
    "MNT1_TYPE": 1.0,
    "SERVO9_FUNCTION": 7.0,
    "MNT1_PITCH_MIN": -90.0,
    "MNT1_PITCH_MAX": 0.0,
}

#: A centre-sprung throttle stick. SITL simulates a receiver whose throttle stick sits at the bottom, and ArduCopter
#: reads that stick as a climb rate in CIRCLE (and LOITER): a SITL copter put in CIRCLE sank at 2.5 m/s into the
#: ground (measured; with no RC pulses at all and FS_THR_ENABLE=0 it did too). The harness centres the sticks
#: (sitl.ardupilot_harness.centre_sticks) and this tells ArduCopter mid-stick is "throttle at rest", so it still arms
#: ("Throttle (RC3) is not neutral" otherwise) and disarms after landing. Then CIRCLE holds its altitude, as the
#: built-in simulator does.
SITL_RC_PARAMS: dict[str, float] = {"PILOT_THR_BHV": 1.0}

#: Current drawn by ArduPilot SITL's default quad (`--model +` with copter.parm) hovering at 30 m: 28.1 A,
#: measured on ArduCopter 4.7.0-dev SITL (SYS_STATUS.current_battery over 85 simulated seconds).
SITL_HOVER_CURRENT_A = 28.1
#: Lean angle limit (centidegrees) for SITL instances, so they reach the models' cruise speeds.
SITL_ANGLE_MAX_CDEG = 4500.0


def ardupilot_overrides(name: str, model: dict[str, Any], source: Path | str) -> dict[str, float]:
    """Parameters for a real ArduPilot SITL instance flying as `model`.

    SITL's airframe draws its own current, whatever the model: the battery capacity is set so that the
    remaining % falls at the rate the model's endurance says (as the built-in simulator's battery does),
    otherwise a SITL drone runs out four times sooner than the dispatch engine plans.
    """
    params, _, _ = model_overrides(name, model, source)
    params["BATT_CAPACITY"] = round(SITL_HOVER_CURRENT_A * float(model["endurance_min"]) / 60.0 * 1000.0)
    # SITL's quad leans at most 30 degrees by default, which holds it to 10 m/s (measured); 45 degrees lets it
    # reach the 12-15 m/s the models cruise at (14.7 m/s measured), as the airframes they stand for do.
    params["ANGLE_MAX"] = SITL_ANGLE_MAX_CDEG
    params.update(SITL_GIMBAL_PARAMS)
    params.update(SITL_RC_PARAMS)
    return params


def roster_specs(
    stations_file: Path = REPO_CONFIGS / "stations.json",
    models_file: Path | None = REPO_CONFIGS / "drone_models.yaml",
    limit: int | None = None,
    warm: bool = False,
    base_instance: int = 0,
) -> list[VehicleSpec]:
    """One spec per drone in the stations file (the first `limit`), numbered from `base_instance`."""
    try:
        data = json.loads(Path(stations_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RosterError(f"{stations_file}: cannot read stations: {exc}") from exc
    stations = data.get("stations") if isinstance(data, dict) else data
    if not isinstance(stations, list):
        raise RosterError(f"{stations_file}: expected {{'stations': [...]}} or a list of stations")
    models = load_models(models_file)
    specs: list[VehicleSpec] = []
    for k, station in enumerate(stations):
        try:
            lat, lon = float(station["lat"]), float(station["lon"])
            drones = station.get("drones") or [{"id": f"{station.get('id', k)}-D1"}]
        except (KeyError, TypeError, ValueError) as exc:
            raise RosterError(f"{stations_file}: station #{k}: missing or bad field {exc}") from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise RosterError(f"{stations_file}: station #{k}: lat/lon out of range ({lat}, {lon})")
        for drone in drones:
            if limit is not None and len(specs) >= limit:
                return specs
            params: dict[str, float] = dict(SITL_GIMBAL_PARAMS)  # every fleet drone carries the gimbal
            hover_a, max_air = 28.0, 20.0
            model_name = drone.get("model")
            if models and model_name is not None:
                if model_name not in models:
                    raise RosterError(f"{stations_file}: drone {drone.get('id')}: unknown model {model_name!r}")
                model_params, hover_a, max_air = model_overrides(model_name, models[model_name], models_file or "")
                params.update(model_params)
            specs.append(
                VehicleSpec(
                    instance=base_instance + len(specs),
                    lat=lat,
                    lon=lon,
                    alt_m=float(station.get("elevation_m", DEFAULT_ELEVATION_M)),
                    params=params,
                    hover_current_a=hover_a,
                    max_airspeed_ms=max_air,
                    warm=warm,
                    name=str(drone.get("id", "")),
                )
            )
    return specs


def home_specs(count: int, home: str, warm: bool = False, base_instance: int = 0) -> list[VehicleSpec]:
    """`count` copters at one home given as "LAT,LON,ALT,HDG" (SITL's --home)."""
    try:
        lat, lon, alt, hdg = (float(v) for v in home.split(","))
    except ValueError:
        raise RosterError(f"--home needs LAT,LON,ALT,HDG, got {home!r}") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise RosterError(f"--home: lat/lon out of range ({lat}, {lon})")
    if count < 1:
        raise RosterError("need at least one drone")
    return [VehicleSpec(base_instance + i, lat, lon, alt, hdg, warm=warm, name=f"sim-{base_instance + i}") for i in range(count)]
