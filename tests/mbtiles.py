"""Generate small MBTiles basemaps for tests (never committed as binaries): each tile a flat colour with its z/x/y.

`make_mbtiles(path, tiles)` writes a raster MBTiles file (rows in TMS order, as
the format stores them) and returns the bytes stored for each XYZ tile, so a
test can check exactly what the controller serves; `tiles_around` lists the
tiles covering a place at some zoom levels (e.g. the city, for page tests).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

Tile = tuple[int, int, int]


def tile_xy(lat: float, lon: float, z: int) -> tuple[int, int]:
    """The XYZ (slippy map) tile holding a position."""
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    lat_r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tiles_around(lat: float, lon: float, zooms: Iterable[int], radius: int = 1) -> list[Tile]:
    out = []
    for z in zooms:
        cx, cy = tile_xy(lat, lon, z)
        n = 2**z
        out += [(z, x, y) for x in range(cx - radius, cx + radius + 1) for y in range(cy - radius, cy + radius + 1)
                if 0 <= x < n and 0 <= y < n]
    return out


def tile_image(z: int, x: int, y: int, fmt: str = "png", size: int = 256) -> bytes:
    """A light flat colour (different for each tile) with a grey border and "z/x/y" written in it."""
    rng = np.random.default_rng(z * 1_000_003 + x * 1009 + y)
    img = np.empty((size, size, 3), np.uint8)
    img[:] = rng.integers(170, 250, 3)
    cv2.rectangle(img, (0, 0), (size - 1, size - 1), (120, 120, 120), 1)
    cv2.putText(img, f"{z}/{x}/{y}", (12, size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (60, 60, 60), 2)
    ok, buf = cv2.imencode(".jpg" if fmt == "jpg" else f".{fmt}", img)
    assert ok
    return buf.tobytes()


def make_mbtiles(
    path: Path, tiles: Iterable[Tile], fmt: str = "png", attribution: str = "Test tiles", metadata: bool = True,
) -> dict[Tile, bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    stored: dict[Tile, bytes] = {}
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        conn.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        conn.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        for z, x, y in tiles:
            data = tile_image(z, x, y, fmt)
            stored[(z, x, y)] = data
            conn.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (2**z - 1) - y, data))  # TMS row
        if metadata:
            zooms = [z for z, _, _ in stored]
            conn.executemany("INSERT INTO metadata VALUES (?, ?)", [
                ("name", path.stem), ("format", fmt), ("minzoom", str(min(zooms))), ("maxzoom", str(max(zooms))),
                ("attribution", attribution), ("type", "baselayer"), ("version", "1"),
            ])
        conn.commit()
    finally:
        conn.close()
    return stored
