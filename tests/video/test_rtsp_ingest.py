"""RTSP camera ingest against a real RTSP server (GStreamer's gst-rtsp-server from Debian, H.264 test pattern).

The camera's frames go into a Feed without decoding: Annex-B access units, SPS/PPS in front of every IDR
(the server sends them only in the SDP, as many cameras do), 90 kHz timestamps, keyframe flags; a real
aiortc viewer watches the feed through the hub; UDP and TCP transport; the server killed and started
again and the ingest reconnects into the same feed; a dead URI times out with a clear log line; the
hotspot detector's decoder gets pixels from an RTSP feed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from controller.hotspots.feed_decoder import FeedDecoder
from controller.video.encoded_frames import EncodedFrame
from controller.video.feed import Feed
from controller.video.hub import VideoHub
from controller.video.ingest.h264 import NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, ParameterSets, nal_type, split_annexb
from controller.video.ingest.rtsp import RtspIngest, RtspOptions, redact

SERVER = Path(__file__).with_name("gst_rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
FPS, GOP = 15, 15
TICKS = 90_000 // FPS

PROBE = (
    "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "assert all(Gst.ElementFactory.find(e) for e in ('videotestsrc','x264enc','rtph264pay'))"
)


def _server_missing() -> str | None:
    if not shutil.which(SYSTEM_PYTHON):
        return f"{SYSTEM_PYTHON} is missing"
    r = subprocess.run([SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return (
            "GStreamer's RTSP server is not installed (Debian: python3-gi gir1.2-gst-rtsp-server-1.0 "
            "gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly; `make system-packages`)"
        )
    return None


pytestmark = pytest.mark.skipif(bool(_server_missing()), reason=_server_missing() or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, port: int, *args: str) -> None:
        self.port = port
        self.args = args
        self.proc: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(self.port), "--fps", str(FPS), "--gop", str(GOP), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line!r}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture(scope="module")
def server() -> Iterator[RtspServer]:
    srv = RtspServer(free_port())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
async def hub() -> AsyncIterator[VideoHub]:
    h = VideoHub()
    yield h
    await h.close()


FAST = dict(open_timeout_s=3.0, read_timeout_s=1.5, backoff_initial_s=0.2, backoff_max_s=1.0, analyze_s=0.3)


async def wait_until(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def feed_of(hub: VideoHub, drone: str, kind: str = "visible", timeout: float = 8.0) -> Feed:
    await wait_until(lambda: (drone, kind) in hub.feeds, timeout, f"{drone}/{kind} feed")
    return hub.feeds[(drone, kind)]


def record(feed: Feed) -> list[EncodedFrame]:
    frames: list[EncodedFrame] = []
    feed.add_listener(frames.append)
    return frames


def check_frames(frames: list[EncodedFrame]) -> None:
    """Keyframe gating, SPS/PPS before each IDR, 90 kHz timestamps at the server's frame rate, GOP spacing."""
    keys = [i for i, f in enumerate(frames) if f.keyframe]
    assert keys and keys[0] == 0 or frames[0].keyframe is False  # recorded from mid-stream: may start anywhere
    for f in frames:
        types = [nal_type(n) for n in split_annexb(f.data)]
        assert f.data.startswith(b"\x00\x00\x00\x01") or f.data.startswith(b"\x00\x00\x01")
        if f.keyframe:
            assert NAL_IDR in types and NAL_SPS in types and NAL_PPS in types, types
            body = [t for t in types if t != NAL_AUD]
            assert body.index(NAL_SPS) < body.index(NAL_IDR) and body.index(NAL_PPS) < body.index(NAL_IDR), types
        else:
            assert NAL_IDR not in types and NAL_SPS not in types, types
    steps = {b.rtp_ts - a.rtp_ts for a, b in zip(frames, frames[1:], strict=False)}
    assert steps == {TICKS}, steps
    assert len(keys) >= 2 and {b - a for a, b in zip(keys, keys[1:], strict=False)} == {GOP}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_camera_frames_reach_the_feed_unchanged_in_time_and_order(
    server: RtspServer, hub: VideoHub, transport: str
) -> None:
    source = RtspIngest(server.uri, RtspOptions(transport=transport, **FAST), name=f"D1/visible/{transport}")
    await hub.ingest("D1", "visible", "H264", source)
    feed = await feed_of(hub, "D1")
    assert feed.codec == "H264"
    frames = record(feed)
    await wait_until(lambda: len(frames) >= 2 * GOP + 2, 10, "two GOPs of frames")
    check_frames(frames)
    assert source.stats.state == "streaming" and source.stats.codec == "h264"
    assert source.stats.parameter_sets_inserted >= 2  # the server sends SPS/PPS only in the SDP
    # the ingest's first frame was a keyframe (leading delta frames are skipped)
    assert feed.keyframes >= 1 and feed.frames >= len(frames)
    assert await hub.stop_ingest("D1", "visible")
    assert ("D1", "visible") not in hub.feeds and feed.closed and not hub.ingests


