"""Pull a camera's RTSP stream into the relay without transcoding.

PyAV (FFmpeg) does the RTSP session and the RTP depacketisation; this only
demuxes: each H.264 access unit becomes an `EncodedFrame` (Annex B, SPS/PPS in
front of every IDR, 90 kHz timestamps, keyframe flag) handed to the event loop.
Decoding happens elsewhere and only where pixels are needed (the hotspot
detector's FeedDecoder listens to the feed like a viewer).

The blocking demux runs in a thread of its own; the event loop only
supervises it. A session that ends (server gone, read timeout, stream error)
is opened again after a capped exponential backoff with jitter; a session
that streamed resets the backoff. Opening and reading both time out
(`RtspOptions`), so a dead URI is reported in the log instead of hanging.
Timestamps stay monotonic across reconnections (viewers keep their tracks).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import av

from controller.video.encoded_frames import VIDEO_CLOCK_HZ, EncodedFrame
from controller.video.ingest.h264 import ParameterSets, is_annexb, length_prefixed_to_annexb, parse_extradata

log = logging.getLogger(__name__)

#: Codecs the relay can forward from an RTSP camera (WebRTC viewers decode these). H.265 cameras must be set to H.264.
FORWARDABLE = {"h264": "H264"}
#: A captured time further than this from the arrival time is a camera clock not worth believing.
PLAUSIBLE_CAPTURE_S = 10.0


@dataclass(frozen=True)
class RtspOptions:
    #: RTP over the RTSP TCP connection (interleaved) or over UDP ports.
    transport: Literal["tcp", "udp"] = "tcp"
    #: Connect, DESCRIBE/SETUP/PLAY and stream probing must finish within this.
    open_timeout_s: float = 5.0
    #: No packet for this long ends the session (then it is opened again).
    read_timeout_s: float = 5.0
    #: Backoff between attempts: first delay, doubling up to the cap; each delay is jittered down by up to half.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    #: How long FFmpeg may look at the stream before it starts handing out packets.
    analyze_s: float = 0.5

    def ffmpeg_options(self) -> dict[str, str]:
        return {
            "rtsp_transport": self.transport,
            "analyzeduration": str(int(self.analyze_s * 1e6)),
            "probesize": "65536",
            "fflags": "nobuffer",
            # FFmpeg's own socket timeout (microseconds), besides PyAV's interrupt timeouts.
            "timeout": str(int(max(self.open_timeout_s, self.read_timeout_s) * 1e6)),
        }


def redact(uri: str) -> str:
    """The URI without a password, for logs."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class IngestError(Exception):
    """The stream can be reached but not forwarded (e.g. a codec the relay does not handle)."""


@dataclass
class IngestStats:
    state: str = "idle"  # connecting, streaming, waiting, stopped
    sessions: int = 0
    reconnects: int = 0
    frames: int = 0
    keyframes: int = 0
    skipped_before_keyframe: int = 0
    parameter_sets_inserted: int = 0
    last_error: str | None = None
    codec: str | None = None
    history: list[str] = field(default_factory=list)


