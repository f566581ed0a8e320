"""Which basemap the pages draw: settings (environment) first, then configs/map.yaml; MBTiles before a URL.

One place decides, so `GET /api/v1/ui-config`, the tile route and the logs
agree. An MBTiles file is served by the controller at TILE_ROUTE; a tile URL
is handed to the browser as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing_extensions import TypedDict

from controller.config.models import MapConfig
from controller.maptiles.mbtiles import MBTiles

#: Where the controller serves an MBTiles basemap (XYZ; `{ext}` is the tileset's format).
TILE_ROUTE = "/tiles/{z}/{x}/{y}.{ext}"
DEFAULT_MIN_ZOOM, DEFAULT_MAX_ZOOM = 0, 19


class BasemapOut(TypedDict):
    url: str
    attribution: str
    min_zoom: int
    max_zoom: int


@dataclass(frozen=True)
class Basemap:
    url: str
    attribution: str
    min_zoom: int
    max_zoom: int
    #: The local tileset the controller serves (None: the browser fetches `url` itself).
    tiles: MBTiles | None = None

    def view(self) -> BasemapOut:
        return {"url": self.url, "attribution": self.attribution, "min_zoom": self.min_zoom, "max_zoom": self.max_zoom}


def resolve_basemap(
    config: MapConfig, config_dir: Path, *, mbtiles: Path | None = None, tile_url: str = "", attribution: str = "",
) -> Basemap | None:
    """`mbtiles`, `tile_url`, `attribution`: the settings' (environment) values, which win over map.yaml."""
    path = mbtiles  # from the environment: relative to the working directory
    if path is None and not tile_url and config.mbtiles is not None:
        path = config.mbtiles if config.mbtiles.is_absolute() else config_dir / config.mbtiles
    url = tile_url or ("" if mbtiles is not None else config.tiles_url or "")
    if path is not None:
        tiles = MBTiles(path)
        info = tiles.info
        return Basemap(
            url=TILE_ROUTE.replace("{ext}", info.format),
            attribution=attribution or config.attribution or info.attribution,
            min_zoom=config.min_zoom if config.min_zoom is not None else info.min_zoom,
            max_zoom=config.max_zoom if config.max_zoom is not None else info.max_zoom,
            tiles=tiles,
        )
    if url:
        return Basemap(
            url=url,
            attribution=attribution or config.attribution,
            min_zoom=config.min_zoom if config.min_zoom is not None else DEFAULT_MIN_ZOOM,
            max_zoom=config.max_zoom if config.max_zoom is not None else DEFAULT_MAX_ZOOM,
        )
    return None