async def test_a_webrtc_viewer_decodes_the_camera_stream(server: RtspServer, hub: VideoHub) -> None:
    await hub.ingest("D2", "visible", "H264", RtspIngest(server.uri, RtspOptions(**FAST)))
    await feed_of(hub, "D2")
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    got: list[tuple[int, int]] = []

    @pc.on("track")
    def on_track(track) -> None:  # noqa: ANN001
        async def pull() -> None:
            while True:
                frame = await track.recv()
                got.append((frame.width, frame.height))

        asyncio.ensure_future(pull())

    try:
        await pc.setLocalDescription(await pc.createOffer())
        viewer_id, answer = await hub.watch("D2", "visible", pc.localDescription.sdp, "tester")
        assert "H264" in answer
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await wait_until(lambda: len(got) >= 10, 15, "10 decoded frames at the viewer")
        assert set(got) == {(320, 240)}
        relay = hub.viewers[viewer_id].tracks[0]
        assert relay.forwarded >= 10
    finally:
        await pc.close()


async def test_hotspot_decoder_gets_pixels_from_a_camera_feed(server: RtspServer, hub: VideoHub) -> None:
    await hub.ingest("D3", "thermal", "H264", RtspIngest(server.uri, RtspOptions(**FAST)))
    feed = await feed_of(hub, "D3", "thermal")
    images: list[tuple[float, tuple[int, ...]]] = []

    async def on_frame(capture: float, gray) -> None:  # noqa: ANN001
        images.append((capture, gray.shape))

    decoder = FeedDecoder(feed, on_frame)
    decoder.start()
    try:
        await wait_until(lambda: len(images) >= 5, 10, "5 decoded thermal frames")
    finally:
        await decoder.stop()
    assert {shape for _, shape in images} == {(240, 320)}
    assert decoder.errors == 0
    assert all(abs(capture - time.time()) < 10 for capture, _ in images)


async def test_the_server_restarting_is_survived_in_the_same_feed(hub: VideoHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="controller.video.ingest.rtsp")
    srv = RtspServer(free_port())
    srv.start()
    try:
        source = RtspIngest(srv.uri, RtspOptions(**FAST), name="D4/visible")
        await hub.ingest("D4", "visible", "H264", source)
        feed = await feed_of(hub, "D4")
        frames = record(feed)
        await wait_until(lambda: len(frames) >= 10, 10, "frames before the restart")
        srv.stop()
        await wait_until(lambda: source.stats.reconnects >= 1, 10, "the ingest noticing the server is gone")
        before = len(frames)
        await asyncio.sleep(0.5)
        srv.start()
        await wait_until(lambda: len(frames) >= before + 10, 15, "frames after the restart")
        assert hub.feeds[("D4", "visible")] is feed and not feed.closed  # viewers keep their track
        after = frames[before]
        assert after.keyframe  # a new session starts at an IDR, with its parameter sets
        ts = [f.rtp_ts for f in frames]
        assert all(b > a for a, b in zip(ts, ts[1:], strict=False))  # monotonic across the reconnection
        assert ts[before] - ts[before - 1] >= 0.5 * 90_000  # the gap shows in the timeline
        assert source.stats.sessions >= 2
        assert any("reconnecting in" in r.getMessage() for r in caplog.records)
    finally:
        srv.stop()


async def test_a_dead_uri_times_out_with_a_clear_log_line(hub: VideoHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="controller.video.ingest.rtsp")
    with socket.socket() as black_hole:  # accepts connections (backlog) and never answers
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(8)
        uri = f"rtsp://user:secret@127.0.0.1:{black_hole.getsockname()[1]}/cam"
        source = RtspIngest(uri, RtspOptions(open_timeout_s=0.8, read_timeout_s=0.8, backoff_initial_s=0.1, backoff_max_s=0.2))
        started = time.monotonic()
        await hub.ingest("D5", "visible", "H264", source)
        await wait_until(lambda: source.stats.reconnects >= 2, 6, "two timed-out attempts")
        stop_started = time.monotonic()
        await hub.stop_ingest("D5", "visible")
        assert time.monotonic() - stop_started < 1.0
    lines = [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]
    assert lines, [r.getMessage() for r in caplog.records]
    assert "cannot open rtsp://user:***@127.0.0.1:" in lines[0] and "over TCP: timed out after 0.8 s" in lines[0]
    assert "secret" not in " ".join(r.getMessage() for r in caplog.records)
    assert ("D5", "visible") not in hub.feeds  # no frame, no feed
    assert time.monotonic() - started < 6