class RtspIngest:
    """One camera stream: `start(push)` begins pulling, `push(frame)` is called on the event loop per access unit."""

    def __init__(self, uri: str, options: RtspOptions | None = None, name: str = "") -> None:
        self.uri = uri
        self.options = options or RtspOptions()
        self.name = name or redact(uri)
        self.stats = IngestStats()
        self._push: Callable[[EncodedFrame], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtsp-ingest")
        self._task: asyncio.Task[None] | None = None
        self._stop = threading.Event()
        self._wake = asyncio.Event()
        self._container: Any = None
        # Output timeline, kept across sessions: the next session continues after the last frame sent.
        self._last_ts: int | None = None
        self._last_at = 0.0
        self._rng = random.Random()

    # --- the hub's FrameSource interface --------------------------------------------------------

    @property
    def codec(self) -> str:
        return "H264"

    def start(self, push: Callable[[EncodedFrame], None]) -> None:
        self._push = push
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._supervise(), name=f"rtsp-{self.name}")

    def request_keyframe(self) -> None:
        """RTSP has no way to ask for one: a late viewer waits for the camera's next IDR (its GOP length)."""

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._abort_read()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.stats.state = "stopped"
        # The thread ends at its next interrupt check (within ~0.1 s); do not wait for it on the loop.
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- supervision (event loop) ---------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        opts = self.options
        while not self._stop.is_set():
            self.stats.state = "connecting"
            started = time.monotonic()
            frames_before = self.stats.frames
            try:
                why = await loop.run_in_executor(self._pool, self._session)
            except asyncio.CancelledError:
                self._abort_read()
                raise
            if self._stop.is_set():
                break
            if self.stats.frames > frames_before:
                attempt = 0  # it streamed: the next failure starts the backoff again
            delay = min(opts.backoff_max_s, opts.backoff_initial_s * (2**attempt))
            delay *= 1.0 - 0.5 * self._rng.random()
            attempt += 1
            self.stats.last_error = why
            self.stats.state = "waiting"
            self.stats.reconnects += 1
            self.stats.history = (self.stats.history + [why])[-10:]
            log.warning(
                "video ingest %s: %s (after %.1f s); reconnecting in %.1f s (attempt %d)",
                self.name, why, time.monotonic() - started, delay, attempt,
            )
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    def _abort_read(self) -> None:
        """Make a blocked open or read in the worker thread give up now (PyAV's interrupt timeout set to zero)."""
        container = self._container
        if container is not None:
            try:
                container.set_timeout(0.0)
            except Exception:  # noqa: BLE001 - already closed
                pass

    def _deliver(self, frame: EncodedFrame) -> None:
        if self._stop.is_set() or self._push is None:
            return
        self._push(frame)

    # --- one session (worker thread) -------------------------------------------------------------

    def _session(self) -> str:
        """Open, demux until the stream ends or fails; returns why it ended (for the log)."""
        opts = self.options
        self.stats.sessions += 1
        t0 = time.monotonic()
        try:
            container = av.open(
                self.uri, options=opts.ffmpeg_options(), timeout=(opts.open_timeout_s, opts.read_timeout_s)
            )
        except Exception as exc:  # noqa: BLE001 - every failure to open is logged and retried
            waited = time.monotonic() - t0
            if self._stop.is_set():
                return "stopped"
            if isinstance(exc, av.ExitError) or waited >= opts.open_timeout_s * 0.95:
                return f"cannot open {redact(self.uri)} over {opts.transport.upper()}: timed out after {waited:.1f} s"
            return f"cannot open {redact(self.uri)} over {opts.transport.upper()}: {_describe(exc)}"
        self._container = container
        if self._stop.is_set():
            self._abort_read()
        try:
            return self._demux(container)
        except IngestError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001
            if self._stop.is_set():
                return "stopped"
            if isinstance(exc, av.ExitError):
                return f"no packet from {redact(self.uri)} for {opts.read_timeout_s:g} s (read timed out)"
            return f"stream {redact(self.uri)} failed: {_describe(exc)}"
        finally:
            self._container = None
            try:
                container.close()
            except Exception:  # noqa: BLE001
                pass

    def _demux(self, container: Any) -> str:
        if not container.streams.video:
            raise IngestError(f"{redact(self.uri)} has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        self.stats.codec = codec
        if codec not in FORWARDABLE:
            raise IngestError(
                f"{redact(self.uri)} sends {codec}, which the relay cannot forward to browsers (set the camera to H.264)"
            )
        sps, pps, length_size = parse_extradata(bytes(stream.codec_context.extradata or b""))
        params = ParameterSets(sps, pps)
        to_90k = float(stream.time_base) * VIDEO_CLOCK_HZ if stream.time_base else 1.0
        rate = stream.average_rate or stream.guessed_rate
        frame_ticks = int(round(VIDEO_CLOCK_HZ / float(rate))) if rate else VIDEO_CLOCK_HZ // 30
        # Session timeline: rel = packet time - first, in 90 kHz; out = base + rel (base continues the last session).
        first: float | None = None
        rel_last: int | None = None
        base: int | None = None
        synced = False
        self.stats.state = "streaming"
        log.info(
            "video ingest %s: streaming %s over %s (%s, %dx%d)", self.name, redact(self.uri), self.options.transport.upper(),
            codec, stream.codec_context.width or 0, stream.codec_context.height or 0,
        )
        for packet in container.demux(stream):
            if self._stop.is_set():
                return "stopped"
            if packet.size == 0:
                continue
            now = time.monotonic()
            data = bytes(packet)
            if length_size is not None and not is_annexb(data):
                data = length_prefixed_to_annexb(data, length_size)
            data, idr = params.complete(data)
            if not synced:
                if not idr:
                    self.stats.skipped_before_keyframe += 1
                    continue
                synced = True
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                rel = 0 if rel_last is None else rel_last + frame_ticks
            else:
                ticks = pts * to_90k
                if first is None:
                    first = ticks - (0 if rel_last is None else rel_last + frame_ticks)
                rel = int(round(ticks - first))
                if rel_last is not None and rel <= rel_last:
                    rel = rel_last + 1  # never backwards (no B-frames are forwarded out of order)
            if base is None:
                if self._last_ts is None:
                    base = 0
                else:  # continue after the previous session, the gap in wall time later
                    base = self._last_ts + max(frame_ticks, int((now - self._last_at) * VIDEO_CLOCK_HZ))
            rel_last = rel
            ts = base + rel
            self._last_ts, self._last_at = ts, now
            capture = None
            realtime = container.start_time_realtime  # from the camera's RTCP sender reports, once one arrived
            if realtime is not None and packet.pts is not None:
                guess = realtime / 1e6 + float(packet.pts * stream.time_base)
                if abs(guess - time.time()) < PLAUSIBLE_CAPTURE_S:
                    capture = guess
            self.stats.frames += 1
            self.stats.keyframes += idr
            self.stats.parameter_sets_inserted = params.inserted
            frame = EncodedFrame(data=data, rtp_ts=ts, keyframe=idr, capture_time=capture, received=now)
            loop = self._loop
            if loop is None or loop.is_closed():
                return "stopped"
            loop.call_soon_threadsafe(self._deliver, frame)
        return f"{redact(self.uri)} ended the stream"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
