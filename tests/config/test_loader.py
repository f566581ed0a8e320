"""The configuration loads, and a bad file fails at start naming file, field and value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from controller.config import ConfigError, load_config
from tests import support


def test_repository_configs_load() -> None:
    cfg = load_config(support.CONFIGS)
    assert len(cfg.stations) == cfg.city.station_count == 140
    assert {d.model for s in cfg.stations for d in s.drones} <= set(cfg.drone_models)
    assert cfg.policy.offer_timeout_s == 30
    assert cfg.nofly.features[0].properties.id == "airport-lukou"
    thermal = cfg.drone_models["m30t"].cameras.thermal
    assert thermal is not None and (thermal.width, thermal.height) == (640, 512)


def _edit_yaml(path: Path, dotted: str, value: object) -> None:
    doc = yaml.safe_load(path.read_text())
    node = doc
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    path.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(
    ("file", "field", "value", "expected"),
    [
        ("dispatch.yaml", "offer_timeout_s", -5, "dispatch.yaml: offer_timeout_s = -5: Input should be greater than 0"),
        ("dispatch.yaml", "battery_reserve_pct", 150, "battery_reserve_pct = 150"),
        ("dispatch.yaml", "time_on_scene_s.arson", 60, "unknown incident category 'arson'"),
        ("drone_models.yaml", "models.m30t.cruise_speed_ms", "fast", "models.m30t.cruise_speed_ms = \"fast\""),
        ("drone_models.yaml", "models.m30t.cameras.thermal.focal_px", 900.0, "disagrees with width 640"),
        ("drone_models.yaml", "models.m30t.max_speed_ms", 5.0, "exceeds max_speed_ms"),
        ("city.yaml", "timezone", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("city.yaml", "districts.0.lat", 132.0, "districts.0.lat = 132.0: Input should be less than or equal to 90"),
    ],
)
def test_bad_value_is_named(tmp_path: Path, file: str, field: str, value: object, expected: str) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    _edit_yaml(cfg_dir / file, field, value)
    with pytest.raises(ConfigError) as err:
        load_config(cfg_dir)
    assert file in str(err.value)
    assert expected in str(err.value)


def test_unknown_drone_model_in_roster(tmp_path: Path) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    doc = json.loads((cfg_dir / "stations.json").read_text())
    doc["stations"][3]["drones"][0]["model"] = "zeppelin"
    (cfg_dir / "stations.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"stations.json: stations.3.drones.0.model = \"zeppelin\": unknown drone model"):
        load_config(cfg_dir)


def test_duplicate_station_id(tmp_path: Path) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    doc = json.loads((cfg_dir / "stations.json").read_text())
    doc["stations"][1]["id"] = doc["stations"][0]["id"]
    (cfg_dir / "stations.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="duplicate station id"):
        load_config(cfg_dir)


def test_open_polygon_ring_is_refused(tmp_path: Path) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    doc = json.loads((cfg_dir / "nofly.geojson").read_text())
    doc["features"][0]["geometry"]["coordinates"][0].pop()
    (cfg_dir / "nofly.geojson").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="must be closed"):
        load_config(cfg_dir)


def test_syntax_error_and_missing_file(tmp_path: Path) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    (cfg_dir / "dispatch.yaml").write_text("offer_timeout_s: [unclosed\n")
    with pytest.raises(ConfigError, match="dispatch.yaml: not valid yaml"):
        load_config(cfg_dir)
    (cfg_dir / "dispatch.yaml").unlink()
    with pytest.raises(ConfigError, match="dispatch.yaml: file not found"):
        load_config(cfg_dir)


def test_cli_fails_at_start_with_the_message(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg_dir = support.copy_configs(tmp_path / "configs")
    _edit_yaml(cfg_dir / "dispatch.yaml", "offer_timeout_s", 0)
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "serve", "--dev", "--config-dir", str(cfg_dir), "--var-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "dispatch.yaml: offer_timeout_s = 0: Input should be greater than 0" in proc.stderr
