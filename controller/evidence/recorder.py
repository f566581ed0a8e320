"""The recorder: encoded frames in, segment files out, in one writer thread that never holds up the relay.

The relay calls `Recorder.offer_frame` on the event loop for every frame of a recorded feed; it only appends to
a queue. A bounded number of frames may wait (`queue_frames`, all feeds together): beyond it a frame is dropped
and counted, and that recording skips ahead to the next keyframe (a decoder can do nothing with the frames in
between). The writer thread remuxes each frame into its recording's current segment with PyAV (no decoding, no
encoding): VP8 into WebM, H.264 into Matroska or fragmented MP4. A segment closes at the first keyframe after
`segment_minutes`; then its SHA-256 goes into the recording's manifest, which is re-signed.

A write error (disk full, I/O error) abandons the segment being written (its partial file is removed to free
space), notes a gap in the manifest, tells the service (an alert, a metric) and retries at a keyframe after
`ERROR_RETRY_S`. The live relay is not touched by any of it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import av

from controller.evidence import manifest as mf
from controller.evidence.keys import SigningKey
from controller.video.encoded_frames import VIDEO_CLOCK_HZ, EncodedFrame

log = logging.getLogger(__name__)

#: Capture times before this (2020-01-01) are a drone clock that was never set, not a date: receive time is used.
EARLIEST_CAPTURE_UNIX = 1_577_836_800.0

#: After a write error, the next segment is tried at the first keyframe this many seconds later.
ERROR_RETRY_S = 10.0
_TB = Fraction(1, VIDEO_CLOCK_HZ)
#: One millisecond in 90 kHz ticks: Matroska stores milliseconds, so timestamps must differ by at least this.
_MS = VIDEO_CLOCK_HZ // 1000

Opener = Callable[[Path], BinaryIO]


def open_file(path: Path) -> BinaryIO:
    return path.open("w+b")


def iso(t: datetime | float) -> str:
    if isinstance(t, float | int):
        t = datetime.fromtimestamp(t, UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def container_for(codec: str, h264_container: str) -> str:
    name = codec.upper()
    if name == "VP8":
        return "webm"
    if name == "H264":
        return h264_container
    raise ValueError(f"cannot record {codec}")


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF
    return None


def h264_parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex-B access unit, in Annex-B form (the container's codec private)."""
    out = []
    starts = []
    i = 0
    while (j := data.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j + 3)
        i = j + 3
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        nal = data[start:end]
        if n + 1 < len(starts):
            nal = nal.rstrip(b"\x00")
        if nal and (nal[0] & 0x1F) in (7, 8):
            out.append(b"\x00\x00\x00\x01" + nal)
    return b"".join(out)


@dataclass(frozen=True)
class RecordingMeta:
    id: str
    drone_id: str
    kind: str
    codec: str
    started_at: datetime
    station_id: str | None = None
    mission_id: str | None = None
    incident_id: str | None = None

    def view(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = iso(self.started_at)
        return d


class SegmentWriter:
    """One segment file being written (writer thread only)."""

    def __init__(self, path: Path, codec: str, container: str, opener: Opener, first: EncodedFrame) -> None:
        self.path = path
        self.file = opener(path)
        try:
            options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"} if container == "mp4" else {}
            fmt = {"webm": "webm", "mkv": "matroska", "mp4": "mp4"}[container]
            self.out = av.open(self.file, "w", format=fmt, options=options)
            self.stream = self.out.add_stream(codec.lower())
            self.stream.time_base = _TB
            if codec.upper() == "VP8":
                size = vp8_size(first.data)
                if size:
                    self.stream.width, self.stream.height = size
            else:
                extradata = h264_parameter_sets(first.data)
                if extradata:
                    self.stream.codec_context.extradata = extradata
        except BaseException:
            self.file.close()
            raise
        self.base = first.rtp_ts
        self.last_pts = -_MS
        self.frames = 0
        self.keyframes = 0

    def write(self, frame: EncodedFrame) -> None:
        pts = (frame.rtp_ts - self.base) & 0xFFFFFFFF
        if pts < self.last_pts + _MS:  # repeated or reordered timestamp: keep the container's order
            pts = self.last_pts + _MS
        self.last_pts = pts
        packet = av.Packet(frame.data)
        packet.pts = packet.dts = pts
        packet.time_base = _TB
        packet.stream = self.stream
        packet.is_keyframe = frame.keyframe
        self.out.mux(packet)
        self.frames += 1
        self.keyframes += frame.keyframe

    @property
    def duration_s(self) -> float:
        return max(0, self.last_pts) / VIDEO_CLOCK_HZ

    def close(self) -> None:
        try:
            self.out.close()
            self.file.flush()
            with contextlib.suppress(OSError, AttributeError, ValueError):
                os.fsync(self.file.fileno())
        finally:
            self.file.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.out.close()
        with contextlib.suppress(Exception):
            self.file.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


@dataclass
class RecordingState:
    """What the writer thread keeps for one recording."""

    meta: RecordingMeta
    directory: Path
    container: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    segment: SegmentWriter | None = None
    sidecar: BinaryIO | None = None
    sidecar_lines: int = 0
    seg_start_wall: float = 0.0
    seg_end_wall: float = 0.0
    seg_poses: int = 0
    seg_marks: int = 0
    frames: int = 0
    bytes: int = 0
    write_errors: int = 0
    lost: int = 0
    retry_at: float = 0.0
    failing: bool = False
    last_pose: dict[str, Any] | None = None
    status: str = "recording"
    #: Set by the loop side (frames dropped at the queue); read when the manifest is signed.
    dropped: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.meta.id, "status": self.status, "segments": len(self.segments), "bytes": self.bytes,
            "frames": self.frames, "dropped": self.dropped, "write_errors": self.write_errors,
            "lost": self.lost, "gaps": list(self.gaps),
        }


