"""Encoded video frames as the relay handles them, and how to tell a keyframe from the bytes."""

from __future__ import annotations

from dataclasses import dataclass

#: RTP video clock.
VIDEO_CLOCK_HZ = 90_000


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    data: bytes
    #: RTP timestamp relative to the publisher's first frame, 90 kHz.
    rtp_ts: int
    keyframe: bool
    #: Wall-clock capture time (Unix seconds) when the publisher's sender reports allow it, else None.
    capture_time: float | None
    #: Monotonic time the relay received it.
    received: float


def vp8_is_keyframe(data: bytes) -> bool:
    """VP8 frame tag, RFC 6386 section 9.1: bit 0 of the first byte is 0 for a key frame."""
    return len(data) > 0 and (data[0] & 0x01) == 0


def h264_is_keyframe(data: bytes) -> bool:
    """An Annex-B access unit with an IDR slice (5) or a sequence parameter set (7)."""
    i, n = 0, len(data)
    while i + 3 < n:
        if data[i] == 0 and data[i + 1] == 0 and (data[i + 2] == 1 or (data[i + 2] == 0 and i + 3 < n and data[i + 3] == 1)):
            start = i + 3 if data[i + 2] == 1 else i + 4
            if start < n and (data[start] & 0x1F) in (5, 7):
                return True
            i = start
        else:
            i += 1
    return False


def is_keyframe(codec_name: str, data: bytes) -> bool:
    name = codec_name.upper()
    if name == "VP8":
        return vp8_is_keyframe(data)
    if name == "H264":
        return h264_is_keyframe(data)
    raise ValueError(f"the relay does not handle {codec_name}")
