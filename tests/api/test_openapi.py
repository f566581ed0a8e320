"""The OpenAPI document tells clients every status code, media type and input rule they will meet."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from controller.api.app import create_app


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(None, manage_lifecycle=False).openapi()  # type: ignore[arg-type]


def operations(doc: dict[str, Any]):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield method.upper(), path, op


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_every_operation_documents_its_error_codes(doc) -> None:
    missing = []
    for method, path, op in operations(doc):
        codes = set(op["responses"])
        if method == "OPTIONS":  # a CORS preflight (WHIP/WHEP): no token, no body, always 204
            assert codes == {"204"}, (path, codes)
            continue
        want: set[str] = set()
        if path != "/health":
            want |= {"401", "403"}
        if op.get("parameters") or "requestBody" in op:
            want.add("422")
        if "requestBody" in op or method == "POST":
            want |= {"400", "408", "413", "422"}
        if "{" in path:
            want.add("404")
        if method == "POST" and path.rsplit("/", 1)[-1] in ("cancel", "resolve", "search-drones", "accept", "decline", "abort", "maintenance", "status", "ack"):
            want.add("409")
        if want - codes:
            missing.append(f"{method} {path}: {sorted(want - codes)}")
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert response.get("description"), (method, path, code)
                assert "application/json" in response.get("content", {}), (method, path, code)
    assert not missing, missing


def test_error_bodies_are_documented(doc) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"detail", "error"}
    for method, path, op in operations(doc):
        if "422" in op["responses"]:
            schema = resolve(doc, op["responses"]["422"]["content"]["application/json"]["schema"])
            items = resolve(doc, schema["properties"]["detail"]["items"])
            assert schema["properties"]["detail"]["type"] == "array", (method, path)
            assert {"loc", "msg", "type"} <= set(items["required"]), (method, path)
            loc = items["properties"]["loc"]["items"]
            assert {t["type"] for t in loc["anyOf"]} == {"string", "integer"}
        for code in ("401", "403", "404", "409", "413"):
            if code in op["responses"]:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Problem"), (method, path, code)


def test_media_types(doc) -> None:
    paths = doc["paths"]
    assert list(paths["/api/v1/hotspots.geojson"]["get"]["responses"]["200"]["content"]) == ["application/geo+json"]
    assert list(paths["/api/v1/hotspots.kml"]["get"]["responses"]["200"]["content"]) == ["application/vnd.google-earth.kml+xml"]
    assert list(paths["/api/v1/hotspots/{hotspot_id}/thumbnail.png"]["get"]["responses"]["200"]["content"]) == ["image/png"]


def test_input_rules_are_in_the_schema(doc) -> None:
    incident = doc["components"]["schemas"]["IncidentCreate"]["properties"]
    grade = incident["grade"]
    assert grade["type"] == "integer" and grade["minimum"] == 1 and grade["maximum"] == 4
    assert "1 (most urgent" in grade["description"] and "strings" in grade["description"]
    radius = incident["search_radius_m"]["anyOf"][0]
    assert radius["exclusiveMinimum"] == 10 and radius["maximum"] == 10_000
    polygon = incident["search_polygon"]
    ring = polygon["anyOf"][0]
    assert ring["minItems"] == 4 and ring["maxItems"] == 200
    for part in ("closed ring", "service radius", "π·(10 km)²", "missing_person only"):
        assert part in polygon["description"], part
    position = ring["items"]["prefixItems"]
    assert position[0]["minimum"] == -180 and position[1]["maximum"] == 90
    assert incident["description"]["pattern"].startswith("^[^\\u0000")
    listing = next(op for m, p, op in operations(doc) if (m, p) == ("GET", "/api/v1/incidents"))
    created = next(p for p in listing["parameters"] if p["name"] == "created_after")
    assert created["schema"]["anyOf"][0]["format"] == "date-time"
    grades = next(p for p in listing["parameters"] if p["name"] == "grade")
    assert grades["schema"]["items"] == {"type": "integer", "minimum": 1, "maximum": 4}
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_the_served_document_is_the_same(client: httpx.AsyncClient, doc) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200 and r.json()["paths"].keys() == doc["paths"].keys()


def test_whip_whep_document_sdp_and_their_headers(doc) -> None:
    paths = doc["paths"]
    for path in ("/api/v1/whip/{drone_id}/{kind}", "/api/v1/whep/{drone_id}/{kind}"):
        post = paths[path]["post"]
        assert list(post["requestBody"]["content"]) == ["application/sdp"], path
        created = post["responses"]["201"]
        assert list(created["content"]) == ["application/sdp"] and {"Location", "ETag"} <= set(created["headers"]), path
        assert {"401", "403", "404", "415", "422"} <= set(post["responses"]), path
        assert "204" in paths[path]["options"]["responses"]
    assert "409" in paths["/api/v1/whip/{drone_id}/{kind}"]["post"]["responses"]
    for path in ("/api/v1/whip/{drone_id}/{kind}/{resource_id}", "/api/v1/whep/{drone_id}/{kind}/{viewer_id}"):
        assert {"204", "401", "403", "404"} <= set(paths[path]["delete"]["responses"]), path
        assert "patch" not in paths[path]  # no trickle ICE: PATCH is 405
