"""Encoded frames for the evidence tests: a short clip encoded once (VP8 or H.264), as the relay would carry it."""

from __future__ import annotations

import functools
import time
from fractions import Fraction

import av
import numpy as np

from controller.video.encoded_frames import EncodedFrame, is_keyframe

FPS = 15


@functools.cache
def clip(codec: str = "VP8", n: int = 45, width: int = 160, height: int = 120, gop: int = 15) -> tuple[bytes, ...]:
    cc = av.CodecContext.create("libvpx" if codec == "VP8" else "libx264", "w")
    cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
    cc.time_base = Fraction(1, FPS)
    cc.framerate = FPS
    cc.gop_size = gop
    if codec == "H264":
        cc.options = {"preset": "ultrafast", "tune": "zerolatency", "bf": "0"}
    out: list[bytes] = []
    for i in range(n):
        img = np.zeros((height, width, 3), np.uint8)
        img[:, (i * 4) % width:(i * 4) % width + 8] = 255
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out += [bytes(p) for p in cc.encode(frame)]
    out += [bytes(p) for p in cc.encode(None)]
    return tuple(out)


def frames(codec: str = "VP8", n: int = 45, start_ts: int = 0, capture0: float | None = None) -> list[EncodedFrame]:
    """n frames at FPS; capture times from capture0 (None: unknown) and received now."""
    data = clip(codec, max(n, 15))
    step = 90_000 // FPS
    now = time.monotonic()
    return [
        EncodedFrame(
            data=data[i % len(data)], rtp_ts=start_ts + i * step, keyframe=is_keyframe(codec, data[i % len(data)]),
            capture_time=None if capture0 is None else capture0 + i / FPS, received=now,
        )
        for i in range(n)
    ]


def count_frames(path) -> tuple[int, int]:  # noqa: ANN001
    """(packets demuxed, frames decoded) of a segment file: the file plays."""
    with av.open(str(path)) as c:
        packets = sum(1 for p in c.demux(video=0) if p.size)
    with av.open(str(path)) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    return packets, decoded
