"""Runtime settings: where the database and configs live, how to listen, which fleet to fly.

Validated once at start from the environment and the command line; everything
downstream receives a frozen Settings object.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.config import default_config_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_var_dir() -> Path:
    return Path(os.environ.get("DRONEFLEET_VAR_DIR", REPO_ROOT / "var"))


def default_database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{default_var_dir() / 'dronefleet.sqlite3'}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(default_factory=default_database_url)
    config_dir: Path = Field(default_factory=default_config_dir)
    var_dir: Path = Field(default_factory=default_var_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    dev: bool = False
    #: sim: start the built-in simulator as a child process; external: connect to drones already listening;
    #: ardupilot: launch real SITL instances; none: no flight layer (offers and acceptance only).
    fleet: Literal["sim", "external", "ardupilot", "none"] = "none"
    fleet_drones: int | None = Field(default=None, ge=1, le=2000)
    sim_speedup: float = Field(default=1.0, gt=0, le=100)
    #: Thermal scenario file or folder for the simulated cameras (warm people and decoys); None: no heat sources.
    sim_scenario: Path | None = None
    log_level: str = "info"
    #: forward: relay encoded video (normal); reencode: decode and re-encode per viewer (benchmark comparison only).
    video_mode: Literal["forward", "reencode"] = "forward"
    #: Map tiles for the command page, e.g. "https://tile.openstreetmap.org/{z}/{x}/{y}.png"; empty: no tiles
    #: (the map still shows stations, drones, incidents and no-fly zones, offline).
    map_tile_url: str = Field(default_factory=lambda: os.environ.get("DRONEFLEET_TILE_URL", ""))
    map_tile_attribution: str = Field(default_factory=lambda: os.environ.get("DRONEFLEET_TILE_ATTRIBUTION", ""))
    #: A local raster MBTiles basemap the controller serves at /tiles/{z}/{x}/{y}.{ext} (offline command rooms);
    #: wins over map_tile_url and configs/map.yaml.
    mbtiles: Path | None = Field(default_factory=lambda: Path(p) if (p := os.environ.get("DRONEFLEET_MBTILES")) else None)
