"""`dronefleet bench vision` contract on the five bundled HIT-UAV frames: arguments, JSON result, summary."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from vision import bench

DATA = Path(__file__).resolve().parents[1] / "data" / "hit-uav"


def test_bench_runs_on_any_folder_laid_out_like_hit_uav() -> None:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--images", str(DATA / "images"), "--annotations", str(DATA / "annotations.json")])
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    result = bench.run(args)
    json.dumps(result)  # serialisable
    if cpus:  # timed on one CPU, and the caller gets its CPUs back
        assert result["speed"]["pinned_cpu"] in cpus and os.sched_getaffinity(0) == cpus
    p = result["person"]
    assert result["dataset"]["frames"] == 5 and p["tp"] + p["fn"] == 57
    assert 0.0 <= p["precision"] <= 1.0 and p["recall"] >= 0.5
    assert sum(c["frames"] for c in result["by_light"].values()) == 5
    assert sum(c["tp"] for c in result["by_altitude"].values()) == p["tp"]
    assert result["speed"]["frames_per_s_one_core"] > 0
    assert result["machine"]["reference_loop_ms"]["before"] > 0 and "machine speed" in bench.summarize(result)
    assert "P " in bench.summarize(result)
