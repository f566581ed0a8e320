"""`dronefleet bench chaos`: kill the controller at bad moments under a live call stream; nothing acknowledged is lost.

Two processes, as deployed. The built-in simulator (`dronefleet sim`: one copter
per drone of the roster's first stations, warm, faster than real time, with its
control port) keeps flying throughout. `dronefleet serve --fleet external`, on
its own database (SQLite in the working directory, or `--database-url`), is
killed N times, SIGKILL and SIGTERM mixed, at seeded random moments aimed at the
interesting ones: right after an offer, right after a pilot's accept (GUIDED,
arming, take-off), around a search plan's upload, with a drone over its scene,
during a search sweep, while a drone lands. It is restarted after a random
downtime, sometimes longer than the drones' GCS failsafe (they then come home on
their own while nobody supervises them).

Bots drive it over the HTTP API as people would: a caller (a seeded stream of
incidents near the stations, a few missing-person searches with a small area),
the pilots (accept offers after a random delay, sometimes decline, now and then
let one expire) and a commander (resolves an incident some seconds after its
drone is on scene, cancels calls nothing serves). Calls and commands are retried
by nobody: what the controller acknowledged is what it must keep.

Measured:
- lost: acknowledged calls (201 new, 200 merged into an open incident) that a
  later `GET /api/v1/incidents/{id}` does not find, or whose incident counts
  fewer callers than were acknowledged for it. Acknowledged accepts, declines,
  resolves and cancels undone by a restart are reported beside (`lost_acks`).
- ghosts: after each restart's reconciliation window, a state contradicting the
  simulator's truth (a drone shown airborne that is landed and disarmed, shown on
  the ground while it flies, shown lost_link while linked; a launched/on-scene
  mission whose drone is on the ground; an incident on scene with no drone flying
  for it) or itself (an accepted/launched/on-scene mission whose drone serves
  another mission or none, an offer past its deadline) for longer than
  `--confirm` seconds, past the controller's own grace. The same check runs at
  the end and, continuously, between restarts; shorter contradictions (3 s or
  more) and ERROR lines in the controller's log are reported beside.
- unresolved: missions not terminal at the end, after the calls stop, every open
  incident is closed and the fleet has had `--drain-timeout` to land.
- reconciliation time: the controller's `fleet.reconcile_startup_s` (process
  start to the end of its start-up reconciliation) after each restart, and the
  wall time from spawning the process to a healthy `/health`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from controller import geo
from controller.bench.common import free_port, machine, percentiles, progress, stamp
from controller.config import default_config_dir, load_config
from controller.fleet.nofly import NoFlyGuard

COMMANDER = "chaos-commander-token-0000000001"
ADMIN = "chaos-admin-token-000000000000001"

#: Moments a kill aims at (`--moments`).
MOMENTS = ("offer", "accept", "upload", "on_scene", "search", "landing", "random")
CATEGORIES = ("traffic_accident", "violent_crime", "fire", "other", "missing_person")
CATEGORY_MIX = (0.3, 0.2, 0.15, 0.25, 0.1)
GRADES = (1, 2, 3, 4)
GRADE_MIX = (0.1, 0.35, 0.35, 0.2)
SEARCH = "missing_person"

ACTIVE_MISSION = ("offered", "accepted", "launched", "on_scene", "returning")
TERMINAL_MISSION = ("completed", "aborted", "declined", "expired")
OPEN_INCIDENT = ("queued", "offered", "dispatched", "on_scene")
#: Missions holding their drone for their incident (a returning drone may already be offered the next one).
WORKING_MISSION = frozenset({"accepted", "launched", "on_scene"})
DRONE_AIRBORNE = frozenset({"enroute", "on_scene", "searching", "returning"})
DRONE_SHOWN_ON_GROUND = frozenset({"standby", "charging", "landed", "offered", "preflight", "maintenance"})
DRONE_DOWN = frozenset({"standby", "charging", "landed", "maintenance"})
#: Steps after which a search drone uploads its sweep (the moment "upload" aims between them).
UPLOAD_STEPS = ("transit altitude", "departure height", "at the search area", "search plan uploaded")
#: An offer still shown offered this long after its deadline has not been expired (the timer is 1 s-ish late at most).
OFFER_OVERDUE_S = 3.0
#: A contradiction seen this long is reported as an episode (ghost or not): the controller's grace is 5 s.
EPISODE_MIN_S = 3.0
#: Transit altitude of the copied configuration: low, so missions take seconds of wall time.
TRANSIT_ALT_M = 40.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--restarts", type=int, default=10, help="controller kills and restarts (default 10)")
    parser.add_argument("--drones", type=int, default=10, help="drones flown: the roster's first stations' (default 10)")
    parser.add_argument("--speedup", type=float, default=5.0, help="simulator speed-up (default 5)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--call-interval", type=float, default=None,
                        help="mean wall seconds between calls (default 60 / drones: about what the fleet keeps up with)")
    parser.add_argument("--offer-timeout", type=float, default=15.0, help="offer timeout of the copied config, seconds")
    parser.add_argument("--gcs-timeout", type=float, default=6.0,
                        help="wall seconds of controller silence before a drone's GCS failsafe (RTL) acts")
    parser.add_argument("--reconcile-window", type=float, default=10.0,
                        help="wall seconds after a restart is healthy before ghosts are looked for")
    parser.add_argument("--confirm", type=float, default=8.0,
                        help="a contradiction with the simulator is a ghost if it lasts this long (s)")
    parser.add_argument("--warmup", type=float, default=10.0, help="calls flow this long before the first kill")
    parser.add_argument("--moment-timeout", type=float, default=45.0,
                        help="wait this long for the aimed-at moment, then kill anyway")
    parser.add_argument("--max-downtime", type=float, default=8.0,
                        help="the controller stays down 0..this many extra seconds before its restart")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="at the end, wait this long for every drone to land")
    parser.add_argument("--moments", default=",".join(MOMENTS), help=f"comma-separated kill moments ({', '.join(MOMENTS)})")
    parser.add_argument("--database-url", default=None, help="run the controller on this database (default: SQLite)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, database) even on success")


def run(args: argparse.Namespace) -> dict[str, Any]:
    moments = [m.strip() for m in args.moments.split(",") if m.strip()]
    unknown = set(moments) - set(MOMENTS)
    if unknown or not moments:
        raise SystemExit(f"--moments: unknown {sorted(unknown)}; known: {', '.join(MOMENTS)}")
    if args.restarts < 0 or args.drones < 1:
        raise SystemExit("--restarts must be >= 0 and --drones >= 1")
    if args.call_interval is None:
        args.call_interval = 60.0 / args.drones
    return asyncio.run(Chaos(args, moments).run())


def _hdr(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


@dataclass
class Snapshot:
    """The controller's view (API) and the simulator's truth, read together."""

    at: float
    drones: dict[str, dict[str, Any]]
    missions: list[dict[str, Any]]  # active ones
    incidents: list[dict[str, Any]]  # open ones
    truth: dict[str, dict[str, Any]]  # drone id -> the vehicle's truth
    wall: float = 0.0  # time.time() of the read

    def counts(self) -> dict[str, Any]:
        return {
            "missions": dict(Counter(m["state"] for m in self.missions)),
            "drones": dict(Counter(d["state"] for d in self.drones.values())),
            "incidents": dict(Counter(i["status"] for i in self.incidents)),
            "vehicles_flying": sum(1 for t in self.truth.values() if t["flying"]),
        }


def _where(t: dict[str, Any]) -> str:
    return (f"vehicle {'flying' if t['flying'] else 'on the ground'}, {'armed' if t['armed'] else 'disarmed'}, "
            f"{t['mode_name']}, {t['alt_m']:.1f} m")


def contradictions(s: Snapshot) -> dict[tuple[str, str], str]:
    """Every way the controller's state contradicts the vehicles right now: (kind, subject) -> description."""
    out: dict[tuple[str, str], str] = {}
    for did, d in s.drones.items():
        t = s.truth.get(did)
        if t is None:
            continue
        down = not t["flying"] and not t["armed"]
        if d["state"] in DRONE_AIRBORNE and down:
            out[("drone shown airborne, vehicle landed", did)] = f"{did} shows {d['state']}; {_where(t)}"
        elif d["state"] in DRONE_SHOWN_ON_GROUND and t["flying"]:
            out[("drone shown on the ground, vehicle flying", did)] = f"{did} shows {d['state']}; {_where(t)}"
        elif d["state"] == "lost_link" and t.get("clients", 0) > 0 and not t.get("link_cut"):
            out[("drone shown lost_link, vehicle linked", did)] = f"{did} shows lost_link; {_where(t)}, {t.get('clients')} client(s)"
    flying_for: dict[str, list[str]] = {}
    for m in s.missions:
        if m["state"] == "offered" and m.get("expires_at"):
            overdue = s.wall - datetime.fromisoformat(m["expires_at"].replace("Z", "+00:00")).timestamp()
            if overdue > OFFER_OVERDUE_S:
                out[("offer past its deadline", m["id"])] = (
                    f"{m['id']} ({m['incident_id']}) to {m['drone_id']} still offered {overdue:.0f} s after its deadline")
        d = s.drones.get(m["drone_id"])
        if m["state"] in WORKING_MISSION and d is not None and d["mission_id"] != m["id"]:
            out[("mission working, its drone serves another or none", m["id"])] = (
                f"{m['id']} ({m['incident_id']}) is {m['state']} but {m['drone_id']} shows {d['state']} "
                f"serving {d['mission_id'] or 'no mission'}")
        t = s.truth.get(m["drone_id"])
        if t is None or m["state"] not in ("launched", "on_scene"):
            continue
        if t["flying"]:
            flying_for.setdefault(m["incident_id"], []).append(m["id"])
        elif not t["armed"]:
            out[("mission airborne, its drone on the ground", m["id"])] = (
                f"{m['id']} ({m['incident_id']}) is {m['state']} with {m['drone_id']}; {_where(t)}")
    for inc in s.incidents:
        if inc["status"] == "on_scene" and not flying_for.get(inc["id"]):
            mine = [f"{m['id']}={m['state']}/{m['drone_id']}" for m in s.missions if m["incident_id"] == inc["id"]]
            out[("incident on scene, no drone flying for it", inc["id"])] = (
                f"{inc['id']} ({inc['category']}) is on_scene; its active missions: {', '.join(mine) or 'none'}")
    return out


