"""The recording benchmark runs (small) and reports CPU per recorded stream, drops and latency on vs off."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_bench_recording_small_run() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "controller.cli", "bench", "recording", "--json", "--streams", "3", "--duration", "2",
         "--rounds", "1", "--width", "320", "--height", "240", "--segment-s", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["benchmark"] == "recording" and r["date"] and {"cpu", "cores", "python"} <= set(r["machine"])
    assert "CPU: off" in proc.stderr and "relay latency" in proc.stderr
    rec = r["recorder"]
    assert rec["frames_dropped"] == 0 and rec["write_errors"] == 0 and rec["frames_written"] > 0
    assert rec["frames_in_segments"] == rec["frames_written"] == rec["frames_in_manifests"]
    assert rec["segments"] >= 3
    assert set(r["latency_ms"]) == {"off_p50", "on_p50", "off_p99", "on_p99", "added_p50", "added_p99"}
    assert len(r["windows"]["off"]) == len(r["windows"]["on"]) == 1 and r["cpu_pct_per_recorded_stream"] is not None
