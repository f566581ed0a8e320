"""The recorder: playable segments with every frame pushed, sidecars, signed manifests, tampering caught,
write errors that leave the live relay alone, drops counted when the writer falls behind."""

from __future__ import annotations

import errno
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.evidence import manifest as mf
from controller.evidence import recorder as rec_mod
from controller.evidence.keys import SigningKey
from controller.evidence.recorder import Recorder, RecordingMeta
from controller.video.feed import Feed
from tests.evidence.frames import FPS, count_frames, frames

T0 = 1_790_000_000.0


def key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate(), "test")


def meta(rec_id: str = "REC-1", codec: str = "VP8") -> RecordingMeta:
    return RecordingMeta(rec_id, "ST-01-D1", "visible", codec, datetime.fromtimestamp(T0, UTC), "ST-01", "M-1", "INC-1")


def run(recorder: Recorder) -> None:
    assert recorder.sync().wait(20)


@pytest.fixture
def events() -> list[tuple[str, dict[str, Any]]]:
    return []


def make(tmp_path: Path, events: list, **kw: Any) -> Recorder:
    r = Recorder(tmp_path / "ev", key(), notify=lambda kind, m, s: events.append((kind, s)), wall_clock=lambda: T0, **kw)
    r.start()
    return r


def test_vp8_segments_play_with_every_frame_and_the_manifest_verifies(tmp_path: Path, events: list) -> None:
    r = make(tmp_path, events, segment_s=1.0)
    h = r.begin(meta())
    for i, f in enumerate(frames("VP8", 45, capture0=T0)):
        if i % 5 == 0:
            r.pose(h, {"t": T0 + i / FPS, "lat": 32.0 + i * 1e-5, "lon": 118.8, "alt_m": 60.0, "heading_deg": 90.0,
                       "gimbal_pitch_deg": -45.0})
        if i == 20:
            r.mark(h, {"t": T0 + i / FPS, "hotspot_id": "HS-1", "lat": 32.001, "lon": 118.8, "event": "hotspot.raised"})
        r.offer_frame(h, f)
    r.end(h)
    run(r)
    r.stop()
    d = tmp_path / "ev" / "REC-1"
    doc = json.loads((d / "manifest.json").read_bytes())
    assert doc["status"] == "complete" and doc["frames"] == 45 and doc["dropped"] == 0
    assert [s["frames"] for s in doc["segments"]] == [15, 15, 15]  # a new segment at the keyframe after 1 s
    for seg in doc["segments"]:
        assert count_frames(d / seg["file"]) == (seg["frames"], seg["frames"])
        assert seg["file"].endswith(".webm")
    side = [json.loads(line) for line in (d / "seg-00002.jsonl").read_text().splitlines()]
    poses = [x for x in side if x["type"] == "pose"]
    assert poses[0]["carried"] and poses[0]["lat"] == pytest.approx(32.0 + 15e-5)  # last known position at the start
    assert {"t", "lat", "lon", "alt_m", "heading_deg", "gimbal_pitch_deg"} <= set(poses[1])
    assert [x["hotspot_id"] for x in side if x["type"] == "mark"] == ["HS-1"]
    assert mf.verify_path(d).ok
    assert [k for k, _ in events] == ["segment", "segment", "segment", "finished"]


def test_a_capture_clock_never_set_does_not_date_the_evidence(tmp_path: Path, events: list) -> None:
    # frames stamped from an NTP time of zero (1900), as aiortc's first sender reports once made them
    r = make(tmp_path, events, segment_s=60.0)
    h = r.begin(meta())
    for f in frames("VP8", 15, capture0=-2_208_988_800.0):
        r.offer_frame(h, f)
    r.end(h)
    run(r)
    r.stop()
    doc = json.loads((tmp_path / "ev" / "REC-1" / "manifest.json").read_bytes())
    assert abs(doc["segments"][0]["start_unix"] - T0) < 60  # our clock's time of receipt, not 1900
    assert doc["segments"][0]["start"].startswith(datetime.fromtimestamp(T0, UTC).strftime("%Y-%m-%d"))


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_h264_is_remuxed_not_reencoded(tmp_path: Path, events: list, container: str) -> None:
    r = make(tmp_path, events, h264_container=container)
    h = r.begin(meta(codec="H264"))
    pushed = frames("H264", 30, capture0=T0)
    for f in pushed:
        r.offer_frame(h, f)
    r.end(h)
    r.stop()
    d = tmp_path / "ev" / "REC-1"
    (seg,) = json.loads((d / "manifest.json").read_bytes())["segments"]
    assert seg["file"] == f"seg-00001.{container}"
    assert count_frames(d / seg["file"]) == (30, 30)
    import av

    with av.open(str(d / seg["file"])) as c:  # the drone's own bytes: the packets are the pushed frames
        first = next(p for p in c.demux(video=0) if p.size)
        idr = pushed[0].data[pushed[0].data.rfind(b"\x00\x00\x01") + 3:]  # the last slice NAL, byte for byte
        assert idr in bytes(first)


def _recorded(tmp_path: Path, events: list) -> Path:
    r = make(tmp_path, events, segment_s=1.0)
    h = r.begin(meta())
    for f in frames("VP8", 45, capture0=T0):
        r.offer_frame(h, f)
    r.end(h)
    r.stop()
    return tmp_path / "ev" / "REC-1"


