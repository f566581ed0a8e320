"""A simulated drone publishes through the API; authorised viewers watch; nothing is re-encoded or leaked."""

from __future__ import annotations

import asyncio

import httpx

from controller.runtime import Runtime
from sitl.camera_render import CameraPose, Intrinsics
from sitl.video_publisher import CameraSetup, CameraTrack, VideoPublisher
from tests import support
from tests.support import TOKEN, auth
from tests.video.conftest import close, wait_frames, watch

DRONE = f"{support.STATION_A}-D1"


async def publish(runtime: Runtime, base: str, kinds=("visible",)) -> VideoPublisher:
    s = runtime.config.station(support.STATION_A)
    pose = CameraPose(s.lat, s.lon, 80.0, 45.0)
    tracks = {
        kind: CameraTrack(DRONE, CameraSetup(kind, Intrinsics(640, 512, 61.0), fps=15), lambda: pose, (s.lat, s.lon))
        for kind in kinds
    }
    pub = VideoPublisher(DRONE, base, TOKEN["drone_a1"], tracks)
    await pub.start()
    for _ in range(100):
        if all((DRONE, k) in runtime.video.hub.feeds for k in kinds):
            return pub
        await asyncio.sleep(0.1)
    raise AssertionError("feed did not appear")


async def test_many_viewers_one_publisher_no_reencoding(runtime: Runtime, live_url: str) -> None:
    pub = await publish(runtime, live_url)
    viewers = []
    for who in ("commander", "commander", "pilot_a"):
        v, r = await watch(live_url, TOKEN[who], DRONE)
        assert r.status_code == 200, r.text
        viewers.append(v)
    for v in viewers:
        await wait_frames(v, 20)
        assert v.sizes == {(640, 512)}
        assert v.first_frame_after is not None and v.first_frame_after < 1.0
        assert v.latencies and max(v.latencies) < 1.0  # barcode read back: frames are the publisher's pixels
    feed = runtime.video.hub.feeds[(DRONE, "visible")]
    # Each viewer got frames though the publisher encoded each frame once: forwarded, not re-encoded.
    forwarded = sum(t.forwarded for t in feed.subscribers)
    assert forwarded >= 3 * 20
    assert feed.frames <= pub.tracks["visible"].frames  # the relay never produced frames of its own
    async with httpx.AsyncClient(base_url=live_url) as c:
        listed = (await c.get("/api/v1/video/feeds", headers=auth("commander"))).json()
        assert listed[0]["drone_id"] == DRONE and listed[0]["viewers"] == 3 and listed[0]["codec"] == "VP8"
        # a viewer leaves cleanly
        r = await c.delete(f"/api/v1/video/viewers/{viewers[0].viewer_id}", headers=auth("commander"))
        assert r.status_code == 204
    await asyncio.wait_for(viewers[0].ended.wait(), 5)
    assert len(feed.subscribers) == 2
    for v in viewers:
        await close(v)
    await pub.stop()


async def test_roles_for_watching(runtime: Runtime, live_url: str) -> None:
    pub = await publish(runtime, live_url)
    for who, status in (("pilot_b", 403), ("search_team", 403), ("admin", 403)):
        v, r = await watch(live_url, TOKEN[who], DRONE)
        assert v is None and r.status_code == status, (who, r.text)
    v, r = await watch(live_url, TOKEN["commander"], "NJ-GC-01-D1")  # no live feed
    assert r.status_code == 404
    async with httpx.AsyncClient(base_url=live_url) as c:
        assert (await c.get("/api/v1/video/feeds", headers=auth("pilot_b"))).json() == []
        # a drone may publish only as itself; people may not publish at all
        bad = {"sdp": "v=0\r\n" * 3, "type": "offer", "kinds": ["visible"]}
        assert (await c.post("/api/v1/video/publish/NJ-GC-01-D1", json=bad, headers=auth("drone_a1"))).status_code == 403
        assert (await c.post(f"/api/v1/video/publish/{DRONE}", json=bad, headers=auth("commander"))).status_code == 403
        assert (await c.post(f"/api/v1/video/publish/{DRONE}", json={**bad, "kinds": ["infrared"]}, headers=auth("drone_a1"))).status_code == 422
    await pub.stop()


async def test_search_team_sees_the_drones_of_its_search(runtime: Runtime, live_url: str) -> None:
    s = runtime.config.station(support.STATION_A)
    async with httpx.AsyncClient(base_url=live_url) as c:
        r = await c.post(
            "/api/v1/incidents",
            json={"grade": 1, "category": "missing_person", "lat": s.lat + 0.003, "lon": s.lon, "drones_requested": 1},
            headers=auth("commander"),
        )
        inc = r.json()["id"]
        (m,) = runtime.center.incident_missions(inc)
        assert m.drone_id == DRONE
        assert (await c.post(f"/api/v1/missions/{m.id}/accept", headers=auth("pilot_a"))).status_code == 200
    pub = await publish(runtime, live_url)
    v, r = await watch(live_url, TOKEN["search_team"], DRONE)
    assert r.status_code == 200
    await wait_frames(v, 5)
    await close(v)
    await pub.stop()


async def fly(runtime: Runtime, base: str) -> str:
    """Send the drone out on a mission (the flight layer's reports, no fleet here); returns the mission id."""
    s = runtime.config.station(support.STATION_A)
    async with httpx.AsyncClient(base_url=base) as c:
        r = await c.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": s.lat + 0.003, "lon": s.lon},
                         headers=auth("commander"))
        (m,) = runtime.center.incident_missions(r.json()["id"])
        assert m.drone_id == DRONE
        assert (await c.post(f"/api/v1/missions/{m.id}/accept", headers=auth("pilot_a"))).status_code == 200
    await runtime.center.reports.flight_launched(m.id)
    await runtime.center.reports.flight_returning(m.id, "test: done")
    return m.id


async def test_feeds_end_when_the_drone_lands_and_nothing_leaks(runtime: Runtime, live_url: str) -> None:
    await fly(runtime, live_url)  # airborne, so that it can land
    baseline = len(asyncio.all_tasks())
    pub = await publish(runtime, live_url, kinds=("visible", "thermal"))
    assert {k for (_, k) in runtime.video.hub.feeds} == {"visible", "thermal"}
    v, _ = await watch(live_url, TOKEN["commander"], DRONE, kind="thermal")
    await wait_frames(v, 5)
    await runtime.center.reports.flight_landed(DRONE, "test landing")
    await asyncio.wait_for(v.ended.wait(), 5)
    for _ in range(50):
        if runtime.video.hub.stats() == {"publishers": 0, "feeds": 0, "viewers": 0, "forwarded_streams": 0}:
            break
        await asyncio.sleep(0.1)
    assert runtime.video.hub.stats() == {"publishers": 0, "feeds": 0, "viewers": 0, "forwarded_streams": 0}
    await close(v)
    await pub.stop()
    await asyncio.sleep(0.5)
    leaked = [t for t in asyncio.all_tasks() if not t.done()]
    assert len(leaked) <= baseline, [t.get_name() for t in leaked]
