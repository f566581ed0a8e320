"""Benchmark: CPU the simulator process needs for N copters streaming telemetry (`dronefleet bench sim`).

The simulator runs as `dronefleet sim` in its own process (as in production);
a separate client process connects to every copter, asks for every stream at
`--rate` Hz (REQUEST_DATA_STREAM, MAV_DATA_STREAM_ALL) and sends a ground-station
heartbeat per copter per second, counting the MAVLink frames that arrive. After a
warm-up, the simulator's CPU time (user + system, from /proc via psutil) is
sampled over `--seconds`. Reported: CPU % of one core, message rates, and
whether simulated time kept up with the requested speed-up.

Contract: `add_arguments`, `run`, `summarize`; JSON on stdout with --json (by
the CLI), progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from typing import Any

import psutil

from sitl.fleet import free_base_port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drones", type=int, default=140, help="copters (default: the deployment's 140)")
    parser.add_argument("--speedup", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=4, help="stream rate asked for (Hz, every stream group)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window (wall)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--base-port", type=int, default=0, help="TCP port of instance 0 (0: find a free range)")


def _client(ports: list[int], rate: int, seconds: float, out: Any) -> None:
    """Child process: be a ground station for every copter; report frames and bytes received per second."""
    from pymavlink.dialects.v20 import ardupilotmega as mav

    async def main() -> None:
        enc = mav.MAVLink(None, srcSystem=255, srcComponent=190)
        counts = {"frames": 0, "bytes": 0}
        writers = []

        async def one(port: int) -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writers.append(writer)
            sysid = (port - ports[0]) // 10 + 1
            writer.write(enc.request_data_stream_encode(sysid, 1, mav.MAV_DATA_STREAM_ALL, rate, 1).pack(enc))
            buf = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                counts["bytes"] += len(data)
                buf += data
                i = 0
                n = len(buf)
                while i + 12 <= n:  # MAVLink 2 framing: 0xFD, len, flags...; count frames without decoding them
                    if buf[i] != 0xFD:
                        i += 1
                        continue
                    size = 12 + buf[i + 1] + (13 if buf[i + 2] & 1 else 0)
                    if i + size > n:
                        break
                    counts["frames"] += 1
                    i += size
                buf = buf[i:]

        async def heartbeats() -> None:
            hb = enc.heartbeat_encode(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 0).pack(enc)
            while True:
                for w in writers:
                    w.write(hb)
                await asyncio.sleep(1.0)

        tasks = [asyncio.create_task(one(p)) for p in ports]
        hb_task = asyncio.create_task(heartbeats())
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(1.0)
            samples.append((time.monotonic(), counts["frames"], counts["bytes"]))
        out.put(samples)
        hb_task.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, hb_task, return_exceptions=True)

    asyncio.run(main())


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = args.base_port or free_base_port(args.drones)
    control = free_base_port(1) + 5
    cmd = [
        sys.executable, "-m", "sitl.cli", "--home", "32.0603,118.7969,10,0", "--drones", str(args.drones),
        "--speedup", f"{args.speedup:g}", "--warm", "--base-port", str(base), "--control-port", str(control), "--log-level", "warning",
    ]
    print(f"starting {args.drones} copters on ports {base}..{base + 10 * (args.drones - 1)}", file=sys.stderr)
    sim = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    try:
        line = sim.stdout.readline() if sim.stdout else ""
        if not json.loads(line or "{}").get("ready"):
            raise RuntimeError("the simulator did not start")
        proc = psutil.Process(sim.pid)
        ports = [base + 10 * n for n in range(args.drones)]
        queue: Any = mp.get_context("spawn").Queue()
        client = mp.get_context("spawn").Process(target=_client, args=(ports, args.rate, args.warmup + args.seconds + 1.0, queue))
        client.start()
        time.sleep(args.warmup)
        status0 = _status(control)
        cpu0, wall0 = proc.cpu_times(), time.monotonic()
        print(f"measuring for {args.seconds:g} s ...", file=sys.stderr)
        time.sleep(args.seconds)
        cpu1, wall1 = proc.cpu_times(), time.monotonic()
        status1 = _status(control)
        samples = queue.get(timeout=30)
        client.join(10)
        rss = proc.memory_info().rss
    finally:
        sim.terminate()
        try:
            sim.wait(15)
        except subprocess.TimeoutExpired:
            sim.kill()
    busy = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    wall = wall1 - wall0
    window = [s for s in samples if s[0] >= samples[0][0] + args.warmup - 1.0]
    frames = (window[-1][1] - window[0][1]) / max(window[-1][0] - window[0][0], 1e-9) if len(window) > 1 else 0.0
    nbytes = (window[-1][2] - window[0][2]) / max(window[-1][0] - window[0][0], 1e-9) if len(window) > 1 else 0.0
    sim_rate = (status1["sim_time"] - status0["sim_time"]) / wall
    return {
        "drones": args.drones,
        "speedup": args.speedup,
        "stream_rate_hz": args.rate,
        "seconds": round(wall, 2),
        "cpu_percent_of_one_core": round(100.0 * busy / wall, 1),
        "cpu_cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "messages_per_second": round(frames),
        "messages_per_second_per_drone": round(frames / args.drones, 1),
        "bytes_per_second": round(nbytes),
        "achieved_speedup": round(sim_rate, 3),
        "overruns": status1["overruns"] - status0["overruns"],
        "rss_mb": round(rss / 2**20, 1),
    }


def _status(port: int) -> dict[str, Any]:
    from sitl.control import request

    return asyncio.run(request(port, {"cmd": "ping"}))


def summarize(result: dict[str, Any]) -> str:
    return (
        f"{result['drones']} copters at speedup {result['speedup']:g}, all streams at {result['stream_rate_hz']} Hz: "
        f"simulator CPU {result['cpu_percent_of_one_core']}% of one core over {result['seconds']} s "
        f"({result['messages_per_second']} msg/s, {result['messages_per_second_per_drone']} per copter; "
        f"achieved speedup {result['achieved_speedup']}, {result['overruns']} overruns; RSS {result['rss_mb']} MB; "
        f"load average {result['load_average_1m']} on {result['cpu_cores']} cores)"
    )


if __name__ == "__main__":
    _p = argparse.ArgumentParser(prog="python -m sitl.bench", description=__doc__.splitlines()[0])
    add_arguments(_p)
    _p.add_argument("--json", action="store_true")
    _args = _p.parse_args()
    _result = run(_args)
    print(summarize(_result), file=sys.stderr)
    if _args.json:
        print(json.dumps(_result, indent=2, sort_keys=True))
