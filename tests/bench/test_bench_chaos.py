"""The chaos benchmark, small: the controller killed (SIGKILL and SIGTERM) with drones flying, restarted; nothing lost.

A real `dronefleet serve` and a real `dronefleet sim` (subprocesses), a live call
stream, pilots and a commander driving the API. The controller is killed once
with SIGKILL and once with SIGTERM, at moments with missions under way, and
after each restart its state must match the simulated vehicles (no ghosts),
every acknowledged call must still be there, and at the end every mission must
have ended. Also run on PostgreSQL (skips where the server binaries are missing).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

SMALL = [
    "--restarts", "2", "--drones", "6", "--speedup", "8", "--seed", "11", "--warmup", "8", "--call-interval", "4",
    "--moments", "on_scene,accept", "--moment-timeout", "30", "--reconcile-window", "8",
    "--max-downtime", "8", "--drain-timeout", "90",
]


def _chaos(*extra: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "bench", "chaos", "--json", *SMALL, *extra],
        capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout)
    assert "targets (0 lost, 0 ghosts, 0 unresolved)" in proc.stderr
    return result


def _check(r: dict) -> None:
    details = json.dumps(
        {k: r[k] for k in ("lost_calls", "lost_ack_details", "ghost_details", "unresolved_missions", "controller_crashes")},
        indent=1,
    )[:6000]
    assert r["restarts"]["done"] == 2
    assert r["restarts"]["sigkill"] == 1 and r["restarts"]["sigterm"] == 1
    assert r["calls"]["acknowledged"] > 0 and r["commands_acknowledged"]["accept"] > 0
    assert r["lost"] == 0, details
    assert r["lost_acks"] == 0, details
    assert r["ghosts"] == 0, details
    assert r["unresolved"] == 0, details
    assert r["controller_crashes"] == [], details
    assert r["reconcile_time_s"]["n"] == 2 and 0 <= r["reconcile_time_s"]["max"] < 15
    assert r["meets_target"]


def test_bench_chaos_small_sqlite() -> None:
    r = _chaos()
    assert r["parameters"]["database"] == "sqlite"
    _check(r)


def test_bench_chaos_small_postgresql(postgres) -> None:  # noqa: ANN001 - the session fixture in conftest
    r = _chaos("--database-url", postgres.create_database("chaos"))
    assert r["parameters"]["database"] == "postgresql"
    _check(r)
