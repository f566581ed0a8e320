"""The `dronefleet` command line.

Subcommands import their modules lazily so `dronefleet --help` stays fast and a
broken optional part (say, video) never stops the controller from starting.
Benchmarks follow one contract (see `controller.bench.contract`): JSON to stdout
with `--json`, a human summary and progress to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from types import ModuleType

#: Benchmark name -> module implementing `add_arguments`, `run` and `summarize`.
BENCHES: dict[str, str] = {
    "api": "controller.bench.api_latency",
    "chaos": "controller.bench.chaos",
    "control": "controller.bench.control",
    "dispatch": "controller.bench.dispatch_stream",
    "eta": "controller.bench.eta_flights",
    "fleet": "controller.bench.fleet_telemetry",
    "recording": "controller.bench.recording",
    "video": "controller.bench.video_relay",
    "vision": "vision.bench",
    "search": "controller.bench.search_scenarios",
    "sim": "sitl.bench",
    "surge": "controller.bench.surge",
}


def _load_bench(name: str) -> ModuleType:
    try:
        return importlib.import_module(BENCHES[name])
    except ModuleNotFoundError as exc:
        raise SystemExit(f"benchmark {name!r} is not available in this build: {exc}") from exc


def _bench_parser(sub: argparse._SubParsersAction, selected: str | None) -> None:
    bench = sub.add_parser("bench", help="run a benchmark (JSON to stdout with --json, summary to stderr)")
    bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    names = bench.add_subparsers(dest="bench_name", metavar="NAME")
    for name, module_path in BENCHES.items():
        p = names.add_parser(name, help=f"benchmark {name} ({module_path})")
        p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
        if name == selected:  # import only the benchmark being run: some pull in aiortc or OpenCV
            _load_bench(name).add_arguments(p)


def _run_bench(args: argparse.Namespace) -> int:
    if args.list or not args.bench_name:
        for name, module_path in BENCHES.items():
            print(f"{name:10s} {module_path}")
        return 0
    module = _load_bench(args.bench_name)
    result = module.run(args)
    print(module.summarize(result), file=sys.stderr)
    if args.json:
        json.dump(result, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dronefleet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the controller API (with a simulated fleet by default)")
    importlib.import_module("controller.server").add_arguments(serve)

    for name, module_path, help_text in (
        ("sim", "sitl.cli", "run the built-in ArduCopter-like simulator on its own"),
        ("coverage", "controller.coverage_cli", "write the time-to-scene coverage map (PNG + GeoJSON)"),
        ("gen-stations", "controller.config.station_generator", "regenerate configs/stations.json"),
        ("evidence", "controller.evidence.cli", "evidence recordings: verify an export offline"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_command_module=module_path)
        try:
            importlib.import_module(module_path).add_arguments(p)
        except ModuleNotFoundError:
            pass

    argv = sys.argv[1:] if argv is None else argv
    selected = argv[1] if len(argv) > 1 and argv[0] == "bench" else None
    _bench_parser(sub, selected)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _run_bench(args)
    if args.command == "serve":
        return importlib.import_module("controller.server").main(args)
    if args.command is None:
        parser.print_help()
        return 2
    return importlib.import_module(args._command_module).main(args)


if __name__ == "__main__":
    sys.exit(main())
