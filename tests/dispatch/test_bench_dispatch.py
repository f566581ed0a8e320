"""Smoke test of `dronefleet bench dispatch --quick`: runs, is reproducible, and the bound really bounds."""

from __future__ import annotations

import argparse

from controller.bench import dispatch_stream


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    dispatch_stream.add_arguments(parser)
    args = parser.parse_args(["--quick", "--stations-scale", "1", "--config-dir", "configs"])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_quick_bench_runs_and_the_bound_bounds() -> None:
    r = dispatch_stream.run(_args())
    assert r["calls"] > 20 and r["burst_calls"] > 0
    for name in ("greedy_v1", "engine"):
        assert r[name]["decision_latency_ms"]["n"] > 0
        assert r[name]["grade_weighted_mean_s"] >= r["lower_bound"]["grade_weighted_mean_s"] - 1e-6
    assert set(r["engine"]["within"]) == {"1min", "3min", "5min"}
    # The engine plans with the benchmark's shared physics, so none of its offers is refused.
    assert r["engine"]["refused_offers"] == 0
    assert "loadavg_1m_at_end" in r
    assert "engine_vs_greedy_weighted_mean_pct" in r["comparison"]
    assert dispatch_stream.summarize(r)


def test_stream_is_seeded() -> None:
    import numpy as np

    from controller.config import load_config
    from controller.dispatch.engine import DispatchEngine

    cfg = load_config("configs")
    eng = DispatchEngine.from_config(cfg)
    a = dispatch_stream.make_stream(cfg, eng, np.random.default_rng(5), 2, 40, 2, 6)
    b = dispatch_stream.make_stream(cfg, eng, np.random.default_rng(5), 2, 40, 2, 6)
    c = dispatch_stream.make_stream(cfg, eng, np.random.default_rng(6), 2, 40, 2, 6)
    assert a == b and a != c
