"""`dronefleet coverage`: map time to scene across the city (PNG + GeoJSON) and print the ring shares.

Progress and the summary go to stderr, the summary also as JSON to stdout with --json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from controller.config import load_config
from controller.coverage.grid import compute, suggest_stations
from controller.coverage.render import write_geojson, write_png
from controller.dispatch.engine import DispatchEngine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-dir", type=Path, default=None, help="configs directory (default: DRONEFLEET_CONFIG_DIR or ./configs)")
    parser.add_argument("--png", type=Path, default=Path("coverage/coverage.png"), help="map to write (default coverage/coverage.png)")
    parser.add_argument("--geojson", type=Path, default=Path("coverage/coverage.geojson"), help="rings to write (default coverage/coverage.geojson)")
    parser.add_argument("--cell-m", type=float, default=500.0, help="grid cell size in metres (default 500)")
    parser.add_argument("--suggest", type=int, default=3, help="suggest this many new stations for 3-minute population coverage (0: none)")
    parser.add_argument("--suggest-model", default="m30t", help="drone model of a suggested station")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _config_dir(args: argparse.Namespace) -> Path:
    if args.config_dir is not None:
        return args.config_dir
    from controller.settings import Settings

    return Settings().config_dir


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()

    def progress(text: str) -> None:
        print(f"[coverage {time.perf_counter() - started:5.1f}s] {text}", file=sys.stderr, flush=True)

    config = load_config(_config_dir(args))
    engine = DispatchEngine.from_config(config)
    cov = compute(config, engine, args.cell_m, progress)
    i, dist = cov.farthest()
    lat, lon = config.frame.to_latlon(float(cov.x[i]), float(cov.y[i]))
    summary: dict[str, Any] = {
        "stations": len(config.stations),
        "cell_m": args.cell_m,
        "cells": int(len(cov.x)),
        "wind": config.policy.wind.model_dump(),
        "rings": cov.shares(),
        "unreachable_area_share": float((cov.eta_s == float("inf")).mean()),
        "farthest_point": {"lat": round(lat, 6), "lon": round(lon, 6), "distance_m": round(dist),
                           "eta_s": None if cov.eta_s[i] == float("inf") else round(float(cov.eta_s[i]), 1)},
    }
    if args.suggest > 0:
        progress(f"greedy placement of {args.suggest} stations")
        summary["suggested_stations"] = suggest_stations(cov, args.suggest, engine, config, args.suggest_model)
    write_png(args.png, cov, config, summary)
    write_geojson(args.geojson, cov, config, summary)
    summary["png"], summary["geojson"] = str(args.png), str(args.geojson)
    progress(f"wrote {args.png} and {args.geojson}")
    return summary


def summarize(summary: dict[str, Any]) -> str:
    lines = [f"coverage of {summary['stations']} stations ({summary['cells']} cells of {summary['cell_m']:g} m):"]
    for key, ring in summary["rings"].items():
        lines.append(f"  within {key}: {ring['area_share']:.1%} of the area, {ring['population_share']:.1%} of the population")
    far = summary["farthest_point"]
    lines.append(f"  farthest point from any station: {far['lat']}, {far['lon']} at {far['distance_m'] / 1000:.1f} km (ETA {far['eta_s']} s)")
    for n, s in enumerate(summary.get("suggested_stations", []), 1):
        lines.append(f"  suggested station {n}: {s['lat']}, {s['lon']} (+{s['population_share_gain']:.1%} of the population within 3 min)")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    summary = run(args)
    print(summarize(summary), file=sys.stderr)
    if args.json:
        json.dump(summary, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    return 0
