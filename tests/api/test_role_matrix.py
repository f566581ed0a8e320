"""Least privilege, as one table: every route of the app × every kind of caller → the status it gets.

The rows are enumerated from `app.routes`: a route without a row fails (add it, deciding who may call
it), and so does a row whose route is gone. Each row is called by the commander, the admin, the pilot of
the station the objects belong to (A) and the pilot of another station (B), the search team, the drone the
objects belong to (A-D1) and another drone (B-D1), with no token and with an unknown token. A refused call
changes nothing (no event is published). Calls that succeed and change state get a fresh controller each,
so every cell is judged against the same world.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route, WebSocketRoute

from controller import geo
from controller.api.app import create_app
from controller.auth import TokenRegistry
from controller.hotspots.records import HotspotRecord
from controller.runtime import Runtime
from controller.settings import Settings
from controller.video import whip
from controller.video.hub import PublisherSession, ViewerSession
from tests import support
from tests.evidence.helpers import record as record_evidence
from tests.mbtiles import make_mbtiles

A, B = support.STATION_A, support.STATION_B
DRONE_A, DRONE_B = f"{A}-D1", f"{B}-D1"
DRONE_B_TOKEN = "test-drone-b1-token-00001"
TOKENS = {
    **support.TOKEN,
    "drone_a": support.TOKEN["drone_a1"],
    "drone_b": DRONE_B_TOKEN,
    "bad": "not-a-real-token-0000000000",
}
CALLERS = ("commander", "admin", "pilot_a", "pilot_b", "search_team", "drone_a", "drone_b", "none", "bad")
OPEN = 101  # a WebSocket that opens and says hello

# fmt: off
#: route → status per caller                                    cmd  adm  pltA pltB team drnA drnB none bad
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("POST",   "/api/v1/incidents"):                              (201, 201, 403, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/incidents"):                              (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/incidents/{incident_id}"):                (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/incidents/{incident_id}/cancel"):         (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/incidents/{incident_id}/resolve"):        (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/incidents/{incident_id}/search-drones"):  (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/missions"):                               (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/missions/{mission_id}"):                  (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/missions/{mission_id}/accept"):           (403, 403, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/missions/{mission_id}/decline"):          (403, 403, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/missions/{mission_id}/abort"):            (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/stations"):                               (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/drones"):                                 (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/drones/{drone_id}"):                      (200, 200, 200, 403, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/drones/{drone_id}/track"):                (200, 200, 200, 403, 200, 403, 403, 401, 401),
    ("POST",   "/api/v1/drones/{drone_id}/maintenance"):          (403, 200, 403, 403, 403, 403, 403, 401, 401),
    # pilot control (issue 17): drone A's mission is only offered here, so no one can take control or command it (409)
    ("GET",    "/api/v1/drones/{drone_id}/control"):              (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/drones/{drone_id}/control/take"):         (409, 409, 409, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/drones/{drone_id}/control/release"):      (409, 409, 409, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/drones/{drone_id}/commands"):             (409, 409, 409, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/missions/{mission_id}/flight"):           (409, 409, 409, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/video/publish/{drone_id}"):               (403, 403, 403, 403, 403, 200, 403, 401, 401),
    ("POST",   "/api/v1/video/watch"):                            (404, 403, 404, 403, 403, 403, 403, 401, 401),
    ("DELETE", "/api/v1/video/viewers/{viewer_id}"):              (204, 403, 204, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/video/feeds"):                            (200, 200, 200, 200, 200, 403, 403, 401, 401),
    # WHIP/WHEP (issue 19): publish as /video/publish (+ admin), watch as /video/watch; the world's WHIP resource is
    # drone A's (a registered hub session), its WHEP resource the pilot A's viewer; CORS preflights need no token
    ("POST",   "/api/v1/whip/{drone_id}/{kind}"):                 (403, 201, 403, 403, 403, 201, 403, 401, 401),
    ("DELETE", "/api/v1/whip/{drone_id}/{kind}/{resource_id}"):   (403, 204, 403, 403, 403, 204, 403, 401, 401),
    ("OPTIONS", "/api/v1/whip/{drone_id}/{kind}"):                (204, 204, 204, 204, 204, 204, 204, 204, 204),
    ("OPTIONS", "/api/v1/whip/{drone_id}/{kind}/{resource_id}"):  (204, 204, 204, 204, 204, 204, 204, 204, 204),
    ("POST",   "/api/v1/whep/{drone_id}/{kind}"):                 (404, 403, 404, 403, 403, 403, 403, 401, 401),
    ("DELETE", "/api/v1/whep/{drone_id}/{kind}/{viewer_id}"):     (204, 403, 204, 403, 403, 403, 403, 401, 401),
    ("OPTIONS", "/api/v1/whep/{drone_id}/{kind}"):                (204, 204, 204, 204, 204, 204, 204, 204, 204),
    ("OPTIONS", "/api/v1/whep/{drone_id}/{kind}/{viewer_id}"):    (204, 204, 204, 204, 204, 204, 204, 204, 204),
    ("GET",    "/api/v1/hotspots"):                               (200, 200, 403, 403, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/hotspots.geojson"):                       (200, 200, 403, 403, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/hotspots.kml"):                           (200, 200, 403, 403, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/hotspots/{hotspot_id}"):                  (200, 200, 403, 403, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/hotspots/{hotspot_id}/thumbnail.png"):    (200, 200, 403, 403, 200, 403, 403, 401, 401),
    ("POST",   "/api/v1/hotspots/{hotspot_id}/status"):           (200, 200, 403, 403, 200, 403, 403, 401, 401),
    # alerts (issue 18): the world's alert is the offer_expiring of drone A's offer (station A's)
    ("GET",    "/api/v1/alerts"):                                 (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("POST",   "/api/v1/alerts/{alert_id}/ack"):                  (200, 200, 200, 403, 403, 403, 403, 401, 401),
    # evidence (issue 19): the world's recording is drone A's (station A's); pilot B's list is empty, not refused
    ("GET",    "/api/v1/evidence/recordings"):                    (200, 200, 200, 200, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/evidence/recordings/{recording_id}"):     (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/evidence/recordings/{recording_id}/track"): (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/evidence/recordings/{recording_id}/segments/{index}"): (200, 200, 200, 403, 403, 403, 403, 401, 401),
    ("POST",   "/api/v1/evidence/recordings/{recording_id}/export"): (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/evidence/audit"):                         (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/metrics"):                                (200, 200, 403, 403, 403, 403, 403, 401, 401),
    ("GET",    "/api/v1/ui-config"):                              (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("GET",    "/api/v1/me"):                                     (200, 200, 200, 200, 200, 403, 403, 401, 401),
    ("WS",     "/api/v1/events"):                                 (OPEN, OPEN, OPEN, 4403, OPEN, 4403, 4403, 4401, 4401),
    ("GET",    "/health"):                                        (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/tiles/{z}/{x}/{y}.{ext}"):                       (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/favicon.ico"):                                   (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/favicon.svg"):                                   (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/"):                                              (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/pilot"):                                         (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/command"):                                       (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/team"):                                          (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/openapi.json"):                                  (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/docs"):                                          (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/docs/oauth2-redirect"):                          (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("GET",    "/redoc"):                                         (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("MOUNT",  "/static"):                                        (200, 200, 200, 200, 200, 200, 200, 200, 200),
}
# fmt: on


@dataclass
class Call:
    """How a row is called: body, query, path parameters other than the world's defaults, and whether a
    successful call changes state (then each caller that succeeds gets a fresh controller)."""

    body: Any = None
    query: str = ""
    params: dict[str, str] = field(default_factory=dict)
    mutates: bool = False
    url: str | None = None


SEARCH = "{search_incident_id}"
CALLS: dict[tuple[str, str], Call] = {
    ("POST", "/api/v1/incidents"): Call(body={"grade": 3, "category": "other", "lat": 32.0, "lon": 118.8}, mutates=True),
    ("POST", "/api/v1/incidents/{incident_id}/cancel"): Call(body={"reason": "matrix"}, mutates=True),
    ("POST", "/api/v1/incidents/{incident_id}/resolve"): Call(body={}, mutates=True),
    ("POST", "/api/v1/incidents/{incident_id}/search-drones"): Call(body={"count": 1}, params={"incident_id": SEARCH}, mutates=True),
    ("POST", "/api/v1/missions/{mission_id}/accept"): Call(mutates=True),
    ("POST", "/api/v1/missions/{mission_id}/decline"): Call(body={"reason": "matrix"}, mutates=True),
    ("POST", "/api/v1/missions/{mission_id}/abort"): Call(body={"reason": "matrix"}, mutates=True),
    ("POST", "/api/v1/drones/{drone_id}/maintenance"): Call(body={"on": True, "reason": "matrix"}, params={"drone_id": DRONE_B}, mutates=True),
    ("POST", "/api/v1/video/publish/{drone_id}"): Call(body="{publish}", mutates=True),
    ("POST", "/api/v1/drones/{drone_id}/commands"): Call(body={"kind": "hold"}),
    ("POST", "/api/v1/video/watch"): Call(body="{watch}"),
    ("DELETE", "/api/v1/video/viewers/{viewer_id}"): Call(mutates=True),
    ("POST", "/api/v1/whip/{drone_id}/{kind}"): Call(body="{sdp}", mutates=True),
    ("DELETE", "/api/v1/whip/{drone_id}/{kind}/{resource_id}"): Call(mutates=True),
    ("POST", "/api/v1/whep/{drone_id}/{kind}"): Call(body="{sdp}"),
    ("DELETE", "/api/v1/whep/{drone_id}/{kind}/{viewer_id}"): Call(mutates=True),
    ("POST", "/api/v1/hotspots/{hotspot_id}/status"): Call(body={"status": "confirmed", "note": "matrix"}, mutates=True),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): Call(mutates=True),
    ("WS", "/api/v1/events"): Call(query=f"station={A}"),
    ("MOUNT", "/static"): Call(url="/static/common.css"),
    ("GET", "/tiles/{z}/{x}/{y}.{ext}"): Call(url="/tiles/0/0/0.png"),
}


def _flat(routes: Any) -> Any:
    """(route, full path, methods) of each route; recent FastAPI versions list included routers lazily."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                yield ctx.original_route, ctx.path or ctx.original_route.path, getattr(ctx, "methods", None)
        else:
            yield route, getattr(route, "path", "?"), getattr(route, "methods", None)


