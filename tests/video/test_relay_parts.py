"""The relay's parts in isolation: marker-bit frame completion, keyframe gating and requests, capture clock."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from controller.video.aiortc_hooks import MarkerJitterBuffer
from controller.video.capture_clock import CaptureClock, ntp_to_unix
from controller.video.encoded_frames import EncodedFrame, h264_is_keyframe, vp8_is_keyframe
from controller.video.feed import MAX_BACKLOG, Feed


def packet(seq: int, ts: int, data: bytes, marker: bool) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    p._data = data  # type: ignore[attr-defined]  # aiortc stores the depayloaded bytes here
    return p


def test_frame_completes_on_the_marker_bit_not_on_the_next_frame() -> None:
    jb = MarkerJitterBuffer(capacity=128, is_video=True)
    assert jb.add(packet(1, 9000, b"ab", False))[1] is None
    _, frame = jb.add(packet(2, 9000, b"cd", True))
    assert frame is not None and frame.data == b"abcd" and frame.timestamp == 9000
    # without a marker (lost last packet) it falls back to completing on the next timestamp, like aiortc
    assert jb.add(packet(3, 18000, b"ef", False))[1] is None
    _, frame = jb.add(packet(4, 27000, b"gh", True))
    assert frame is not None and frame.timestamp == 18000


def frame(key: bool, ts: int = 0) -> EncodedFrame:
    return EncodedFrame(b"\x00" if key else b"\x01", ts, key, None, 0.0)


def test_viewer_starts_at_a_keyframe_and_keeps_asking_for_one() -> None:
    requests: list[int] = []
    feed = Feed("D", "visible", "VP8", lambda: requests.append(1))
    track = feed.subscribe()
    assert len(requests) == 1
    feed._last_request = 0.0  # noqa: SLF001 - let the rate limit pass
    feed.push(frame(False))
    assert track.dropped == 1 and len(requests) == 2, "a waiting viewer asks again"
    feed.push(frame(True))
    feed.push(frame(False))
    assert track._queue.qsize() == 2  # noqa: SLF001


def test_a_viewer_that_falls_behind_resyncs_at_the_next_keyframe() -> None:
    feed = Feed("D", "visible", "VP8", lambda: None)
    track = feed.subscribe()
    feed.push(frame(True))
    for _ in range(MAX_BACKLOG + 5):
        feed.push(frame(False))
    assert track._queue.qsize() < MAX_BACKLOG  # noqa: SLF001
    assert not track._synced  # noqa: SLF001


def test_keyframe_detection() -> None:
    assert vp8_is_keyframe(bytes([0x10, 0x02])) and not vp8_is_keyframe(bytes([0x11]))
    assert h264_is_keyframe(b"\x00\x00\x00\x01\x67\x42") and h264_is_keyframe(b"\x00\x00\x01\x65\x88")
    assert not h264_is_keyframe(b"\x00\x00\x00\x01\x41\x9a")


def test_capture_clock_from_sender_reports() -> None:
    clock = CaptureClock()
    assert clock.capture_time(1000) is None
    ntp = ((1_700_000_000 + 2_208_988_800) << 32) | (1 << 31)  # 0.5 s fraction
    assert ntp_to_unix(ntp) == 1_700_000_000.5
    clock.observe_sender_report(ntp, 90_000)
    assert clock.capture_time(90_000 + 45_000) == 1_700_000_001.0
    assert clock.capture_time(90_000 - 9_000) == 1_700_000_000.4
    clock.observe_sender_report(ntp, 0xFFFFFF00)  # RTP timestamps wrap
    assert abs(clock.capture_time(0x100) - (1_700_000_000.5 + 0x200 / 90_000)) < 1e-9


def test_a_sender_report_with_no_wall_clock_yet_is_not_a_time() -> None:
    # aiortc's sender reports before its first frame carry NTP 0 (RFC 3550 6.4.1: "no notion of wallclock")
    clock = CaptureClock()
    clock.observe_sender_report(0, 0)
    assert clock.capture_time(90_000) is None
    ntp = (1_700_000_000 + 2_208_988_800) << 32
    clock.observe_sender_report(ntp, 90_000)
    clock.observe_sender_report(0, 0)  # nor does one replace a real pairing
    assert clock.capture_time(180_000) == 1_700_000_001.0
