"""`dronefleet bench video`: relaying drone video to many viewers, forwarding vs decode/re-encode.

Three processes on loopback: the relay (`dronefleet serve`, video only), and a
load process with the publishers (simulated cameras, 640x512 at 15 fps, each
frame's capture time in a barcode) and the viewers (see video_load.py). The
relay's CPU is measured from its own process.

- latency: capture to decoded at the viewer, via the relay, minus the same
  measured publisher-to-viewer direct (no relay): what the relay adds;
- delivered ratio: frames each viewer received / frames its publisher sent;
- first frame: a new viewer's wait from its offer to its first frame;
- relay CPU per forwarded stream;
- the largest publishers x viewers sustained at 15 fps with >= 99 % delivered,
  found by doubling the viewers;
all for the forwarding relay, and the same run with the decode/re-encode relay.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import psutil

from controller.bench.common import ControllerProcess, free_port, machine, percentiles, progress, stamp
from controller.config import load_config

COMMANDER = "bench-commander-token-000000001"
DELIVERED_OK = 0.99


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--viewers", type=int, default=25, help="viewers per publisher in the main measurement")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per measurement window")
    parser.add_argument("--max-streams", type=int, default=200, help="stop the capacity sweep at this many forwarded streams")
    parser.add_argument("--skip-reencode", action="store_true")


class LoadProcess:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.bench.video_load"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open("/tmp/video_load.log", "w"), text=True,
        )
        self.call_raw(spec)

    def call_raw(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the load process died")
        return json.loads(line)

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        return self.call_raw({"op": op, **kw})

    def close(self) -> None:
        try:
            self.call("close")
        finally:
            self.proc.terminate()
            self.proc.wait(10)


def _window(load: LoadProcess, relay: psutil.Process | None, seconds: float) -> tuple[dict[str, Any], float | None]:
    c0 = sum(relay.cpu_times()[:2]) if relay else 0.0
    t0 = time.monotonic()
    m = load.call("measure", seconds=seconds)
    cpu = (sum(relay.cpu_times()[:2]) - c0) / (time.monotonic() - t0) * 100 if relay else None
    return m, cpu


def _summary(m: dict[str, Any], cpu: float | None, streams: int) -> dict[str, Any]:
    return {
        "streams": streams,
        "fps_published": round(m["fps_published"], 1),
        "delivered_mean": round(sum(m["delivered"]) / len(m["delivered"]), 4) if m["delivered"] else None,
        "delivered_min": round(min(m["delivered"]), 4) if m["delivered"] else None,
        "latency_ms": percentiles(m["latency_s"], 1000),
        "first_frame_s": percentiles(m["first_frame_s"]),
        "relay_cpu_pct": round(cpu, 1) if cpu is not None else None,
        "relay_cpu_pct_per_stream": round(cpu / streams, 3) if cpu and streams else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config()
    drones = [d.id for s in cfg.stations for d in s.drones][: args.publishers]
    drone_tokens = {d: f"bench-drone-{i:04d}-token-0000000" for i, d in enumerate(drones)}
    tokens: dict[str, Any] = {COMMANDER: {"role": "commander", "name": "bench"}}
    tokens.update({t: {"role": "drone", "name": f"d{i}", "drone_id": d} for i, (d, t) in enumerate(drone_tokens.items())})
    result: dict[str, Any] = {
        "benchmark": "video", "date": stamp(), "machine": machine(), "publishers": args.publishers,
        "viewers_per_publisher": args.viewers, "resolution": "640x512", "fps": 15,
    }

    for mode in ("forward", "reencode"):
        if mode == "reencode" and args.skip_reencode:
            continue
        with ControllerProcess(tokens, free_port(), ["--fleet", "none", "--video-mode", mode]) as relay:
            load = LoadProcess({"url": relay.url, "token": COMMANDER, "drone_tokens": drone_tokens})
            proc = psutil.Process(relay.pid)
            try:
                load.call("publish", count=args.publishers)
                # The same number of direct publisher -> viewer pairs, measured in the same window
                # (same machine load): the baseline the relay's latency is compared with.
                load.call("direct_baseline", count=args.publishers)
                load.call("watch", per_publisher=args.viewers)
                time.sleep(3)
                m, cpu = _window(load, proc, args.duration)
                summary = _summary(m, cpu, args.publishers * args.viewers)
                direct = percentiles(m["direct_latency_s"], 1000)
                summary["direct_latency_ms"] = direct
                summary["added_latency_ms"] = {
                    k: round(summary["latency_ms"][k] - direct[k], 1) for k in ("p50", "p95") if k in direct and k in summary["latency_ms"]
                }
                result[mode] = summary
                progress(f"{mode}: {summary['streams']} streams, delivered {summary['delivered_mean']}, latency p95 {summary['latency_ms'].get('p95')} ms, relay CPU {summary['relay_cpu_pct']} %")
                if mode == "forward":
                    result["capacity"] = _sweep(load, proc, args)
            finally:
                load.close()

    fwd = result["forward"]
    result["target"] = {"added_latency_p95_ms_below": 50, "first_frame_s_below": 1.0, "streams_on_one_core_at_least": 100}
    sustained = result["capacity"]["largest_sustained_streams"]
    result["meets_target"] = bool(
        fwd["added_latency_ms"].get("p95", 1e9) < 50 and fwd["first_frame_s"].get("max", 1e9) < 1.0 and sustained >= 100
    )
    return result


def _sweep(load: LoadProcess, proc: psutil.Process, args: argparse.Namespace) -> dict[str, Any]:
    """Double the viewers until delivery drops below 99 % (or --max-streams)."""
    steps = []
    per = args.viewers
    best = 0
    while True:
        per *= 2
        streams = per * args.publishers
        if streams > args.max_streams:
            break
        load.call("watch", per_publisher=per)
        time.sleep(3)
        m, cpu = _window(load, proc, args.duration)
        s = _summary(m, cpu, streams)
        steps.append(s)
        progress(f"  sweep: {streams} streams, delivered min {s['delivered_min']}, relay CPU {s['relay_cpu_pct']} %")
        if s["delivered_min"] is None or s["delivered_min"] < DELIVERED_OK:
            break
        best = streams
    return {"steps": steps, "largest_sustained_streams": max(best, args.publishers * args.viewers)}


def summarize(r: dict[str, Any]) -> str:
    lines = [f"video: {r['publishers']} publishers x {r['viewers_per_publisher']} viewers, 640x512 at 15 fps"]
    for mode in ("forward", "reencode"):
        if mode in r:
            s = r[mode]
            lines.append(
                f"  {mode:8s}: delivered {s['delivered_mean']}, latency p50 {s['latency_ms'].get('p50')} ms "
                f"(direct {s['direct_latency_ms'].get('p50')} ms), added p50 {s['added_latency_ms'].get('p50')} ms "
                f"p95 {s['added_latency_ms'].get('p95')} ms, first frame max {s['first_frame_s'].get('max')} s, "
                f"relay CPU {s['relay_cpu_pct']} % ({s['relay_cpu_pct_per_stream']} % per stream)"
            )
    lines.append(f"  largest sustained (>= 99 % delivered): {r['capacity']['largest_sustained_streams']} forwarded streams")
    lines.append(f"  targets: {'met' if r['meets_target'] else 'NOT met'}")
    return "\n".join(lines)
