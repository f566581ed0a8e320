"""A WHIP publisher that is not aiortc: GStreamer's webrtcbin (Debian's packages, driven by tests/video/gst_whip_client.py
under /usr/bin/python3) publishes VP8 and H.264 into the controller; the frames arrive at the Feed and at a WHEP
viewer, and the client's DELETE ends it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from controller.runtime import Runtime
from tests import support
from tests.support import TOKEN
from tests.video.test_whip_whep import idle, whep

DRONE = f"{support.STATION_A}-D1"
CLIENT = Path(__file__).with_name("gst_whip_client.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def gstreamer_webrtc_missing() -> str | None:
    """Why the GStreamer client cannot run here (None when it can)."""
    if not os.path.exists(SYSTEM_PYTHON):
        return "no /usr/bin/python3"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); "
        "from gi.repository import Gst; Gst.init(None); "
        "missing = [e for e in ('webrtcbin', 'nicesrc', 'dtlssrtpenc', 'vp8enc', 'x264enc') if not Gst.ElementFactory.find(e)]; "
        "print(' '.join(missing))"
    )
    try:
        out = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if out.returncode != 0:
        return f"python3-gi / gir1.2-gst-plugins-bad-1.0 missing: {out.stderr.strip().splitlines()[-1:]}"
    if out.stdout.strip():
        return f"GStreamer elements missing: {out.stdout.strip()} (gstreamer1.0-nice, -plugins-bad, -plugins-good, -plugins-ugly)"
    return None


@pytest.fixture(scope="module")
def gstreamer() -> None:
    why = gstreamer_webrtc_missing()
    if why:
        pytest.skip(f"{why} (make system-packages installs them)")


async def until(cond, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
async def test_gstreamer_webrtcbin_publishes_over_whip(gstreamer, codec: str, runtime: Runtime, live_url: str) -> None:  # noqa: ANN001
    hub = runtime.video.hub
    proc = await asyncio.create_subprocess_exec(
        SYSTEM_PYTHON, str(CLIENT), f"{live_url}/api/v1/whip/{DRONE}/visible", TOKEN["drone_a1"], codec,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line, (await proc.stderr.read()).decode()[-2000:]
        answer = json.loads(line)
        assert answer["status"] == 201, answer
        assert answer["location"].startswith(f"/api/v1/whip/{DRONE}/visible/") and answer["etag"]
        assert answer["content_type"] == "application/sdp"
        await until(lambda: (DRONE, "visible") in hub.feeds, 15, "GStreamer's feed")
        feed = hub.feeds[(DRONE, "visible")]
        await until(lambda: feed.frames >= 20 and feed.keyframes >= 1, 15, "frames from GStreamer")
        assert feed.codec == codec.upper()
        async with httpx.AsyncClient(base_url=live_url, timeout=20) as c:  # and a WHEP viewer decodes them
            viewer = await whep(c, "commander")
            assert viewer.response.status_code == 201
            await until(lambda: viewer.frames >= 5, 15, "GStreamer's frames at a WHEP viewer")
            assert viewer.sizes == {(320, 240)}
            await viewer.close()
        # the client ends with DELETE on its Location: the feed and its viewers are gone
        proc.send_signal(signal.SIGTERM)
        assert json.loads(await asyncio.wait_for(proc.stdout.readline(), 10)) == {"deleted": 204}
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        await until(lambda: idle(hub), 5, "the hub to empty")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_gstreamer_publishes_two_cameras_one_with_audio(gstreamer, runtime: Runtime, live_url: str) -> None:  # noqa: ANN001
    """As an airframe (or OBS) does: one WHIP resource per camera, audio offered and answered inactive; ending the
    visible camera's resource leaves the thermal one publishing."""
    hub = runtime.video.hub
    procs = {}
    try:
        for kind, codec, extra in (("visible", "vp8", ["audio"]), ("thermal", "h264", [])):
            procs[kind] = await asyncio.create_subprocess_exec(
                SYSTEM_PYTHON, str(CLIENT), f"{live_url}/api/v1/whip/{DRONE}/{kind}", TOKEN["drone_a1"], codec, *extra,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        answers = {}
        for kind, proc in procs.items():
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line, (await proc.stderr.read()).decode()[-2000:]
            answers[kind] = json.loads(line)
            assert answers[kind]["status"] == 201, answers[kind]
        assert answers["visible"]["audio"] == "inactive" and answers["thermal"]["audio"] is None
        await until(lambda: {(DRONE, "visible"), (DRONE, "thermal")} <= set(hub.feeds), 15, "both cameras' feeds")
        visible, thermal = hub.feeds[(DRONE, "visible")], hub.feeds[(DRONE, "thermal")]
        await until(lambda: visible.frames >= 20 and thermal.frames >= 20, 15, "frames from both cameras")
        assert (visible.codec, thermal.codec) == ("VP8", "H264") and hub.stats()["publishers"] == 2
        procs["visible"].send_signal(signal.SIGTERM)
        assert json.loads(await asyncio.wait_for(procs["visible"].stdout.readline(), 10)) == {"deleted": 204}
        assert await asyncio.wait_for(procs["visible"].wait(), 10) == 0
        assert (DRONE, "visible") not in hub.feeds and hub.feeds.get((DRONE, "thermal")) is thermal
        seen = thermal.frames
        await until(lambda: thermal.frames >= seen + 15, 15, "thermal frames after the visible camera ended")
        procs["thermal"].send_signal(signal.SIGTERM)
        assert json.loads(await asyncio.wait_for(procs["thermal"].stdout.readline(), 10)) == {"deleted": 204}
        await until(lambda: idle(hub), 5, "the hub to empty")
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
