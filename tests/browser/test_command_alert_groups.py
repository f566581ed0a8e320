"""The command console groups many open alerts of one kind (issue 18): six calls far beyond every drone's reach
each raise `queued_no_drone`; both consoles show one group card "No drone · 6 incidents" instead of six cards. It
expands from the keyboard; "Acknowledge all 6…" asks first in the console's dialog (Esc keeps them), then
acknowledges each alert through the API, a few at a time, counting one already acknowledged by someone else (409)
as done; the other console sees the group go live, and the API has none of that kind open.

Screenshots go to $COMMAND_SCREENS (default /tmp/issue18/screens): alerts-grouped.png, alerts-grouped-expanded.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from controller import geo
from tests import support
from tests.browser.test_command_console import open_console, shot, small_world

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KIND = "queued_no_drone"
CALLS = 6


async def test_many_alerts_of_one_kind_are_one_group_acknowledged_all_at_once(browser, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.browser.axe import assert_no_serious_violations

    async with small_world(tmp_path) as w:
        errors: list[str] = []
        a = await open_console(browser, w.url, errors)
        b = await open_console(browser, w.url, errors)

        s = w.rt.config.station(support.STATION_A)
        for i in range(CALLS):
            lat, lon = geo.destination(s.lat, s.lon, 20.0 * i, 60_000.0)  # 60 km out: no drone can take it
            r = await w.api("POST", "/incidents", json={"category": "fire", "grade": 2, "lat": lat, "lon": lon,
                                                       "description": f"Barn fire {i + 1}, far out of town"})
            assert r.status_code in (200, 201), r.text

        async def open_of_kind() -> list[dict[str, Any]]:
            r = await w.api("GET", "/alerts?open=true&limit=200")
            assert r.status_code == 200, r.text
            return [x for x in r.json() if x["kind"] == KIND]

        alerts = await w.until(open_of_kind, lambda xs: len(xs) == CALLS, 20, f"{CALLS} {KIND} alerts")

        # One group card on both consoles, with the count, and no single card of that kind beside it.
        group = f"#alerts > li.alert-group[data-kind={KIND}]"
        for page in (a, b):
            await page.wait_for_selector(f"{group}[data-count='{CALLS}']", timeout=10_000)
            assert await page.locator(f"#alerts > li.alert[data-kind={KIND}]:not(.alert-group)").count() == 0
        card = a.locator(group)
        assert f"No drone · {CALLS} incidents" in await card.locator(".kind").inner_text()
        assert "and 1 more" in await card.locator(".alert-text").inner_text()  # the first 5 are named
        assert await card.locator("button.ack-all").inner_text() == f"Acknowledge all {CALLS}…"
        await shot(a, "alerts-grouped")

        # "show all" from the keyboard lists every alert with its own Acknowledge button.
        expand = card.locator("button.expand")
        await expand.focus()
        await a.keyboard.press("Enter")
        await card.locator(".group-members > li.alert").nth(CALLS - 1).wait_for(timeout=5_000)
        assert await card.locator(".group-members > li.alert").count() == CALLS
        assert await card.locator("button.expand").get_attribute("aria-expanded") == "true"
        assert await a.evaluate("document.activeElement.dataset.expand") == f"{KIND}#0"  # focus kept
        await shot(a, "alerts-grouped-expanded")
        await assert_no_serious_violations(a)

        # Acknowledge all asks first; Esc keeps them.
        await card.locator("button.ack-all").click()
        await a.wait_for_selector("#confirm[open]")
        assert f"Acknowledge all {CALLS}" in await a.locator("#confirm-title").inner_text()
        await a.keyboard.press("Escape")
        await a.wait_for_selector("#confirm", state="hidden")
        assert len(await open_of_kind()) == CALLS

        # Again, and while the dialog is open someone else acknowledges one of them (a 409 later: counted as done).
        await card.locator("button.ack-all").click()
        await a.wait_for_selector("#confirm[open]")
        r = await w.api("POST", f"/alerts/{alerts[0]['id']}/ack", who="admin")
        assert r.status_code == 200, r.text
        await a.click("#confirm-ok")
        await a.wait_for_selector(group, state="detached", timeout=15_000)
        await b.wait_for_selector(group, state="detached", timeout=15_000)  # live on the other console
        await a.locator("#alerts li.kind-console", has_text=f"of {CALLS} \"No drone\" alerts").wait_for(timeout=10_000)
        done = await a.locator("#alerts li.kind-console").last.inner_text()
        assert f"Acknowledged {CALLS} of {CALLS}" in done and "1 already by someone else" in done, done
        assert await open_of_kind() == []

        # The other console, showing acknowledged ones, has who and when on each.
        await b.locator("#alerts-show-acked").check()
        await b.locator(f"#alerts li[data-kind={KIND}] .ack-by", has_text="Acknowledged by admin").wait_for(timeout=5_000)
        assert await b.locator(f"#alerts li[data-kind={KIND}] .ack-by", has_text="Acknowledged by cmd").count() == CALLS - 1
        assert errors == []
