"""A simulated drone's video uplink: its cameras as WebRTC tracks, published to the controller.

Like a real drone's video link, it publishes once (one peer connection, one
video section per camera) and the controller relays to viewers. Signalling is
one HTTP request with the drone's own bearer token; it times out and is
retried with backoff. Frames are rendered off the event loop (in a thread),
paced at the configured rate from the drone's live pose.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import httpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from sitl.camera_render import CameraPose, Intrinsics, ThermalSource, render_thermal, render_visible

log = logging.getLogger(__name__)

VIDEO_CLOCK_HZ = 90_000
SIGNALLING_TIMEOUT_S = 10.0
SIGNALLING_ATTEMPTS = 4


@dataclass(frozen=True)
class CameraSetup:
    kind: str  # "visible" or "thermal"
    intrinsics: Intrinsics
    fps: float = 15.0
    #: Thermal only: fixed display span in °C (None: automatic gain).
    span_c: tuple[float, float] | None = None


class CameraTrack(MediaStreamTrack):
    """Renders frames from `pose_fn()` at a steady rate; the renderer runs in a worker thread."""

    kind = "video"

    def __init__(
        self,
        drone_id: str,
        setup: CameraSetup,
        pose_fn: Callable[[], CameraPose | None],
        origin: tuple[float, float],
        sources_fn: Callable[[], list[ThermalSource]] = lambda: [],
    ) -> None:
        super().__init__()
        self.drone_id = drone_id
        self.setup = setup
        self.pose_fn = pose_fn
        self.origin = origin
        self.sources_fn = sources_fn
        self._start: float | None = None
        self._next = 0
        self.frames = 0

    def _render(self, pose: CameraPose, capture_time: float) -> av.VideoFrame:
        cam = self.setup.intrinsics
        if self.setup.kind == "thermal":
            display, _ = render_thermal(pose, cam, self.origin, self.sources_fn(), span_c=self.setup.span_c)
            return av.VideoFrame.from_ndarray(display, format="gray")
        return av.VideoFrame.from_ndarray(
            render_visible(pose, cam, self.origin, self.drone_id, capture_time), format="rgb24"
        )

    async def recv(self) -> av.VideoFrame:
        period = 1.0 / self.setup.fps
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._next * period
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -5 * period:  # fell behind (slow machine): skip ahead instead of bursting
            self._next = int((time.monotonic() - self._start) / period)
        pose = self.pose_fn() or CameraPose(self.origin[0], self.origin[1], 1.0, 0.0)
        capture_time = time.time()
        frame = await asyncio.get_running_loop().run_in_executor(None, self._render, pose, capture_time)
        frame.pts = int(self._next * period * VIDEO_CLOCK_HZ)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_HZ)
        self._next += 1
        self.frames += 1
        return frame


class VideoPublisher:
    def __init__(self, drone_id: str, controller_url: str, token: str, tracks: dict[str, MediaStreamTrack]) -> None:
        self.drone_id = drone_id
        self.url = f"{controller_url.rstrip('/')}/api/v1/video/publish/{drone_id}"
        self.token = token
        self.tracks = tracks
        self.pc: RTCPeerConnection | None = None

    async def start(self) -> None:
        """Publish, retrying the signalling exchange with backoff; raises after the last attempt."""
        delay = 0.5
        for attempt in range(1, SIGNALLING_ATTEMPTS + 1):
            try:
                await self._connect()
                return
            except (httpx.HTTPError, asyncio.TimeoutError, PublishRefused) as exc:
                await self.stop()
                if isinstance(exc, PublishRefused) and not exc.retryable:
                    raise
                if attempt == SIGNALLING_ATTEMPTS:
                    raise
                log.info("%s: video publish attempt %d failed (%s); retrying in %.1f s", self.drone_id, attempt, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2

    async def _connect(self) -> None:
        pc = RTCPeerConnection()
        self.pc = pc
        vp8 = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in ("video/vp8", "video/rtx")]
        for track in self.tracks.values():
            transceiver = pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(vp8)
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer", "kinds": list(self.tracks)}
        async with httpx.AsyncClient(timeout=SIGNALLING_TIMEOUT_S) as client:
            r = await client.post(self.url, json=body, headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code != 200:
            raise PublishRefused(r.status_code, r.text[:300])
        await pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
        log.info("%s: publishing %s", self.drone_id, ", ".join(self.tracks))

    async def stop(self) -> None:
        if self.pc is not None:
            pc, self.pc = self.pc, None
            await pc.close()


class PublishRefused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"controller refused the video offer: HTTP {status}: {text}")
        self.status = status
        self.retryable = status >= 500 or status == 429
