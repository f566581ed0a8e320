"""`dronefleet bench vision`: person detection on labelled thermal frames (HIT-UAV layout), and its speed.

Each frame is run through `ThermalDetector` with the pose its file name implies
(altitude, camera angle; `vision.hitu_dataset`). A detection finds a person if
its centre lies inside the person's box, one to one (`vision.evaluation`).
Reported: precision, recall, F1 overall, per altitude band and per day/night
flag, false alarms per frame and what they lie on, and detector frames per
second on one core (the thread pinned to one CPU, cv2.setNumThreads(1);
detection only: JPEG decoding and the one-time model loading excluded), with
the time of a fixed Python loop before and after, to show how fast the machine
itself ran meanwhile.

The score model was fitted on the train split (`vision.tuning`); run this on
val or test. HIT-UAV's persons mostly stand or walk, so the lying-person
scoring branch (on by default for searches) is off here unless `--lying`. The
light flag in each file name selects the day or night score model (a deployment
knows it from the clock); `--light-unknown` uses the model for any light.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np

from vision.detector import DetectorParams, ThermalDetector
from vision.evaluation import Accumulator, match_frame
from vision.hitu_dataset import HitUavDataset, hit_uav_camera, hit_uav_pose

DEFAULT_ROOT = "/work/shared/datasets/hit-uav"
BANDS = ((0.0, 80.0), (80.0, 110.0), (110.0, 1e9))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", default=f"{DEFAULT_ROOT}/val", help="folder of frames")
    parser.add_argument("--annotations", default=f"{DEFAULT_ROOT}/annotations/val.json", help="COCO-like JSON")
    parser.add_argument("--min-score", type=float, default=None, help="override DetectorParams.min_score")
    parser.add_argument("--lying", action="store_true", help="also score candidates as lying persons")
    parser.add_argument("--light-unknown", action="store_true",
                        help="score every frame with the 'any light' model instead of the day/night one its name gives")
    parser.add_argument("--limit", type=int, default=0, help="only the first N frames (0 = all)")


def _band(alt: float) -> str:
    for lo, hi in BANDS:
        if lo <= alt < hi:
            return f"{lo:.0f}-{hi:.0f} m" if hi < 1e8 else f">={lo:.0f} m"
    return "?"


@contextmanager
def _one_core() -> Iterator[int | None]:
    """Pin this thread to one CPU (the last it may use) with OpenCV single-threaded, and restore both after.

    Pinned, the figure is what one core gives, without migrations between cores blurring it."""
    threads = cv2.getNumThreads()
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cv2.setNumThreads(1)
    try:
        if before:
            os.sched_setaffinity(0, {max(before)})
        yield max(before) if before else None
    finally:
        if before:
            os.sched_setaffinity(0, before)
        cv2.setNumThreads(threads)


#: Steps of the reference loop (about 0.13 s at this VM's full speed).
REFERENCE_STEPS = 2_000_000


def reference_loop_ms(steps: int = REFERENCE_STEPS) -> float:
    """Time of a fixed pure-Python loop: how fast the machine runs right now, to read a frames/s figure by.

    Shared and virtual machines change speed from minute to minute; the same detector gives very different
    frames/s when this number doubles."""
    t0 = time.perf_counter()
    total = 0
    for k in range(steps):
        total += k
    return round((time.perf_counter() - t0) * 1000.0, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with _one_core() as cpu:
        before = reference_loop_ms()
        result = _run(args)
        after = reference_loop_ms()
    result["speed"]["pinned_cpu"] = cpu
    result["machine"]["reference_loop_ms"] = {"before": before, "after": after, "steps": REFERENCE_STEPS}
    return result


def _run(args: argparse.Namespace) -> dict[str, Any]:
    ds = HitUavDataset(args.images, args.annotations)
    samples = ds.samples[: args.limit] if args.limit else ds.samples
    extra = {} if args.min_score is None else {"min_score": args.min_score}
    params = DetectorParams(score_lying=args.lying, **extra)
    lights = ("any",) if getattr(args, "light_unknown", False) else ("day", "night")
    detectors = {light: ThermalDetector(DetectorParams(score_lying=args.lying, light=light, **extra))
                 for light in lights}
    camera = hit_uav_camera()
    if samples:  # read the models and warm the caches once, outside the timing: the figure is the steady rate
        first = samples[0]
        for detector in detectors.values():
            detector.detect(first.load_gray(), camera, hit_uav_pose(first.flight))
    overall, bands, light = Accumulator(), {}, {}
    busy = 0.0
    for k, s in enumerate(samples):
        img = s.load_gray()
        if img.shape != (camera.height, camera.width):
            raise ValueError(f"{s.path}: {img.shape[1]}x{img.shape[0]}, expected {camera.width}x{camera.height}")
        pose = hit_uav_pose(s.flight)
        t0 = time.perf_counter()
        detector = detectors["any"] if "any" in detectors else detectors["night" if s.flight.night else "day"]
        dets = detector.detect(img, camera, pose)
        busy += time.perf_counter() - t0
        centres = np.array([d.centre for d in dets]).reshape(-1, 2)
        scores = np.array([d.score for d in dets])
        m = match_frame(centres, scores, s.boxes)
        overall.add(m, scores)
        bands.setdefault(_band(s.flight.altitude_m), Accumulator()).add(m, scores)
        light.setdefault("night" if s.flight.night else "day", Accumulator()).add(m, scores)
        if (k + 1) % 50 == 0:
            print(f"vision bench: {k + 1}/{len(samples)} frames", file=sys.stderr, flush=True)
    return {
        "dataset": {"images": str(args.images), "annotations": str(args.annotations), "frames": len(samples)},
        "camera_assumption": "HIT-UAV intrinsics unknown: 640x512, 25 deg HFOV assumed (vision.hitu_dataset)",
        "params": {"min_score": params.min_score, "score_lying": params.score_lying,
                   "light": "any" if "any" in detectors else "day/night model from the file name's light flag"},
        "person": overall.counts().as_dict(),
        "false_alarms_on": overall.false_alarm_sources(),
        "by_altitude": {b: a.counts().as_dict() for b, a in sorted(bands.items())},
        "by_light": {b: a.counts().as_dict() for b, a in sorted(light.items())},
        "recall_at_precision_0.7_if_thresholded_here": overall.recall_at_precision(0.7),
        "speed": {"frames_per_s_one_core": round(len(samples) / busy, 1) if busy else 0.0,
                  "ms_per_frame": round(1000 * busy / max(len(samples), 1), 3), "resolution": "640x512",
                  "cv2_threads": 1, "includes": "detection + georeferencing + thumbnails, not JPEG decoding nor the one-time model "
                              "loading (one untimed warm-up frame per model)"},
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "loadavg_1m": round(os.getloadavg()[0], 2)},
    }


def summarize(result: dict[str, Any]) -> str:
    p = result["person"]
    lines = [f"vision: {result['dataset']['frames']} frames, persons P {p['precision']:.3f} R {p['recall']:.3f} "
             f"F1 {p['f1']:.3f}, {p['false_alarms_per_frame']:.2f} false alarms/frame, "
             f"{result['speed']['frames_per_s_one_core']:.0f} frames/s on one core"]
    ref = result["machine"].get("reference_loop_ms")
    if ref:
        lines.append(f"  machine speed: reference loop {ref['before']:.0f} ms before, {ref['after']:.0f} ms after "
                     "(the larger, the slower the machine ran)")
    for group in ("by_altitude", "by_light"):
        for name, c in result[group].items():
            lines.append(f"  {name:>10s}: P {c['precision']:.3f} R {c['recall']:.3f} F1 {c['f1']:.3f} "
                         f"({c['frames']} frames, {c['fp']} false alarms)")
    lines.append(f"  false alarms lie on: {result['false_alarms_on']}")
    return "\n".join(lines)
