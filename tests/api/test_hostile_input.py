"""Hand-written hostile input, each a 4xx naming the field (never a 500): non-finite numbers and lone surrogates in
every field of every body, out-of-range dates, wrong JSON types, search areas that cover the world or another
country, oversized chunked bodies, junk SDP. Every 422 body is strict JSON in the documented shape."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection

from controller import geo
from controller.api.schemas import MAX_SEARCH_AREA_M2
from controller.runtime import Runtime
from controller.video.hub import VideoError, VideoHub
from tests import support
from tests.support import auth

DRONE = f"{support.STATION_A}-D1"
INCIDENT = {"grade": 2, "category": "fire", "lat": 32.05, "lon": 118.79}
SEARCH = {"grade": 2, "category": "missing_person", "lat": 32.05, "lon": 118.79}
SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"

#: (method, path, caller, a valid body): every endpoint that takes a JSON body.
BODIES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/incidents", "commander", {**INCIDENT, "address": "1 Main St", "description": "smoke", "caller": "Li"}),
    ("POST", "/api/v1/incidents", "commander", {**SEARCH, "search_radius_m": 500.0, "drones_requested": 2}),
    ("POST", "/api/v1/incidents/INC-000001/cancel", "commander", {"reason": "x"}),
    ("POST", "/api/v1/incidents/INC-000001/resolve", "commander", {"reason": "x"}),
    ("POST", "/api/v1/incidents/INC-000001/search-drones", "commander", {"count": 1}),
    ("POST", "/api/v1/missions/MSN-000001/decline", "pilot_a", {"reason": "x"}),
    ("POST", "/api/v1/missions/MSN-000001/abort", "commander", {"reason": "x"}),
    ("POST", f"/api/v1/drones/{DRONE}/maintenance", "admin", {"on": True, "reason": "x"}),
    ("POST", "/api/v1/hotspots/HS-000001/status", "search_team", {"status": "confirmed", "note": "x"}),
    ("POST", f"/api/v1/video/publish/{DRONE}", "drone_a1", {"sdp": SDP, "type": "offer", "kinds": ["visible"]}),
    ("POST", "/api/v1/video/watch", "commander", {"drone_id": DRONE, "kind": "visible", "sdp": SDP, "type": "offer"}),
]


def strict_json(text: str) -> Any:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in a response: not JSON")

    return json.loads(text, parse_constant=refuse)


def assert_names(r: httpx.Response, *loc: str | int) -> list[dict]:
    """A 422 in the documented shape whose errors include one at `loc` (a prefix of it)."""
    assert r.status_code == 422, (r.status_code, r.text[:300])
    detail = strict_json(r.text)["detail"]
    assert isinstance(detail, list) and detail
    for item in detail:
        assert isinstance(item["loc"], list) and all(isinstance(p, str | int) for p in item["loc"]), item
        assert isinstance(item["msg"], str) and item["msg"] and isinstance(item["type"], str), item
    assert any(tuple(item["loc"][: len(loc)]) == loc for item in detail), (loc, detail)
    return detail


async def send(client: httpx.AsyncClient, method: str, path: str, who: str, raw: str) -> httpx.Response:
    headers = {**auth(who), "content-type": "application/json"}
    return await client.request(method, path, content=raw.encode("utf-8", "surrogatepass"), headers=headers)


def with_raw(body: dict[str, Any], field: str, raw_value: str) -> str:
    """`body` as JSON with `field` set to a raw JSON token (NaN, "\\ud800" ...)."""
    marker = "__RAW__"
    return json.dumps({**body, field: marker}).replace(f'"{marker}"', raw_value)


FLOAT_FIELDS = [("lat", INCIDENT), ("lon", INCIDENT), ("search_radius_m", SEARCH)]
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


async def test_non_finite_numbers_are_422(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for token in NON_FINITE:
        for field, base in FLOAT_FIELDS:
            r = await send(client, "POST", "/api/v1/incidents", "commander", with_raw(base, field, token))
            detail = assert_names(r, "body", field)
            assert any("finite" in d["msg"] for d in detail), (token, detail)
        ring = "[[118.79, 32.05], [118.8, %s], [118.8, 32.06], [118.79, 32.05]]" % token
        raw = json.dumps(SEARCH)[:-1] + f', "search_polygon": {ring}}}'
        assert_names(await send(client, "POST", "/api/v1/incidents", "commander", raw), "body", "search_polygon", 1)
    assert runtime.center.incidents == {}


@pytest.mark.parametrize("token", ["NaN", "Infinity"])
async def test_non_finite_numbers_anywhere_else_are_422_and_the_answer_is_json(client: httpx.AsyncClient, token) -> None:
    for method, path, who, body in BODIES:
        for field in body:
            r = await send(client, method, path, who, with_raw(body, field, token))
            assert_names(r, "body", field)
        r = await send(client, method, path, who, with_raw(body, "extra", token))
        assert_names(r, "body", "extra")


@pytest.mark.parametrize("surrogate", ['"\\ud800"', '"a\\udfff b"', '"\\udc80"'])
async def test_lone_surrogates_in_any_string_are_422(client: httpx.AsyncClient, runtime: Runtime, surrogate: str) -> None:
    for method, path, who, body in BODIES:
        for field, value in body.items():
            if isinstance(value, str):
                r = await send(client, method, path, who, with_raw(body, field, surrogate))
                detail = assert_names(r, "body", field)
                assert any("surrogate" in d["msg"] or "Input should be" in d["msg"] for d in detail), detail
            elif isinstance(value, list) and value and isinstance(value[0], str):
                r = await send(client, method, path, who, with_raw(body, field, f"[{surrogate}]"))
                assert_names(r, "body", field)
        # a key that cannot be encoded either
        raw = json.dumps(body)[:-1] + f", {surrogate}: 1}}"
        r = await send(client, method, path, who, raw)
        assert r.status_code == 422 and strict_json(r.text)["detail"]
    assert runtime.center.incidents == {}


async def test_control_characters_are_422(client: httpx.AsyncClient) -> None:
    for value in ('"a\\u0000b"', '"\\u001b[31m"'):
        r = await send(client, "POST", "/api/v1/incidents", "commander", with_raw(INCIDENT, "description", value))
        detail = assert_names(r, "body", "description")
        assert "control character" in detail[0]["msg"]
    r = await client.post("/api/v1/incidents", json={**INCIDENT, "description": "line one\nline two\ttab"}, headers=auth("commander"))
    assert r.status_code == 201, r.text


BAD_QUERIES = [
        ("created_after=9999-12-31T23:59:59-23:59", "created_after"),
        ("created_before=0001-01-01T00:00:00%2B01:00", "created_before"),
        ("created_after=0001-01-01T00:00:00%2B23:59", "created_after"),
        ("created_after=10000-01-01T00:00:00Z", "created_after"),
        ("created_after=2024-02-30T00:00:00Z", "created_after"),
        ("grade=0", "grade"),
        ("grade=99999999999999999999999", "grade"),
        ("grade=one", "grade"),
        ("limit=1e3", "limit"),
        ("offset=-1", "offset"),
        ("station=%00", "station"),
        ("station=" + "s" * 65, "station"),
]


async def test_bad_query_values_are_422(client: httpx.AsyncClient) -> None:
    for query, field in BAD_QUERIES:
        r = await client.get(f"/api/v1/incidents?{query}", headers=auth("commander"))
        assert_names(r, "query", field)


async def test_dates_that_convert_are_accepted(client: httpx.AsyncClient) -> None:
    for query in (
        "created_after=0001-01-01T00:00:00Z",
        "created_before=9999-12-31T23:59:59Z",
        "created_after=2026-01-01T00:00:00",  # no zone: UTC
        "created_after=2026-01-01T08:00:00%2B08:00",
    ):
        r = await client.get(f"/api/v1/incidents?{query}", headers=auth("commander"))
        assert r.status_code == 200, (query, r.text)


STRICT = [
        ({**INCIDENT, "grade": "1"}, "grade"),
        ({**INCIDENT, "grade": 1.5}, "grade"),
        ({**INCIDENT, "grade": True}, "grade"),
        ({**INCIDENT, "lat": True}, "lat"),
        ({**INCIDENT, "lat": "32.05"}, "lat"),
        ({**INCIDENT, "lon": None}, "lon"),
        ({**INCIDENT, "drones_requested": "2"}, "drones_requested"),
        ({**SEARCH, "search_radius_m": "500"}, "search_radius_m"),
        ({**INCIDENT, "description": 5}, "description"),
        ({**INCIDENT, "category": ["fire"]}, "category"),
]


async def test_strict_types(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for body, field in STRICT:
        r = await client.post("/api/v1/incidents", json=body, headers=auth("commander"))
        assert_names(r, "body", field)
    assert runtime.center.incidents == {}
    # an integral JSON number is an integer, as JSON Schema has it
    r = await client.post("/api/v1/incidents", json={**INCIDENT, "grade": 2.0}, headers=auth("commander"))
    assert r.status_code == 201 and r.json()["grade"] == 2


async def test_strict_types_in_the_other_bodies(client: httpx.AsyncClient) -> None:
    cases = [
        ("POST", f"/api/v1/drones/{DRONE}/maintenance", "admin", {"on": "yes"}, "on"),
        ("POST", f"/api/v1/drones/{DRONE}/maintenance", "admin", {"on": 1}, "on"),
        ("POST", "/api/v1/incidents/INC-000001/search-drones", "commander", {"count": "1"}, "count"),
        ("POST", "/api/v1/incidents/INC-000001/cancel", "commander", {"reason": 7}, "reason"),
    ]
    for method, path, who, body, field in cases:
        assert_names(await client.request(method, path, json=body, headers=auth(who)), "body", field)


def square(lat: float, lon: float, side_m: float) -> list[list[float]]:
    """A closed [lon, lat] square with its south-west corner at (lat, lon)."""
    n_lat, _ = geo.destination(lat, lon, 0, side_m)
    _, e_lon = geo.destination(lat, lon, 90, side_m)
    return [[lon, lat], [e_lon, lat], [e_lon, n_lat], [lon, n_lat], [lon, lat]]


BAD_AREAS = [
        ([[-180, -89], [180, -89], [180, 89], [-180, 89], [-180, -89]], ("body", "search_polygon", 0), "km from"),
        (square(48.85, 2.35, 1000), ("body", "search_polygon", 0), "km from"),  # Paris
        (square(39.9, 116.4, 1000), ("body", "search_polygon", 0), "km from"),  # Beijing, in range of nothing here
        (square(31.9, 118.6, 25_000), ("body", "search_polygon"), "larger than"),
        (square(32.05, 118.79, 10), ("body", "search_polygon"), "smaller than"),
        ([[118.79, 32.05], [118.80, 32.06], [118.80, 32.05], [118.79, 32.06], [118.79, 32.05]], ("body", "search_polygon"), "not a simple polygon"),
        ([[118.79, 32.05], [118.80, 32.05], [118.80, 32.06], [118.79, 32.06]], ("body", "search_polygon"), "closed"),
        ([[118.79, 32.05], [118.80, 32.05], [118.79, 32.05]], ("body", "search_polygon"), "at least 4"),
        ([[118.79, 32.05, 3.0], [118.80, 32.05], [118.80, 32.06], [118.79, 32.05]], ("body", "search_polygon", 0), "at most 2"),
        ([[181, 32.05], [118.80, 32.05], [118.80, 32.06], [181, 32.05]], ("body", "search_polygon", 0, 0), "less than or equal to 180"),
]  # the world, Paris, Beijing (in no station's reach), 25 km square, 10 m square, bow-tie, open, short, 3-D, out of range


async def test_search_areas_must_be_reachable_and_bounded(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for ring, loc, fragment in BAD_AREAS:
        r = await client.post("/api/v1/incidents", json={**SEARCH, "search_polygon": ring}, headers=auth("commander"))
        detail = assert_names(r, *loc)
        assert any(fragment in d["msg"] for d in detail), (fragment, detail)
    assert runtime.center.incidents == {}


async def test_search_area_rules_between_fields(client: httpx.AsyncClient, runtime: Runtime) -> None:
    ring = square(32.05, 118.79, 1000)
    r = await client.post("/api/v1/incidents", json={**INCIDENT, "search_polygon": ring}, headers=auth("commander"))
    assert any("only for missing_person" in d["msg"] for d in assert_names(r, "body", "search_polygon"))
    r = await client.post("/api/v1/incidents", json={**SEARCH, "search_radius_m": 300.0, "search_polygon": ring}, headers=auth("commander"))
    assert any("not both" in d["msg"] for d in assert_names(r, "body", "search_polygon"))
    assert runtime.center.incidents == {}
    r = await client.post("/api/v1/incidents", json={**SEARCH, "search_polygon": ring}, headers=auth("commander"))
    assert r.status_code == 201, r.text
    assert r.json()["search_area"]["polygon"] == ring
    side = math.sqrt(MAX_SEARCH_AREA_M2) * 0.99  # just under the cap
    body = {**SEARCH, "lat": 31.95, "lon": 118.7, "search_polygon": square(31.95, 118.7, side)}
    r = await client.post("/api/v1/incidents", json=body, headers=auth("commander"))
    assert r.status_code == 201, r.text


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    async def chunks():
        yield b'{"grade": 2, "category": "fire", "lat": 32.05, "lon": 118.79, "description": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    r = await client.post("/api/v1/incidents", content=chunks(), headers={**auth("commander"), "content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large", r.text
    assert runtime.center.incidents == {}


async def test_malformed_content_length_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/incidents", content=b"{}", headers={**auth("commander"), "content-type": "application/json", "content-length": "1e3"}
    )
    assert r.status_code == 400 and "Content-Length" in r.json()["detail"]


async def test_from_position_needs_both_halves(client: httpx.AsyncClient) -> None:
    for query, field in (("from_lat=32", "from_lon"), ("from_lon=118", "from_lat"), ("from_lat=nan&from_lon=1", "from_lat")):
        r = await client.get(f"/api/v1/hotspots?{query}", headers=auth("search_team"))
        assert_names(r, "query", field)


@pytest.mark.parametrize(
    ("sdp", "field", "fragment"),
    [
        ("v=0 junk junk junk", "sdp", "not a valid SDP offer"),
        ("v=0\r\n" * 3, "sdp", "no video section"),
        ("hello, this is not SDP", "sdp", "no video section"),
        (SDP + "m=video abc UDP/TLS/RTP/SAVPF 96\r\n", "sdp", "not a valid SDP offer"),
        (SDP + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", "sdp", "no video section"),
        (SDP + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", "sdp", "only video"),
        (SDP + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n", "sdp", "ICE credentials"),
    ],
)
async def test_junk_sdp_from_a_drone_is_422_and_leaves_nothing_open(
    client: httpx.AsyncClient, runtime: Runtime, sdp: str, field: str, fragment: str
) -> None:
    tasks = len(asyncio.all_tasks())
    r = await client.post(
        f"/api/v1/video/publish/{DRONE}", json={"sdp": sdp, "type": "offer", "kinds": ["visible"]}, headers=auth("drone_a1")
    )
    detail = assert_names(r, "body", field)
    assert fragment in detail[0]["msg"], detail
    assert runtime.video.hub.stats() == {"publishers": 0, "feeds": 0, "viewers": 0, "forwarded_streams": 0}
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks()) <= tasks


async def offer(video_sections: int = 1, strip: str | None = None) -> str:
    pc = RTCPeerConnection()
    try:
        for _ in range(video_sections):
            pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
    finally:
        await pc.close()
    if strip:
        sdp = "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith(strip))
    return sdp


async def test_offers_aiortc_would_take_and_fail_on_later_are_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for sdp, kinds, field, fragment in (
        (await offer(strip="a=fingerprint"), ["visible"], "sdp", "DTLS fingerprint"),
        (await offer(2), ["visible"], "kinds", "2 video sections"),
        ((await offer()).replace("VP8/90000", "XYZ/90000").replace("H264/90000", "XYZ/90000"), ["visible"], "sdp", "codecs"),
    ):
        r = await client.post(f"/api/v1/video/publish/{DRONE}", json={"sdp": sdp, "type": "offer", "kinds": kinds}, headers=auth("drone_a1"))
        detail = assert_names(r, "body", field)
        assert fragment in detail[0]["msg"], detail
        assert runtime.video.hub.stats()["publishers"] == 0


async def test_a_junk_offer_does_not_end_the_drones_live_connection() -> None:
    hub = VideoHub()
    try:
        await hub.publish("D1", await offer(), ["visible"])
        session = hub.publisher_for("D1", "visible")
        with pytest.raises(VideoError):
            await hub.publish("D1", "v=0\r\n", ["visible"])
        assert hub.publisher_for("D1", "visible") is session and session.pc.connectionState != "closed"
    finally:
        await hub.close()
    assert hub.stats()["publishers"] == 0


async def test_unknown_route_and_method_answers_are_json(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing-here", headers=auth("commander"))
    assert r.status_code == 404 and r.json() == {"detail": "Not Found", "error": "not_found"}
    r = await client.put("/api/v1/incidents", headers=auth("commander"))
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
