"""The API benchmark runs end to end on a small workload and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_api_small_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "bench", "api", "--json", "--incidents", "20", "--preload", "20",
         "--warmup", "2", "--concurrency", "2"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["stations"] == 140 and result["pilot_sockets"] == 140
    assert result["open_incidents_at_end"] == 20, "measured incidents were cancelled, preloaded ones stay open"
    for phase in ("latency", "throughput"):
        p = result[phase]
        assert p["incidents_measured"] + p["merged_skipped"] == 20
        assert 0 < p["post_to_offer_ms"]["p50"] <= p["post_to_offer_ms"]["max"]
    assert "POST -> offer" in proc.stderr
