"""`dronefleet bench recording`: N forwarded streams recorded at once, recording off and on side by side.

In one process: N feeds (the relay's `Feed`), each forwarded to one viewer track (`RelayTrack`, the track
aiortc's sender reads: a forwarded stream), fed with a real VP8 clip (640x480, 15 fps, ~1 Mbit/s, encoded
once at start) by one pacing task per feed. Windows alternate: recording off, recording on (the evidence
recorder attached to every feed exactly as the controller attaches it, writing segments to disk), and again.
What is measured, per window:

- CPU of the whole process (user + system) over the window; per recorded stream = (on - off) / N, in % of one
  core; the recorder's writer thread's own CPU as a cross-check;
- relay latency: from a frame's push into the feed to its `recv()` by the viewer track, p50/p99, on vs off;
- frames dropped by the recorder (queue full), frames written, and at the end every segment is opened with
  PyAV and its frames counted (equal to those written).

Not measured here: RTP packetisation and the network (the same with recording on or off; see `bench video`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.bench.common import machine, percentiles, progress, stamp
from controller.evidence.keys import SigningKey
from controller.evidence.recorder import Recorder, RecordingMeta
from controller.video.encoded_frames import EncodedFrame, is_keyframe
from controller.video.feed import Feed

TARGET_CPU_PCT_PER_STREAM = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=20, help="feeds, each forwarded to one viewer and recorded")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per window")
    parser.add_argument("--rounds", type=int, default=2, help="off/on window pairs")
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--bitrate", type=int, default=1_000_000, help="bits per second of the clip")
    parser.add_argument("--segment-s", type=float, default=5.0, help="segment length (short: segments close and are hashed and signed in the windows)")
    parser.add_argument("--dir", type=Path, default=None, help="where to record (default: a temporary directory on the same disk as /tmp)")


def clip(args: argparse.Namespace) -> list[bytes]:
    """Two seconds of moving noise-and-bars VP8 at the bitrate asked, encoded once."""
    cc = av.CodecContext.create("libvpx", "w")
    cc.width, cc.height, cc.pix_fmt = args.width, args.height, "yuv420p"
    cc.time_base = Fraction(1, args.fps)
    cc.framerate = args.fps
    cc.bit_rate = args.bitrate
    cc.gop_size = args.fps * 2
    cc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(7)
    base = rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
    out: list[bytes] = []
    for i in range(args.fps * 2):
        img = np.roll(base, i * 6, axis=1)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in cc.encode(frame)]
    out += [bytes(p) for p in cc.encode(None)]
    return out


class Stream:
    def __init__(self, i: int, data: list[bytes], fps: int) -> None:
        self.feed = Feed(f"BENCH-D{i:03d}", "visible", "VP8", lambda: None)
        self.track = self.feed.subscribe()
        self.data = data
        self.fps = fps
        self.n = 0
        self.sent_at: dict[int, float] = {}
        self.latency: list[float] = []
        self.received = 0

    async def push(self, offset: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(offset)
        period = 1 / self.fps
        next_at = time.monotonic()
        while not stop.is_set():
            data = self.data[self.n % len(self.data)]
            ts = self.n * (90_000 // self.fps)
            now = time.monotonic()
            self.sent_at[ts] = now
            self.feed.push(EncodedFrame(data, ts, is_keyframe("VP8", data), time.time(), now))
            self.n += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def watch(self) -> None:
        while True:
            packet = await self.track.recv()
            sent = self.sent_at.pop(packet.pts, None)
            if sent is not None:
                self.latency.append(time.monotonic() - sent)
            self.received += 1


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _window(streams: list[Stream], seconds: float) -> dict[str, Any]:
    for s in streams:
        s.latency.clear()
    sent0 = sum(s.n for s in streams)
    c0, t0 = _cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - t0
    cpu = (_cpu() - c0) / wall * 100
    lat = [x for s in streams for x in s.latency]
    return {"cpu_pct": round(cpu, 2), "frames_pushed": sum(s.n for s in streams) - sent0, "seconds": round(wall, 2),
            "latency_ms": percentiles(lat, 1000)}


async def _run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    data = clip(args)
    kbps = sum(len(d) for d in data) * 8 / (len(data) / args.fps) / 1000
    progress(f"recording bench: {args.streams} streams of {args.width}x{args.height} VP8 at {args.fps} fps (~{kbps:.0f} kbit/s), "
             f"{args.rounds} x (off {args.duration:g} s, on {args.duration:g} s)")
    key = SigningKey(Ed25519PrivateKey.generate(), "bench")
    recorder = Recorder(root, key, segment_s=args.segment_s, queue_frames=3000)
    recorder.start()
    streams = [Stream(i, data, args.fps) for i in range(args.streams)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.push(i / args.fps / args.streams, stop)) for i, s in enumerate(streams)]
    tasks += [asyncio.create_task(s.watch()) for s in streams]
    await asyncio.sleep(2.0)  # warm up
    windows: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    handles = []
    for r in range(args.rounds):
        windows["off"].append(await _window(streams, args.duration))
        progress(f"  round {r + 1} off: CPU {windows['off'][-1]['cpu_pct']} %, latency p50 {windows['off'][-1]['latency_ms'].get('p50')} ms")
        round_handles = []
        for s in streams:
            meta = RecordingMeta(f"BENCH-{r}-{s.feed.drone_id}", s.feed.drone_id, "visible", "VP8", datetime.now(UTC))
            h = recorder.begin(meta)

            def listener(frame: EncodedFrame, h=h, feed=s.feed) -> None:  # as EvidenceService.attach does
                recorder.offer_frame(h, frame)
                if h.want_keyframe:
                    feed.request_keyframe()

            s.feed.add_listener(listener)
            round_handles.append((s, h, listener))
        w0 = recorder.stats.writer_cpu_s
        on = await _window(streams, args.duration)
        on["writer_thread_cpu_pct"] = round((recorder.stats.writer_cpu_s - w0) / on["seconds"] * 100, 2)
        windows["on"].append(on)
        for s, h, listener in round_handles:
            s.feed.remove_listener(listener)
            recorder.end(h)
        handles += round_handles
        progress(f"  round {r + 1} on : CPU {on['cpu_pct']} % (writer thread {on['writer_thread_cpu_pct']} %), "
                 f"latency p50 {on['latency_ms'].get('p50')} ms, dropped so far {recorder.stats.frames_dropped}")
        await asyncio.get_running_loop().run_in_executor(None, lambda: recorder.sync().wait(60))
    stop.set()
    await asyncio.gather(*tasks[: len(streams)])
    for t in tasks[len(streams):]:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().run_in_executor(None, recorder.stop)

    # every segment written plays, with the frames the manifest says
    import json

    segments = counted = manifest_frames = 0
    for _, h, _ in handles:
        doc = json.loads((root / h.meta.id / "manifest.json").read_bytes())
        manifest_frames += doc["frames"]
        for seg in doc["segments"]:
            with av.open(str(root / h.meta.id / seg["file"])) as c:
                counted += sum(1 for p in c.demux(video=0) if p.size)
            segments += 1
    st = recorder.stats
    return _result(args, windows, kbps, {
        "frames_offered": st.frames_offered, "frames_written": st.frames_written, "frames_dropped": st.frames_dropped,
        "segments": segments, "frames_in_segments": counted, "frames_in_manifests": manifest_frames,
        "bytes_written": st.bytes_written, "write_errors": st.write_errors,
        # a recording starts at the feed's next keyframe (the controller asks the drone for one; this clip's
        # keyframes come every 2 s): frames before it are not recorded, and not counted as dropped
        "frames_before_first_keyframe": st.frames_offered - st.frames_written - st.frames_dropped,
    })


def _mean(windows: list[dict[str, Any]], key: str) -> float:
    return round(sum(w[key] for w in windows) / len(windows), 2)


def _lat(windows: list[dict[str, Any]], q: str) -> float:
    vals = [w["latency_ms"][q] for w in windows if q in w["latency_ms"]]
    return round(sum(vals) / len(vals), 3) if vals else float("nan")


def _result(args: argparse.Namespace, windows: dict[str, list], kbps: float, rec: dict[str, Any]) -> dict[str, Any]:
    off_cpu, on_cpu = _mean(windows["off"], "cpu_pct"), _mean(windows["on"], "cpu_pct")
    per_stream = round((on_cpu - off_cpu) / args.streams, 3)
    writer = round(_mean(windows["on"], "writer_thread_cpu_pct") / args.streams, 3)
    latency = {
        "off_p50": _lat(windows["off"], "p50"), "on_p50": _lat(windows["on"], "p50"),
        "off_p99": _lat(windows["off"], "p99"), "on_p99": _lat(windows["on"], "p99"),
    }
    latency["added_p50"] = round(latency["on_p50"] - latency["off_p50"], 3)
    latency["added_p99"] = round(latency["on_p99"] - latency["off_p99"], 3)
    result = {
        "benchmark": "recording", "date": stamp(), "machine": machine(), "streams": args.streams,
        "clip": {"codec": "VP8", "resolution": f"{args.width}x{args.height}", "fps": args.fps, "kbps": round(kbps)},
        "window_s": args.duration, "rounds": args.rounds, "segment_s": args.segment_s,
        "windows": windows,
        "cpu_pct": {"off": off_cpu, "on": on_cpu},
        "cpu_pct_per_recorded_stream": per_stream,
        "writer_thread_cpu_pct_per_stream": writer,
        "latency_ms": latency,
        "recorder": rec,
        "target": {"cpu_pct_per_recorded_stream_below": TARGET_CPU_PCT_PER_STREAM, "frames_dropped": 0},
    }
    result["meets_target"] = bool(
        per_stream < TARGET_CPU_PCT_PER_STREAM and rec["frames_dropped"] == 0
        and rec["frames_in_segments"] == rec["frames_written"] == rec["frames_in_manifests"]
    )
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    # as the controller runs (controller/runtime.py): worker threads give the event loop the GIL back sooner
    from controller.runtime import SWITCH_INTERVAL_S

    sys.setswitchinterval(SWITCH_INTERVAL_S)
    root = args.dir or Path(tempfile.mkdtemp(prefix="dronefleet-bench-recording-"))
    try:
        return asyncio.run(_run(args, root))
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


def summarize(r: dict[str, Any]) -> str:
    lat, rec = r["latency_ms"], r["recorder"]
    return "\n".join([
        f"recording: {r['streams']} forwarded streams ({r['clip']['resolution']} {r['clip']['codec']} {r['clip']['fps']} fps, "
        f"~{r['clip']['kbps']} kbit/s) recorded at once, {r['rounds']} x {r['window_s']:g} s windows off/on",
        f"  CPU: off {r['cpu_pct']['off']} %, on {r['cpu_pct']['on']} % -> {r['cpu_pct_per_recorded_stream']} % of a core per "
        f"recorded stream (writer thread {r['writer_thread_cpu_pct_per_stream']} %); target < {TARGET_CPU_PCT_PER_STREAM} %",
        f"  relay latency p50 off {lat['off_p50']} ms / on {lat['on_p50']} ms (added {lat['added_p50']} ms), "
        f"p99 off {lat['off_p99']} ms / on {lat['on_p99']} ms (added {lat['added_p99']} ms)",
        f"  frames: offered {rec['frames_offered']}, written {rec['frames_written']}, dropped {rec['frames_dropped']} "
        f"(before the first keyframe {rec['frames_before_first_keyframe']}), "
        f"in {rec['segments']} segments {rec['frames_in_segments']} (all playable), {rec['bytes_written'] / 1e6:.1f} MB",
        f"  targets: {'met' if r['meets_target'] else 'NOT met'}",
    ])
