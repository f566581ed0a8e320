"""The pilot-control benchmark runs end to end on a small fleet and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_control_small_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "bench", "control", "--json", "--drones", "20", "--missions", "3",
         "--window", "20", "--speedup", "5", "--think", "1", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["benchmark"] == "control" and r["date"] and {"cpu", "cores", "python"} <= set(r["machine"])
    assert r["fleet"]["in_air"] == 3, "every accepted drone reached its scene"
    assert r["commands"] >= 6 and r["acknowledged"] == r["commands"], (r["refused"], r["refusal_samples"])
    assert r["server_errors"] == 0 and r["drones_lost"] == {}, r["refusal_samples"]
    assert set(r["by_kind"]) == {"fly_to", "altitude", "orbit", "hold", "gimbal", "roi"}
    assert sum(k["acknowledged"] for k in r["by_kind"].values()) == r["acknowledged"]
    a, h = r["acked_ms"], r["http_ms"]
    assert a["n"] == r["acknowledged"] and 0 < a["p50"] <= a["max"]
    assert 0 < h["p50"] and h["p50"] >= a["p50"], "the HTTP round trip includes the vehicle's acknowledgement"
    assert r["targets_judged"] >= 1 and r["targets_reached"] >= 1
    assert r["reached_share"] == pytest.approx(r["targets_reached"] / r["targets_judged"], abs=1e-3)
    assert r["telemetry_events"] > 0
    assert "command -> vehicle ack" in proc.stderr and "targets reached" in proc.stderr
