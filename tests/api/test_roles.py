"""Every endpoint with an allowed and a refused role (and no token at all)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from controller import geo
from controller.runtime import Runtime
from tests import support
from tests.support import auth


@dataclass
class World:
    incident_id: str
    mission_id: str
    drone_a: str
    drone_b: str


async def make_world(client: httpx.AsyncClient, rt: Runtime) -> World:
    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0, 400)
    r = await client.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": lat, "lon": lon}, headers=auth("commander"))
    assert r.status_code == 201, r.text
    inc_id = r.json()["id"]
    (m,) = [m for m in rt.center.incident_missions(inc_id)]
    assert m.station_id == support.STATION_A
    return World(inc_id, m.id, s.drones[0].id, rt.config.station(support.STATION_B).drones[0].id)


def incident_body() -> dict:
    return {"grade": 3, "category": "other", "lat": 32.0, "lon": 118.8}


# (name, method, path, body, allowed, refused)
ENDPOINTS = [
    ("create incident", "POST", "/api/v1/incidents", incident_body(), ["commander", "admin"], ["pilot_a", "search_team"]),
    ("list incidents", "GET", "/api/v1/incidents", None, ["commander", "pilot_a", "search_team"], []),
    ("list incidents of another station", "GET", f"/api/v1/incidents?station={support.STATION_A}", None, ["commander", "pilot_a"], ["pilot_b"]),
    ("list fire incidents", "GET", "/api/v1/incidents?category=fire", None, ["commander", "admin"], ["search_team"]),
    ("get incident", "GET", "/api/v1/incidents/{inc}", None, ["commander", "pilot_a"], ["pilot_b", "search_team"]),
    ("cancel incident", "POST", "/api/v1/incidents/{inc}/cancel", {"reason": "test"}, ["commander"], ["pilot_a", "search_team"]),
    ("resolve incident", "POST", "/api/v1/incidents/{inc}/resolve", {}, ["admin"], ["pilot_a", "search_team"]),
    ("list missions", "GET", "/api/v1/missions", None, ["commander", "pilot_a", "search_team"], []),
    ("list another station's missions", "GET", f"/api/v1/missions?station={support.STATION_A}", None, ["pilot_a"], ["pilot_b"]),
    ("get mission", "GET", "/api/v1/missions/{msn}", None, ["commander", "pilot_a"], ["pilot_b", "search_team"]),
    ("accept", "POST", "/api/v1/missions/{msn}/accept", None, ["pilot_a"], ["commander", "admin", "search_team", "pilot_b"]),
    ("decline", "POST", "/api/v1/missions/{msn}/decline", {"reason": "x"}, ["pilot_a"], ["commander", "search_team", "pilot_b"]),
    ("abort", "POST", "/api/v1/missions/{msn}/abort", {"reason": "x"}, ["commander", "pilot_a"], ["search_team", "pilot_b"]),
    ("stations", "GET", "/api/v1/stations", None, ["commander", "pilot_b", "search_team", "admin"], []),
    ("drones", "GET", "/api/v1/drones", None, ["commander", "pilot_a", "search_team"], []),
    ("drones of another station", "GET", f"/api/v1/drones?station={support.STATION_A}", None, ["pilot_a"], ["pilot_b"]),
    ("get drone", "GET", "/api/v1/drones/{drone_b}", None, ["commander", "pilot_b"], ["pilot_a"]),
    ("maintenance", "POST", "/api/v1/drones/{drone_b}/maintenance", {"on": True}, ["admin"], ["commander", "pilot_b", "search_team"]),
    ("me", "GET", "/api/v1/me", None, ["commander", "pilot_a", "search_team", "admin"], []),
    ("metrics", "GET", "/api/v1/metrics", None, ["commander", "admin"], ["pilot_a", "search_team"]),
    ("ui config", "GET", "/api/v1/ui-config", None, ["commander", "pilot_a", "search_team", "admin"], []),
    ("list hotspots", "GET", "/api/v1/hotspots", None, ["commander", "search_team", "admin"], ["pilot_a"]),
    ("hotspots as GeoJSON", "GET", "/api/v1/hotspots.geojson", None, ["search_team", "commander"], ["pilot_b"]),
    ("hotspots as KML", "GET", "/api/v1/hotspots.kml", None, ["search_team"], ["pilot_a"]),
    ("video feeds", "GET", "/api/v1/video/feeds", None, ["commander", "pilot_a", "search_team"], []),
]


def _path(template: str, w: World) -> str:
    return template.format(inc=w.incident_id, msn=w.mission_id, drone_a=w.drone_a, drone_b=w.drone_b)


CASES = [(e[0], who, True) for e in ENDPOINTS for who in e[4]] + [(e[0], who, False) for e in ENDPOINTS for who in e[5]]


@pytest.mark.parametrize(("name", "who", "allowed"), CASES, ids=[f"{c[0]}-{c[1]}-{'ok' if c[2] else 'refused'}" for c in CASES])
async def test_role(client: httpx.AsyncClient, runtime: Runtime, name: str, who: str, allowed: bool) -> None:
    _, method, template, body, _, _ = next(e for e in ENDPOINTS if e[0] == name)
    w = await make_world(client, runtime)
    seq = runtime.center.bus.last_published_seq
    r = await client.request(method, _path(template, w), json=body, headers=auth(who))
    if allowed:
        assert r.status_code in (200, 201), r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["detail"]
        assert runtime.center.bus.last_published_seq == seq, "a refused request changes nothing"


@pytest.mark.parametrize("name", [e[0] for e in ENDPOINTS])
async def test_no_token_is_401(client: httpx.AsyncClient, runtime: Runtime, name: str) -> None:
    _, method, template, body, _, _ = next(e for e in ENDPOINTS if e[0] == name)
    w = await make_world(client, runtime)
    r = await client.request(method, _path(template, w), json=body)
    assert r.status_code == 401
    r = await client.request(method, _path(template, w), json=body, headers={"Authorization": "Bearer not-a-real-token-123"})
    assert r.status_code == 401


async def test_pilot_list_is_scoped_to_its_station(client: httpx.AsyncClient, runtime: Runtime) -> None:
    w = await make_world(client, runtime)
    mine = (await client.get("/api/v1/missions", headers=auth("pilot_a"))).json()
    assert [m["id"] for m in mine] == [w.mission_id]
    theirs = (await client.get("/api/v1/missions", headers=auth("pilot_b"))).json()
    assert theirs == []
    drones = (await client.get("/api/v1/drones", headers=auth("pilot_b"))).json()
    assert drones and {d["station_id"] for d in drones} == {support.STATION_B}


async def test_search_team_sees_only_missing_person_incidents(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await make_world(client, runtime)
    body = {"grade": 1, "category": "missing_person", "lat": 31.95, "lon": 118.84, "description": "90-year-old man"}
    r = await client.post("/api/v1/incidents", json=body, headers=auth("commander"))
    seen = (await client.get("/api/v1/incidents", headers=auth("search_team"))).json()
    assert [i["id"] for i in seen] == [r.json()["id"]]
    detail = await client.get(f"/api/v1/incidents/{r.json()['id']}", headers=auth("search_team"))
    assert detail.status_code == 200
