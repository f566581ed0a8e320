"""The evidence player (evidence.js) in Chromium, injected into the command page: the recording's segments play
in a <video>, and the map's marker follows the recorded position as the video plays and when it seeks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller import geo
from controller.api.app import create_app
from controller.runtime import Runtime
from controller.settings import Settings
from tests import support
from tests.evidence.helpers import record

A = support.STATION_A
DRONE_A = f"{A}-D1"
T0 = 1_790_000_000.0
LAT0, LON0 = 32.05, 118.78
#: The recorded drone flies north at this many degrees of latitude a second.
RATE = 1e-4


def pose(t: float) -> dict:
    return {"lat": LAT0 + (t - T0) * RATE, "lon": LON0, "alt_m": 60.0, "heading_deg": 0.0, "gimbal_pitch_deg": -30.0}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str, Runtime]]:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'test.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var")
    rt = Runtime.build(settings, tokens=support.registry())
    await rt.start()
    app = create_app(rt, manage_lifecycle=False)
    try:
        s = rt.config.station(A)
        lat, lon = geo.destination(s.lat, s.lon, 0, 400)
        inc, _ = await rt.center.create_incident(
            __import__("controller.center", fromlist=["NewIncident"]).NewIncident(grade=2, category="fire", lat=lat, lon=lon),
            __import__("controller.auth", fromlist=["Principal"]).Principal(
                __import__("controller.auth", fromlist=["Role"]).Role.COMMANDER, "cmd"),
        )
        (m,) = rt.center.incident_missions(inc.id)
        rec = await record(rt, DRONE_A, m.id, n=45, capture0=T0, track=pose)  # 3 segments of 1 s
        async with support.serve(app) as base:
            yield base, rec, rt
    finally:
        await rt.stop()


async def test_the_marker_follows_the_recorded_position_as_the_video_plays(browser, served) -> None:
    base, rec, rt = served
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(base + "/command")
    await page.wait_for_function("typeof L !== 'undefined' && typeof ApiClient !== 'undefined'")
    await page.add_style_tag(url="/static/evidence.css")
    await page.add_script_tag(url="/static/evidence.js")
    await page.evaluate(
        """async ([id, token]) => {
            const box = document.createElement("div");
            box.id = "evidence-box";
            box.style.cssText = "position:fixed;inset:0;z-index:10000;background:#fff;overflow:auto";
            document.body.appendChild(box);
            window.player = await openEvidencePlayer(box, id, new ApiClient(token));
        }""",
        [rec, support.TOKEN["commander"]],
    )
    await page.wait_for_function("player.video.readyState >= 1")
    assert await page.evaluate("player.video.videoWidth") == 160
    assert await page.locator(".evp-segments button").count() == 3
    start = await page.evaluate("player.position()")
    assert start["segment"] == 1 and start["lat"] == pytest.approx(LAT0, abs=2e-5)

    # seek within the first segment: the marker moves to where the drone was then
    await page.evaluate("player.video.currentTime = 0.6")
    await page.wait_for_function("Math.abs(player.position().t - %f) < 0.05" % (T0 + 0.6))
    at = await page.evaluate("player.position()")
    assert at["lat"] == pytest.approx(LAT0 + 0.6 * RATE, abs=2e-5)
    assert "alt 60.0 m" in await page.locator(".evp-pose").inner_text()

    # play: the next segments follow each other and the marker goes north with the recorded track
    await page.evaluate("player.video.play()")
    await page.wait_for_function("player.position().segment === 3 && player.position().t > %f" % (T0 + 2.2), timeout=20_000)
    later = await page.evaluate("player.position()")
    assert later["lat"] == pytest.approx(LAT0 + (later["t"] - T0) * RATE, abs=3e-5) and later["lat"] > at["lat"]
    await page.evaluate("player.close()")
    assert await page.locator(".evp").count() == 0
    assert not errors, errors
    audit = await rt.db.read(lambda c: __import__("controller.evidence.store", fromlist=["x"]).query_audit(c, rec))
    assert {(a["actor"], a["action"]) for a in audit} >= {("commander:cmd", "view"), ("commander:cmd", "download")}
