"""WHIP ingest and WHEP playback (RFC 9725) with aiortc peers: statuses, headers, frames through the hub, cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import httpx
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack

from controller.runtime import Runtime
from tests import support
from tests.support import auth

DRONE = f"{support.STATION_A}-D1"
OTHER = "NJ-GC-01-D1"  # a drone of another station
SDP = {"Content-Type": "application/sdp"}


def idle(hub) -> bool:  # noqa: ANN001
    """No publisher, feed, viewer or forwarded stream left (whatever else the hub counts)."""
    return all(n == 0 for n in hub.stats().values())


def sdp_headers(who: str) -> dict[str, str]:
    return {**auth(who), **SDP}


@dataclass
class Peer:
    pc: RTCPeerConnection
    response: httpx.Response
    frames: int = 0
    sizes: set[tuple[int, int]] = field(default_factory=set)
    tasks: list[asyncio.Task] = field(default_factory=list)

    @property
    def location(self) -> str:
        return self.response.headers["location"]

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.pc.close()


async def publisher_offer(tracks: int = 1, codec: str = "vp8", audio: bool = False) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    prefs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in (f"video/{codec}", "video/rtx")]
    for _ in range(tracks):
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly").setCodecPreferences(prefs)
    if audio:  # a real audio track, as an encoder such as OBS has
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def whip(c: httpx.AsyncClient, who: str = "drone_a1", drone: str = DRONE, kind: str = "visible", **kw) -> Peer:
    pc = await publisher_offer(**kw)
    r = await c.post(f"/api/v1/whip/{drone}/{kind}", content=pc.localDescription.sdp, headers=sdp_headers(who))
    if r.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
    return Peer(pc, r)


async def whep(c: httpx.AsyncClient, who: str = "commander", drone: str = DRONE, kind: str = "visible") -> Peer:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    r = await c.post(f"/api/v1/whep/{drone}/{kind}", content=pc.localDescription.sdp, headers=sdp_headers(who))
    peer = Peer(pc, r)

    @pc.on("track")
    def on_track(track) -> None:  # noqa: ANN001
        async def pull() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    frame = await track.recv()
                    peer.frames += 1
                    peer.sizes.add((frame.width, frame.height))

        peer.tasks.append(asyncio.ensure_future(pull()))

    if r.status_code == 201:
        await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
    return peer


async def until(cond, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_whip_publish_whep_watch_and_delete(runtime: Runtime, live_url: str) -> None:
    hub = runtime.video.hub
    async with httpx.AsyncClient(base_url=live_url, timeout=20) as c:
        pub = await whip(c)
        r = pub.response
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/sdp"
        assert r.text.startswith("v=0") and "a=candidate:" in r.text  # complete answer: no trickle needed
        assert r.headers["location"].startswith(f"/api/v1/whip/{DRONE}/visible/w")
        assert r.headers["etag"].startswith('"') and r.headers["access-control-allow-origin"] == "*"
        assert "Location" in r.headers["access-control-expose-headers"]
        await until(lambda: (DRONE, "visible") in hub.feeds, 10, "the WHIP feed")
        feed = hub.feeds[(DRONE, "visible")]

        viewer = await whep(c, "commander")
        r = viewer.response
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/sdp"
        assert r.headers["location"].startswith(f"/api/v1/whep/{DRONE}/visible/v") and r.headers["etag"]
        await until(lambda: viewer.frames >= 10, 15, "frames at the WHEP viewer")
        assert viewer.sizes == {(640, 480)}
        assert sum(t.forwarded for t in feed.subscribers) >= 10  # forwarded by the hub, not re-encoded
        listed = (await c.get("/api/v1/video/feeds", headers=auth("commander"))).json()
        assert [(f["drone_id"], f["kind"], f["codec"], f["viewers"]) for f in listed] == [(DRONE, "visible", "VP8", 1)]

        # trickle ICE and ICE restarts are not supported: PATCH is 405 with Allow (RFC 9725 §4.3.1)
        r = await c.patch(pub.location, content="a=end-of-candidates\r\n", headers={**auth("drone_a1"), "Content-Type": "application/trickle-ice-sdpfrag"})
        assert r.status_code == 405 and set(r.headers["allow"].split(", ")) >= {"DELETE", "OPTIONS"}

        # ending a viewing: not another pilot's, the viewer's own (or a commander's); once
        assert (await c.delete(viewer.location, headers=auth("pilot_b"))).status_code == 403
        assert (await c.delete(viewer.location.replace("/visible/", "/thermal/"), headers=auth("commander"))).status_code == 404
        assert (await c.delete(viewer.location, headers=auth("commander"))).status_code == 204
        assert (await c.delete(viewer.location, headers=auth("commander"))).status_code == 404
        assert hub.stats()["viewers"] == 0 and not feed.subscribers

        # a second viewer, still watching when the publisher goes: it is let go too
        viewer2 = await whep(c, "pilot_a")
        assert viewer2.response.status_code == 201
        await until(lambda: viewer2.frames >= 3, 15, "frames at the second viewer")

        # ending the publish: not people (another drone: the role matrix), nor for another camera; the drone itself; once
        assert (await c.delete(pub.location, headers=auth("commander"))).status_code == 403
        assert (await c.delete(pub.location.replace("/visible/", "/thermal/"), headers=auth("drone_a1"))).status_code == 404
        r = await c.delete(pub.location, headers=auth("drone_a1"))
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
        assert idle(hub), hub.stats()
        assert (await c.delete(pub.location, headers=auth("drone_a1"))).status_code == 404
        assert (await c.delete(viewer2.location, headers=auth("pilot_a"))).status_code == 404
        assert (await c.post(f"/api/v1/whep/{DRONE}/visible", content="v=0\r\n", headers=sdp_headers("commander"))).status_code == 404
        for p in (pub, viewer, viewer2):
            await p.close()
    assert idle(hub), hub.stats()


async def test_refusals_open_nothing(runtime: Runtime, live_url: str) -> None:
    hub = runtime.video.hub
    async with httpx.AsyncClient(base_url=live_url, timeout=20) as c:
        offer = (await publisher_offer()).localDescription.sdp
        url = f"/api/v1/whip/{DRONE}/visible"
        r = await c.post(url, json={"sdp": offer, "type": "offer"}, headers=auth("drone_a1"))
        assert r.status_code == 415 and r.headers["accept-post"] == "application/sdp" and r.json()["error"] == "unsupported_media_type"
        assert (await c.post(url, content=offer, headers={**auth("drone_a1"), "Content-Type": "text/plain"})).status_code == 415
        assert (await c.post(url, content=offer, headers=auth("drone_a1"))).status_code == 415  # no Content-Type
        r = await c.post(url, content=offer, headers={**auth("drone_a1"), "Content-Type": "application/sdp; charset=utf-8"})
        assert r.status_code == 201, r.text  # parameters on the media type are fine
        assert (await c.delete(r.headers["location"], headers=auth("drone_a1"))).status_code == 204
        assert idle(hub), hub.stats()

        junk = {
            "garbage": "hello, I am not SDP",
            "empty": "",
            "not utf-8": b"v=0\r\n\xff\xfe",
            "no media": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
            "two cameras": (await publisher_offer(tracks=2)).localDescription.sdp,
            "audio only": (await publisher_offer(tracks=0, audio=True)).localDescription.sdp,
        }
        for name, body in junk.items():
            r = await c.post(url, content=body, headers=sdp_headers("drone_a1"))
            assert r.status_code == 422, (name, r.text)
            assert r.json()["detail"][0]["loc"] == ["body"], name
            assert idle(hub), (name, hub.stats())
            r = await c.post(f"/api/v1/whep/{DRONE}/visible", content=body, headers=sdp_headers("commander"))
            assert r.status_code in (404, 422), (name, r.status_code)  # no feed yet: nothing to answer with
        assert (await c.post(f"/api/v1/whip/{DRONE}/infrared", content=offer, headers=sdp_headers("drone_a1"))).status_code == 422

        # who may publish: the drone itself (or an admin); not people, not another drone's token
        assert (await c.post(f"/api/v1/whip/{OTHER}/visible", content=offer, headers=sdp_headers("drone_a1"))).status_code == 403
        for who in ("commander", "pilot_a", "search_team"):
            assert (await c.post(url, content=offer, headers=sdp_headers(who))).status_code == 403, who
        assert (await c.post(url, content=offer, headers=SDP)).status_code == 401
        r = await c.post("/api/v1/whip/NO-SUCH-D9/visible", content=offer, headers=sdp_headers("admin"))
        assert r.status_code == 404 and r.headers["access-control-allow-origin"] == "*"
        assert idle(hub), hub.stats()

        # a live feed survives a junk offer for it
        pub = await whip(c)
        assert pub.response.status_code == 201
        await until(lambda: (DRONE, "visible") in hub.feeds, 10, "the feed")
        assert (await c.post(url, content="v=0\r\nm=video junk\r\n", headers=sdp_headers("drone_a1"))).status_code == 422
        assert (DRONE, "visible") in hub.feeds and (await c.delete(pub.location, headers=auth("drone_a1"))).status_code == 204

        # who may watch: as /video/watch
        pub = await whip(c)
        await until(lambda: (DRONE, "visible") in hub.feeds, 10, "the feed")
        for who, status in (("pilot_b", 403), ("search_team", 403), ("admin", 403), ("drone_a1", 403)):
            v = await whep(c, who)
            assert v.response.status_code == status, (who, v.response.text)
            await v.close()
        v = await whep(c, "commander", kind="thermal")
        assert v.response.status_code == 404  # no thermal feed
        await v.close()
        assert hub.stats()["viewers"] == 0
        assert (await c.delete(pub.location, headers=auth("admin"))).status_code == 204  # an admin may end it
        await pub.close()
    assert idle(hub), hub.stats()


async def test_second_publisher_replaces_the_same_feed_other_cameras_go_on(runtime: Runtime, live_url: str) -> None:
    hub = runtime.video.hub
    async with httpx.AsyncClient(base_url=live_url, timeout=20) as c:
        first = await whip(c)
        assert first.response.status_code == 201
        await until(lambda: (DRONE, "visible") in hub.feeds, 10, "the first feed")
        # the same camera again (a drone that restarted without DELETE): the new connection replaces the old
        old_feed = hub.feeds[(DRONE, "visible")]
        assert old_feed.codec == "VP8"
        second = await whip(c, codec="h264")
        assert second.response.status_code == 201, second.response.text
        assert second.location != first.location
        await until(lambda: hub.feeds.get((DRONE, "visible")) not in (None, old_feed), 10, "the new connection's feed")
        assert hub.feeds[(DRONE, "visible")].codec == "H264"
        assert (await c.delete(first.location, headers=auth("drone_a1"))).status_code == 404
        viewer = await whep(c, "commander")
        assert viewer.response.status_code == 201
        await until(lambda: viewer.frames >= 3, 15, "H.264 frames at the viewer")

        # another camera: its own resource and connection beside the visible one, which goes on
        other = await whip(c, kind="thermal")
        assert other.response.status_code == 201, other.response.text
        assert other.location.startswith(f"/api/v1/whip/{DRONE}/thermal/w")
        await until(lambda: (DRONE, "thermal") in hub.feeds, 10, "the thermal feed")
        assert hub.stats()["publishers"] == 2 and hub.stats()["viewers"] == 1
        assert hub.publisher_for(DRONE, "visible") is not hub.publisher_for(DRONE, "thermal")
        # replacing the thermal camera's connection leaves the visible feed and its viewer alone
        visible_feed, thermal_feed = hub.feeds[(DRONE, "visible")], hub.feeds[(DRONE, "thermal")]
        seen = viewer.frames
        third = await whip(c, kind="thermal")
        assert third.response.status_code == 201, third.response.text
        await until(lambda: hub.feeds.get((DRONE, "thermal")) not in (None, thermal_feed), 10, "the new thermal feed")
        assert hub.feeds[(DRONE, "visible")] is visible_feed and not visible_feed.closed
        assert (await c.delete(other.location, headers=auth("drone_a1"))).status_code == 404  # replaced
        await until(lambda: viewer.frames >= seen + 5, 15, "visible frames across the thermal replacement")
        # DELETE of the visible resource ends visible only; the thermal camera publishes on
        assert (await c.delete(second.location, headers=auth("drone_a1"))).status_code == 204
        assert (DRONE, "visible") not in hub.feeds and (DRONE, "thermal") in hub.feeds
        assert hub.stats()["viewers"] == 0 and hub.stats()["publishers"] == 1
        assert not hub.feeds[(DRONE, "thermal")].closed
        thermal_viewer = await whep(c, "commander", kind="thermal")
        assert thermal_viewer.response.status_code == 201, thermal_viewer.response.text
        await until(lambda: thermal_viewer.frames >= 3, 15, "thermal frames at the viewer")
        # landing (close_drone) ends every camera's connection
        await hub.close_drone(DRONE)
        assert idle(hub), hub.stats()
        assert (await c.delete(third.location, headers=auth("drone_a1"))).status_code == 404

        # a connection from /video/publish carrying both cameras: a WHIP publish of one of them is 409
        both = await publisher_offer(tracks=2)
        r = await c.post(
            f"/api/v1/video/publish/{DRONE}", json={"sdp": both.localDescription.sdp, "type": "offer", "kinds": ["visible", "thermal"]},
            headers=auth("drone_a1"),
        )
        assert r.status_code == 200
        await both.setRemoteDescription(RTCSessionDescription(r.json()["sdp"], "answer"))
        await until(lambda: len(hub.feeds) == 2, 10, "both feeds")
        again = await whip(c, kind="visible")
        assert again.response.status_code == 409 and len(hub.feeds) == 2
        assert again.response.json()["error"] == "conflict" and "thermal" in again.response.json()["detail"]
        await hub.close_drone(DRONE)
        for p in (first, second, viewer, other, third, thermal_viewer, again):
            await p.close()
        await both.close()
    assert idle(hub), hub.stats()


def audio_sections(sdp: str) -> list[list[str]]:
    sections = [chunk.split("\r\n") for chunk in sdp.split("\r\nm=")[1:]]
    return [s for s in sections if s[0].startswith("audio")]


async def test_whip_offer_with_audio_is_answered_inactive_and_not_relayed(runtime: Runtime, live_url: str) -> None:
    """WHIP encoders such as OBS always offer audio: the video is taken, the audio section answered inactive."""
    hub = runtime.video.hub
    async with httpx.AsyncClient(base_url=live_url, timeout=20) as c:
        pc = await publisher_offer(audio=True)
        offer = pc.localDescription.sdp
        assert len(audio_sections(offer)) == 1 and "a=sendonly" in audio_sections(offer)[0]
        r = await c.post(f"/api/v1/whip/{DRONE}/visible", content=offer, headers=sdp_headers("drone_a1"))
        assert r.status_code == 201, r.text
        (audio,) = audio_sections(r.text)
        assert "a=inactive" in audio, audio  # same m-line order as the offer, audio refused (RFC 3264 §6)
        await pc.setRemoteDescription(RTCSessionDescription(r.text, "answer"))
        audio_t = next(t for t in pc.getTransceivers() if t.kind == "audio")
        assert audio_t.currentDirection == "inactive"  # so the publisher sends no audio
        await until(lambda: (DRONE, "visible") in hub.feeds, 10, "the video feed")
        session = hub.publisher_for(DRONE, "visible")
        server_audio = next(t for t in session.pc.getTransceivers() if t.kind == "audio")
        assert server_audio.currentDirection == "inactive"
        viewer = await whep(c, "commander")
        assert viewer.response.status_code == 201
        await until(lambda: viewer.frames >= 5, 15, "video frames from a publisher that offered audio")
        assert set(session.feeds) == {"visible"} and set(hub.feeds) == {(DRONE, "visible")}
        assert (await c.delete(r.headers["location"], headers=auth("drone_a1"))).status_code == 204
        await viewer.close()
        await pc.close()
    assert idle(hub), hub.stats()


async def test_cors_preflight(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://encoder.example", "Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "authorization, content-type"}
    for path in (f"/api/v1/whip/{DRONE}/visible", f"/api/v1/whep/{DRONE}/thermal"):
        r = await client.options(path, headers=origin)
        assert r.status_code == 204, path
        assert r.headers["access-control-allow-origin"] == "*"
        assert r.headers["access-control-allow-methods"] == "POST, OPTIONS"
        assert {"Authorization", "Content-Type"} <= set(r.headers["access-control-allow-headers"].split(", "))
        assert r.headers["accept-post"] == "application/sdp"
    for path in (f"/api/v1/whip/{DRONE}/visible/wabc", f"/api/v1/whep/{DRONE}/visible/v1"):
        r = await client.options(path, headers={**origin, "Access-Control-Request-Method": "DELETE"})
        assert r.status_code == 204 and r.headers["access-control-allow-methods"] == "DELETE, OPTIONS", path
    # refusals are readable cross-origin too
    r = await client.post(f"/api/v1/whip/{DRONE}/visible", content="v=0", headers=SDP)
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "*"
    r = await client.post(f"/api/v1/whep/{DRONE}/infrared", content="v=0", headers=sdp_headers("commander"))
    assert r.status_code == 422 and r.headers["access-control-allow-origin"] == "*"


async def test_whip_409_for_a_camera_pulled_over_rtsp(runtime: Runtime, client: httpx.AsyncClient) -> None:
    class Silent:  # an RTSP pull that has not delivered a frame yet
        def start(self, push) -> None:  # noqa: ANN001
            pass

        async def stop(self) -> None:
            pass

        def request_keyframe(self) -> None:
            pass

    hub = runtime.video.hub
    await hub.ingest(DRONE, "visible", "H264", Silent())
    pc = await publisher_offer()
    r = await client.post(f"/api/v1/whip/{DRONE}/visible", content=pc.localDescription.sdp, headers=sdp_headers("drone_a1"))
    assert r.status_code == 409 and "RTSP" in r.json()["detail"], r.text
    assert not hub.publishers
    await hub.stop_ingest(DRONE, "visible")
    await pc.close()
    assert idle(hub), hub.stats()
