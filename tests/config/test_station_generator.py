"""The illustrative roster is reproducible and plausible."""

from __future__ import annotations

import argparse
from collections import Counter

from controller import geo
from controller.config import load_config
from controller.config import station_generator as gen
from tests import support


def test_committed_files_match_the_generator() -> None:
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    assert gen.main(parser.parse_args(["--check", "--config-dir", str(support.CONFIGS)])) == 0


def test_check_notices_an_edited_file(tmp_path) -> None:
    cfg_dir = support.copy_configs(tmp_path / "configs")
    path = cfg_dir / "stations.json"
    path.write_text(path.read_text().replace("NJ-XW-01", "NJ-XW-99", 1))
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    assert gen.main(parser.parse_args(["--check", "--config-dir", str(cfg_dir)])) == 1


def test_apportionment_is_exact_and_respects_minimum() -> None:
    seats = gen.apportion([5.0, 1.0, 1.0, 0.1], 20, minimum=3)
    assert sum(seats) == 20 and min(seats) >= 3 and seats[0] == max(seats)


def test_layout_is_plausible() -> None:
    cfg = load_config(support.CONFIGS)
    per_district = Counter(s.district for s in cfg.stations)
    by_name = {d.name: d for d in cfg.city.districts}
    # Denser where people are: Jiangning (most populous) has the most stations; every district has some.
    assert per_district.most_common(1)[0][0] == "Jiangning"
    assert set(per_district) == set(by_name)
    # Central districts are denser per km2 than rural ones.
    density = {name: per_district[name] / by_name[name].area_km2 for name in by_name}
    assert density["Gulou"] > 5 * density["Gaochun"]
    airport = cfg.city.airport
    for s in cfg.stations:
        assert geo.distance_m(s.lat, s.lon, airport.lat, airport.lon) > airport.no_fly_radius_m
        # someone is on duty at every hour of the day
        from datetime import time

        assert all(s.on_duty(time(h, 30)) is not None for h in range(24))
