"""Read raster tiles out of an MBTiles file (SQLite; rows in TMS order, flipped here to the XYZ the browser asks for).

Opened read-only once at start; a bad file stops the start with its path and
what is wrong, rather than leaving a blank map. Lookups are one indexed SELECT
under a lock (a tile is a few kilobytes), run in the request's worker thread.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

#: Raster formats served, with their content type (vector `pbf` tilesets need a vector renderer: refused).
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
#: Extensions a request may use for each format.
EXTENSIONS = {"png": ("png",), "jpg": ("jpg", "jpeg"), "webp": ("webp",)}
MAX_ZOOM = 24


class MBTilesError(Exception):
    """The file is missing, not an MBTiles database, or holds tiles this controller cannot serve."""


@dataclass(frozen=True, slots=True)
class TilesetInfo:
    format: str
    min_zoom: int
    max_zoom: int
    attribution: str
    name: str


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class MBTiles:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise MBTilesError(f"{self.path}: MBTiles file not found")
        try:
            self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
            meta = dict(self._conn.execute("SELECT name, value FROM metadata").fetchall())
            zooms = self._conn.execute("SELECT MIN(zoom_level), MAX(zoom_level) FROM tiles").fetchone()
            first = self._conn.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise MBTilesError(f"{self.path}: not an MBTiles file ({exc})") from None
        self._lock = threading.Lock()
        fmt = str(meta.get("format") or (first and _sniff(first[0])) or "").lower()
        fmt = "jpg" if fmt == "jpeg" else fmt
        if fmt not in CONTENT_TYPES:
            raise MBTilesError(
                f"{self.path}: tile format {fmt or 'unknown'!r} is not served (raster png, jpg or webp only)"
            )
        if zooms is None or zooms[0] is None:
            raise MBTilesError(f"{self.path}: the tileset holds no tiles")
        self.info = TilesetInfo(
            format=fmt,
            min_zoom=int(meta.get("minzoom", zooms[0])),
            max_zoom=int(meta.get("maxzoom", zooms[1])),
            attribution=str(meta.get("attribution", "")),
            name=str(meta.get("name", self.path.stem)),
        )

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.info.format]

    def serves(self, ext: str) -> bool:
        return ext in EXTENSIONS[self.info.format]

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ (z, x, y) (stored at TMS row 2^z - 1 - y), or None where there is none."""
        if not (0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z):
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, (2**z - 1) - y),
            ).fetchone()
        return bytes(row[0]) if row is not None else None

    def close(self) -> None:
        self._conn.close()
