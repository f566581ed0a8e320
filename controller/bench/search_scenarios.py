"""`dronefleet bench search`: seeded missing-person searches flown end to end and scored against the truth.

Each scenario (configs/scenarios/*.yaml: one person in about 1 km² at night
among warm cars, animals, rocks and roofs; 2–4 drones) is flown by the
controller against the built-in simulator at a speed-up (see
controller.bench.search_world). Reported per scenario and overall: whether the
person was found, time from the call to the first confirmed true hotspot
(simulated seconds), location error of confirmed true hotspots, false hotspots
per km² searched, and the share of the search area the thermal camera covered.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from controller.bench.common import machine, percentiles, progress, stamp
from controller.bench.search_world import SearchWorld
from controller.config import default_config_dir
from sitl.thermal_scene import load_scenario, scenario_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenarios", type=Path, default=default_config_dir() / "scenarios",
                        help="a scenario file or a folder of them (default: configs/scenarios)")
    parser.add_argument("--speedup", type=float, default=6.0, help="simulated seconds per wall second")
    parser.add_argument("--fps", type=float, default=8.0, help="thermal frames per second per drone (wall time)")
    parser.add_argument("--timeout", type=float, default=600.0, help="wall seconds per scenario before giving up")
    parser.add_argument("--limit", type=int, default=0, help="run only the first N scenarios (0: all)")
    parser.add_argument("--gps-noise", type=float, default=2.0, help="noise (m, 1 sigma) on the positions drones report")


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("controller").setLevel(logging.WARNING)
    files = [args.scenarios] if args.scenarios.is_file() else scenario_files(args.scenarios)
    if args.limit:
        files = files[: args.limit]
    if not files:
        raise SystemExit(f"no scenario files in {args.scenarios}")
    results = []
    for path in files:
        sc = load_scenario(path)
        progress(f"scenario {sc.name}: {sc.drones} drones, {sc.area_km2:.2f} km², {len(sc.sources)} heat sources")
        r = asyncio.run(SearchWorld(sc, args.speedup, args.fps, args.timeout, args.gps_noise).run(progress))
        progress(
            f"  {'FOUND' if r.found else 'NOT FOUND'}"
            + (f" after {r.time_to_first_true_s:.0f} s" if r.found else "")
            + f"; {len(r.false_hotspots)} false hotspots; covered {r.covered_share:.0%}; {r.wall_seconds:.0f} s wall"
        )
        results.append(r)
    errors = [e for r in results for e in r.location_errors_m]
    searched = sum(r.searched_km2 for r in results)
    covered = sum(r.covered_km2 for r in results)
    false = sum(len(r.false_hotspots) for r in results)
    return {
        "benchmark": "search",
        "date": stamp(),
        "machine": machine(),
        "speedup": args.speedup,
        "fps_per_drone": args.fps,
        "search_altitude_m": 60,
        "scenarios": [r.__dict__ for r in results],
        "found_share": round(sum(r.found for r in results) / len(results), 3),
        "time_to_first_true_s": percentiles([r.time_to_first_true_s for r in results if r.time_to_first_true_s is not None]),
        "location_error_m": percentiles(errors),
        "false_hotspots": false,
        "gps_noise_m": args.gps_noise,
        # every false hotspot (also those seen on the way) over the search area actually covered: the strict figure
        "false_per_km2": round(false / covered, 3) if covered else None,
        # the same over all the ground the cameras saw (transit included)
        "false_per_km2_seen": round(false / searched, 3) if searched else None,
        "covered_share_mean": round(sum(r.covered_share for r in results) / len(results), 3),
        "targets": {"found_share": 1.0, "location_error_p90_m": 10.0, "false_per_km2": 1.0},
    }


def summarize(result: dict[str, Any]) -> str:
    lines = [f"search benchmark, {result['date']}, speed-up {result['speedup']:g}, {result['fps_per_drone']:g} fps per drone"]
    for r in result["scenarios"]:
        t = f"{r['time_to_first_true_s']:.0f} s" if r["time_to_first_true_s"] is not None else "—"
        lines.append(
            f"  {r['scenario']:24s} {r['drones']} drones  found {'yes' if r['found'] else 'NO '}  first true {t:>6s}  "
            f"error {', '.join(f'{e:.1f}' for e in r['location_errors_m']) or '—'} m  false {len(r['false_hotspots'])}  "
            f"covered {r['covered_share']:.0%}"
        )
    le = result["location_error_m"]
    lines.append(
        f"found {result['found_share']:.0%} of scenarios; location error p90 {le.get('p90', float('nan')):.1f} m "
        f"(target < 10); false hotspots {result['false_hotspots']} = {result['false_per_km2']} per km² of search area covered "
        f"(target < 1; {result['false_per_km2_seen']} per km² of all ground seen); mean coverage {result['covered_share_mean']:.0%}"
    )
    return "\n".join(lines)