async def test_a_refused_connection_is_retried_with_capped_backoff(hub: VideoHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="controller.video.ingest.rtsp")
    source = RtspIngest(f"rtsp://127.0.0.1:{free_port()}/cam", RtspOptions(backoff_initial_s=0.05, backoff_max_s=0.2))
    await hub.ingest("D6", "visible", "H264", source)
    await wait_until(lambda: source.stats.reconnects >= 6, 5, "six attempts")
    await hub.stop_ingest("D6", "visible")
    delays = [float(r.getMessage().split("reconnecting in ")[1].split(" s")[0]) for r in caplog.records if "reconnecting in" in r.getMessage()]
    assert all(d <= 0.2 for d in delays) and "Connection refused" in caplog.text


def test_parameter_sets_go_after_the_delimiter_and_before_the_idr() -> None:
    sc = b"\x00\x00\x00\x01"
    sps, pps = b"\x67\x42\xc0\x0c", b"\x68\xce\x3c\x80"
    params = ParameterSets([sps], [pps])
    au, idr = params.complete(sc + b"\x09\xf0" + sc + b"\x65\x88\x84" + b"\x00\x00\x01" + b"\x65\x00\x11")
    assert idr and [nal_type(n) for n in split_annexb(au)] == [NAL_AUD, NAL_SPS, NAL_PPS, NAL_IDR, NAL_IDR]
    delta, idr = params.complete(sc + b"\x41\x9a")
    assert not idr and delta == sc + b"\x41\x9a"
    # in-band parameter sets replace the SDP's and are left where they are
    new_sps = b"\x67\x64\x00\x1f"
    au, _ = params.complete(sc + new_sps + sc + pps + sc + b"\x65\x01")
    assert au == sc + new_sps + sc + pps + sc + b"\x65\x01" and params.sps == [new_sps]
    assert redact("rtsp://a:b@h:554/x") == "rtsp://a:***@h:554/x" and redact("rtsp://h/x") == "rtsp://h/x"


async def test_a_drone_out_on_a_mission_has_its_announced_camera_pulled_until_it_lands(server: RtspServer) -> None:
    """VideoService: drone.updated en route -> ask the drone's cameras over MAVLink -> pull RTSP; landed -> feed ends."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from controller.domain.states import DroneState
    from controller.events import Event, EventBus
    from controller.fleet.drone_link import DroneLink, LinkConfig
    from controller.fleet.transport import Endpoint
    from controller.video.ingest.camera_info import CameraDirectory
    from controller.video.service import VideoService
    from sitl.camera_component import CameraStreamSpec
    from sitl.fleet import SimFleet, VehicleSpec, free_base_port

    spec = VehicleSpec(0, 32.05, 118.78, 10.0, warm=True, cameras=(CameraStreamSpec("thermal", server.uri, "IR"),))
    async with SimFleet([spec], speedup=4.0, base_port=free_base_port(1)) as fleet:
        link = DroneLink(LinkConfig("D7", Endpoint.parse(f"tcp:127.0.0.1:{fleet.port_of(0)}"), sysid=1))
        link.start()
        bus = EventBus()
        drone = SimpleNamespace(state=DroneState.STANDBY, station_id="S1")
        view = SimpleNamespace(drones={"D7": drone}, clock=lambda: datetime.now(UTC))
        service = VideoService(view, bus, cameras=CameraDirectory(links={"D7": link}.get), ingest_options=RtspOptions(**FAST))  # type: ignore[arg-type]
        feeds_events: list[list[str]] = []
        watch = bus.subscribe(lambda e: e.type == "video.feeds")
        await service.start()
        try:
            await wait_until(lambda: 100 in link.components, 5, "the camera's heartbeat")

            def update(state: DroneState) -> None:
                drone.state = state
                bus.publish([Event(None, datetime.now(UTC), "drone.updated", {"state": state.value}, drone_id="D7")])

            update(DroneState.ENROUTE)
            feed = await feed_of(service.hub, "D7", "thermal", timeout=10)
            frames = record(feed)
            await wait_until(lambda: len(frames) >= 5, 10, "frames from the announced camera")
            update(DroneState.SEARCHING)  # still flying: nothing restarts
            await asyncio.sleep(0.2)
            assert service.hub.feeds.get(("D7", "thermal")) is feed and len(service.hub.ingests) == 1
            update(DroneState.LANDED)
            await wait_until(lambda: not service.hub.ingests and feed.closed, 5, "the feed ending on landing")
            while not watch.queue.empty():
                item = watch.queue.get_nowait()
                if item is not None:
                    feeds_events.append(item[0].data["feeds"])
            assert feeds_events == [["thermal"], []]
        finally:
            bus.unsubscribe(watch)
            await service.stop()
            await link.stop()
