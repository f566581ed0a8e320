"""Hotspot REST API: roles, bad input, exports, status rules, dismissed spots not raised again, adding search drones."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import httpx

from controller import geo
from controller.runtime import Runtime
from tests import support
from tests.hotspots.scenes import fly_over_person, search_in_flight
from tests.support import auth


async def test_hotspot_endpoints_roles_exports_and_status_rules(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rt = runtime
    inc = await search_in_flight(rt)
    spot = geo.destination(rt.center.incidents[inc].lat, rt.center.incidents[inc].lon, 45.0, 60.0)
    assert await fly_over_person(rt, inc, *spot) == 1
    (h,) = rt.hotspots.list(inc)
    # reading: search teams and command; not pilots
    for who, code in (("search_team", 200), ("commander", 200), ("pilot_a", 403)):
        assert (await client.get(f"/api/v1/hotspots/{h.id}", headers=auth(who))).status_code == code
        assert (await client.get(f"/api/v1/hotspots/{h.id}/thumbnail.png", headers=auth(who))).status_code == code
    assert (await client.get(f"/api/v1/hotspots/{h.id}")).status_code == 401
    assert (await client.get("/api/v1/hotspots/HS-999999", headers=auth("search_team"))).status_code == 404
    r = await client.get("/api/v1/hotspots?from_lat=32.0", headers=auth("search_team"))
    assert r.status_code == 422 and "from_lon" in r.text
    r = await client.get("/api/v1/hotspots?from_lat=95&from_lon=118", headers=auth("search_team"))
    assert r.status_code == 422 and "from_lat" in r.text
    # exports
    gj = await client.get(f"/api/v1/hotspots.geojson?incident={inc}", headers=auth("search_team"))
    assert gj.headers["content-type"].startswith("application/geo+json")
    feature = json.loads(gj.text)["features"][0]
    assert feature["geometry"]["coordinates"] == [round(h.lon, 7), round(h.lat, 7)]
    kml = await client.get("/api/v1/hotspots.kml", headers=auth("search_team"))
    assert ET.fromstring(kml.content).tag.endswith("kml") and h.id.encode() in kml.content
    # status: bad input changes nothing; pilots may not; illegal moves are 409
    for body in ({"status": "lost"}, {}, {"status": "found", "extra": 1}, {"status": "found", "note": "x" * 600}):
        r = await client.post(f"/api/v1/hotspots/{h.id}/status", json=body, headers=auth("search_team"))
        assert r.status_code == 422, body
    assert (await client.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "confirmed"}, headers=auth("pilot_a"))).status_code == 403
    assert rt.hotspots.get(h.id).status.value == "new"
    r = await client.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "confirmed"}, headers=auth("search_team"))
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    r = await client.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "dismissed", "note": "a dog"}, headers=auth("search_team"))
    assert r.status_code == 200
    r = await client.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "found"}, headers=auth("search_team"))
    assert r.status_code == 409 and "dismissed" in r.json()["detail"]
    # the dismissed spot is not raised again, by the same or another pass; the search stays open
    import time

    detected = rt.hotspots.frames_detected
    assert await fly_over_person(rt, inc, *spot, frames=16, t0=time.time() - 10) == 0
    assert rt.hotspots.frames_detected - detected >= 12, "the frames went through the detector"
    assert len(rt.hotspots.list(inc)) == 1 and rt.center.incidents[inc].is_open


async def test_dismissed_spots_survive_a_restart(tmp_path, config_dir) -> None:  # noqa: ANN001
    from tests.conftest import build_runtime

    rt = build_runtime(tmp_path, config_dir)
    await rt.start()
    inc = await search_in_flight(rt)
    spot = geo.destination(rt.center.incidents[inc].lat, rt.center.incidents[inc].lon, 45.0, 60.0)
    assert await fly_over_person(rt, inc, *spot) == 1
    (h,) = rt.hotspots.list(inc)
    from controller.auth import Principal, Role
    from controller.hotspots.records import HotspotStatus

    await rt.hotspots.set_status(h.id, HotspotStatus.DISMISSED, Principal(Role.SEARCH_TEAM, "team1"))
    await rt.stop()
    rt2 = build_runtime(tmp_path, config_dir)
    await rt2.start()
    try:
        assert rt2.hotspots.get(h.id).status is HotspotStatus.DISMISSED and rt2.hotspots.get(h.id).thumbnail_png
        assert await fly_over_person(rt2, inc, *spot) == 0
        assert rt2.hotspots.frames_detected >= 10 and rt2.hotspots.pipelines[inc].detections > 0
    finally:
        await rt2.stop()


async def test_adding_search_drones(client: httpx.AsyncClient, runtime: Runtime) -> None:
    inc = await search_in_flight(runtime)
    assert (await client.post(f"/api/v1/incidents/{inc}/search-drones", json={"count": 1}, headers=auth("pilot_a"))).status_code == 403
    for body in ({"count": 0}, {"count": 9}, {}, {"count": "two"}):
        r = await client.post(f"/api/v1/incidents/{inc}/search-drones", json=body, headers=auth("commander"))
        assert r.status_code == 422 and "count" in r.text
    r = await client.post(f"/api/v1/incidents/{inc}/search-drones", json={"count": 1}, headers=auth("commander"))
    assert r.status_code == 200 and r.json()["drones_requested"] == 2
    assert len(runtime.center.incident_missions(inc)) == 2  # the added drone is offered at once
    s = runtime.config.station(support.STATION_B)
    fire = await client.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": s.lat, "lon": s.lon}, headers=auth("commander"))
    r = await client.post(f"/api/v1/incidents/{fire.json()['id']}/search-drones", json={"count": 1}, headers=auth("commander"))
    assert r.status_code == 409 and "not a search" in r.json()["detail"]
    assert (await client.post("/api/v1/incidents/INC-999999/search-drones", json={"count": 1}, headers=auth("commander"))).status_code == 404
