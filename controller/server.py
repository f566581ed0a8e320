"""`dronefleet serve`: run the controller under uvicorn and tell the operator where everything is."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from controller.auth import TokenError
from controller.config import ConfigError
from controller.settings import Settings

log = logging.getLogger("dronefleet")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--dev", action="store_true", help="development mode: generate and print tokens")
    parser.add_argument("--config-dir", type=Path, default=None, help="configs directory (default: the repo's)")
    parser.add_argument("--database-url", default=None, help="SQLAlchemy URL (default: $DATABASE_URL or var/ SQLite)")
    parser.add_argument("--var-dir", type=Path, default=None, help="working files (SQLite, dev tokens, logs)")
    parser.add_argument(
        "--fleet",
        choices=["sim", "external", "ardupilot", "none"],
        default=None,
        help="flight backend: built-in simulator (default with --dev), drones already listening, "
        "real ArduPilot SITL instances, or none",
    )
    parser.add_argument("--drones", type=int, default=None, help="how many drones to fly (default: the whole roster)")
    parser.add_argument("--speedup", type=float, default=1.0, help="simulator speed-up factor")
    parser.add_argument(
        "--scenario", type=Path, default=None,
        help="thermal search scenario(s) for the simulated cameras, a file or a folder (default with --dev: configs/scenarios)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--video-mode", choices=["forward", "reencode"], default="forward", help=argparse.SUPPRESS)


def settings_from_args(args: argparse.Namespace) -> Settings:
    values: dict = {
        "host": args.host,
        "port": args.port,
        "dev": args.dev,
        "log_level": args.log_level,
        "sim_speedup": args.speedup,
        "video_mode": args.video_mode,
        "fleet": args.fleet or ("sim" if args.dev else "none"),
    }
    if args.drones is not None:
        values["fleet_drones"] = args.drones
    if args.scenario is not None:
        values["sim_scenario"] = args.scenario
    elif args.dev:
        values["sim_scenario"] = Path(__file__).resolve().parents[1] / "configs" / "scenarios"
    if args.config_dir:
        values["config_dir"] = args.config_dir
    if args.database_url:
        values["database_url"] = args.database_url
    if args.var_dir:
        values["var_dir"] = args.var_dir
        if not args.database_url:
            values["database_url"] = f"sqlite:///{args.var_dir / 'dronefleet.sqlite3'}"
    return Settings(**values)


def print_banner(settings: Settings, dev_tokens: dict | None) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "dronefleet controller",
        f"  API + OpenAPI docs : {base}/docs",
        f"  command page       : {base}/command",
        f"  pilot page         : {base}/pilot",
        f"  search-team page   : {base}/team",
        f"  event stream (WS)  : ws://{settings.host}:{settings.port}/api/v1/events",
        f"  database           : {settings.database_url}",
    ]
    if dev_tokens:
        by_role: dict[str, list[tuple[str, dict]]] = {}
        for token, grant in dev_tokens["tokens"].items():
            by_role.setdefault(grant["role"], []).append((token, grant))
        lines.append("  development tokens (send as 'Authorization: Bearer TOKEN'):")
        for role in ("commander", "admin", "search_team"):
            for token, grant in by_role.get(role, []):
                lines.append(f"    {role:12s} {token}")
        pilots = sorted(by_role.get("pilot", []), key=lambda tg: tg[1]["station_id"])
        for token, grant in pilots[:3]:
            lines.append(f"    pilot        {token}   (station {grant['station_id']})")
        if len(pilots) > 3:
            lines.append(f"    ... and {len(pilots) - 3} more pilot tokens in {settings.var_dir / 'dev-tokens.json'}")
        if by_role.get("drone"):
            lines.append(f"    drone tokens (video publishing) for {len(by_role['drone'])} drones in the same file")
    if settings.sim_scenario is not None and settings.fleet == "sim":
        lines.append(f"  thermal search scenarios (open a missing_person incident there): {settings.sim_scenario}")
    lines.append("")
    print("\n".join(lines), file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from controller.api.app import create_app
    from controller.runtime import Runtime

    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)
    try:
        settings = settings_from_args(args)
        runtime = Runtime.build(settings)
    except (ConfigError, TokenError) as exc:
        print(f"dronefleet: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"dronefleet: bad setting: {exc}", file=sys.stderr)
        return 2
    app = create_app(runtime)
    print_banner(settings, runtime.dev_tokens)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Events are small JSON; deflating each one costs more CPU than it saves on a LAN.
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    return 0