def route_keys() -> set[tuple[str, str]]:
    """Every (method, path) the app serves, read from app.routes."""
    app = create_app(None, manage_lifecycle=False)  # type: ignore[arg-type]  (routes only)
    keys: set[tuple[str, str]] = set()
    for route, path, methods in _flat(app.routes):
        if isinstance(route, APIWebSocketRoute | WebSocketRoute):
            keys.add(("WS", path))
        elif isinstance(route, Mount):
            keys.add(("MOUNT", path))
        elif isinstance(route, APIRoute | Route):
            keys |= {(m, path) for m in (methods or set()) - {"HEAD"}}
        else:
            keys.add((type(route).__name__, path))
    return keys


KEYS = sorted(route_keys() | set(MATRIX), key=lambda k: (k[1], k[0]))


# --- the world each row is judged in --------------------------------------------------------------------


@dataclass
class World:
    rt: Runtime
    client: httpx.AsyncClient
    app: Any
    ids: dict[str, str]
    offer: str


async def video_offer() -> str:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


@contextlib.asynccontextmanager
async def world(tmp: Path, offer: str) -> AsyncIterator[World]:
    tmp.mkdir(parents=True)
    cfg = support.copy_configs(tmp / "configs", stations=support.SMALL_ROSTER)
    tokens = {**support.TOKENS, DRONE_B_TOKEN: {"role": "drone", "name": "drone-b1", "drone_id": DRONE_B}}
    make_mbtiles(tmp / "map.mbtiles", [(0, 0, 0)])  # the basemap's tiles are public map data
    settings = Settings(
        database_url=f"sqlite:///{tmp / 'test.sqlite3'}", config_dir=cfg, var_dir=tmp / "var", mbtiles=tmp / "map.mbtiles",
    )
    rt = Runtime.build(settings, tokens=TokenRegistry.from_document({"tokens": tokens}, "tests"))
    await rt.start()
    app = create_app(rt, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            cmd = {"Authorization": f"Bearer {TOKENS['commander']}"}
            s = rt.config.station(A)
            lat, lon = geo.destination(s.lat, s.lon, 0, 400)
            r = await client.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": lat, "lon": lon}, headers=cmd)
            assert r.status_code == 201, r.text
            inc = r.json()["id"]
            (m,) = rt.center.incident_missions(inc)
            assert (m.station_id, m.drone_id) == (A, DRONE_A)
            # a missing-person search served by a third station, with one hotspot
            third = next(st for st in rt.config.stations if st.id not in (A, B))
            r = await client.post(
                "/api/v1/incidents",
                json={"grade": 1, "category": "missing_person", "lat": third.lat + 0.004, "lon": third.lon, "drones_requested": 1},
                headers=cmd,
            )
            assert r.status_code == 201, r.text
            search = r.json()["id"]
            now = datetime.now(UTC)
            hs = HotspotRecord(
                "HS-900001", search, third.lat + 0.004, third.lon, 4.0, "person", 0.9, 3, now, now, [],
                thumbnail_png=b"\x89PNG\r\n\x1a\nmatrix",
            )
            rt.hotspots.records[hs.id] = hs
            viewer = ViewerSession("v900001", "pilot:pilot-a", DRONE_A, "visible", RTCPeerConnection())
            rt.video.hub.viewers[viewer.id] = viewer
            publisher = PublisherSession(DRONE_A, RTCPeerConnection())  # drone A's WHIP resource (no media yet)
            rt.video.hub.publishers[(DRONE_A, "visible")] = publisher
            whip.register(publisher, "visible", "w900001")
            await rt.center.commands.warn_offers([m.id])  # an alert of station A's: its offer is about to expire
            alert = await rt.db.read(lambda c: rt.db.query_alerts(c, kinds=["offer_expiring"], limit=1))
            recording = await record_evidence(rt, DRONE_A, m.id)  # drone A's camera, recorded for its mission
            ids = {
                "recording_id": recording, "index": "1",
                "alert_id": str(alert[0].id),
                "incident_id": inc, "mission_id": m.id, "drone_id": DRONE_A, "hotspot_id": hs.id,
                "viewer_id": viewer.id, "search_incident_id": search, "kind": "visible", "resource_id": "w900001",
            }
            yield World(rt, client, app, ids, offer)
    finally:
        await rt.stop()


def _headers(caller: str) -> dict[str, str]:
    return {} if caller == "none" else {"Authorization": f"Bearer {TOKENS[caller]}"}


def _body(call: Call, w: World) -> Any:
    if call.body == "{publish}":
        return {"sdp": w.offer, "type": "offer", "kinds": ["visible"]}
    if call.body == "{watch}":
        return {"drone_id": DRONE_A, "kind": "visible", "sdp": w.offer, "type": "offer"}
    return call.body


def _url(key: tuple[str, str], call: Call, w: World) -> str:
    if call.url:
        return call.url
    ids = dict(w.ids)
    for name, value in call.params.items():
        ids[name] = value.format(**w.ids)
    url = key[1].format(**ids)
    return url + (f"?{call.query}" if call.query else "")


async def _status(key: tuple[str, str], caller: str, w: World) -> int:
    call = CALLS.get(key, Call())
    method, _ = key
    if method == "WS":
        return await _ws_status(w, _url(key, call, w), caller)
    if call.body == "{sdp}":  # WHIP/WHEP: the offer itself is the body
        r = await w.client.request(
            method, _url(key, call, w), content=w.offer, headers={**_headers(caller), "Content-Type": "application/sdp"}
        )
    else:
        r = await w.client.request(
            "GET" if method == "MOUNT" else method, _url(key, call, w), json=_body(call, w), headers=_headers(caller)
        )
    if r.status_code in (401, 403):
        body = r.json()
        assert body["detail"] and body["error"] in ("unauthorized", "forbidden"), (key, caller, body)
    return r.status_code


async def _ws_status(w: World, url: str, caller: str) -> int:
    async with support.serve(w.app) as base:
        target = base.replace("http://", "ws://") + url
        async with websockets.connect(target, additional_headers=_headers(caller)) as ws:
            try:
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            except websockets.ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else 1006
            assert first["type"] == "hello", first
            return OPEN


@pytest.mark.parametrize("key", KEYS, ids=[f"{m} {p}" for m, p in KEYS])
async def test_role_matrix(key: tuple[str, str], tmp_path: Path) -> None:
    assert key in route_keys(), f"{key} is in the matrix but the app no longer serves it: remove the row"
    assert key in MATRIX, f"{key} has no row in the role matrix: decide who may call it and add it to MATRIX"
    expected = dict(zip(CALLERS, MATRIX[key], strict=True))
    call = CALLS.get(key, Call())
    offer = await video_offer() if key[1].startswith(("/api/v1/video/", "/api/v1/whip/", "/api/v1/whep/")) else ""
    got: dict[str, int] = {}
    n = 0
    async with world(tmp_path / "shared", offer) as shared:
        for caller in CALLERS:
            if call.mutates and 200 <= expected[caller] < 300:
                n += 1
                async with world(tmp_path / f"fresh{n}", offer) as fresh:
                    got[caller] = await _status(key, caller, fresh)
                continue
            seq = shared.rt.center.bus.last_published_seq
            got[caller] = await _status(key, caller, shared)
            if got[caller] >= 400 or got[caller] >= 4000:
                assert shared.rt.center.bus.last_published_seq == seq, f"refused {key} by {caller} changed state"
    wrong = {c: f"expected {expected[c]}, got {got[c]}" for c in CALLERS if got[c] != expected[c]}
    assert not wrong, f"{key[0]} {key[1]}: {wrong}"
