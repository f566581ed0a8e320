"""Bad input gets a clear 4xx naming the field and the reason, and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from controller.runtime import Runtime
from tests import support
from tests.support import auth

GOOD = {"grade": 2, "category": "fire", "lat": 32.05, "lon": 118.79}


def with_(**kw):
    body = dict(GOOD)
    body.update(kw)
    return body


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        (with_(grade=7), "grade", "less than or equal to 4"),
        (with_(grade=0), "grade", "greater than or equal to 1"),
        (with_(lat=91.0), "lat", "less than or equal to 90"),
        (with_(lon=-181.0), "lon", "greater than or equal to -180"),
        (with_(lat="north"), "lat", "valid number"),
        (with_(category="arson"), "category", "Input should be"),
        (with_(description="x" * 4001), "description", "at most 4000 characters"),
        (with_(address="a" * 301), "address", "at most 300 characters"),
        (with_(drones_requested=0), "drones_requested", "greater than or equal to 1"),
        (with_(colour="red"), "colour", "Extra inputs are not permitted"),
        ({k: v for k, v in GOOD.items() if k != "category"}, "category", "Field required"),
        (with_(lat=40.0, lon=116.4), "lat", "more than 150 km from Nanjing"),
    ],
)
async def test_incident_field_errors(client: httpx.AsyncClient, runtime: Runtime, body, field, fragment) -> None:
    r = await client.post("/api/v1/incidents", json=body, headers=auth("commander"))
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and fragment in e["msg"] for e in errors), errors
    assert runtime.center.incidents == {}
    assert runtime.center.bus.last_published_seq == 0


async def test_empty_and_non_json_bodies(client: httpx.AsyncClient, runtime: Runtime) -> None:
    r = await client.post("/api/v1/incidents", headers=auth("commander"))
    assert r.status_code == 422 and r.json()["detail"][0]["msg"] == "Field required"
    r = await client.post("/api/v1/incidents", content=b"{not json", headers={**auth("commander"), "content-type": "application/json"})
    assert r.status_code == 422
    r = await client.post("/api/v1/incidents", json=[], headers=auth("commander"))
    assert r.status_code == 422
    assert runtime.center.incidents == {}


async def test_huge_body_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    r = await client.post("/api/v1/incidents", json=with_(description="x" * 200_000), headers=auth("commander"))
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    assert runtime.center.incidents == {}


@pytest.mark.parametrize(
    ("method", "path", "who", "body"),
    [
        ("GET", "/api/v1/incidents/INC-999999", "commander", None),
        ("POST", "/api/v1/incidents/INC-999999/cancel", "commander", {}),
        ("GET", "/api/v1/missions/MSN-999999", "commander", None),
        ("POST", "/api/v1/missions/MSN-999999/accept", "pilot_a", None),
        ("POST", "/api/v1/missions/MSN-999999/abort", "commander", {"reason": "x"}),
        ("GET", "/api/v1/drones/NO-SUCH-DRONE", "commander", None),
        ("POST", "/api/v1/drones/NO-SUCH-DRONE/maintenance", "admin", {"on": True}),
    ],
)
async def test_unknown_ids_are_404(client: httpx.AsyncClient, runtime: Runtime, method, path, who, body) -> None:
    r = await client.request(method, path, json=body, headers=auth(who))
    assert r.status_code == 404, r.text
    assert "not found" in r.json()["detail"]


async def test_bad_query_parameters(client: httpx.AsyncClient) -> None:
    for query in ("grade=7", "status=flying", "limit=0", "limit=100000", "created_after=yesterday"):
        r = await client.get(f"/api/v1/incidents?{query}", headers=auth("commander"))
        assert r.status_code == 422, (query, r.text)


async def test_abort_needs_a_reason(client: httpx.AsyncClient, runtime: Runtime) -> None:
    r = await client.post("/api/v1/incidents", json=GOOD, headers=auth("commander"))
    (m,) = runtime.center.incident_missions(r.json()["id"])
    r = await client.post(f"/api/v1/missions/{m.id}/abort", json={}, headers=auth("commander"))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "reason"]


async def test_conflicts_are_409_with_reason(client: httpx.AsyncClient, runtime: Runtime) -> None:
    station = runtime.config.station(support.STATION_A)
    body = with_(lat=station.lat + 0.003, lon=station.lon)
    inc = (await client.post("/api/v1/incidents", json=body, headers=auth("commander"))).json()["id"]
    (m,) = runtime.center.incident_missions(inc)
    assert m.station_id == support.STATION_A
    assert (await client.post(f"/api/v1/missions/{m.id}/decline", headers=auth("pilot_a"))).status_code == 200
    seq = runtime.center.bus.last_published_seq
    r = await client.post(f"/api/v1/missions/{m.id}/accept", headers=auth("pilot_a"))
    assert r.status_code == 409 and "cannot go from declined to accepted" in r.json()["detail"]
    assert runtime.center.bus.last_published_seq == seq

    (second,) = [x for x in runtime.center.incident_missions(inc) if x.state.value == "offered"]
    r = await client.post(f"/api/v1/drones/{second.drone_id}/maintenance", json={"on": True}, headers=auth("admin"))
    assert r.status_code == 409 and "only an idle drone" in r.json()["detail"]
    assert runtime.center.drones[second.drone_id].state.value == "offered"

    assert (await client.post(f"/api/v1/incidents/{inc}/cancel", json={}, headers=auth("commander"))).status_code == 200
    r = await client.post(f"/api/v1/incidents/{inc}/cancel", json={}, headers=auth("commander"))
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]
