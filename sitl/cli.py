"""`dronefleet sim`: the built-in simulator on its own, one copter per roster drone (or at a given home)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from sitl.control import ControlServer
from sitl.fleet import SimFleet, VehicleSpec
from sitl.roster import REPO_CONFIGS, roster_specs

log = logging.getLogger("dronefleet.sim")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stations", type=Path, default=REPO_CONFIGS / "stations.json", help="roster file")
    parser.add_argument("--drone-models", type=Path, default=REPO_CONFIGS / "drone_models.yaml")
    parser.add_argument("--drones", type=int, default=None, help="only the first N drones of the roster")
    parser.add_argument("--home", default=None, help="LAT,LON,ALT,HDG: ignore the roster, put --count copters here")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--warm", action="store_true", help="start as if powered for minutes: EKF ready, armable now")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--control-port", type=int, default=5700, help="JSON-lines fault injection port (0: off)")
    parser.add_argument("--video-url", default=None, help="controller URL: publish camera video while airborne")
    parser.add_argument("--video-tokens", type=Path, default=None, help="JSON token file with one drone token per drone")
    parser.add_argument("--scenario", type=Path, default=None, help="thermal scenario (warm sources) for the cameras")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the launching process dies (as SITL does)")
    parser.add_argument("--log-level", default="info")


def build_specs(args: argparse.Namespace) -> list[VehicleSpec]:
    if args.home:
        try:
            lat, lon, alt, hdg = (float(v) for v in args.home.split(","))
        except ValueError:
            raise SystemExit("--home needs LAT,LON,ALT,HDG") from None
        return [VehicleSpec(i, lat, lon, alt, hdg, warm=args.warm) for i in range(args.count)]
    return roster_specs(args.stations, args.drone_models, args.drones, warm=args.warm)


async def run(args: argparse.Namespace) -> None:
    specs = build_specs(args)
    fleet = SimFleet(specs, speedup=args.speedup, host=args.host)
    await fleet.start()
    control = ControlServer(fleet, args.host, args.control_port) if args.control_port else None
    if control:
        await control.start()
    video = None
    if args.video_url:
        from sitl.video_manager import VideoManager

        tokens = json.loads(args.video_tokens.read_text())["tokens"] if args.video_tokens else {}
        by_drone = {g["drone_id"]: t for t, g in tokens.items() if g.get("role") == "drone"}
        video = VideoManager(fleet, args.video_url, by_drone, scenario=args.scenario)
        await video.start()
    print(json.dumps({"ready": True, "vehicles": len(specs), "first_port": specs[0].port, "control_port": args.control_port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watchdog = loop.create_task(_watch_parent(stop)) if args.exit_with_parent else None
    await stop.wait()
    if watchdog:
        watchdog.cancel()
    if video:
        await video.stop()
    if control:
        await control.stop()
    await fleet.stop()


async def _watch_parent(stop: asyncio.Event) -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    log.warning("the launching process went away; stopping the simulator")
    stop.set()


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    asyncio.run(run(args))
    return 0
