"""Chromium publishes a camera with WHIP (fake capture device, from another origin: CORS) and the command page
watches it with WHEP (video-viewer.js): the <video> plays, and DELETEs leave the hub empty."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from controller.runtime import Runtime
from tests import support
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support import TOKEN

pytestmark = [pytest.mark.browser]

DRONE = f"{support.STATION_A}-D1"
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

#: A WHIP client in the page: getUserMedia, a send-only offer with its candidates, POST application/sdp.
WHIP_PUBLISH = """
async ([url, token]) => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  const pc = new RTCPeerConnection();
  pc.addTransceiver(stream.getVideoTracks()[0], { direction: "sendonly", streams: [stream] });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
    setTimeout(resolve, 3000);
  });
  const res = await fetch(url, {
    method: "POST", body: pc.localDescription.sdp,
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/sdp" },
  });
  const answer = await res.text();
  if (res.status !== 201) return { status: res.status, body: answer };
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  window.whip = { pc, location: new URL(res.headers.get("Location"), url).href };
  return { status: res.status, location: res.headers.get("Location"), etag: res.headers.get("ETag"),
           type: res.headers.get("Content-Type") };
}
"""

WHIP_DELETE = """
async (token) => {
  const res = await fetch(window.whip.location, { method: "DELETE", headers: { "Authorization": "Bearer " + token } });
  window.whip.pc.close();
  return res.status;
}
"""


async def until(cond, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_chromium_whip_publisher_and_command_page_whep_viewer(runtime: Runtime, live_url: str) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium not found at {CHROMIUM} (make test installs Debian's chromium)")
    from playwright.async_api import async_playwright

    hub = runtime.video.hub
    port = live_url.rsplit(":", 1)[1]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA, headless=True)
        try:
            errors: list[str] = []
            # The publisher runs on another origin (localhost vs 127.0.0.1): the POST needs the CORS preflight.
            publisher = await browser.new_page()
            publisher.on("pageerror", lambda e: errors.append(str(e)))
            await publisher.goto(f"http://localhost:{port}/health")
            result = await publisher.evaluate(WHIP_PUBLISH, [f"{live_url}/api/v1/whip/{DRONE}/visible", TOKEN["drone_a1"]])
            assert result["status"] == 201, result
            assert result["location"].startswith(f"/api/v1/whip/{DRONE}/visible/") and result["etag"]
            assert result["type"] == "application/sdp"
            await until(lambda: (DRONE, "visible") in hub.feeds, 15, "Chromium's WHIP feed")
            feed = hub.feeds[(DRONE, "visible")]
            await until(lambda: feed.frames >= 10, 15, "frames from Chromium")

            # The command page watches it through watchFeed (WHEP).
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            whep_posts: list[int] = []
            page.on("response", lambda r: whep_posts.append(r.status) if "/api/v1/whep/" in r.url and r.request.method == "POST" else None)
            await page.goto(live_url + "/command")
            await page.fill("#token", TOKEN["commander"])
            await page.click("button[type=submit]")
            button = page.locator(f"#available button[data-open='{DRONE}'][data-kind='visible']")
            await button.wait_for(timeout=15_000)
            await button.click()
            video = f"document.querySelector(\".feed[data-feed='{DRONE}/visible'] video\")"
            await page.wait_for_function(f"{video} && {video}.videoWidth > 0", timeout=15_000)
            t1 = await page.evaluate(f"{video}.currentTime")
            await asyncio.sleep(1.0)
            assert await page.evaluate(f"{video}.currentTime") > t1, "the video is not advancing"
            assert await page.evaluate(f"{video}.videoWidth") == 640
            assert whep_posts == [201] and hub.stats()["viewers"] == 1
            assert feed.codec in ("VP8", "H264") and sum(t.forwarded for t in feed.subscribers) > 0

            # Closing the tile DELETEs the WHEP resource; the publisher DELETEs its WHIP resource.
            await page.click(f".feed[data-feed='{DRONE}/visible'] button[aria-label^='Close']")
            await until(lambda: hub.stats()["viewers"] == 0, 10, "the viewer closed")
            assert await publisher.evaluate(WHIP_DELETE, TOKEN["drone_a1"]) == 204
            assert all(n == 0 for n in hub.stats().values()), hub.stats()
            assert errors == []
        finally:
            await browser.close()