def test_a_flipped_byte_in_a_segment_is_named(tmp_path: Path, events: list) -> None:
    d = _recorded(tmp_path, events)
    seg = d / "seg-00002.webm"
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))
    report = mf.verify_path(d)
    assert not report.ok
    assert any("seg-00002.webm was altered" in p for p in report.problems), report.problems


def test_manifest_edits_missing_and_added_segments_are_caught(tmp_path: Path, events: list) -> None:
    d = _recorded(tmp_path, events)
    text = (d / "manifest.json").read_text()
    (d / "manifest.json").write_text(text.replace('"frames": 45', '"frames": 44'))
    assert any("signature does not match" in p for p in mf.verify_path(d).problems)
    (d / "manifest.json").write_text(text)
    assert mf.verify_path(d).ok
    (d / "seg-00003.webm").rename(tmp_path / "away.webm")
    assert any("seg-00003.webm is missing" in p for p in mf.verify_path(d).problems)
    (tmp_path / "away.webm").rename(d / "seg-00003.webm")
    (d / "seg-00004.webm").write_bytes(b"spliced in")
    assert any("seg-00004.webm is not in the signed manifest" in p for p in mf.verify_path(d).problems)


def test_a_pinned_key_rejects_another_signer(tmp_path: Path, events: list) -> None:
    d = _recorded(tmp_path, events)
    other = Ed25519PrivateKey.generate().public_key()
    problems = mf.verify_path(d, pinned=other).problems
    assert any("not the pinned key" in p for p in problems) and any("signature does not match" in p for p in problems)


class FullDisk:
    """A file that fails like a full disk once `budget` bytes have been written to files of this kind."""

    budget = 10**9

    def __init__(self, path: Path) -> None:
        self.f = path.open("w+b")

    def write(self, b: bytes) -> int:
        if FullDisk.budget < len(b):
            raise OSError(errno.ENOSPC, "No space left on device")
        FullDisk.budget -= len(b)
        return self.f.write(b)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def test_disk_full_raises_an_error_keeps_the_relay_and_recovers(tmp_path: Path, events: list, monkeypatch) -> None:
    monkeypatch.setattr(rec_mod, "ERROR_RETRY_S", 0.5)
    clock = [T0]
    r = Recorder(tmp_path / "ev", key(), segment_s=1.0, opener=FullDisk,
                 notify=lambda kind, m, s: events.append((kind, s)), wall_clock=lambda: clock[0])
    r.start()
    feed = Feed("ST-01-D1", "visible", "VP8", lambda: None)
    viewer = feed.subscribe()
    h = r.begin(meta())
    feed.add_listener(lambda f: r.offer_frame(h, f))
    pushed = frames("VP8", 90, capture0=T0)
    FullDisk.budget = 10**9
    for i, f in enumerate(pushed):
        if i == 20:
            run(r)
            FullDisk.budget = 0  # the disk fills during segment 2
        if i == 40:
            run(r)
            FullDisk.budget = 10**9  # space again (the retry waits ERROR_RETRY_S from the failure)
        clock[0] = T0 + i / FPS
        feed.push(f)
    r.end(h)
    run(r)
    r.stop()
    assert viewer._queue.qsize() + viewer.dropped == 90 and feed.frames == 90  # the live relay got every frame
    kinds = [k for k, _ in events]
    assert "error" in kinds and kinds[-1] == "finished"
    errors = [s for k, s in events if k == "error"]
    assert errors[0]["first"] and "No space left on device" in errors[0]["reason"]
    d = tmp_path / "ev" / "REC-1"
    doc = json.loads((d / "manifest.json").read_bytes())
    assert doc["write_errors"] >= 1 and doc["gaps"] and "No space left" in doc["gaps"][0]["reason"]
    assert doc["segments"][0]["frames"] == 15 and len(doc["segments"]) >= 2  # written again after the retry
    assert doc["frames"] + doc["lost_to_write_errors"] + 15 >= 90 - 15  # what was not written is accounted for
    assert r.stats.write_errors == doc["write_errors"]
    for seg in doc["segments"]:
        assert count_frames(d / seg["file"]) == (seg["frames"], seg["frames"])
    assert mf.verify_path(d).ok


def test_a_writer_that_falls_behind_drops_frames_counts_them_and_resumes_at_a_keyframe(tmp_path: Path, events: list) -> None:
    r = Recorder(tmp_path / "ev", key(), queue_frames=5, notify=lambda kind, m, s: events.append((kind, s)),
                 wall_clock=lambda: T0)
    h = r.begin(meta())  # the thread is not running yet: nothing is taken off the queue
    pushed = frames("VP8", 45, capture0=T0)
    t = time.perf_counter()
    for f in pushed:
        r.offer_frame(h, f)
    assert (time.perf_counter() - t) / 45 < 0.001  # never blocks the loop
    assert r.stats.frames_dropped == h.dropped == 40 and r.pending == 5
    r.start()
    r.end(h)
    r.stop()
    doc = json.loads((tmp_path / "ev" / "REC-1" / "manifest.json").read_bytes())
    assert doc["frames"] == 5 and doc["dropped"] == 40
