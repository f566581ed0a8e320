"""WebRTC viewers for the video tests: an aiortc peer that watches a feed and reads the frames."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription

from sitl.camera_render import read_capture_time


@dataclass
class Viewer:
    pc: RTCPeerConnection
    viewer_id: str | None = None
    frames: int = 0
    latencies: list[float] = field(default_factory=list)
    first_frame_after: float | None = None
    sizes: set[tuple[int, int]] = field(default_factory=set)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


async def watch(base: str, token: str, drone_id: str, kind: str = "visible") -> tuple[Viewer | None, httpx.Response]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    viewer = Viewer(pc)
    started = time.monotonic()

    @pc.on("track")
    def on_track(track) -> None:  # noqa: ANN001
        async def pull() -> None:
            try:
                while True:
                    frame = await track.recv()
                    img = frame.to_ndarray(format="rgb24")
                    if viewer.first_frame_after is None:
                        viewer.first_frame_after = time.monotonic() - started
                    viewer.frames += 1
                    viewer.sizes.add((frame.width, frame.height))
                    captured = read_capture_time(img) if kind == "visible" else None
                    if captured is not None:
                        viewer.latencies.append(time.time() - captured)
            except Exception:  # noqa: BLE001 - the track ended
                viewer.ended.set()

        viewer.task = asyncio.ensure_future(pull())

    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        r = await c.post(
            "/api/v1/video/watch",
            json={"drone_id": drone_id, "kind": kind, "sdp": pc.localDescription.sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )
    if r.status_code != 200:
        await pc.close()
        return None, r
    viewer.viewer_id = r.json()["viewer_id"]
    await pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
    return viewer, r


async def wait_frames(viewer: Viewer, n: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while viewer.frames < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {viewer.frames} frames in {timeout} s")
        await asyncio.sleep(0.05)


async def close(viewer: Viewer) -> None:
    if viewer.task:
        viewer.task.cancel()
        await asyncio.gather(viewer.task, return_exceptions=True)
    await viewer.pc.close()
