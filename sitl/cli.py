"""`dronefleet sim`: the built-in simulator on its own, one copter per roster drone (or N at one home).

Prints one JSON line on stdout when every socket listens ({"ready": true,
"vehicles": N, "first_port": P, "control_port": C}), logs to stderr, and runs
until SIGINT/SIGTERM (or until the launching process dies, with
--exit-with-parent, as ArduPilot SITL does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

log = logging.getLogger("dronefleet.sim")

_REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where the copters stand")
    where.add_argument("--stations", type=Path, default=_REPO_CONFIGS / "stations.json", help="stations JSON: one copter per drone")
    where.add_argument("--drone-models", type=Path, default=_REPO_CONFIGS / "drone_models.yaml", help="drone models YAML (speeds, battery)")
    where.add_argument("--home", default=None, help="LAT,LON,ALT,HDG: put --drones copters here instead of at the stations")
    where.add_argument("--drones", type=int, default=None, help="how many copters (default: every drone in --stations, 1 with --home)")
    where.add_argument("--count", type=int, default=None, help=argparse.SUPPRESS)  # older name of --drones with --home
    where.add_argument("--base-instance", type=int, default=0, help="first instance number N (port 5760 + 10·N, sysid N + 1)")
    run = parser.add_argument_group("how it runs")
    run.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per wall second")
    run.add_argument("--warm", action="store_true", help="start as if powered for minutes: EKF ready, home set, armable now")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--base-port", type=int, default=5760, help="TCP port of instance 0 (SITL: 5760)")
    run.add_argument("--udp-base-port", type=int, default=None, help="also serve MAVLink on UDP base + 10·N")
    run.add_argument("--signing-key", default=None, help="64 hex digits: sign every copter's link with this key")
    run.add_argument("--control-port", type=int, default=5700, help="JSON-lines control/fault-injection port (0: off)")
    run.add_argument("--exit-with-parent", action="store_true", help="stop when the launching process dies (as SITL does)")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    video = parser.add_argument_group("camera video (optional)")
    video.add_argument("--video-url", default=None, help="controller URL: publish camera video while airborne")
    video.add_argument("--video-tokens", type=Path, default=None, help="JSON token file with one drone token per drone")
    video.add_argument("--scenario", type=Path, default=None, help="thermal scenario (warm sources) for the cameras")


def build_specs(args: argparse.Namespace) -> list:  # list[VehicleSpec]
    from dataclasses import replace

    from sitl.roster import home_specs, roster_specs

    count = args.drones if args.drones is not None else args.count
    if count is not None and count < 1:
        raise SystemExit("--drones must be at least 1")
    if args.home:
        specs = home_specs(count or 1, args.home, warm=args.warm, base_instance=args.base_instance)
    else:
        models = args.drone_models if args.drone_models and args.drone_models.exists() else None
        specs = roster_specs(args.stations, models, count, warm=args.warm, base_instance=args.base_instance)
        if not specs:
            raise SystemExit(f"{args.stations}: no drones")
    key = _signing_key(args.signing_key)
    if key is not None or args.udp_base_port is not None:
        specs = [
            replace(s, signing_key=key or s.signing_key, udp_port=None if args.udp_base_port is None else args.udp_base_port + 10 * s.instance)
            for s in specs
        ]
    return specs


def _signing_key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise SystemExit("--signing-key must be hexadecimal") from None
    if len(key) != 32:
        raise SystemExit("--signing-key must be 32 bytes (64 hex digits)")
    return key


async def run(args: argparse.Namespace) -> None:
    from sitl.control import ControlServer
    from sitl.fleet import SimFleet

    specs = build_specs(args)
    fleet = SimFleet(specs, speedup=args.speedup, host=args.host, base_port=args.base_port)
    await fleet.start()
    control = ControlServer(fleet, args.host, args.control_port) if args.control_port else None
    video = None
    try:
        if control:
            await control.start()
        if args.video_url:
            from sitl.video_manager import VideoManager

            tokens = json.loads(args.video_tokens.read_text())["tokens"] if args.video_tokens else {}
            by_drone = {grant["drone_id"]: token for token, grant in tokens.items() if grant.get("role") == "drone"}
            video = VideoManager(fleet, args.video_url, by_drone, scenario=args.scenario)
            await video.start()
        first_port = fleet.port_of(specs[0].instance)
        print(json.dumps({"ready": True, "vehicles": len(specs), "first_port": first_port, "control_port": control.port if control else None}), flush=True)
        log.info("%d copters ready from port %d (sysid %d..), speedup %g, %s start", len(specs), first_port, specs[0].system_id, args.speedup, "warm" if args.warm else "cold")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        watchdog = loop.create_task(_watch_parent(stop)) if args.exit_with_parent else None
        await stop.wait()
        if watchdog:
            watchdog.cancel()
    finally:
        if video:
            await video.stop()
        if control:
            await control.stop()
        await fleet.stop()
        log.info("simulator stopped")


async def _watch_parent(stop: asyncio.Event) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    log.warning("the launching process went away; stopping the simulator")
    stop.set()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    from sitl.roster import RosterError

    try:
        asyncio.run(run(args))
    except RosterError as exc:
        print(f"dronefleet sim: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"dronefleet sim: cannot listen: {exc} (is another simulator or SITL running on these ports?)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="python -m sitl.cli", description=__doc__.splitlines()[0])
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
