"""The pilot's flight view in headless Chromium, against the built-in simulator (issue 17).

An offer arrives with a sound, a notification, a flashing title and a countdown; Accept turns the page into
the flight view (map, telemetry, video); tapping the map and pressing Fly here really moves the drone
(checked through the API, not the page); a refusal is shown in words; landing asks first; a commander's
take-over is shown as a banner; an offer that expires says where the call went.

Screenshots (desktop 1440x900, tablet 768x1024 and 1024x768) go to $PILOT_SCREENS (default
/tmp/issue17/screens) so a person can look at them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller import geo
from controller.api.app import create_app
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.runtime import Runtime
from sitl.video_manager import VideoManager
from tests import support
from tests.flying import NOFLY_STATION, World, flying_world
from tests.support import TOKEN, auth

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = Path(os.environ.get("PILOT_SCREENS", "/tmp/issue17/screens"))
DESKTOP = {"width": 1440, "height": 900}
TABLET = {"width": 768, "height": 1024}
TABLET_LANDSCAPE = {"width": 1024, "height": 768}

#: Records every browser notification the page raises, and says notifications are allowed.
NOTIFICATION_SPY = """
window.__notes = [];
class FakeNotification {
  constructor(title, opts) { this.title = title; this.opts = opts || {}; this.closed = false; window.__notes.push(this); }
  close() { this.closed = true; }
  static requestPermission() { return Promise.resolve("granted"); }
}
FakeNotification.permission = "granted";
window.Notification = FakeNotification;
"""


async def shot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENS / f"{name}.png"))


@dataclass
class Flight:
    w: World
    url: str
    page: Any
    mission_id: str
    drone_id: str
    errors: list[str]

    async def api(self, method: str, path: str, who: str = "pilot_a", **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            return await c.request(method, "/api/v1" + path, headers=auth(who), **kw)

    async def drone(self) -> dict[str, Any]:
        r = await self.api("GET", f"/drones/{self.drone_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def mission_state(self) -> str:
        r = await self.api("GET", f"/missions/{self.mission_id}")
        return r.json()["state"]

    async def until_api(self, read: Any, pred: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout * self.w.slowdown
        while True:
            value = await read()
            if pred(value):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
            await asyncio.sleep(0.25)

    async def tap_map(self, lat: float, lon: float) -> None:
        p = await self.page.evaluate(f"window.pilotMapPoint({lat}, {lon})")
        await self.page.mouse.click(p["x"], p["y"])


async def sign_in(page: Any, url: str) -> None:
    await page.goto(url + "/pilot")
    await page.fill("#token", TOKEN["pilot_a"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#link.live", timeout=10_000)


@contextlib.asynccontextmanager
async def in_flight(browser: Any, tmp_path: Path, viewport: dict[str, int] = DESKTOP, video: bool = False,
                    touch: bool = False) -> AsyncIterator[Flight]:
    """A pilot signed in on the page, an offer near station A accepted on the page, the flight view open."""
    async with flying_world(tmp_path, "sim", drones=3, speedup=10) as w:
        async with support.serve(create_app(w.rt, manage_lifecycle=False)) as url:
            publisher = VideoManager(w.sim, url, {f"{support.STATION_A}-D1": TOKEN["drone_a1"]}) if video else None
            if publisher:
                await publisher.start()
            context = await browser.new_context(viewport=viewport, has_touch=touch)
            await context.add_init_script(NOTIFICATION_SPY)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                await sign_in(page, url)
                s = w.rt.config.station(support.STATION_A)
                lat, lon = geo.destination(s.lat, s.lon, 0.0, 500.0)
                inc, _ = await w.rt.center.create_incident(
                    NewIncident(grade=1, category="traffic_accident", lat=lat, lon=lon, address="Zhongshan Rd 1"),
                    Principal(Role.COMMANDER, "c"),
                )
                (m,) = w.rt.center.incident_missions(inc.id)
                card = page.locator(f"article[data-mission='{m.id}']")
                await card.wait_for(timeout=10_000)
                await card.locator("button[data-act=accept]").click()
                await page.wait_for_selector("#flight:not([hidden]) #map.leaflet-container", timeout=10_000)
                yield Flight(w, url, page, m.id, m.drone_id, errors)
            finally:
                await context.close()
                if publisher:
                    await publisher.stop()


async def wait_on_scene(f: Flight) -> None:
    await f.until_api(f.mission_state, lambda s: s == "on_scene", 90, "the drone on scene")
    await f.page.wait_for_function("window.pilotView() && window.pilotView().telemetry", timeout=15_000)


# --- offers ---------------------------------------------------------------------------------------


async def test_offer_alarm_then_accept_opens_the_flight_view(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with flying_world(tmp_path, "sim", drones=3, speedup=10) as w:
        async with support.serve(create_app(w.rt, manage_lifecycle=False)) as url:
            publisher = VideoManager(w.sim, url, {f"{support.STATION_A}-D1": TOKEN["drone_a1"]})
            await publisher.start()
            context = await browser.new_context(viewport=DESKTOP)
            await context.add_init_script(NOTIFICATION_SPY)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                await sign_in(page, url)
                assert await page.evaluate("window.pilotAlarm().audio") == "running"  # the sign-in tap unlocked sound
                s = w.rt.config.station(support.STATION_A)
                lat, lon = geo.destination(s.lat, s.lon, 0.0, 500.0)
                inc, _ = await w.rt.center.create_incident(
                    NewIncident(grade=1, category="traffic_accident", lat=lat, lon=lon, address="Zhongshan Rd 1"),
                    Principal(Role.COMMANDER, "c"),
                )
                (m,) = w.rt.center.incident_missions(inc.id)
                card = page.locator(f"article[data-mission='{m.id}']")
                await card.wait_for(timeout=10_000)

                # Sound, a browser notification, a flashing title and a countdown.
                await page.wait_for_function("window.pilotAlarm().beeps >= 1", timeout=5_000)
                notes = await page.evaluate("window.__notes.map(n => ({title: n.title, body: n.opts.body, tag: n.opts.tag}))")
                assert len(notes) == 1 and notes[0]["tag"] == m.id
                assert "Grade 1" in notes[0]["title"] and "Zhongshan Rd 1" in notes[0]["body"]
                titles = set()
                for _ in range(8):
                    titles.add(await page.title())
                    await asyncio.sleep(0.25)
                assert any("OFFER" in t for t in titles) and len(titles) >= 2, titles
                first = await page.text_content(f"[data-countdown='{m.id}']")
                await asyncio.sleep(2.1)
                second = await page.text_content(f"[data-countdown='{m.id}']")
                assert int(second.split()[0]) < int(first.split()[0]) <= 120
                await shot(page, "offer-desktop-1440x900")

                # Accept: the flight view with map, scene, telemetry and video.
                await card.locator("button[data-act=accept]").click()
                await page.wait_for_selector("#flight:not([hidden]) #map.leaflet-container", timeout=10_000)
                assert await page.evaluate("window.__notes[0].closed"), "the notification stays after the offer was answered"
                assert await page.title() == "dronefleet · pilot"
                assert await page.locator(".scene-icon").count() == 1
                assert await page.locator("#map path.leaflet-interactive").count() >= 1  # no-fly zones drawn
                await page.wait_for_function("window.pilotView().telemetry && window.pilotView().telemetry.alt_rel_m > 5", timeout=60_000)
                alt = await page.text_content("#t-alt")
                assert alt.strip().split()[0].isdigit(), alt
                assert "%" in await page.text_content("#t-batt")
                assert await page.text_content("#t-mode") not in ("", "–")
                assert "good" in await page.text_content("#t-link")
                await page.wait_for_function("window.pilotView().track > 3", timeout=30_000)
                # The live video plays in the flight view.
                await page.wait_for_function("document.querySelector('#f-video').videoWidth > 0", timeout=30_000)
                t1 = await page.evaluate("document.querySelector('#f-video').currentTime")
                await asyncio.sleep(1.0)
                assert await page.evaluate("document.querySelector('#f-video').currentTime") > t1
                await shot(page, "flight-desktop-1440x900")
                for name, vp in (("flight-tablet-768x1024", TABLET), ("flight-tablet-1024x768", TABLET_LANDSCAPE)):
                    await page.set_viewport_size(vp)
                    await asyncio.sleep(0.5)
                    await shot(page, name)
                    # the four big buttons are on screen and large enough for a finger
                    for b in ("#hold", "#resume", "#return", "#land"):
                        box = await page.locator(b).bounding_box()
                        assert box and box["height"] >= 44 and box["y"] + box["height"] <= vp["height"], (name, b, box)
                assert errors == []
            finally:
                await context.close()
                await publisher.stop()


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """Offers time out after 4 s here, so the expiry test does not wait half a minute."""
    return support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, offer_timeout_s=4)


async def test_an_expired_offer_says_where_the_call_went(browser, runtime: Runtime, live_url: str) -> None:  # noqa: ANN001
    context = await browser.new_context(viewport=TABLET)
    await context.add_init_script(NOTIFICATION_SPY)
    page = await context.new_page()
    await sign_in(page, live_url)
    s = runtime.config.station(support.STATION_A)
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": s.lat + 0.002, "lon": s.lon,
                                                    "address": "Hanzhong Rd 5"}, headers=auth("commander"))
    inc_id = r.json()["id"]
    (m,) = runtime.center.incident_missions(inc_id)
    await page.locator(f"article[data-mission='{m.id}']").wait_for(timeout=10_000)
    gone = page.locator(f"[data-gone='{m.id}']")
    await gone.wait_for(timeout=15_000)
    await page.locator(f"article[data-mission='{m.id}']").wait_for(state="detached", timeout=5_000)
    text = await gone.inner_text()
    assert "expired" in text and "Hanzhong Rd 5" in text, text
    nxt = [x for x in runtime.center.incident_missions(inc_id) if x.id != m.id]
    if nxt:  # the call went to another station's drone: the page names it
        assert nxt[0].drone_id in text and nxt[0].station_id in text, text
    else:
        assert "queue" in text, text
    assert await page.evaluate("window.__notes.every(n => n.closed)")
    await shot(page, "offer-expired-tablet-768x1024")
    await context.close()


# --- flying from the page -------------------------------------------------------------------------


async def test_tap_the_map_and_fly_there(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with in_flight(browser, tmp_path) as f:
        await wait_on_scene(f)
        here = await f.drone()
        lat, lon = geo.destination(here["lat"], here["lon"], 90.0, 150.0)
        await f.tap_map(lat, lon)
        await f.page.wait_for_selector("#pick:not([hidden])")
        picked = await f.page.evaluate("window.pilotView().picked")
        assert geo.distance_m(picked["lat"], picked["lon"], lat, lon) < 5  # the tap landed where we meant
        await f.page.click("#fly-here")
        result = f.page.locator("[data-result=pick]")
        await f.page.wait_for_selector("[data-result=pick].ok", timeout=15_000)
        assert "accepted" in (await result.inner_text())
        # The controller flies the drone there: seen from the API, not the page.
        d = await f.until_api(f.drone, lambda d: geo.distance_m(d["lat"], d["lon"], picked["lat"], picked["lon"]) < 8,
                              60, "the drone at the tapped point")
        assert d["state"] in ("on_scene", "enroute")
        r = await f.api("GET", f"/missions/{f.mission_id}/flight")
        assert r.status_code == 200, r.text
        t_lat, t_lon, _alt = r.json()["target"]  # the controller's own record of where the pilot sent it
        assert geo.distance_m(t_lat, t_lon, picked["lat"], picked["lon"]) < 2
        # The page drew the target and the drone's track got there too.
        view = await f.page.evaluate("window.pilotView()")
        assert view["target"] and geo.distance_m(view["target"]["lat"], view["target"]["lon"], lat, lon) < 5
        await f.page.wait_for_function(
            f"(() => {{ const d = window.pilotView().drone; return Math.abs(d.lat - {picked['lat']}) < 1e-4 && Math.abs(d.lon - {picked['lon']}) < 1.2e-4; }})()",
            timeout=15_000,
        )
        # Keyboard: arrow up raises the altitude by 10 m (from the API's view of the drone).
        before = (await f.drone())["alt_m"]
        await f.page.locator("#map").focus()
        await f.page.keyboard.press("ArrowUp")
        await f.page.wait_for_selector("[data-result=altitude].ok", timeout=15_000)
        await f.until_api(f.drone, lambda d: d["alt_m"] > before + 7, 60, "the drone 10 m higher")
        await shot(f.page, "flight-after-fly-to-desktop-1440x900")
        assert f.errors == []


async def test_a_refused_command_says_why(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with in_flight(browser, tmp_path) as f:
        await wait_on_scene(f)
        before = await f.drone()
        # Tap inside the no-fly zone near station NOFLY_STATION (tests/flying.py draws it).
        station = f.w.rt.config.stations[NOFLY_STATION]
        zlat, zlon = geo.destination(station.lat, station.lon, 0.0, 400.0)
        await f.page.evaluate(f"window.pilotMapShow({zlat}, {zlon}, 16)")
        await f.tap_map(zlat, zlon)
        await f.page.wait_for_selector("#pick:not([hidden]) .warn")  # the page warns before anything is sent
        await f.page.keyboard.press("f")  # F: fly to the picked point
        await f.page.wait_for_selector("[data-result=pick].bad", timeout=15_000)
        text = await f.page.inner_text("[data-result=pick]")
        assert "Refused" in text and "no-fly" in text.lower() and "test zone" in text, text
        await shot(f.page, "flight-refused-desktop-1440x900")
        # Nothing was sent: the controller has no pilot target, and the drone stays on scene (the zone is kilometres away).
        r = await f.api("GET", f"/missions/{f.mission_id}/flight")
        assert r.status_code == 200 and r.json()["target"] is None, r.text
        await asyncio.sleep(2)
        after = await f.drone()
        assert geo.distance_m(before["lat"], before["lon"], after["lat"], after["lon"]) < 30
        assert geo.distance_m(after["lat"], after["lon"], zlat, zlon) > 1000

        # A bad altitude is refused with the field named.
        await f.page.fill("#alt-set", "500")
        await f.page.click("#alt-go")
        await f.page.wait_for_selector("[data-result=altitude].bad", timeout=15_000)
        text = await f.page.inner_text("[data-result=altitude]")
        assert "alt" in text.lower() and "120" in text, text
        assert f.errors == []


async def test_land_asks_for_confirmation(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with in_flight(browser, tmp_path, viewport=TABLET, touch=True) as f:
        await wait_on_scene(f)
        sent: list[str] = []
        f.page.on("request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/commands") else None)
        await f.page.tap("#land")
        dialog = f.page.locator("#land-dialog")
        await dialog.wait_for(state="visible")
        assert "lands where it is" in await dialog.inner_text()
        await shot(f.page, "flight-land-confirm-tablet-768x1024")
        await f.page.tap("#land-dialog button[value=cancel]")
        await dialog.wait_for(state="hidden")
        await f.page.wait_for_selector("[data-result=primary]:has-text('nothing was sent')", timeout=5_000)
        assert sent == []
        await asyncio.sleep(1)
        assert await f.mission_state() == "on_scene"

        await f.page.tap("#land")
        await dialog.wait_for(state="visible")
        await f.page.tap("#land-confirm")
        await f.page.wait_for_selector("[data-result=primary].ok", timeout=15_000)
        assert len(sent) == 1 and '"land"' in sent[0] and '"confirm":true' in sent[0]
        # The drone comes down where it was (the API's altitude falls).
        await f.until_api(f.drone, lambda d: d["alt_m"] < 5, 90, "the drone landed")
        assert f.errors == []


async def test_commander_take_over_shows_a_banner(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with in_flight(browser, tmp_path, viewport=TABLET_LANDSCAPE) as f:
        await wait_on_scene(f)
        await f.page.wait_for_selector("#f-holder:has-text('YOU HAVE CONTROL')", timeout=10_000)
        assert await f.page.locator("#takeover").is_hidden()
        r = await f.api("POST", f"/drones/{f.drone_id}/control/take", who="commander")
        assert r.status_code == 200, r.text
        banner = f.page.locator("#takeover")
        await banner.wait_for(state="visible", timeout=10_000)
        text = await banner.inner_text()
        assert "COMMANDER" in text and "TAKEN CONTROL" in text, text
        assert await f.page.locator("#hold").is_disabled()
        await shot(f.page, "flight-taken-over-tablet-1024x768")
        # The commander hands it back: the banner goes, the controls come back.
        r = await f.api("POST", f"/drones/{f.drone_id}/control/release", who="commander")
        assert r.status_code == 200, r.text
        await banner.wait_for(state="hidden", timeout=10_000)
        await f.page.wait_for_selector("#f-holder:has-text('YOU HAVE CONTROL')", timeout=10_000)
        assert await f.page.locator("#hold").is_enabled()
        assert f.errors == []


async def test_orbit_camera_hold_and_return_from_the_page(browser, tmp_path: Path) -> None:  # noqa: ANN001
    async with in_flight(browser, tmp_path, viewport=TABLET_LANDSCAPE) as f:
        await wait_on_scene(f)

        async def flight() -> dict[str, Any]:
            r = await f.api("GET", f"/missions/{f.mission_id}/flight")
            assert r.status_code == 200, r.text
            return r.json()

        # Orbit the scene: the vehicle goes into CIRCLE around it (the controller's own view of the vehicle).
        await f.page.fill("#orbit-r", "50")
        await f.page.click("[data-dir=ccw]")
        await f.page.click("#orbit-scene")
        await f.page.wait_for_selector("[data-result=orbit].ok", timeout=20_000)
        assert "50 m counter-clockwise" in await f.page.inner_text("[data-result=orbit]")
        await f.until_api(flight, lambda v: v["mode"] == "CIRCLE", 60, "the drone orbiting")
        await f.page.wait_for_selector("#t-mode:has-text('CIRCLE')", timeout=10_000)

        # The camera: look at the scene, then tilt with the keyboard ([ twice: -45 -> -65 degrees).
        await f.page.click("#roi-scene")
        await f.page.wait_for_selector("[data-result=camera].ok", timeout=15_000)
        await f.page.locator("body").press("[")
        await f.page.locator("body").press("[")
        await f.page.wait_for_selector("[data-result=camera].ok:has-text('-65')", timeout=15_000)
        # ... and the page shows the angle the gimbal itself reports (GIMBAL_DEVICE_ATTITUDE_STATUS), near -65
        await f.page.wait_for_function(
            "() => { const m = /camera at (-?\\d+)°/.exec(document.getElementById('pitch-now').textContent);"
            " return m !== null && Math.abs(Number(m[1]) + 65) <= 6; }",
            timeout=20_000,
        )

        # H holds where it is; R brings it home.
        await f.page.locator("body").press("h")
        await f.page.wait_for_selector("[data-result=primary].ok:has-text('Hold')", timeout=15_000)
        await f.until_api(flight, lambda v: v["mode"] != "CIRCLE", 30, "the orbit stopped")
        await f.page.locator("body").press("r")
        await f.page.wait_for_selector("[data-result=primary].ok:has-text('Return')", timeout=15_000)
        await f.until_api(f.mission_state, lambda s: s in ("returning", "completed"), 30, "the mission returning")
        await shot(f.page, "flight-returning-tablet-1024x768")
        assert f.errors == []
