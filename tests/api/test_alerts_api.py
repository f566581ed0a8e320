"""GET /alerts and POST /alerts/{id}/ack over HTTP: role-scoped lists, open/kind filters, acknowledgement rules."""

from __future__ import annotations

import httpx

from controller import geo
from controller.runtime import Runtime
from tests import support
from tests.hotspots.scenes import fly_over_person, search_in_flight


async def call(
    rt: Runtime, client: httpx.AsyncClient, north_m: float, category: str = "traffic_accident", station: str = support.STATION_A,
) -> dict:
    s = rt.config.station(station)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    r = await client.post("/api/v1/incidents", json={"grade": 2, "category": category, "lat": lat, "lon": lon},
                          headers=support.auth("commander"))
    assert r.status_code == 201, r.text
    return r.json()


async def alerts(client: httpx.AsyncClient, who: str, query: str = "") -> list[dict]:
    r = await client.get(f"/api/v1/alerts{query}", headers=support.auth(who))
    assert r.status_code == 200, r.text
    return r.json()


async def test_alerts_are_scoped_filtered_and_acknowledged(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rt = runtime
    a_inc = await call(rt, client, 500.0)
    b_inc = await call(rt, client, 500.0, category="fire", station=support.STATION_B)
    (ma,) = rt.center.incident_missions(a_inc["id"])
    (mb,) = rt.center.incident_missions(b_inc["id"])
    assert (ma.station_id, mb.station_id) == (support.STATION_A, support.STATION_B)
    await rt.center.commands.warn_offers([ma.id, mb.id])
    await rt.center.reports.link_state(mb.drone_id, False)

    everything = await alerts(client, "commander")
    assert [a["kind"] for a in everything] == ["link_lost", "offer_expiring", "offer_expiring"]  # newest first
    assert everything[0]["id"] > everything[1]["id"] > everything[2]["id"]
    mine = await alerts(client, "pilot_a")
    assert [(a["kind"], a["mission_id"]) for a in mine] == [("offer_expiring", ma.id)]
    assert {a["station_id"] for a in await alerts(client, "pilot_b")} == {support.STATION_B}
    assert await alerts(client, "search_team") == []  # no missing-person search yet
    assert [a["kind"] for a in await alerts(client, "commander", "?kind=link_lost")] == ["link_lost"]
    assert len(await alerts(client, "commander", "?limit=1")) == 1

    target = mine[0]
    assert target["acknowledged"] is None and target["severity"] == "warning" and target["at"].endswith("Z")
    r = await client.post(f"/api/v1/alerts/{target['id']}/ack", headers=support.auth("pilot_b"))
    assert r.status_code == 403 and "own station" in r.json()["detail"]
    r = await client.post(f"/api/v1/alerts/{target['id']}/ack", headers=support.auth("search_team"))
    assert r.status_code == 403
    r = await client.post(f"/api/v1/alerts/{target['id']}/ack", headers=support.auth("pilot_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == target["id"] and body["acknowledged"]["by"] == {"name": "pilot-a", "role": "pilot"}
    r = await client.post(f"/api/v1/alerts/{target['id']}/ack", headers=support.auth("commander"))
    assert r.status_code == 409 and "already acknowledged by pilot-a (pilot)" in r.json()["detail"]
    open_now = await alerts(client, "commander", "?open=true")
    assert target["id"] not in [a["id"] for a in open_now] and len(open_now) == 2
    assert (await alerts(client, "commander"))[2]["acknowledged"]["by"]["name"] == "pilot-a"

    r = await client.post("/api/v1/alerts/999999/ack", headers=support.auth("commander"))
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    for bad in ("abc", "0", "-3", "1.5", "..%2F..%2Fetc"):
        r = await client.post(f"/api/v1/alerts/{bad}/ack", headers=support.auth("commander"))
        assert r.status_code in (404, 422), (bad, r.status_code)
        if r.status_code == 422:
            assert r.json()["detail"][0]["loc"] == ["path", "alert_id"]
    r = await client.get("/api/v1/alerts?kind=nonsense", headers=support.auth("commander"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "kind", 0]
    r = await client.get("/api/v1/alerts?limit=0", headers=support.auth("commander"))
    assert r.status_code == 422


async def test_a_new_hotspot_alerts_the_search_team_and_commanders(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rt = runtime
    inc = await search_in_flight(rt)
    spot = geo.destination(rt.center.view.incident(inc).lat, rt.center.view.incident(inc).lon, 90.0, 40.0)
    assert await fly_over_person(rt, inc, *spot) == 1
    (hs,) = [a for a in await alerts(client, "search_team") if a["kind"] == "hotspot_new"]
    assert hs["incident_id"] == inc and hs["category"] == "missing_person" and "HS-" in hs["text"]
    assert hs["id"] in [a["id"] for a in await alerts(client, "commander", "?kind=hotspot_new")]
    assert not [a for a in await alerts(client, "pilot_b") if a["kind"] == "hotspot_new"]
    hotspots = rt.hotspots.list(inc)
    assert len(hotspots) == 1 and hotspots[0].id in hs["text"]
    # only one alert per hotspot: its later updates raise none
    await fly_over_person(rt, inc, *spot, frames=8)
    assert len([a for a in await alerts(client, "commander") if a["kind"] == "hotspot_new"]) == 1
