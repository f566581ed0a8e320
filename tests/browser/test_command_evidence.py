"""Evidence in the command console (issue 19, point 4), in headless Chromium against the built-in simulator on the
12-station small roster.

A drone flies a mission with its cameras on; the incident's detail lists the recording live ("Recording", then
"Complete" after landing, from the recording.* events); Play opens the player in a large dialog (the video plays,
the map's marker stands where the drone was at that moment of the video); the commander exports the evidence
(a confirmation says it is logged), the zip is downloaded and `dronefleet evidence verify` passes on it; the audit
lists the commander's view and export. The "Evidence…" search in the header finds the (now closed) incident's
recordings. axe-core finds no serious violation. Screenshots (1440x900) go to $EVIDENCE_SCREENS
(default /tmp/issue19/screens).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from controller import geo
from controller.auth import Principal, Role
from sitl.video_manager import VideoManager
from tests import support
from tests.browser.test_command_console import DRONE_A, open_console, small_world
from tests.support import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = Path(os.environ.get("EVIDENCE_SCREENS", "/tmp/issue19/screens"))
REPO = Path(__file__).resolve().parents[2]


async def shot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENS / f"{name}.png"))


def pose_at(poses: list[dict[str, Any]], t: float) -> tuple[float, float]:
    """The recorded position at time t, interpolated as the player does."""
    poses = sorted((p for p in poses if p.get("lat") is not None), key=lambda p: p["t"])
    if t <= poses[0]["t"]:
        return poses[0]["lat"], poses[0]["lon"]
    for a, b in zip(poses, poses[1:]):
        if a["t"] <= t <= b["t"]:
            f = (t - a["t"]) / max(1e-9, b["t"] - a["t"])
            return a["lat"] + (b["lat"] - a["lat"]) * f, a["lon"] + (b["lon"] - a["lon"]) * f
    return poses[-1]["lat"], poses[-1]["lon"]


async def paused_position(page: Any) -> dict[str, Any]:
    await page.evaluate("evidencePlayer.video.pause()")
    await page.wait_for_timeout(300)  # the pause's timeupdate moves the marker to the paused moment
    return await page.evaluate("evidencePlayer.position()")


def verify_cli() -> list[str]:
    exe = Path(sys.executable).with_name("dronefleet")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "controller.cli"]


async def test_recordings_of_an_incident_play_export_and_verify(browser, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.browser.axe import assert_no_serious_violations

    from tests.mbtiles import make_mbtiles, tiles_around

    started = time.monotonic()
    # A small MBTiles basemap around station A and the scene, down to the player's zoom (no network needed).
    probe = support.copy_configs(tmp_path / "probe", stations=support.SMALL_ROSTER)
    sa = next(x for x in json.loads((probe / "stations.json").read_text())["stations"] if x["id"] == support.STATION_A)
    mid = geo.destination(sa["lat"], sa["lon"], 0.0, 250.0)
    make_mbtiles(tmp_path / "city.mbtiles", tiles_around(*mid, [14, 15, 16, 17], 2), attribution="Test tiles (generated)")
    async with small_world(tmp_path, {"mbtiles": tmp_path / "city.mbtiles"}) as w:
        assert w.rt.evidence is not None
        w.rt.evidence.recorder.segment_s = 2.0  # a few segments in a short flight
        video = VideoManager(w.sim, w.url, {DRONE_A: TOKEN["drone_a1"]})
        await video.start()
        errors: list[str] = []
        try:
            page = await open_console(browser, w.url, errors)
            await page.locator("#evidence-btn").wait_for(state="visible", timeout=10_000)

            # An incident 500 m north of station A; its drone (streaming video) accepts and flies.
            s = w.rt.config.station(support.STATION_A)
            lat, lon = geo.destination(s.lat, s.lon, 0.0, 500.0)
            r = await w.api("POST", "/incidents", json={"category": "traffic_accident", "grade": 1, "lat": lat, "lon": lon,
                                                       "description": "Van into a shop front"})
            assert r.status_code in (200, 201), r.text
            inc_id = r.json()["id"]
            (m,) = [x for x in (await w.incident(inc_id))["missions"] if x["state"] == "offered"]
            assert m["drone_id"] == DRONE_A
            await w.rt.center.accept(m["id"], Principal(Role.PILOT, "pilot-a", support.STATION_A))

            # The detail lists the recording as soon as it starts (recording.started), still going on.
            await page.click(f"#incident-list li[data-incident='{inc_id}'] button")
            detail = page.locator("#incident-detail")
            live_row = detail.locator(".rec-list li[data-status=recording]", has_text=DRONE_A).first
            await live_row.wait_for(timeout=30_000)
            assert "Recording" in await live_row.inner_text()

            async def recordings() -> list[dict[str, Any]]:
                return (await w.api("GET", f"/evidence/recordings?incident_id={inc_id}")).json()

            recs = await w.until(recordings, lambda rs: any(x["kind"] == "visible" for x in rs), 10, "the visible recording")
            rec_id = next(x["id"] for x in recs if x["kind"] == "visible")

            # Fly a few seconds (several 2 s segments), then resolve: the drone flies home and lands, the feeds end
            # and the row turns "Complete" live.
            await page.wait_for_timeout(5_000)
            r = await w.api("POST", f"/incidents/{inc_id}/resolve", json={"reason": "patrol on scene"})
            assert r.status_code == 200, r.text
            row = detail.locator(f"li[data-recording='{rec_id}']")
            await detail.locator(f"li[data-recording='{rec_id}'][data-status=complete]").wait_for(timeout=45_000)
            cells = await row.inner_text()
            assert DRONE_A in cells and "visible" in cells and "Complete" in cells
            segments = int(await row.locator("[data-field=segments]").inner_text())
            assert segments >= 2, cells

            # Play, from the keyboard: the player opens in a large dialog, the video plays.
            await row.locator("button[data-ev=play]").focus()
            await page.keyboard.press("Enter")
            await page.wait_for_selector("#evidence-player[open] .evp video", timeout=10_000)
            await page.wait_for_function("window.evidencePlayer && evidencePlayer.video.readyState >= 1", timeout=10_000)
            box = await page.locator("#evidence-player").bounding_box()
            assert box["width"] > 1200 and box["height"] > 600, box
            await page.evaluate("evidencePlayer.video.play()")
            await page.wait_for_function("evidencePlayer.video.currentTime > 1.2", timeout=15_000)

            # The marker stands where the recorded track has the drone at that moment of the video.
            # (checked paused: playing, the marker moves at each timeupdate, and the drone flies 10x fast)
            track = (await w.api("GET", f"/evidence/recordings/{rec_id}/track")).json()
            assert track["poses"], "no position recorded"
            at = await paused_position(page)
            want = pose_at(track["poses"], at["t"])
            assert geo.distance_m(at["lat"], at["lon"], *want) < 3.0, (at, want)
            assert geo.distance_m(at["lat"], at["lon"], s.lat, s.lon) < 700  # on the way to the scene
            assert await page.locator("#evidence-player .evp-map path.leaflet-interactive").count() >= 2  # track and marker
            # it keeps playing (into the next segment): the marker follows the track
            await page.evaluate("evidencePlayer.video.play()")
            await page.wait_for_function(f"evidencePlayer.position().t > {at['t'] + 1.5}", timeout=15_000)
            later = await paused_position(page)
            want = pose_at(track["poses"], later["t"])
            assert geo.distance_m(later["lat"], later["lon"], *want) < 3.0, (later, want)
            await shot(page, "command-evidence-player")
            await assert_no_serious_violations(page)

            # Export (commander): asked first, saying it is logged; the zip is downloaded and verifies offline.
            await page.click("#evidence-player .ev-dialog-tools button[data-ev=export]")
            await page.wait_for_selector("#confirm[open]")
            assert "logged" in await page.locator("#confirm-body").inner_text()
            await shot(page, "command-evidence-export-confirm")
            await page.fill("#confirm-reason", "court request 2026/118")
            async with page.expect_download(timeout=30_000) as dl_info:
                await page.click("#confirm-ok")
            download = await dl_info.value
            assert download.suggested_filename == f"evidence-{rec_id}.zip"
            zip_path = tmp_path / download.suggested_filename
            await download.save_as(zip_path)
            await page.wait_for_selector("#confirm", state="hidden")
            done = subprocess.run([*verify_cli(), "evidence", "verify", str(zip_path), "--key", w.rt.evidence.key.public_b64()],
                                  cwd=REPO, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr

            # The audit has the commander's view (the player) and export.
            audit = (await w.api("GET", f"/evidence/audit?recording_id={rec_id}")).json()
            seen = {(a["actor"], a["action"]) for a in audit}
            assert {("commander:cmd", "view"), ("commander:cmd", "export")} <= seen, seen
            assert any(a["action"] == "export" and "court request 2026/118" in a["detail"] for a in audit)

            # Esc closes the player; the focus goes back to the row's Play button.
            await page.keyboard.press("Escape")
            await page.wait_for_selector("#evidence-player", state="hidden")
            await page.wait_for_function("document.activeElement.dataset.ev === 'play'", timeout=2_000)
            assert await page.evaluate("document.activeElement.closest('#incident-detail') !== null")

            # The incident is closed; the header's "Evidence…" search still finds its recordings.
            await page.click("#evidence-btn")
            await page.wait_for_selector("#evidence-search[open]")
            await page.fill("#ev-q-incident", inc_id)
            await page.keyboard.press("Enter")
            await page.locator("#evidence-search .ev-search-note", has_text=f"of incident {inc_id}").wait_for(timeout=10_000)
            found = page.locator(f"#evidence-search tr[data-recording='{rec_id}']")
            assert await found.count() == 1 and "Complete" in await found.inner_text()
            await shot(page, "command-evidence-search")
            await assert_no_serious_violations(page)
            await page.keyboard.press("Escape")
            await page.wait_for_selector("#evidence-search", state="hidden")
            await page.locator("#incident-detail .recordings-section").wait_for()
            await shot(page, "command-evidence-detail")
            assert errors == []
        finally:
            await video.stop()
    print(f"took {time.monotonic() - started:.1f} s")
