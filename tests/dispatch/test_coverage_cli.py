"""Smoke test of `dronefleet coverage` on a coarse grid: files written, shares ordered and sane."""

from __future__ import annotations

import json
from pathlib import Path

from controller.cli import main
from tests import support


def test_coverage_cli_writes_png_and_geojson(tmp_path: Path, capsys) -> None:
    png, gj = tmp_path / "out" / "map.png", tmp_path / "out" / "rings.geojson"
    rc = main(["coverage", "--config-dir", str(support.CONFIGS), "--cell-m", "2500", "--suggest", "1",
               "--png", str(png), "--geojson", str(gj), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rings = summary["rings"]
    assert 0 <= rings["1min"]["area_share"] <= rings["3min"]["area_share"] <= rings["5min"]["area_share"] <= 1
    assert 0 < rings["5min"]["population_share"] <= 1
    doc = json.loads(gj.read_text())
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds.count("ring") == 3 and kinds.count("station") == 140 and "farthest_point" in kinds
    assert summary["farthest_point"]["distance_m"] > 0
    assert len(summary["suggested_stations"]) == 1 and summary["suggested_stations"][0]["population_gain"] > 0
