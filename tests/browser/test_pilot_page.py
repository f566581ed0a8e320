"""The pilot page in headless Chromium: sign in, see an offer arrive live, accept it."""

from __future__ import annotations

import httpx

from controller.runtime import Runtime
from tests import support
from tests.support import TOKEN, auth

pytestmark = [__import__("pytest").mark.browser]


async def test_pilot_accepts_an_offer_from_the_page(browser, runtime: Runtime, live_url: str) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(live_url + "/pilot")
    await page.fill("#token", TOKEN["pilot_a"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#link.live", timeout=10_000)
    assert (await page.text_content("#station")).strip() == f"· {support.STATION_A}"

    # A call comes in near station A; the offer appears on the page without a reload.
    s = runtime.config.station(support.STATION_A)
    async with httpx.AsyncClient(base_url=live_url) as c:
        body = {"grade": 1, "category": "traffic_accident", "lat": s.lat + 0.004, "lon": s.lon, "address": "Zhongshan Rd 1"}
        r = await c.post("/api/v1/incidents", json=body, headers=auth("commander"))
        assert r.status_code == 201
        incident_id = r.json()["id"]
    (mission,) = runtime.center.incident_missions(incident_id)
    card = page.locator(f"article[data-mission='{mission.id}']")
    await card.wait_for(timeout=10_000)
    text = await card.inner_text()
    assert "Grade 1" in text and "Traffic accident" in text and "Zhongshan Rd 1" in text
    assert "ETA" in text and "distance" in text
    countdown = int((await page.text_content(f"[data-countdown='{mission.id}']")).split()[0])
    assert 20 <= countdown <= 30

    await card.locator("button[data-act=accept]").click()
    await page.wait_for_selector(f"[data-state='{mission.id}']", timeout=10_000)
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.get(f"/api/v1/missions/{mission.id}", headers=auth("commander"))
    assert r.json()["state"] == "accepted"
    assert r.json()["decided_by"] == "pilot:pilot-a"
    assert errors == []
    await context.close()


async def test_decline_from_the_page_offers_the_next_drone(browser, runtime: Runtime, live_url: str) -> None:
    page = await browser.new_page()
    await page.goto(live_url + "/pilot")
    await page.fill("#token", TOKEN["pilot_a"])
    await page.click("button[type=submit]")
    await page.wait_for_selector("#link.live", timeout=10_000)
    s = runtime.config.station(support.STATION_A)
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.post(
            "/api/v1/incidents",
            json={"grade": 2, "category": "fire", "lat": s.lat + 0.004, "lon": s.lon},
            headers=auth("commander"),
        )
    (mission,) = runtime.center.incident_missions(r.json()["id"])
    card = page.locator(f"article[data-mission='{mission.id}']")
    await card.locator("button[data-act=decline]").click()
    await card.wait_for(state="detached", timeout=10_000)
    assert mission.state.value == "declined"
    assert len(runtime.center.incident_missions(r.json()["id"])) == 2


async def test_a_bad_token_is_refused_on_the_page(browser, live_url: str) -> None:
    page = await browser.new_page()
    await page.goto(live_url + "/pilot")
    await page.fill("#token", "wrong-token-0000000000")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#signin-error:has-text('unknown bearer token')", timeout=10_000)
