"""The search-team page in headless Chromium: a hotspot arrives live with distance, bearing, thumbnail and a
navigation link; marking it found from the page (confirmed, then after the undo window) closes the search."""

from __future__ import annotations

import httpx
from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import IncidentStatus
from controller.runtime import Runtime
from tests import support
from tests.hotspots.scenes import fly_over_person
from tests.support import TOKEN, auth

pytestmark = [__import__("pytest").mark.browser]
DRONE = f"{support.STATION_A}-D1"


async def raise_hotspot(rt: Runtime, incident_id: str, lat: float, lon: float) -> None:
    await fly_over_person(rt, incident_id, lat, lon)
    assert rt.hotspots.list(incident_id), rt.hotspots.stats()


async def test_team_sees_a_hotspot_live_and_marks_it_found(browser, runtime: Runtime, live_url: str) -> None:
    rt = runtime
    s = rt.config.station(support.STATION_A)
    inc, _ = await rt.center.create_incident(
        NewIncident(grade=1, category="missing_person", lat=s.lat + 0.004, lon=s.lon, search_radius_m=150, drones_requested=1),
        Principal(Role.COMMANDER, "cmd"),
    )
    (m,) = rt.center.incident_missions(inc.id)
    await rt.center.accept(m.id, Principal(Role.PILOT, "pilot-a", support.STATION_A))
    await rt.center.reports.flight_launched(m.id)

    team_lat, team_lon = s.lat, s.lon  # the team stands at the station
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
        geolocation={"latitude": team_lat, "longitude": team_lon}, permissions=["geolocation"],
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live_url + "/team")
    await page.fill("#token", TOKEN["search_team"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#link.live", timeout=10_000)
    await page.wait_for_function("document.querySelector('#position').textContent.includes('GPS')", timeout=10_000)

    await raise_hotspot(rt, inc.id, s.lat + 0.004, s.lon)
    (h,) = rt.hotspots.list(inc.id)
    card = page.locator(f"article[data-hotspot='{h.id}']")
    await card.wait_for(timeout=10_000)
    expected = geo.distance_m(team_lat, team_lon, h.lat, h.lon)
    shown = (await page.text_content(f"[data-distance='{h.id}']")).strip()
    assert shown.endswith(" m") and abs(float(shown.split()[0]) - expected) <= 2, (shown, expected)
    bearing = float((await page.text_content(f"[data-bearing='{h.id}']")).split("°")[0])
    assert abs(bearing - geo.bearing_deg(team_lat, team_lon, h.lat, h.lon)) <= 1.0
    await page.wait_for_function(
        f"document.querySelector(\"img[data-thumb='{h.id}']\").naturalWidth > 0", timeout=10_000
    )
    nav = await page.get_attribute(f"[data-nav='{h.id}']", "href")
    assert nav.startswith(f"geo:{h.lat:.7f},{h.lon:.7f}")
    assert await page.locator(".leaflet-interactive").count() >= 2  # the hotspot and the team on the map

    await card.locator("button[data-act=found]").click()
    await page.click("#found-confirm")  # Found asks first, then waits 8 s for an undo (test_team_console.py)
    await page.wait_for_selector(f"article.found[data-hotspot='{h.id}']", timeout=15_000)
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.get(f"/api/v1/hotspots/{h.id}", headers=auth("commander"))
        assert r.json()["status"] == "found" and r.json()["status_by"] == "team1"
        r = await c.get(f"/api/v1/incidents/{inc.id}", headers=auth("commander"))
        assert r.json()["status"] == IncidentStatus.RESOLVED.value
    assert errors == []
    await context.close()
