"""The basemap: an MBTiles file served as XYZ tiles (TMS rows flipped), or a tile URL, named in ui-config; the icon."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from controller.api.app import create_app
from controller.config import ConfigError
from controller.runtime import Runtime
from controller.settings import Settings
from tests import support
from tests.mbtiles import make_mbtiles

#: Two zoom levels; (1, 1, 1) is left out (a missing tile).
TILES = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 0, 1)]


@asynccontextmanager
async def served(tmp_path: Path, **settings: object) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    cfg = tmp_path / "configs"
    if not cfg.exists():
        support.copy_configs(cfg, stations=support.SMALL_ROSTER)
    s = Settings(database_url=f"sqlite:///{tmp_path / 'test.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var",
                 **settings)  # type: ignore[arg-type]
    rt = Runtime.build(s, tokens=support.registry())  # routes under test need no started centre
    try:
        app = create_app(rt, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield rt, client
    finally:
        rt.db.close()
        if rt.basemap is not None and rt.basemap.tiles is not None:
            rt.basemap.tiles.close()


async def ui_config(client: httpx.AsyncClient) -> dict:
    r = await client.get("/api/v1/ui-config", headers=support.auth("pilot_a"))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def png_tiles(tmp_path: Path) -> Iterator[tuple[Path, dict]]:
    path = tmp_path / "city.mbtiles"
    yield path, make_mbtiles(path, TILES, attribution="© Test map")


async def test_mbtiles_tiles_flipped_typed_cached_and_named_in_ui_config(tmp_path: Path, png_tiles) -> None:  # noqa: ANN001
    path, stored = png_tiles
    async with served(tmp_path, mbtiles=path) as (_, client):
        cfg = await ui_config(client)
        assert cfg["basemap"] == {"url": "/tiles/{z}/{x}/{y}.png", "attribution": "© Test map", "min_zoom": 0, "max_zoom": 1}
        assert cfg["tile_url"] == "/tiles/{z}/{x}/{y}.png" and cfg["tile_attribution"] == "© Test map"
        for z, x, y in TILES:  # no token needed: public map data
            r = await client.get(f"/tiles/{z}/{x}/{y}.png")
            assert r.status_code == 200, (z, x, y, r.text)
            assert r.headers["content-type"] == "image/png"
            assert r.content == stored[(z, x, y)], f"{z}/{x}/{y}: not the tile stored at TMS row {2**z - 1 - y}"
            assert r.headers["cache-control"] == "public, max-age=86400" and r.headers["etag"].startswith('"')
        # y=0 is the northern row: stored at TMS row 1 at zoom 1, so the two rows differ
        assert stored[(1, 0, 0)] != stored[(1, 0, 1)]
        r = await client.get("/tiles/1/0/0.png")
        again = await client.get("/tiles/1/0/0.png", headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]

        for url, why in (
            ("/tiles/1/1/1.png", "1/1/1.png"),  # no such tile in the file
            ("/tiles/1/2/0.png", "1/2/0.png"),  # outside zoom 1's 2 x 2 grid
            ("/tiles/2/0/0.png", "2/0/0.png"),  # a zoom the file lacks
            ("/tiles/1/0/0.jpg", "tiles are .png"),  # not this tileset's format
        ):
            r = await client.get(url)
            assert r.status_code == 404, url
            assert r.json()["error"] == "not_found" and why in r.json()["detail"], (url, r.json())
        for url in (
            "/tiles/a/0/0.png", "/tiles/-1/0/0.png", "/tiles/25/0/0.png", "/tiles/1/0/0.svg", "/tiles/1/0/0.0.png",
            "/tiles/1/0/%2e%2e.png", "/tiles/1/0x1/0.png", "/tiles/1/0/1e1.png",
        ):
            r = await client.get(url)
            assert r.status_code == 422, (url, r.status_code)
            assert r.json()["detail"][0]["loc"][0] == "path", url
        for url in ("/tiles", "/tiles/", "/tiles/1", "/tiles/1/0", "/tiles/1/0/0", "/tiles/../../etc/passwd",
                    "/tiles/1/0/..%2F..%2F..%2Fetc%2Fpasswd", "/tiles/1/0/0.png/x"):
            r = await client.get(url)
            assert r.status_code in (404, 422), (url, r.status_code)
            assert r.headers["content-type"].startswith("application/json"), url


async def test_jpeg_tiles_without_metadata_are_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "photo.mbtiles"
    stored = make_mbtiles(path, [(3, 6, 2)], fmt="jpg", metadata=False)
    async with served(tmp_path, mbtiles=path) as (_, client):
        cfg = await ui_config(client)
        assert cfg["basemap"] == {"url": "/tiles/{z}/{x}/{y}.jpg", "attribution": "", "min_zoom": 3, "max_zoom": 3}
        for ext in ("jpg", "jpeg"):
            r = await client.get(f"/tiles/3/6/2.{ext}")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content == stored[(3, 6, 2)]
        assert (await client.get("/tiles/3/6/2.png")).status_code == 404


async def test_map_yaml_names_a_tile_url_or_a_file_beside_it(tmp_path: Path, png_tiles) -> None:  # noqa: ANN001
    path, _ = png_tiles
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)
    (cfg / "map.yaml").write_text(yaml.safe_dump({
        "tiles_url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "© Example", "max_zoom": 17,
    }))
    async with served(tmp_path) as (rt, client):
        assert (await ui_config(client))["basemap"] == {
            "url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "© Example", "min_zoom": 0, "max_zoom": 17,
        }
        assert (await client.get("/tiles/0/0/0.png")).status_code == 404  # the browser fetches those tiles itself
    path.rename(cfg / "city.mbtiles")
    (cfg / "map.yaml").write_text("mbtiles: city.mbtiles\nmin_zoom: 1\n")  # relative to the config directory
    async with served(tmp_path) as (rt, client):
        assert (await ui_config(client))["basemap"]["min_zoom"] == 1
        assert (await client.get("/tiles/1/1/0.png")).status_code == 200
    # the environment wins over map.yaml: a tile URL there replaces the file
    async with served(tmp_path, map_tile_url="https://other.example/{z}/{x}/{y}.png") as (rt, client):
        assert (await ui_config(client))["basemap"]["url"] == "https://other.example/{z}/{x}/{y}.png"


@pytest.mark.parametrize(("doc", "message"), [
    ({"tiles_url": "https://x/{z}/{x}/{y}.png", "mbtiles": "a.mbtiles"}, "not both"),
    ({"tiles_url": "https://x/{z}/{y}.png"}, "{x} missing"),
    ({"tiles_url": "file:///etc/{z}/{x}/{y}"}, "http(s) URL"),
    ({"mbtiles": "missing.mbtiles"}, "MBTiles file not found"),
    ({"min_zoom": 9, "max_zoom": 3}, "above max_zoom"),
])
def test_a_bad_map_config_stops_the_start_naming_it(tmp_path: Path, doc: dict, message: str) -> None:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)
    (cfg / "map.yaml").write_text(yaml.safe_dump(doc))
    s = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var")
    with pytest.raises(ConfigError, match="map") as info:
        Runtime.build(s, tokens=support.registry())
    assert message in str(info.value)


def test_vector_tiles_are_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "vector.mbtiles"
    make_mbtiles(path, [(0, 0, 0)])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE metadata SET value = 'pbf' WHERE name = 'format'")
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)
    s = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var", mbtiles=path)
    with pytest.raises(ConfigError, match="'pbf' is not served"):
        Runtime.build(s, tokens=support.registry())


async def test_no_basemap_and_the_site_icon(tmp_path: Path) -> None:
    async with served(tmp_path) as (_, client):
        cfg = await ui_config(client)
        assert cfg["basemap"] is None and cfg["tile_url"] == ""
        r = await client.get("/tiles/0/0/0.png")
        assert r.status_code == 404 and "no MBTiles basemap" in r.json()["detail"]
        r = await client.get("/favicon.ico")
        assert r.status_code == 200 and r.headers["content-type"] == "image/vnd.microsoft.icon"
        assert r.content[:4] == b"\x00\x00\x01\x00" and b"\x89PNG" in r.content[:40]
        r = await client.get("/favicon.svg")
        assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and b"<svg" in r.content
