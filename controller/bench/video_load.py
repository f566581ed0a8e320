"""The client side of the video benchmark, run as its own process: publishers and viewers.

Publishers are simulated drone cameras (640x512 at 15 fps, capture time in a
barcode). Viewers are aiortc peers; most count the encoded frames that reach
them without decoding (a tap in place of the decoder, as the relay uses), so a
hundred viewers cost this process little. One viewer per feed decodes and
reads the barcode: capture-to-display latency. The process reads one JSON
command per line on stdin and answers one JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx
from aiortc import RTCPeerConnection, RTCSessionDescription

from controller.video import aiortc_hooks
from controller.video.hub import EncodedTap
from sitl.camera_render import CameraPose, Intrinsics, read_capture_time
from sitl.video_publisher import CameraSetup, CameraTrack, VideoPublisher

FPS = 15.0


class Viewer:
    def __init__(self, decode: bool) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.decode = decode
        self.arrivals: list[float] = []
        self.latencies: list[tuple[float, float]] = []  # (arrival time, latency)
        self.requested = time.monotonic()
        self.first_frame: float | None = None
        self.task: asyncio.Task | None = None

        @self.pc.on("track")
        def on_track(track) -> None:  # noqa: ANN001
            receiver = next(t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track)
            tap = EncodedTap(aiortc_hooks.decoder_queue(receiver), self._count)
            aiortc_hooks.install_decoder_tap(receiver, tap)
            tap.decode = decode
            if decode:
                self.task = asyncio.ensure_future(self._pull(track))

    def _count(self, codec: Any, frame: Any) -> None:  # noqa: ARG002
        now = time.monotonic()
        if self.first_frame is None:
            self.first_frame = now
        self.arrivals.append(now)

    async def _pull(self, track) -> None:  # noqa: ANN001
        try:
            while True:
                frame = await track.recv()
                captured = read_capture_time(frame.to_ndarray(format="rgb24"))
                if captured is not None:
                    self.latencies.append((time.monotonic(), time.time() - captured))
        except Exception:  # noqa: BLE001 - track ended
            return

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        await self.pc.close()


class Load:
    def __init__(self, url: str, token: str, drone_tokens: dict[str, str]) -> None:
        self.url = url
        self.token = token
        self.drone_tokens = drone_tokens
        self.publishers: dict[str, VideoPublisher] = {}
        self.viewers: dict[str, list[Viewer]] = {}
        self.direct: list[tuple[CameraTrack, RTCPeerConnection, Viewer]] = []

    def _track(self, drone_id: str, n: int) -> CameraTrack:
        pose = CameraPose(32.05 + n * 0.01, 118.79, 100.0, 30.0 * n)
        return CameraTrack(drone_id, CameraSetup("visible", Intrinsics(640, 512, 84.0), FPS), lambda: pose, (32.05, 118.79))

    async def publish(self, count: int) -> dict[str, Any]:
        for n, drone_id in enumerate(list(self.drone_tokens)[:count]):
            pub = VideoPublisher(drone_id, self.url, self.drone_tokens[drone_id], {"visible": self._track(drone_id, n)})
            await pub.start()
            self.publishers[drone_id] = pub
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as c:  # a feed is live once frames arrive
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = await c.get("/api/v1/video/feeds", headers={"Authorization": f"Bearer {self.token}"})
                if {f["drone_id"] for f in r.json()} >= set(self.publishers):
                    break
                await asyncio.sleep(0.2)
        return {"publishers": len(self.publishers)}

    async def watch(self, per_publisher: int) -> dict[str, Any]:
        """Add viewers until each publisher has `per_publisher` (the first one of each decodes)."""
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            for drone_id in self.publishers:
                have = self.viewers.setdefault(drone_id, [])
                while len(have) < per_publisher:
                    v = Viewer(decode=not have)
                    await v.pc.setLocalDescription(await v.pc.createOffer())
                    v.requested = time.monotonic()
                    r = await c.post(
                        "/api/v1/video/watch",
                        json={"drone_id": drone_id, "kind": "visible", "sdp": v.pc.localDescription.sdp, "type": "offer"},
                        headers={"Authorization": f"Bearer {self.token}"},
                    )
                    r.raise_for_status()
                    await v.pc.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
                    have.append(v)
        deadline = time.monotonic() + 15  # measure only once every viewer has a picture
        while any(v.first_frame is None for vs in self.viewers.values() for v in vs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return {"viewers": sum(len(v) for v in self.viewers.values())}

    async def direct_baseline(self, count: int) -> dict[str, Any]:
        """Publisher straight to one decoding viewer, no relay: the latency the relay adds to."""
        for n in range(count):
            track = self._track(f"direct-{n}", n)
            pub = RTCPeerConnection()
            pub.addTransceiver(track, direction="sendonly")
            v = Viewer(decode=True)
            await pub.setLocalDescription(await pub.createOffer())
            await v.pc.setRemoteDescription(RTCSessionDescription(pub.localDescription.sdp, "offer"))
            for t in v.pc.getTransceivers():
                t.direction = "recvonly"
            await v.pc.setLocalDescription(await v.pc.createAnswer())
            await pub.setRemoteDescription(RTCSessionDescription(v.pc.localDescription.sdp, "answer"))
            self.direct.append((track, pub, v))
        return {"direct": count}

    async def measure(self, seconds: float) -> dict[str, Any]:
        """Frames published and received, and latencies, over the next `seconds`."""
        before = {d: p.tracks["visible"].frames for d, p in self.publishers.items()}
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        t1 = time.monotonic()
        ratios: list[float] = []
        first: list[float] = []
        for drone_id, viewers in self.viewers.items():
            published = self.publishers[drone_id].tracks["visible"].frames - before[drone_id]
            for v in viewers:
                got = sum(1 for a in v.arrivals if t0 <= a < t1)
                ratios.append(min(1.0, got / published) if published else 0.0)
                if v.first_frame is not None:
                    first.append(v.first_frame - v.requested)
        return {
            "window_s": t1 - t0,
            "fps_published": sum(p.tracks["visible"].frames - before[d] for d, p in self.publishers.items())
            / max(len(self.publishers), 1) / (t1 - t0),
            "delivered": ratios,
            "first_frame_s": first,
            "latency_s": [lat for vs in self.viewers.values() for v in vs for a, lat in v.latencies if t0 <= a < t1],
            "direct_latency_s": [lat for _, _, v in self.direct for a, lat in v.latencies if t0 <= a < t1],
        }

    async def close(self) -> dict[str, Any]:
        for viewers in self.viewers.values():
            for v in viewers:
                await v.close()
        for _, pub, v in self.direct:
            await v.close()
            await pub.close()
        for pub in self.publishers.values():
            await pub.stop()
        self.viewers.clear()
        self.direct.clear()
        self.publishers.clear()
        return {"closed": True}


async def main() -> None:
    spec = json.loads(sys.stdin.readline())
    load = Load(spec["url"], spec["token"], spec["drone_tokens"])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        result = await getattr(load, cmd.pop("op"))(**cmd)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
