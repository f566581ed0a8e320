"""Generate the illustrative station roster and the no-fly zones from configs/city.yaml.

Station positions of the reference deployment are not published, so we place
`station_count` plausible stations reproducibly: districts get stations in
proportion to their population (largest-remainder apportionment), and inside a
district positions are drawn around its centre with a minimum spacing, keeping
each point in the district whose centre is nearest relative to its size and
outside the airport's no-fly zone. The output has the same format as a real
roster, so a real file can replace it.

Run `dronefleet gen-stations` to rewrite configs/stations.json and
configs/nofly.geojson; `--check` verifies the committed files are what the
generator produces.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path
from typing import Any

from controller.config.loader import FILES, default_config_dir, parse_file
from controller.config.models import City, District
from controller import geo

SHIFTS = (("08:00", "16:00"), ("16:00", "00:00"), ("00:00", "08:00"))
#: People per km2 above which stations fly the rooftop-dock model (shorter range, quicker to deploy).
DENSE_DISTRICT = 5000.0


def apportion(weights: list[float], total: int, minimum: int = 3) -> list[int]:
    """Largest-remainder apportionment of `total` seats by `weights`, each at least `minimum`."""
    if total < minimum * len(weights):
        raise ValueError(f"{total} stations cannot give {len(weights)} districts {minimum} each")
    spare = total - minimum * len(weights)
    s = sum(weights)
    quotas = [spare * w / s for w in weights]
    seats = [math.floor(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: quotas[i] - seats[i], reverse=True)
    for i in order[: spare - sum(seats)]:
        seats[i] += 1
    return [minimum + n for n in seats]


def _district_radius_m(d: District) -> float:
    return math.sqrt(d.area_km2 / math.pi) * 1000.0


def _home_district(lat: float, lon: float, districts: tuple[District, ...]) -> District:
    """The district whose centre is nearest in units of its own radius."""
    return min(districts, key=lambda d: geo.equirectangular_m(lat, lon, d.lat, d.lon) / _district_radius_m(d))


def place_stations(city: City) -> list[dict[str, Any]]:
    rng = random.Random(city.seed)
    counts = apportion([float(d.population) for d in city.districts], city.station_count)
    airport = city.airport
    placed: list[tuple[float, float]] = []
    stations: list[dict[str, Any]] = []
    for district, count in zip(city.districts, counts, strict=True):
        radius = _district_radius_m(district)
        spacing = 0.6 * math.sqrt(district.area_km2 * 1e6 / count)
        density = district.population / district.area_km2
        k = 0
        attempts = 0
        while k < count:
            attempts += 1
            if attempts > 20000:
                raise RuntimeError(f"could not place {count} stations in {district.name}")
            # r ~ R * u**0.7 puts more stations near the (urban) centre than a uniform disc would.
            r = radius * 0.9 * rng.random() ** 0.7
            lat, lon = geo.destination(district.lat, district.lon, rng.uniform(0, 360), r)
            # Small central districts are squeezed by their neighbours: relax the spacing as we retry.
            relax = max(0.3, 1.0 - attempts / 4000)
            if _home_district(lat, lon, city.districts) is not district:
                continue
            if geo.equirectangular_m(lat, lon, airport.lat, airport.lon) < airport.no_fly_radius_m + 1000:
                continue
            if any(geo.equirectangular_m(lat, lon, a, b) < spacing * relax for a, b in placed):
                continue
            k += 1
            placed.append((lat, lon))
            sid = f"NJ-{district.code}-{k:02d}"
            model = "m3td" if density >= DENSE_DISTRICT else "m30t"
            drones = [{"id": f"{sid}-D1", "model": model}]
            stations.append(
                {
                    "id": sid,
                    "name": f"{district.name} No.{k} Police Station (illustrative)",
                    "district": district.name,
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "elevation_m": 10.0,
                    "drones": drones,
                    "pilots": [
                        {
                            "id": f"{sid}-P{j + 1}",
                            "name": f"{district.name} {k:02d} pilot {'ABC'[j]}",
                            "shift": {"start": start, "end": end},
                        }
                        for j, (start, end) in enumerate(SHIFTS)
                    ],
                }
            )
    return stations


def roster_document(city: City) -> dict[str, Any]:
    return {
        "illustrative": True,
        "note": (
            f"Illustrative layout of {city.station_count} stations for {city.name}, generated by "
            "controller/config/station_generator.py (seed "
            f"{city.seed}) from configs/city.yaml. Replace with the real roster in the same format."
        ),
        "stations": place_stations(city),
    }


def nofly_document(city: City) -> dict[str, Any]:
    airport = city.airport
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "id": "airport-lukou",
                    "name": f"{airport.name} ({airport.no_fly_radius_m / 1000:g} km)",
                    "reason": "airport control zone",
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [geo.circle_ring(airport.lat, airport.lon, airport.no_fly_radius_m)],
                },
            }
        ],
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", type=Path, default=None, help="configs directory (default: the repo's)")
    parser.add_argument("--check", action="store_true", help="only verify the committed files match")


def main(args: argparse.Namespace) -> int:
    directory = args.config_dir or default_config_dir()
    city = parse_file(directory / FILES["city"], City)
    outputs = {
        directory / FILES["stations"]: render(roster_document(city)),
        directory / FILES["nofly"]: render(nofly_document(city)),
    }
    stale = []
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}", file=sys.stderr)
    if stale:
        print("out of date (run `dronefleet gen-stations`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0
