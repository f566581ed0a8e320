"""The command page in headless Chromium: drones move on the map, and a live feed really plays."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from controller import geo
from controller.api.app import create_app
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import IncidentStatus
from sitl.video_manager import VideoManager
from tests import support
from tests.flying import flying_world
from tests.support import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = Path(os.environ.get("COMMAND_SCREENS", "/tmp/issue18/screens"))


async def test_live_map_and_feed_play(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with flying_world(tmp_path, "sim", drones=3, speedup=5) as w:
        async with support.serve(create_app(w.rt, manage_lifecycle=False)) as url:
            video = VideoManager(w.sim, url, {f"{support.STATION_A}-D1": TOKEN["drone_a1"]})
            await video.start()
            try:
                page = await browser.new_page(viewport={"width": 1440, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.goto(url + "/command")
                await page.fill("#token", TOKEN["commander"])
                await page.click("button[type=submit]")
                await page.wait_for_selector("#link.live", timeout=10_000)
                await page.wait_for_function("window.dronefleetMap().length === 140", timeout=10_000)

                # A call near station A; its pilot accepts; the drone takes off.
                s = w.rt.config.station(support.STATION_A)
                lat, lon = geo.destination(s.lat, s.lon, 0.0, 500.0)
                inc, _ = await w.rt.center.create_incident(
                    NewIncident(grade=1, category="traffic_accident", lat=lat, lon=lon), Principal(Role.COMMANDER, "c")
                )
                (m,) = w.rt.center.incident_missions(inc.id)
                await w.rt.center.accept(m.id, Principal(Role.PILOT, "p", support.STATION_A))
                drone = m.drone_id
                where = f"window.dronefleetMap().find(d => d.id === '{drone}')"

                # The marker moves as the drone flies (telemetry events), and shows its state.
                start = await page.evaluate(where)
                await page.wait_for_function(f"{where}.state === 'enroute'", timeout=30_000)
                await page.wait_for_function(
                    f"Math.abs({where}.lat - {start['lat']}) > 0.0005", timeout=30_000
                )
                # The feed appears once the drone is airborne and publishing; open it and check it plays.
                button = page.locator(f"#available button[data-open='{drone}'][data-kind='visible']")
                await button.wait_for(timeout=30_000)
                await button.click()
                video_el = page.locator(f".feed[data-feed='{drone}/visible'] video")
                await page.wait_for_function(
                    f"document.querySelector(\".feed[data-feed='{drone}/visible'] video\").videoWidth > 0",
                    timeout=15_000,
                )
                t1 = await video_el.evaluate("v => v.currentTime")
                await asyncio.sleep(1.5)
                t2 = await video_el.evaluate("v => v.currentTime")
                assert t2 > t1, "video is not advancing"
                assert await video_el.evaluate("v => v.videoWidth") == 640
                assert w.rt.video.hub.stats()["viewers"] == 1

                # One flying drone among 140 is easy to find: big, ringed, labelled; the idle ones are grouped.
                fleet = await page.evaluate("window.dronefleetMap()")
                assert [d["id"] for d in fleet if d["flying"]] == [drone]
                assert sum(d["clustered"] for d in fleet) > 100, "idle drones are not grouped at the city view"
                assert await page.locator(".leaflet-tooltip.flying-label", has_text=drone).is_visible()
                await page.evaluate("localStorage.clear()")  # the next test starts with an empty video wall
                SCREENS.mkdir(parents=True, exist_ok=True)
                await page.evaluate("Cmd.mapView.fit()")
                await page.screenshot(path=str(SCREENS / "command-140-one-flying.png"))

                # Closing the feed ends the viewer on the server.
                await page.click(f".feed[data-feed='{drone}/visible'] button.close")
                await w.until(lambda: w.rt.video.hub.stats()["viewers"] == 0, 10, "viewer closed")
                await w.until(lambda: inc.status is IncidentStatus.ON_SCENE, 60, "on scene")
                assert errors == []
            finally:
                await video.stop()