class ControllerProcess:
    """`dronefleet serve --fleet external` on a fixed port and database, started, killed and started again."""

    def __init__(self, work: Path, cfg: Path, tokens: dict[str, Any], port: int, drones: int, database_url: str | None) -> None:
        self.work = work
        self.cfg = cfg
        self.tokens = tokens
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.drones = drones
        self.database_url = database_url
        self.log = work / "controller.log"
        self.proc: subprocess.Popen | None = None
        self.spawned_at = 0.0
        self.starts = 0

    def spawn(self) -> None:
        env = dict(os.environ, DRONEFLEET_TOKENS=json.dumps({"tokens": self.tokens}))
        cmd = [sys.executable, "-m", "controller.cli", "serve", "--port", str(self.port), "--var-dir", str(self.work / "var"),
               "--config-dir", str(self.cfg), "--fleet", "external", "--drones", str(self.drones), "--log-level", "info"]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self.starts += 1
        with self.log.open("ab") as f:
            f.write(f"\n===== chaos bench: start {self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)
        self.spawned_at = time.monotonic()

    async def healthy(self, http: httpx.AsyncClient, timeout: float = 90.0) -> float:
        """Seconds from spawn to `/health` ok."""
        deadline = self.spawned_at + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"controller exited with {self.proc.returncode} at start:\n{_tail(self.log)}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = await http.get("/health", timeout=1.0)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return time.monotonic() - self.spawned_at
            await asyncio.sleep(0.1)
        raise RuntimeError(f"controller not healthy {timeout:g} s after its start:\n{_tail(self.log)}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def stop(self, sig: int, timeout: float) -> dict[str, Any]:
        """Send `sig` and wait for the process to end (SIGKILL after `timeout`)."""
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        forced = False
        while self.proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                self.proc.kill()
                forced = True
                await asyncio.to_thread(self.proc.wait, 10)
                break
            await asyncio.sleep(0.05)
        return {"exit_code": self.proc.returncode, "exit_s": round(time.monotonic() - t0, 2), "forced_kill": forced}


@dataclass
class Books:
    """What the bots were told: every acknowledgement the controller gave."""

    calls_posted: int = 0
    calls_new: int = 0
    calls_merged: int = 0
    calls_unacknowledged: int = 0  # no answer: the controller was down or died mid-request
    calls_rejected: Counter = field(default_factory=Counter)  # status code -> count
    #: incident id -> calls acknowledged for it (its creation and repeat calls merged into it)
    acked: Counter = field(default_factory=Counter)
    category: dict[str, str] = field(default_factory=dict)
    nudged: set[str] = field(default_factory=set)
    offers: Counter = field(default_factory=Counter)
    accepted: dict[str, float] = field(default_factory=dict)  # mission id -> monotonic time of the 200
    declined: dict[str, float] = field(default_factory=dict)
    closed: dict[str, str] = field(default_factory=dict)  # incident id -> resolved | cancelled
    errors: Counter = field(default_factory=Counter)


class Chaos:
    def __init__(self, args: argparse.Namespace, moments: list[str]) -> None:
        self.args = args
        self.moments = moments
        self.rng = random.Random(args.seed)
        self.call_rng = random.Random(args.seed * 7919 + 1)
        self.pilot_rng = random.Random(args.seed * 7919 + 2)
        self.cmd_rng = random.Random(args.seed * 7919 + 3)
        self.work = Path(tempfile.mkdtemp(prefix="dronefleet-chaos-"))
        self.books = Books()
        self.snap: Snapshot | None = None
        self.up = False
        self.phase = "start"
        self.stop_calls = False
        self.stop_pilots = False
        self._want: tuple[str, asyncio.Future] | None = None
        self._tasks: set[asyncio.Task] = set()
        #: continuous contradiction tracking: key -> {since, first, last_seen, last, phase}
        self._tracker: dict[tuple[str, str], dict[str, Any]] = {}
        #: contradictions seen for EPISODE_MIN_S or more, whether or not they became ghosts
        self.episodes: list[dict[str, Any]] = []
        self.snapshot_s: list[float] = []
        self._reported: set[tuple[str, str]] = set()
        self.ghosts_running: list[dict[str, Any]] = []
        self.lost_calls: dict[str, dict[str, Any]] = {}
        self.lost_acks: dict[tuple[str, str], dict[str, Any]] = {}
        self.maintenance: list[dict[str, Any]] = []
        self.crashes: list[dict[str, Any]] = []

    # --- set-up -------------------------------------------------------------------------------------

    def _configs(self, base_port: int) -> Path:
        a = self.args
        cfg = self.work / "configs"
        shutil.copytree(default_config_dir(), cfg)
        doc = json.loads((cfg / "stations.json").read_text())
        keep, n = [], 0
        for s in doc["stations"]:
            if n >= a.drones:
                break
            keep.append(s)
            n += len(s["drones"])
        if n < a.drones:
            raise SystemExit(f"--drones {a.drones}: the roster has only {n}")
        doc["stations"] = keep
        (cfg / "stations.json").write_text(json.dumps(doc, indent=1))
        dispatch = yaml.safe_load((cfg / "dispatch.yaml").read_text())
        dispatch["offer_timeout_s"] = a.offer_timeout
        dispatch["transit_altitude_m"] = TRANSIT_ALT_M
        (cfg / "dispatch.yaml").write_text(yaml.safe_dump(dispatch))
        flight = yaml.safe_load((cfg / "flight.yaml").read_text())
        flight["failsafe"]["gcs_timeout_s"] = max(2, round(a.gcs_timeout * a.speedup))  # simulated seconds
        flight["on_scene"] = "hold"
        flight["links"]["base_port"] = base_port
        (cfg / "flight.yaml").write_text(yaml.safe_dump(flight))
        return cfg

    def _plan(self) -> list[tuple[str, str]]:
        n = self.args.restarts
        sigs = ["SIGKILL", "SIGTERM"] * math.ceil(n / 2)
        self.rng.shuffle(sigs)
        kinds: list[str] = []
        while len(kinds) < n:
            chunk = list(self.moments)
            self.rng.shuffle(chunk)
            kinds += chunk
        return list(zip(sigs[:n], kinds[:n]))

    async def run(self) -> dict[str, Any]:
        from sitl.fleet import free_base_port

        a = self.args
        started = time.monotonic()
        base = free_base_port(a.drones)
        self.cfg = self._configs(base)
        self.config = load_config(self.cfg)
        self.guard = NoFlyGuard(self.config.nofly, self.config.frame)
        self.stations = list(self.config.stations)
        self.roster = [d.id for s in self.stations for d in s.drones][: a.drones]
        self.tokens: dict[str, Any] = {COMMANDER: {"role": "commander", "name": "chaos-commander"},
                                       ADMIN: {"role": "admin", "name": "chaos-admin"}}
        self.pilot_of: dict[str, str] = {}
        for i, s in enumerate(self.stations):
            token = f"chaos-pilot-{i:04d}-token-0000000"
            self.tokens[token] = {"role": "pilot", "name": f"chaos-pilot-{i}", "station_id": s.id}
            self.pilot_of[s.id] = token
        self.control_port = free_port()
        sim_log = (self.work / "sim.log").open("wb")
        sim = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "sim", "--stations", str(self.cfg / "stations.json"),
             "--drone-models", str(self.cfg / "drone_models.yaml"), "--drones", str(a.drones), "--speedup", str(a.speedup),
             "--warm", "--base-port", str(base), "--control-port", str(self.control_port), "--exit-with-parent",
             "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=sim_log,
        )
        self.ctl = ControllerProcess(self.work, self.cfg, self.tokens, free_port(), a.drones, a.database_url)
        result: dict[str, Any] | None = None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(sim.stdout.readline), 60)  # type: ignore[union-attr]
            ready = json.loads(line or b"{}")
            if not ready.get("ready"):
                raise RuntimeError(f"simulator did not start:\n{_tail(self.work / 'sim.log')}")
            progress(f"chaos: simulator up, {ready['vehicles']} copters at {a.speedup:g}x (pid {sim.pid}); work dir {self.work}")
            async with httpx.AsyncClient(base_url=self.ctl.url, timeout=httpx.Timeout(5.0)) as http:
                self.http = http
                result = await self._run(started)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self.ctl.proc is not None and self.ctl.alive():
                await self.ctl.stop(signal.SIGTERM, 20)
            sim.terminate()
            try:
                sim.wait(15)
            except subprocess.TimeoutExpired:
                sim.kill()
            sim_log.close()
            if result is not None and result["meets_target"] and not a.keep:
                shutil.rmtree(self.work, ignore_errors=True)
                result["work_dir"] = None
            else:
                progress(f"chaos: working directory kept (logs, database): {self.work}")
        assert result is not None
        return result

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.books.errors[f"bot task: {type(exc).__name__}: {exc}"[:200]] += 1
            progress(f"chaos: a bot task failed: {type(exc).__name__}: {exc}")

    async def _run(self, started: float) -> dict[str, Any]:
        a = self.args
        self.ctl.spawn()
        first_healthy = await self.ctl.healthy(self.http)
        await self._wait_links()
        self.up = True
        self.phase = "running"
        progress(f"chaos: controller healthy in {first_healthy:.1f} s, {a.drones} links up; calls start")
        for bot in (self._monitor(), self._caller(), self._pilots(), self._commander()):
            self._spawn(bot)
        await asyncio.sleep(a.warmup)

        events: list[dict[str, Any]] = []
        for n, (sig_name, kind) in enumerate(self._plan(), 1):
            await self._revive_if_crashed()
            moment = await self._await_moment(kind)
            events.append(await self._kill_and_restart(n, sig_name, moment))
            await self._recover_maintenance()

        progress("chaos: restarts done; calls stop, every open incident is closed, the fleet lands")
        await self._revive_if_crashed()
        end = await self._drain()
        self.phase = "final check"
        final_ghosts, _ = await self._ghost_check("final")
        await self._lost_check("final")
        missions = await self._all_missions()
        unresolved = [m for m in missions if m["state"] not in TERMINAL_MISSION]
        unresolved_details = [await self._mission_brief(m["id"]) for m in unresolved[:20]]
        self.phase = "stopping"
        self.up = False
        stop = await self.ctl.stop(signal.SIGTERM, 30)

        log_errors = self._log_errors()
        for e in events:
            e["log_errors"] = log_errors["by_start"].get(e["n"] + 1, 0)
        per_restart = [e["ghosts"] for e in events]
        ghosts_total = sum(per_restart) + len(final_ghosts) + len(self.ghosts_running)
        lost = sum(v["missing_calls"] for v in self.lost_calls.values())
        reconcile = [e["reconcile_startup_s"] for e in events if e.get("reconcile_startup_s") is not None]
        b = self.books
        ghost_details = [g for e in events for g in e["ghost_details"]] + final_ghosts + self.ghosts_running
        return {
            "benchmark": "chaos",
            "date": stamp(),
            "machine": machine(),
            "parameters": {
                "restarts": a.restarts, "drones": a.drones, "speedup": a.speedup, "seed": a.seed,
                "call_interval_s": a.call_interval, "offer_timeout_s": a.offer_timeout,
                "gcs_failsafe_after_s": a.gcs_timeout, "reconcile_window_s": a.reconcile_window,
                "ghost_confirm_s": a.confirm, "max_downtime_s": a.max_downtime, "moments": self.moments,
                "database": "postgresql" if (a.database_url or "").startswith("postgres") else (
                    "sqlite" if not a.database_url else a.database_url.split(":", 1)[0]),
            },
            "wall_s": round(time.monotonic() - started, 1),
            "restarts": {
                "done": len(events),
                "sigkill": sum(1 for e in events if e["signal"] == "SIGKILL"),
                "sigterm": sum(1 for e in events if e["signal"] == "SIGTERM"),
                "moments": dict(Counter(e["moment"] for e in events)),
                "moments_seen": sum(1 for e in events if e["moment_seen"]),
                "events": events,
            },
            "controller_crashes": self.crashes,
            "calls": {
                "posted": b.calls_posted,
                "acknowledged": b.calls_new + b.calls_merged,
                "new_incidents": b.calls_new,
                "merged": b.calls_merged,
                "unacknowledged": b.calls_unacknowledged,
                "rejected": dict(b.calls_rejected),
                "searches": sum(1 for c in b.category.values() if c == SEARCH),
            },
            "offers": dict(b.offers),
            "commands_acknowledged": {"accept": len(b.accepted), "decline": len(b.declined), "close": len(b.closed)},
            "bot_errors": dict(b.errors),
            "lost": lost,
            "lost_calls": list(self.lost_calls.values()),
            "lost_acks": len(self.lost_acks),
            "lost_ack_details": list(self.lost_acks.values()),
            "ghosts": ghosts_total,
            "ghosts_per_restart": per_restart,
            "ghosts_final": len(final_ghosts),
            "ghosts_while_running": len(self.ghosts_running),
            "ghost_details": ghost_details[:30],
            "unresolved": len(unresolved),
            "unresolved_missions": unresolved_details,
            "missions": {"total": len(missions), "by_state": dict(Counter(m["state"] for m in missions))},
            "end": {**end, "controller_stop": stop},
            "contradiction_episodes": self.episodes[:50],
            "monitor_snapshot_s": percentiles(self.snapshot_s),
            "maintenance_recoveries": self.maintenance,
            "controller_log_errors": log_errors["count"],
            "controller_log_error_lines": log_errors["lines"],
            "reconcile_time_s": percentiles(reconcile),
            "restart_to_healthy_s": percentiles([e["healthy_s"] for e in events]),
            "target": {"lost": 0, "lost_acks": 0, "ghosts": 0, "unresolved": 0},
            "meets_target": lost == 0 and not self.lost_acks and ghosts_total == 0 and not unresolved,
            "work_dir": str(self.work),
        }

    def _log_errors(self) -> dict[str, Any]:
        """ERROR lines and tracebacks in the controller's log, by process start (1 = the first)."""
        start, count, by_start, lines = 0, 0, Counter(), []
        for line in _tail(self.ctl.log, 50_000_000).splitlines():
            if line.startswith("===== chaos bench: start "):
                start = int(line.split()[4])
            elif " ERROR " in line or line.startswith("Traceback"):
                count += 1
                by_start[start] += 1
                if len(lines) < 30:
                    lines.append(f"[start {start}] {line[:400]}")
        return {"count": count, "by_start": dict(by_start), "lines": lines}

    async def _wait_links(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
                m = await self._get("/api/v1/metrics")
                if m["fleet"]["links_up"] >= self.args.drones:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the controller's links did not all come up in {timeout:g} s:\n{_tail(self.ctl.log)}")
            await asyncio.sleep(0.3)

    # --- reads ------------------------------------------------------------------------------------------

    async def _get(self, path: str, token: str = COMMANDER, params: Any = None) -> Any:
        r = await self.http.get(path, headers=_hdr(token), params=params)
        r.raise_for_status()
        return r.json()

    async def _truth(self) -> dict[str, dict[str, Any]]:
        from sitl.control import request

        reply = await request(self.control_port, {"cmd": "truth", "instance": "all"})
        return {self.roster[t["instance"]]: t for t in reply["truth"] if t["instance"] < len(self.roster)}

    async def snapshot(self) -> Snapshot | None:
        try:
            drones, missions, incidents, truth = await asyncio.gather(
                self._get("/api/v1/drones"),
                self._get("/api/v1/missions", params=[*(("state", s) for s in ACTIVE_MISSION), ("limit", 1000)]),
                self._get("/api/v1/incidents", params=[*(("status", s) for s in OPEN_INCIDENT), ("limit", 1000)]),
                self._truth(),
            )
        except (httpx.HTTPError, OSError, RuntimeError, asyncio.TimeoutError, ValueError):
            return None
        return Snapshot(time.monotonic(), {d["id"]: d for d in drones}, missions, incidents, truth, time.time())

    async def _fresh_snapshot(self, tries: int = 20) -> Snapshot:
        for _ in range(tries):
            s = await self.snapshot()
            if s is not None:
                return s
            await asyncio.sleep(0.5)
        raise RuntimeError(f"controller or simulator unreadable:\n{_tail(self.ctl.log)}")

    async def _all_missions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for attempt in range(10):
            try:
                out, offset = [], 0
                while True:
                    page = await self._get("/api/v1/missions", params={"limit": 1000, "offset": offset})
                    out += page
                    if len(page) < 1000:
                        return out
                    offset += 1000
            except httpx.HTTPError:
                await asyncio.sleep(0.5 + attempt * 0.2)
        raise RuntimeError("missions unreadable")

    async def _mission_brief(self, mission_id: str) -> dict[str, Any]:
        """A mission with the tail of its steps and timeline: what a report of a failure needs."""
        try:
            m = await self._get(f"/api/v1/missions/{mission_id}")
        except httpx.HTTPError as exc:
            return {"id": mission_id, "error": str(exc)}
        keep = ("id", "incident_id", "drone_id", "state", "reason", "offered_at", "decided_at", "updated_at")
        return {
            **{k: m.get(k) for k in keep},
            "steps": [f"{s['at']} {s['step']}{'' if s['ok'] else ' (failed)'}: {s['detail']}" for s in m["steps"][-14:]],
            "timeline": [f"{t['at']} {t['from']}->{t['to']} by {t['actor']}: {t['reason']}" for t in m["timeline"][-10:]],
        }

    # --- bots -----------------------------------------------------------------------------------------

    def _moment(self, kind: str, detail: str) -> None:
        if self._want is not None and self._want[0] == kind and not self._want[1].done():
            self._want[1].set_result(detail)

    async def _monitor(self) -> None:
        """Reads the world twice a second (for the bots and the kill moments) and tracks lasting contradictions."""
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._monitor_once()
            except Exception as exc:  # noqa: BLE001 - a dead monitor would blind the bench: count it and go on
                self.books.errors[f"monitor: {type(exc).__name__}: {exc}"[:200]] += 1

    async def _monitor_once(self) -> None:
        if not self.up:
            self._end_episodes(set(), None)
            return
        if not self.ctl.alive():
            self.up = False
            self.crashes.append({"phase": self.phase, "exit_code": self.ctl.proc.returncode if self.ctl.proc else None,
                                 "log_tail": _tail(self.ctl.log, 3000)})
            progress(f"chaos: CONTROLLER DIED BY ITSELF ({self.phase}), exit code {self.crashes[-1]['exit_code']}")
            return
        t0 = time.monotonic()
        s = await self.snapshot()
        if s is None or not self.up:
            return
        self.snapshot_s.append(time.monotonic() - t0)
        self.snap = s
        found = contradictions(s)
        self._end_episodes(set(found), s.at)
        for key, text in found.items():
            ep = self._tracker.setdefault(key, {"since": s.at, "first": text, "phase": self.phase})
            ep["last_seen"], ep["last"] = s.at, text
            lasted = s.at - ep["since"]
            if lasted >= self.args.confirm and key not in self._reported and self.phase == "running":
                self._reported.add(key)
                g = {"when": f"while running ({self.phase})", "kind": key[0], "subject": key[1], "first": ep["first"],
                     "last": text, "lasted_s": round(lasted, 1)}
                g["detail"] = await self._ghost_detail(key, s)
                self.ghosts_running.append(g)
                progress(f"chaos: GHOST while running: {key[0]}: {text} (for {lasted:.0f} s)")

    def _end_episodes(self, present: set[tuple[str, str]], now: float | None) -> None:
        """Contradictions no longer seen: the ones that lasted a while are kept as episodes (ghost or not)."""
        for key in [k for k in self._tracker if k not in present]:
            ep = self._tracker.pop(key)
            self._reported.discard(key)
            lasted = ep["last_seen"] - ep["since"]
            if lasted >= EPISODE_MIN_S:
                self.episodes.append({"kind": key[0], "subject": key[1], "seen_for_s": round(lasted, 1), "phase": ep["phase"],
                                      "first": ep["first"], "last": ep["last"],
                                      "ended": "controller down" if now is None else "resolved"})

    def _point(self, near_m: tuple[float, float], station: Any = None) -> tuple[Any, float, float]:
        rng = self.call_rng
        for _ in range(100):
            s = station or rng.choice(self.stations)
            lat, lon = geo.destination(s.lat, s.lon, rng.uniform(0, 360), rng.uniform(*near_m))
            if self.guard.zone_at(lat, lon) is None and self.guard.zone_crossed((s.lat, s.lon), (lat, lon)) is None:
                return s, lat, lon
        raise RuntimeError("no call location clear of the no-fly zones")

    async def _post_call(self, category: str | None = None, nudged: bool = False, station: Any = None) -> str | None:
        rng, b = self.call_rng, self.books
        category = category or rng.choices(CATEGORIES, CATEGORY_MIX)[0]
        body: dict[str, Any]
        if category == SEARCH:
            _, lat, lon = self._point((100.0, 250.0), station)
            body = {"grade": rng.choice((2, 3)), "category": SEARCH, "lat": lat, "lon": lon,
                    "search_radius_m": round(rng.uniform(60, 100)), "drones_requested": rng.choice((1, 1, 1, 2))}
        else:
            _, lat, lon = self._point((250.0, 900.0), station)
            body = {"grade": rng.choices(GRADES, GRADE_MIX)[0], "category": category, "lat": lat, "lon": lon}
        b.calls_posted += 1
        body["description"] = f"chaos call {b.calls_posted}"
        body["caller"] = f"caller-{b.calls_posted}"
        try:
            r = await self.http.post("/api/v1/incidents", json=body, headers=_hdr(COMMANDER))
        except httpx.HTTPError:
            b.calls_unacknowledged += 1
            return None
        if r.status_code not in (200, 201):
            b.calls_rejected[str(r.status_code)] += 1
            return None
        inc = r.json()
        b.acked[inc["id"]] += 1
        b.category[inc["id"]] = inc["category"]
        if r.status_code == 201:
            b.calls_new += 1
            if nudged:
                b.nudged.add(inc["id"])
        else:
            b.calls_merged += 1
        return inc["id"]

    async def _caller(self) -> None:
        while not self.stop_calls:
            await asyncio.sleep(self.call_rng.expovariate(1.0 / self.args.call_interval))
            if not self.stop_calls:
                await self._post_call()

    async def _pilots(self) -> None:
        """Every station's pilot: polls the offers and answers each after a while."""
        handled: set[str] = set()
        while not self.stop_pilots:
            await asyncio.sleep(0.3)
            if not self.up:
                continue
            try:
                offers = await self._get("/api/v1/missions", params={"state": "offered", "limit": 1000})
            except httpx.HTTPError:
                continue
            for m in offers:
                if m["id"] in handled or self.stop_pilots:
                    continue
                handled.add(m["id"])
                self.books.offers["seen"] += 1
                cat = self.books.category.get(m["incident_id"], "?")
                self._moment("offer", f"{m['id']} ({cat}, {m['incident_id']}) offered to {m['drone_id']}")
                self._spawn(self._answer(m))

    async def _answer(self, m: dict[str, Any]) -> None:
        rng, b = self.pilot_rng, self.books
        nudged = m["incident_id"] in b.nudged
        r = rng.random()
        if not nudged and r < 0.06:
            b.offers["left_to_expire"] += 1
            return
        decline = not nudged and r < 0.16
        await asyncio.sleep(rng.uniform(0.3, 1.5) if nudged else rng.uniform(0.3, 5.0))
        token = self.pilot_of.get(m["station_id"])
        if token is None:
            return
        verb = "decline" if decline else "accept"
        deadline = time.monotonic() + self.args.offer_timeout + 40  # the offer's deadline survives a restart
        while time.monotonic() < deadline and not self.stop_pilots:
            try:
                resp = await self.http.post(f"/api/v1/missions/{m['id']}/{verb}", headers=_hdr(token),
                                            json={"reason": "chaos bench pilot"} if decline else None)
            except httpx.HTTPError:
                b.offers[f"{verb}_no_answer"] += 1
                await asyncio.sleep(0.5)
                continue
            if resp.status_code == 200:
                b.offers["accepted" if verb == "accept" else "declined"] += 1
                if decline:
                    b.declined[m["id"]] = time.monotonic()
                else:
                    b.accepted[m["id"]] = time.monotonic()
                    cat = b.category.get(m["incident_id"], "?")
                    self._moment("accept", f"{m['id']} ({cat}) accepted for {m['drone_id']}")
            elif resp.status_code in (404, 409):
                b.offers[f"{verb}_refused"] += 1
            else:
                b.errors[f"{verb} {resp.status_code}"] += 1
            return

    async def _close(self, incident_id: str, resolved: bool, why: str) -> bool:
        verb = "resolve" if resolved else "cancel"
        try:
            r = await self.http.post(f"/api/v1/incidents/{incident_id}/{verb}", json={"reason": why}, headers=_hdr(COMMANDER))
        except httpx.HTTPError:
            return False
        if r.status_code == 200:
            self.books.closed[incident_id] = "resolved" if resolved else "cancelled"
            return True
        if r.status_code not in (404, 409):
            self.books.errors[f"{verb} {r.status_code}"] += 1
        return r.status_code in (404, 409)

    async def _commander(self) -> None:
        """Resolves incidents a while after a drone is on scene; cancels the ones nothing serves."""
        rng = self.cmd_rng
        first_seen: dict[str, float] = {}
        queued_since: dict[str, float] = {}
        resolve_at: dict[str, float] = {}
        done: set[str] = set()
        while not self.stop_calls:
            await asyncio.sleep(1.0)
            s = self.snap
            if not self.up or s is None or time.monotonic() - s.at > 3:
                continue
            now = time.monotonic()
            for inc in s.incidents:
                iid, st = inc["id"], inc["status"]
                if iid in done:
                    continue
                first = first_seen.setdefault(iid, now)
                search = inc["category"] == SEARCH
                if st == "queued":
                    queued_since.setdefault(iid, now)
                else:
                    queued_since.pop(iid, None)
                if st == "on_scene":
                    resolve_at.setdefault(iid, now + (rng.uniform(20, 50) if search else rng.uniform(3, 15)))
                action: tuple[bool, str] | None = None
                if st == "on_scene" and now >= resolve_at[iid]:
                    action = (True, "handled (chaos bench commander)")
                elif st == "queued" and now - queued_since[iid] > 45:
                    action = (False, "no drone free (chaos bench commander)")
                elif now - first > 150:
                    action = (st in ("dispatched", "on_scene"), "open too long (chaos bench commander)")
                if action is not None and await self._close(iid, *action):
                    done.add(iid)

    # --- kill moments --------------------------------------------------------------------------------

    def _search_missions(self, s: Snapshot, states: tuple[str, ...]) -> list[dict[str, Any]]:
        return [m for m in s.missions if m["state"] in states and self.books.category.get(m["incident_id"]) == SEARCH]

    async def _found(self, kind: str, s: Snapshot) -> str | None:
        """Is the moment `kind` under way in this snapshot? A description of it, or None."""
        cat = self.books.category
        if kind == "on_scene":
            for m in s.missions:
                t = s.truth.get(m["drone_id"], {})
                if m["state"] == "on_scene" and cat.get(m["incident_id"]) != SEARCH and t.get("flying"):
                    return f"{m['id']} ({cat.get(m['incident_id'])}) on scene with {m['drone_id']} at {t['alt_m']:.0f} m"
        elif kind == "search":
            for m in self._search_missions(s, ("on_scene",)):
                if s.truth.get(m["drone_id"], {}).get("flying"):
                    return f"{m['id']} searching with {m['drone_id']} ({s.truth[m['drone_id']]['mode_name']})"
        elif kind == "landing":
            for did, t in s.truth.items():
                if t["flying"] and t["mode_name"] in ("RTL", "LAND") and t["alt_m"] < 25 and t["climb_ms"] < -0.2:
                    d = s.drones.get(did, {})
                    return f"{did} descending at {t['alt_m']:.0f} m in {t['mode_name']} (shown {d.get('state')}, {d.get('mission_id')})"
        elif kind == "upload":
            for m in self._search_missions(s, ("accepted", "launched")):
                try:
                    steps = (await self._get(f"/api/v1/missions/{m['id']}"))["steps"]
                except httpx.HTTPError:
                    continue
                if steps and steps[-1]["step"] in UPLOAD_STEPS:
                    return f"{m['id']} with {m['drone_id']}: last step '{steps[-1]['step']}' (the sweep's upload is next or under way)"
        return None

    async def _nudge(self, kind: str) -> None:
        """Make the moment more likely: a call of the right kind, or a resolve that sends a drone home."""
        s = self.snap
        if kind in ("search", "upload"):
            busy = s is not None and self._search_missions(
                s, ("offered", "accepted", "launched") + (("on_scene",) if kind == "search" else ()))
            if not busy:
                free = [st for st in self.stations if s is None or any(
                    s.drones.get(d.id, {}).get("state") in ("standby", "charging", "landed") for d in st.drones)]
                await self._post_call(SEARCH, nudged=True, station=self.call_rng.choice(free) if free else None)
        elif kind == "landing":
            returning = s is not None and any(m["state"] == "returning" for m in s.missions)
            if not returning and s is not None:
                scene = [i for i in s.incidents if i["status"] == "on_scene"]
                if scene:
                    await self._close(self.cmd_rng.choice(scene)["id"], True, "handled (chaos bench, to see a landing)")
                else:
                    await self._post_call(nudged=True)
        else:
            await self._post_call(nudged=kind in ("on_scene", "accept"))

    async def _await_moment(self, kind: str) -> dict[str, Any]:
        a = self.args
        t0 = time.monotonic()
        deadline = t0 + a.moment_timeout
        if kind == "random":
            await asyncio.sleep(self.rng.uniform(1.0, 10.0))
            return {"kind": kind, "seen": True, "detail": "a random moment"}
        next_nudge = t0 + (2.0 if kind in ("search", "upload") else 8.0)
        detail: str | None = None
        if kind in ("offer", "accept"):
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            self._want = (kind, fut)
            try:
                while detail is None and time.monotonic() < deadline:
                    try:
                        detail = await asyncio.wait_for(asyncio.shield(fut), 1.0)
                    except asyncio.TimeoutError:
                        if time.monotonic() > next_nudge:
                            next_nudge = time.monotonic() + 8.0
                            await self._nudge(kind)
            finally:
                self._want = None
            if detail is not None and kind == "accept":
                delay = self.rng.uniform(0.0, 1.5)
                await asyncio.sleep(delay)
                detail += f"; killed {delay:.1f} s after the accept"
        else:
            while time.monotonic() < deadline:
                s = self.snap if kind != "upload" else await self.snapshot()
                if s is not None and self.up:
                    detail = await self._found(kind, s)
                    if detail is not None:
                        break
                if time.monotonic() > next_nudge:
                    next_nudge = time.monotonic() + 12.0
                    await self._nudge(kind)
                await asyncio.sleep(0.15 if kind == "upload" else 0.3)
        if detail is None:
            return {"kind": kind, "seen": False, "detail": f"not seen in {a.moment_timeout:g} s: killed then"}
        return {"kind": kind, "seen": True, "detail": detail}

    # --- kill, restart, check -----------------------------------------------------------------------------

    async def _revive_if_crashed(self) -> None:
        if self.ctl.alive():
            return
        progress("chaos: the controller is not running (it died by itself); restarting it")
        if not self.crashes or self.crashes[-1].get("restarted"):
            self.crashes.append({"phase": self.phase, "exit_code": self.ctl.proc.returncode if self.ctl.proc else None,
                                 "log_tail": _tail(self.ctl.log, 3000)})
        self.crashes[-1]["restarted"] = True
        self.ctl.spawn()
        await self.ctl.healthy(self.http)
        self.up = True

    async def _kill_and_restart(self, n: int, sig_name: str, moment: dict[str, Any]) -> dict[str, Any]:
        a = self.args
        before = self.snap
        self.up = False
        self.phase = f"restart {n}"
        kill = await self.ctl.stop(getattr(signal, sig_name), 30.0 if sig_name == "SIGTERM" else 10.0)
        killed_at = time.monotonic()
        extra = self.rng.uniform(0.0, a.max_downtime)
        await asyncio.sleep(extra)
        self.ctl.spawn()
        healthy_s = await self.ctl.healthy(self.http)
        healthy_at = time.monotonic()
        downtime = healthy_at - killed_at + kill["exit_s"]
        metrics: dict[str, Any] = {}
        with contextlib.suppress(httpx.HTTPError, ValueError):
            metrics = await self._get("/api/v1/metrics")
        self.up = True
        self.phase = f"restart {n} window"
        lost = await self._lost_check(f"restart {n}")
        await asyncio.sleep(max(0.0, a.reconcile_window - (time.monotonic() - healthy_at)))
        ghosts, raw = await self._ghost_check(f"restart {n}")
        self.phase = "running"
        found = re.search(r"MSN-\d+", moment["detail"])
        after = None
        if found:
            brief = await self._mission_brief(found.group(0))
            after = {"mission": found.group(0), "state": brief.get("state"), "reason": brief.get("reason"),
                     "steps": brief.get("steps", [])[-8:]}
        fleet = metrics.get("fleet", {})
        event = {
            "n": n,
            "signal": sig_name,
            "moment": moment["kind"],
            "moment_seen": moment["seen"],
            "moment_detail": moment["detail"],
            "moment_mission_after": after,
            "state_at_kill": before.counts() if before is not None else None,
            "kill": kill,
            "extra_downtime_s": round(extra, 1),
            "downtime_s": round(downtime, 1),
            "gcs_failsafe_expected": downtime > a.gcs_timeout,
            "healthy_s": round(healthy_s, 2),
            "reconcile_startup_s": None if fleet.get("reconcile_startup_s") is None else round(fleet["reconcile_startup_s"], 3),
            "reconcile": metrics.get("reconcile"),
            "links_up_at_health": fleet.get("links_up"),
            "lost_calls_found": lost["calls"],
            "lost_acks_found": lost["acks"],
            "contradictions_at_window_end": raw,
            "ghosts": len(ghosts),
            "ghost_details": ghosts,
        }
        rec = event["reconcile"] or {}
        progress(
            f"restart {n}/{a.restarts}: {sig_name} at '{moment['kind']}'{'' if moment['seen'] else ' (not seen)'}: "
            f"{moment['detail']}; missions {event['state_at_kill']['missions'] if before else '?'}; down {downtime:.1f} s; "
            f"healthy in {healthy_s:.1f} s, start-up reconciliation {event['reconcile_startup_s']} s "
            f"({rec.get('repairs', '?')} repairs); lost {lost['calls']} calls / {lost['acks']} acks; "
            f"contradictions at window end {raw}, ghosts {len(ghosts)}"
        )
        return event

    async def _lost_check(self, when: str) -> dict[str, int]:
        """Every acknowledged call's incident is there with at least as many callers; acknowledged commands stand."""
        b = self.books
        sem = asyncio.Semaphore(12)

        async def one(iid: str) -> tuple[str, dict[str, Any] | None]:
            async with sem:
                for attempt in range(10):
                    try:
                        r = await self.http.get(f"/api/v1/incidents/{iid}", headers=_hdr(COMMANDER))
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                        continue
                    if r.status_code == 404:
                        return iid, None
                    if r.status_code == 200:
                        return iid, r.json()
                    await asyncio.sleep(0.5)
                raise RuntimeError(f"incident {iid} unreadable")

        # What was acknowledged before the reads start (a pilot retrying through the restart may be answered meanwhile).
        acked, closed, accepted, declined = dict(b.acked), dict(b.closed), list(b.accepted), list(b.declined)
        found = dict(await asyncio.gather(*(one(i) for i in acked)))
        calls = acks = 0
        for iid, n in acked.items():
            inc = found[iid]
            callers = 0 if inc is None else int(inc["callers"])
            if callers < n:
                calls += n - callers
                prev = self.lost_calls.get(iid)
                if prev is None or prev["missing_calls"] < n - callers:
                    self.lost_calls[iid] = {"incident": iid, "acknowledged_calls": n, "callers_found": callers,
                                            "missing_calls": n - callers, "found": inc is not None, "first_seen": when,
                                            "category": b.category.get(iid)}
                    progress(f"chaos: LOST CALL(S) ({when}): {iid}: {n} acknowledged, "
                             f"{'not found' if inc is None else f'{callers} callers'}")
        for iid, how in closed.items():
            inc = found.get(iid)
            if inc is not None and inc["status"] != how:
                acks += self._lost_ack("close", iid, when, f"{how} acknowledged, now {inc['status']}")
        missions = {m["id"]: m for m in await self._all_missions()}
        for mid in accepted:
            m = missions.get(mid)
            if m is None or m["state"] in ("offered", "declined", "expired"):
                acks += self._lost_ack("accept", mid, when, f"accept acknowledged, now {m['state'] if m else 'missing'}")
        for mid in declined:
            m = missions.get(mid)
            if m is None or m["state"] != "declined":
                acks += self._lost_ack("decline", mid, when, f"decline acknowledged, now {m['state'] if m else 'missing'}")
        return {"calls": calls, "acks": acks}

    def _lost_ack(self, kind: str, subject: str, when: str, what: str) -> int:
        if (kind, subject) not in self.lost_acks:
            self.lost_acks[(kind, subject)] = {"kind": kind, "subject": subject, "first_seen": when, "what": what}
            progress(f"chaos: LOST ACKNOWLEDGEMENT ({when}): {kind} {subject}: {what}")
        return 1

    async def _ghost_check(self, when: str) -> tuple[list[dict[str, Any]], int]:
        """Contradictions with the simulator's truth now that still hold `--confirm` seconds later: the ghosts."""
        t0 = time.monotonic()
        s = await self._fresh_snapshot()
        first = contradictions(s)
        lasting = dict(first)
        while lasting and time.monotonic() - t0 < self.args.confirm:
            await asyncio.sleep(1.0)
            s = await self._fresh_snapshot()
            now = contradictions(s)
            lasting = {k: v for k, v in now.items() if k in lasting}
        ghosts = []
        for key, text in lasting.items():
            self._reported.add(key)
            ghosts.append({"when": when, "kind": key[0], "subject": key[1], "first": first[key], "last": text,
                           "lasted_s": round(time.monotonic() - t0, 1), "detail": await self._ghost_detail(key, s)})
            progress(f"chaos: GHOST ({when}): {key[0]}: {text}")
        return ghosts, len(first)

    async def _ghost_detail(self, key: tuple[str, str], s: Snapshot) -> dict[str, Any]:
        kind, subject = key
        out: dict[str, Any] = {}
        mission_ids: list[str] = []
        if subject in s.drones:
            d = s.drones[subject]
            out["drone"] = d
            out["truth"] = {k: s.truth[subject].get(k) for k in ("flying", "armed", "mode_name", "alt_m", "battery_pct", "lat", "lon", "gcs_failsafe", "clients")}
            with contextlib.suppress(httpx.HTTPError):
                mission_ids = [m["id"] for m in await self._get("/api/v1/missions", params={"drone": subject, "limit": 2})]
        elif subject.startswith("M") or kind.startswith("mission"):
            mission_ids = [subject]
        else:
            with contextlib.suppress(httpx.HTTPError):
                inc = await self._get(f"/api/v1/incidents/{subject}")
                out["incident_timeline"] = [f"{t['at']} {t['from']}->{t['to']} by {t['actor']}: {t['reason']}" for t in inc["timeline"][-10:]]
                mission_ids = [m["id"] for m in inc["missions"]][:3]
        out["missions"] = [await self._mission_brief(mid) for mid in mission_ids]
        return out

    async def _recover_maintenance(self) -> None:
        """A drone taken out of service on the ground at its station is put back (as a technician would), and noted."""
        s = self.snap
        if s is None:
            return
        for did, d in s.drones.items():
            t = s.truth.get(did)
            if d["state"] != "maintenance" or t is None or t["flying"] or t["armed"]:
                continue
            last = None
            with contextlib.suppress(httpx.HTTPError):
                ms = await self._get("/api/v1/missions", params={"drone": did, "limit": 1})
                last = await self._mission_brief(ms[0]["id"]) if ms else None
            with contextlib.suppress(httpx.HTTPError):
                r = await self.http.post(f"/api/v1/drones/{did}/maintenance", json={"on": False, "reason": "chaos bench"},
                                         headers=_hdr(ADMIN))
                self.maintenance.append({"drone": did, "phase": self.phase, "put_back": r.status_code == 200, "last_mission": last})
                progress(f"chaos: {did} was in maintenance ({last['reason'] if last else 'no mission'}); put back: {r.status_code}")

    async def _drain(self) -> dict[str, Any]:
        """Stop the calls and the pilots, close every open incident, wait for every mission to end and drone to land."""
        self.stop_calls = True
        self.stop_pilots = True
        self.phase = "drain"
        t0 = time.monotonic()
        deadline = t0 + self.args.drain_timeout
        closed_rounds = 0
        while True:
            s = await self._fresh_snapshot()
            if s.incidents and closed_rounds < 20:
                closed_rounds += 1
                for inc in s.incidents:
                    await self._close(inc["id"], inc["status"] in ("dispatched", "on_scene"), "end of the chaos run")
            flying = [did for did, t in s.truth.items() if t["flying"] or t["armed"]]
            not_down = [did for did, d in s.drones.items() if d["state"] not in DRONE_DOWN]
            if not s.missions and not s.incidents and not flying and not not_down:
                break
            if time.monotonic() > deadline:
                progress(f"chaos: drain timed out: {len(s.missions)} active missions, vehicles flying {flying}, "
                         f"drones not down {not_down}")
                break
            await asyncio.sleep(1.0)
        await self._recover_maintenance()
        s = await self._fresh_snapshot()
        return {
            "drain_s": round(time.monotonic() - t0, 1),
            "drones": dict(Counter(d["state"] for d in s.drones.values())),
            "vehicles_flying": sorted(did for did, t in s.truth.items() if t["flying"]),
            "vehicles_armed": sorted(did for did, t in s.truth.items() if t["armed"]),
            "open_incidents": len(s.incidents),
        }


def summarize(r: dict[str, Any]) -> str:
    p, rs, c = r["parameters"], r["restarts"], r["calls"]
    rec, hl = r["reconcile_time_s"], r["restart_to_healthy_s"]
    fmt = lambda d, k: "-" if d.get(k) is None else f"{d[k]:.2f}"  # noqa: E731
    lines = [
        f"chaos: {rs['done']} restarts ({rs['sigkill']} SIGKILL, {rs['sigterm']} SIGTERM) of the controller on "
        f"{p['database']}, {p['drones']} drones at {p['speedup']:g}x, {r['wall_s']} s",
        f"  kill moments: {', '.join(f'{k} {v}' for k, v in sorted(rs['moments'].items()))} "
        f"({rs['moments_seen']} of {rs['done']} hit as aimed)",
        f"  calls: {c['acknowledged']} acknowledged ({c['new_incidents']} incidents, {c['merged']} merged, "
        f"{c['searches']} searches), {c['unacknowledged']} unanswered while down; offers {r['offers'].get('seen', 0)}, "
        f"accepted {r['commands_acknowledged']['accept']}, declined {r['commands_acknowledged']['decline']}",
        f"  lost: {r['lost']} acknowledged calls, {r['lost_acks']} acknowledged commands",
        f"  ghosts: {r['ghosts']} (after each restart {r['ghosts_per_restart']}, at the end {r['ghosts_final']}, "
        f"while running {r['ghosts_while_running']})",
        f"  unresolved at the end: {r['unresolved']} of {r['missions']['total']} missions ({r['missions']['by_state']})",
        f"  start-up reconciliation: p50 {fmt(rec, 'p50')} s, p99 {fmt(rec, 'p99')} s, max {fmt(rec, 'max')} s; "
        f"spawn to healthy p50 {fmt(hl, 'p50')} s, max {fmt(hl, 'max')} s",
    ]
    if r["controller_crashes"]:
        lines.append(f"  controller died by itself {len(r['controller_crashes'])} time(s)")
    if r["contradiction_episodes"]:
        longest = max(r["contradiction_episodes"], key=lambda e: e["seen_for_s"])
        lines.append(f"  contradictions seen >= {EPISODE_MIN_S:g} s (ghosts or not): {len(r['contradiction_episodes'])}, "
                     f"longest {longest['seen_for_s']} s: {longest['last']}")
    if r["controller_log_errors"]:
        lines.append(f"  ERROR lines in the controller's log: {r['controller_log_errors']}")
    if r["maintenance_recoveries"]:
        why = Counter((m["last_mission"] or {}).get("reason") or "?" for m in r["maintenance_recoveries"])
        lines.append(f"  drones found in maintenance and put back: {len(r['maintenance_recoveries'])} "
                     f"({'; '.join(f'{k} x{v}' for k, v in why.most_common())})")
    lines.append(f"  targets (0 lost, 0 ghosts, 0 unresolved): {'met' if r['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