@dataclass
class Handle:
    """The loop side of one recording: what the relay's listener needs without touching the writer's state."""

    meta: RecordingMeta
    dropped: int = 0
    #: A frame was dropped: skip to the next keyframe.
    resync: bool = False
    #: The writer wants a keyframe (a segment is due, or it is waiting to start one).
    want_keyframe: bool = True
    state: RecordingState | None = None


@dataclass
class Stats:
    frames_offered: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    frames_lost_to_errors: int = 0
    segments_closed: int = 0
    bytes_written: int = 0
    write_errors: int = 0
    recordings_started: int = 0
    recordings_finished: int = 0
    writer_cpu_s: float = 0.0


class Recorder:
    """The writer thread and its queue. `notify(kind, summary)` is called in the writer thread on
    "segment", "error" and "finished" (the service hands it to the event loop)."""

    def __init__(
        self, root: Path, key: SigningKey, *, segment_s: float = 300.0, h264_container: str = "mkv",
        queue_frames: int = 3000, opener: Opener = open_file,
        notify: Callable[[str, RecordingMeta, dict[str, Any]], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.key = key
        self.segment_s = segment_s
        self.h264_container = h264_container
        self.queue_frames = queue_frames
        self.opener = opener
        self.notify = notify
        self.wall_clock = wall_clock
        self.stats = Stats()
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # pending frames = enqueued (loop thread only) - dequeued (writer only): no lock needed
        self._enqueued = 0
        self._dequeued = 0
        self._thread: threading.Thread | None = None
        self._states: dict[str, RecordingState] = {}

    # --- loop side -------------------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="evidence-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish every recording still open and end the thread (blocking: run it off the loop)."""
        if self._thread is None:
            return
        self._q.put(("stop",))
        self._thread.join(timeout)
        self._thread = None

    @property
    def pending(self) -> int:
        return self._enqueued - self._dequeued

    def begin(self, meta: RecordingMeta) -> Handle:
        handle = Handle(meta)
        self.stats.recordings_started += 1
        self._q.put(("begin", handle))
        return handle

    def offer_frame(self, handle: Handle, frame: EncodedFrame) -> None:
        """Called by the feed for every frame (event loop): never blocks, never raises."""
        self.stats.frames_offered += 1
        if handle.resync and not frame.keyframe:
            handle.dropped += 1
            self.stats.frames_dropped += 1
            return
        if self._enqueued - self._dequeued >= self.queue_frames:
            handle.dropped += 1
            handle.resync = True
            self.stats.frames_dropped += 1
            return
        handle.resync = False
        self._enqueued += 1
        self._q.put(("frame", handle, frame))

    def pose(self, handle: Handle, sample: dict[str, Any]) -> None:
        self._q.put(("side", handle, {"type": "pose", **sample}))

    def mark(self, handle: Handle, mark: dict[str, Any]) -> None:
        self._q.put(("side", handle, {"type": "mark", **mark}))

    def end(self, handle: Handle) -> None:
        self._q.put(("end", handle))

    def sync(self) -> threading.Event:
        """An event set once everything queued before it has been handled (tests, benchmarks)."""
        done = threading.Event()
        self._q.put(("sync", done))
        return done

    # --- writer thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        cpu0 = time.thread_time()
        while True:
            item = self._q.get()
            op = item[0]
            try:
                if op == "frame":
                    self._dequeued += 1
                    self._frame(item[1], item[2])
                elif op == "side":
                    self._side(item[1], item[2])
                elif op == "begin":
                    self._begin(item[1])
                elif op == "end":
                    self._end(item[1])
                elif op == "sync":
                    item[1].set()
                elif op == "stop":
                    for state in list(self._states.values()):
                        self._finish(state)
                    break
            except Exception:  # a bug here must not end the thread: log it and go on
                log.exception("evidence: writer failed on %s", op)
            finally:
                self.stats.writer_cpu_s = time.thread_time() - cpu0

    def _begin(self, handle: Handle) -> None:
        meta = handle.meta
        directory = self.root / meta.id
        state = RecordingState(meta, directory, container_for(meta.codec, self.h264_container))
        handle.state = state
        self._states[meta.id] = state
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._sign(state)
        except OSError as exc:
            self._fail(state, exc, "cannot create the recording")

    def _wall(self, frame: EncodedFrame) -> float:
        """The frame's capture time from the drone's clock, unless it has none or one that cannot be a date of
        this system (before EARLIEST_CAPTURE_UNIX, e.g. an NTP time of zero): then when it reached the relay."""
        if frame.capture_time is not None and frame.capture_time >= EARLIEST_CAPTURE_UNIX:
            return frame.capture_time
        return self.wall_clock() - (time.monotonic() - frame.received)

    def _frame(self, handle: Handle, frame: EncodedFrame) -> None:
        state = handle.state
        if state is None or state.status != "recording":
            return
        state.dropped = handle.dropped
        wall = self._wall(frame)
        if state.segment is None:
            if state.failing and wall < state.retry_at:
                state.lost += 1
                self.stats.frames_lost_to_errors += 1
                return
            if not frame.keyframe:
                handle.want_keyframe = True
                if state.failing:
                    state.lost += 1
                    self.stats.frames_lost_to_errors += 1
                return
            if not self._open_segment(state, frame, wall):
                return
            handle.want_keyframe = False
        elif wall - state.seg_start_wall >= self.segment_s:
            if frame.keyframe:
                if not self._close_segment(state):
                    return
                if not self._open_segment(state, frame, wall):
                    return
                handle.want_keyframe = False
            else:
                handle.want_keyframe = True
        try:
            assert state.segment is not None
            state.segment.write(frame)
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._fail(state, exc, f"writing segment {len(state.segments) + 1}")
            return
        state.seg_end_wall = wall
        state.frames += 1
        self.stats.frames_written += 1

    def _seg_name(self, state: RecordingState, ext: str) -> str:
        return f"seg-{len(state.segments) + 1:05d}.{ext}"

    def _open_segment(self, state: RecordingState, frame: EncodedFrame, wall: float) -> bool:
        path = state.directory / self._seg_name(state, state.container)
        try:
            state.segment = SegmentWriter(path, state.meta.codec, state.container, self.opener, frame)
            state.sidecar = self.opener(state.directory / self._seg_name(state, "jsonl"))
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._fail(state, exc, f"opening segment {len(state.segments) + 1}")
            return False
        if state.failing:
            state.failing = False
            log.info("evidence: %s writing again (segment %d)", state.meta.id, len(state.segments) + 1)
        state.seg_start_wall = state.seg_end_wall = wall
        state.seg_poses = state.seg_marks = 0
        if state.last_pose is not None:  # where the drone was as the segment starts
            self._write_side(state, {**state.last_pose, "t": wall, "carried": True})
        return True

    def _write_side(self, state: RecordingState, record: dict[str, Any]) -> None:
        assert state.sidecar is not None
        state.sidecar.write((json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n").encode())
        if record["type"] == "pose":
            state.seg_poses += 1
        else:
            state.seg_marks += 1

    def _side(self, handle: Handle, record: dict[str, Any]) -> None:
        state = handle.state
        if state is None or state.status != "recording":
            return
        if record["type"] == "pose":
            state.last_pose = record
        if state.segment is None or state.sidecar is None:
            return
        try:
            self._write_side(state, record)
        except (OSError, ValueError) as exc:
            self._fail(state, exc, f"writing the telemetry of segment {len(state.segments) + 1}")

    def _close_segment(self, state: RecordingState) -> bool:
        seg, side = state.segment, state.sidecar
        if seg is None or side is None:
            return True
        index = len(state.segments) + 1
        try:
            seg.close()
            side.flush()
            with contextlib.suppress(OSError, AttributeError, ValueError):
                os.fsync(side.fileno())
            side.close()
            digest, size = mf.sha256_file(seg.path)
            side_path = state.directory / f"seg-{index:05d}.jsonl"
            side_digest, side_size = mf.sha256_file(side_path)
        except (OSError, av.FFmpegError, ValueError) as exc:
            self._fail(state, exc, f"closing segment {index}")
            return False
        state.segment = state.sidecar = None
        state.segments.append({
            "index": index, "file": seg.path.name, "sidecar": side_path.name, "codec": state.meta.codec.upper(),
            "container": state.container, "start": iso(state.seg_start_wall), "end": iso(state.seg_end_wall),
            "start_unix": round(state.seg_start_wall, 6), "duration_s": round(seg.duration_s, 3),
            "frames": seg.frames, "keyframes": seg.keyframes, "bytes": size, "sha256": digest,
            "sidecar_bytes": side_size, "sidecar_sha256": side_digest, "poses": state.seg_poses, "marks": state.seg_marks,
        })
        state.bytes += size + side_size
        self.stats.segments_closed += 1
        self.stats.bytes_written += size + side_size
        try:
            self._sign(state)
        except OSError as exc:
            self._fail(state, exc, f"signing the manifest after segment {index}")
            return False
        self._notify("segment", state)
        return True

    def _sign(self, state: RecordingState) -> None:
        doc = {
            "format": mf.FORMAT,
            "recording": state.meta.view(),
            "status": "complete" if state.status != "recording" else "recording",
            "signed_at": iso(self.wall_clock()),
            "segments": state.segments,
            "gaps": state.gaps,
            "frames": state.frames,
            "dropped": state.dropped,
            "lost_to_write_errors": state.lost,
            "write_errors": state.write_errors,
        }
        mf.write_signed(state.directory, doc, self.key)

    def _fail(self, state: RecordingState, exc: BaseException, doing: str) -> None:
        reason = f"{doing}: {exc}"
        log.warning("evidence: %s: %s", state.meta.id, reason)
        if state.segment is not None:
            state.segment.abort()
            state.segment = None
        if state.sidecar is not None:
            with contextlib.suppress(Exception):
                state.sidecar.close()
            with contextlib.suppress(OSError):
                (state.directory / f"seg-{len(state.segments) + 1:05d}.jsonl").unlink()
            state.sidecar = None
        first = not state.failing
        state.failing = True
        state.write_errors += 1
        self.stats.write_errors += 1
        state.retry_at = self.wall_clock() + ERROR_RETRY_S
        if first:
            state.gaps.append({"at": iso(self.wall_clock()), "reason": reason[:300]})
        self._notify("error", state, reason=reason, first=first)

    def _end(self, handle: Handle) -> None:
        state = handle.state
        if state is not None:
            state.dropped = handle.dropped
            self._finish(state)

    def _finish(self, state: RecordingState) -> None:
        if state.status != "recording":
            return
        self._close_segment(state)
        state.status = "complete"
        try:
            self._sign(state)
        except OSError as exc:
            state.status = "recording"  # so _fail records it, then it is complete all the same
            self._fail(state, exc, "signing the final manifest")
            state.status = "complete"
        self._states.pop(state.meta.id, None)
        self.stats.recordings_finished += 1
        self._notify("finished", state)

    def _notify(self, kind: str, state: RecordingState, **extra: Any) -> None:
        if self.notify is not None:
            try:
                self.notify(kind, state.meta, {**state.summary(), **extra})
            except Exception:
                log.exception("evidence: notify %s failed", kind)
