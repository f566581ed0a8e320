"""A search drone's thermal feed over WebRTC is decoded once at the controller, hotspots found, teams told.

The drone publishes a rendered thermal camera looking down on a planted person
through the real signalling and relay; the controller's hotspot service
decodes the relayed feed, georeferences detections with the pose at capture
time and raises a hotspot near the truth; a CoT listener receives it; the
search team marks it found, which resolves the incident.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
from lxml import etree

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import IncidentStatus
from controller.hotspots.cot_sender import CotEndpoint, CotSender
from controller.hotspots.feed_decoder import FeedDecoder
from controller.hotspots.pose_history import PoseSample
from controller.runtime import Runtime
from sitl.camera_render import SEARCH_SPAN_C, CameraPose, Intrinsics
from sitl.thermal_scene import build_scenario
from sitl.video_publisher import CameraSetup, CameraTrack, VideoPublisher
from tests import support
from tests.hotspots.test_cot_and_exports import SCHEMA
from tests.support import TOKEN, auth
from tests.video.conftest import close, wait_frames, watch

DRONE = f"{support.STATION_A}-D1"


async def test_search_feed_decoded_once_hotspot_raised_sent_and_found(runtime: Runtime, live_url: str) -> None:
    rt = runtime
    svc = rt.hotspots
    assert svc is not None
    # A TAK listener on UDP, added to the running service as a configured endpoint would be.
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    svc.cot = CotSender([CotEndpoint("udp", "127.0.0.1", udp.getsockname()[1])])
    svc.cot.start()

    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 60.0, 400.0)
    inc, _ = await rt.center.create_incident(
        NewIncident(grade=1, category="missing_person", lat=lat, lon=lon, search_radius_m=200, drones_requested=1),
        Principal(Role.COMMANDER, "cmd"),
    )
    (m,) = rt.center.incident_missions(inc.id)
    assert m.drone_id == DRONE
    await rt.center.accept(m.id, Principal(Role.PILOT, "pilot-a", support.STATION_A))
    await rt.center.reports.flight_launched(m.id)  # the flight layer's report (no fleet in this test)

    world = build_scenario(
        {"name": "t", "seed": 5, "lat": lat, "lon": lon, "radius_m": 100, "people": [{"kind": "person_lying", "east_m": 12, "north_m": -8}]}
    )
    person = world.people[0]
    # The drone hovers 60 m above ground, 20 m west of the person, heading 30°.
    cam_lat, cam_lon = geo.destination(person.lat, person.lon, 270.0, 20.0)
    pose = CameraPose(cam_lat, cam_lon, 60.0, 30.0)

    async def telemetry() -> None:  # position reports as the fleet link delivers them, 10 Hz
        while True:
            svc.pose(DRONE, PoseSample(time.time(), cam_lat, cam_lon, s.elevation_m + 60.0, 60.0, 30.0))
            await asyncio.sleep(0.1)

    feeder = asyncio.create_task(telemetry())
    track = CameraTrack(DRONE, CameraSetup("thermal", Intrinsics(640, 512, 61.0), fps=15, span_c=SEARCH_SPAN_C), lambda: pose, (lat, lon), lambda: world.sources)
    pub = VideoPublisher(DRONE, live_url, TOKEN["drone_a1"], {"thermal": track})
    await pub.start()
    viewer = None
    try:
        deadline = time.monotonic() + 30
        while not svc.list(inc.id):
            assert time.monotonic() < deadline, f"no hotspot raised: {svc.stats()}"
            await asyncio.sleep(0.1)
        (h,) = svc.list(inc.id)
        assert geo.distance_m(h.lat, h.lon, person.lat, person.lon) < 3.0
        assert h.drones == [DRONE] and h.hits >= rt.config.policy.search.confirm_hits and h.thumbnail_png
        # decoded once, at the controller: one decoder listening to the relayed feed; a viewer adds none
        # (the evidence recorder listens too: it remuxes, it does not decode)
        feed = rt.video.hub.feeds[(DRONE, "thermal")]

        def decoding() -> list:
            return [f for f in feed.listeners if isinstance(getattr(f, "__self__", None), FeedDecoder)]

        assert list(svc.decoders) == [DRONE] and len(decoding()) == 1
        viewer, r = await watch(live_url, TOKEN["search_team"], DRONE, kind="thermal")
        assert r.status_code == 200
        await wait_frames(viewer, 5)
        assert len(decoding()) == 1 and svc.decoders[DRONE][0].decoded <= feed.frames
        # the TAK listener got a schema-valid CoT event for it
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(udp, 65536), 5)
        doc = etree.fromstring(data)
        SCHEMA.assertValid(doc)
        assert doc.get("uid") == f"dronefleet.{h.id}"
        async with httpx.AsyncClient(base_url=live_url) as c:
            listed = (await c.get(f"/api/v1/hotspots?incident={inc.id}&from_lat={s.lat}&from_lon={s.lon}", headers=auth("search_team"))).json()
            assert listed[0]["id"] == h.id and 350 < listed[0]["distance_m"] < 450 and 30 < listed[0]["bearing_deg"] < 90
            png = await c.get(listed[0]["thumbnail_url"], headers=auth("search_team"))
            assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
            assert (await c.get("/api/v1/hotspots", headers=auth("pilot_a"))).status_code == 403
            r = await c.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "found", "note": "with the ambulance"}, headers=auth("search_team"))
            assert r.status_code == 200 and r.json()["status"] == "found"
            r = await c.post(f"/api/v1/hotspots/{h.id}/status", json={"status": "dismissed"}, headers=auth("search_team"))
            assert r.status_code == 409
        assert rt.center.incidents.get(inc.id) is None or rt.center.incidents[inc.id].status is IncidentStatus.RESOLVED
        # the search is over: the decoder lets go of the feed
        await svc.reconcile()
        assert not svc.decoders and not decoding()
    finally:
        feeder.cancel()
        if viewer is not None:
            await close(viewer)
        await pub.stop()
        udp.close()
