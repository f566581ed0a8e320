"""The video hub: drones publish once, any number of viewers watch, nothing is re-encoded.

Signalling is offer/answer over HTTP (see controller/api/routes/video.py); this
module owns the peer connections. A publisher connection is receive-only: its
video receivers get an `EncodedTap` instead of aiortc's decoder queue, so
frames go straight to the feed. A viewer connection is send-only: each video
transceiver gets a `RelayTrack` and keeps the feed's codec, and its keyframe
requests go to the publisher. `decoded(drone, kind)` switches aiortc's decoder
back on for one feed, for the one consumer that needs pixels.

A feed can also come from outside WebRTC: `ingest(drone, kind, codec, source)`
takes a `FrameSource` (an RTSP camera pull, controller/video/ingest/) that
pushes encoded frames; its feed is created at the first frame and kept across
the source's reconnections, so viewers keep watching.

Publishers are kept per camera: `publishers[(drone, kind)]` is the connection
carrying that camera. One connection may carry several cameras (the JSON
/video/publish sends visible and thermal together; the same session then
stands under both keys) or a drone may publish each camera on its own
connection (WHIP: one resource per camera, as real airframes, OBS and
GStreamer do). A new publish replaces only the connections carrying the
cameras it names; a drone's other cameras keep their feeds.

Offers may carry audio sections (WHIP encoders such as OBS always offer one):
they are answered inactive and nothing is received or forwarded from them.

Everything the hub starts it stops: `close_drone` when a drone lands (all its
connections and pulled cameras), `unpublish` for one camera's connection,
`leave` when a viewer goes, `close` at shutdown; the counts are exposed for tests.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpsender import RTCRtpSender

from controller.video import aiortc_hooks
from controller.video.capture_clock import CaptureClock
from controller.video.encoded_frames import EncodedFrame, is_keyframe
from controller.video.feed import Feed

log = logging.getLogger(__name__)

KINDS = ("visible", "thermal")
#: Codecs the relay can forward (it must understand keyframes), in order of preference.
RELAY_CODECS = ("VP8", "H264")
NEGOTIATION_TIMEOUT_S = 10.0


class VideoError(Exception):
    pass


class NoSuchFeed(VideoError):
    pass


class EncodedTap:
    """Stands where aiortc's receiver queues encoded frames for its decoder thread.

    `put` forwards each frame to the feed and, only while `decode` is on, to
    the real decoder; `get` is what the decoder thread blocks on.
    """

    def __init__(self, inner: queue.Queue, sink: Callable[[Any, Any], None]) -> None:
        self._inner = inner
        self._sink = sink
        self.decode = False

    def put(self, item: Any) -> None:
        if item is None:  # the receiver is stopping: let the decoder thread end
            self._inner.put(None)
            return
        self._sink(*item)
        if self.decode:
            self._inner.put(item)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner.get(*args, **kwargs)


@dataclass(eq=False)
class PublisherSession:
    drone_id: str
    pc: RTCPeerConnection
    feeds: dict[str, Feed] = field(default_factory=dict)
    taps: dict[str, EncodedTap] = field(default_factory=dict)
    decoded_tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)
    kinds_by_mid: dict[str, str] = field(default_factory=dict)


class FrameSource(Protocol):
    """Encoded frames from outside the hub's WebRTC publishers (e.g. controller.video.ingest.rtsp.RtspIngest)."""

    def start(self, push: Callable[[EncodedFrame], None]) -> None:
        """Begin producing; `push` is called on the event loop, once per encoded frame, in order."""

    async def stop(self) -> None: ...

    def request_keyframe(self) -> None: ...


@dataclass(eq=False)
class IngestSession:
    drone_id: str
    kind: str
    codec: str
    source: FrameSource
    #: Created at the first frame (as a WebRTC publisher's feed is).
    feed: Feed | None = None
    started_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class ViewerSession:
    id: str
    who: str
    drone_id: str
    kind: str
    pc: RTCPeerConnection
    tracks: list[Any] = field(default_factory=list)
    created_at: float = field(default_factory=time.monotonic)


class BadOffer(VideoError):
    """The offer itself is unusable; `field` names the request field at fault (sdp or kinds)."""

    def __init__(self, message: str, field: str = "sdp") -> None:
        super().__init__(message)
        self.field = field


def check_offer(sdp: str, kinds: list[str] | None = None) -> None:
    """Refuse an offer the hub could not serve, before anything is opened or replaced.

    Video sections, each with ICE credentials, a DTLS fingerprint and a codec the relay forwards; for a
    publisher, one camera kind per video section. Audio sections are allowed (answered inactive, never
    received or forwarded); other sections (data channels) are not. aiortc accepts some of these (an offer
    without media, or without a fingerprint) and fails later in the background, leaving a connection behind.
    """
    from aiortc.sdp import SessionDescription

    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser asserts and raises ValueError/IndexError on junk
        why = str(exc).strip()
        raise BadOffer(f"not a valid SDP offer{': ' + why[:120] if why else ''}") from None
    others = sorted({m.kind for m in desc.media if m.kind not in ("video", "audio")})
    if others:
        raise BadOffer(f"only video (and audio, which is not relayed) sections are accepted; the offer also has {', '.join(others)}")
    video = [m for m in desc.media if m.kind == "video"]
    if not video:
        raise BadOffer("the offer has no video section (m=video)")
    if kinds is not None and len(video) != len(kinds):
        raise BadOffer(f"kinds names {len(kinds)} cameras but the offer has {len(video)} video sections", "kinds")
    for i, m in enumerate(video):
        if not (m.ice.usernameFragment and m.ice.password):
            raise BadOffer(f"video section {i} has no ICE credentials (a=ice-ufrag, a=ice-pwd)")
        if not m.dtls.fingerprints:
            raise BadOffer(f"video section {i} has no DTLS fingerprint (a=fingerprint)")
        codecs = {c.mimeType.split("/")[-1].upper() for c in m.rtp.codecs}
        if not codecs & set(RELAY_CODECS):
            raise BadOffer(f"video section {i} offers none of the codecs the relay forwards ({', '.join(RELAY_CODECS)})")


def _keep_only_codec(transceiver: Any, codec: str) -> None:
    """Narrow an answering transceiver to one codec (and its RTX).

    aiortc settles an answer's codecs when the offer is set, before codec preferences can be given, and its
    sender then uses the first: a viewer offering VP8 first would be sent an H.264 feed labelled as VP8.
    """
    mime = f"video/{codec.lower()}"
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == mime]
    if not kept:
        raise VideoError(f"the viewer's offer does not accept {codec}, the codec of this feed")
    pts = {c.payloadType for c in kept}
    rtx = [c for c in transceiver._codecs if c.mimeType.lower() == "video/rtx" and c.parameters.get("apt") in pts]
    transceiver._codecs = kept + rtx


def _silence_audio(pc: RTCPeerConnection) -> None:
    """Answer the offer's audio sections inactive: aiortc then neither receives nor sends on them."""
    for t in pc.getTransceivers():
        if t.kind == "audio":
            t.direction = "inactive"


def _sdp_mids(sdp: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=mid:")]


class VideoHub:
    """`mode="forward"` relays encoded frames (the point of this hub). `mode="reencode"` is the plain aiortc
    way, kept only as the benchmark's comparison: decode each publisher once, encode again for every viewer."""

    def __init__(self, on_feeds_changed: Callable[[str], None] | None = None, mode: str = "forward") -> None:
        if mode not in ("forward", "reencode"):
            raise ValueError(f"unknown relay mode {mode!r}")
        self.mode = mode
        self._media_relay: Any = None
        self.feeds: dict[tuple[str, str], Feed] = {}
        #: Publishing connections by (drone id, kind): a connection carrying two cameras stands under both keys.
        self.publishers: dict[tuple[str, str], PublisherSession] = {}
        #: Feeds pulled from outside (RTSP cameras), by (drone id, kind).
        self.ingests: dict[tuple[str, str], IngestSession] = {}
        self.viewers: dict[str, ViewerSession] = {}
        self._ids = itertools.count(1)
        self._on_feeds_changed = on_feeds_changed
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- publishers ---------------------------------------------------------------

    def publisher_for(self, drone_id: str, kind: str) -> PublisherSession | None:
        """The connection carrying one camera of a drone, if any."""
        return self.publishers.get((drone_id, kind))

    def publishing(self, drone_id: str) -> list[PublisherSession]:
        """A drone's publishing connections (each once, however many cameras it carries)."""
        out: list[PublisherSession] = []
        for (d, _), session in self.publishers.items():
            if d == drone_id and session not in out:
                out.append(session)
        return out

    def _forget_publisher(self, session: PublisherSession) -> bool:
        keys = [k for k, s in self.publishers.items() if s is session]
        for k in keys:
            del self.publishers[k]
        return bool(keys)

    async def publish(self, drone_id: str, offer_sdp: str, kinds: list[str]) -> str:
        """Accept a drone's offer. `kinds[i]` names the i-th video section (visible / thermal).

        Replaces the drone's connections that carry any of `kinds` (all their cameras end with them); the
        drone's connections for other cameras are left alone."""
        for kind in kinds:
            if kind not in KINDS:
                raise BadOffer(f"unknown camera kind {kind!r}; expected one of {', '.join(KINDS)}", "kinds")
        if len(set(kinds)) != len(kinds):
            raise BadOffer("kinds names the same camera twice", "kinds")
        check_offer(offer_sdp, kinds)  # a bad offer leaves the drone's current connections alone
        for old in {id(s): s for k in kinds if (s := self.publishers.get((drone_id, k))) is not None}.values():
            self._forget_publisher(old)
            await self._close_publisher(old, "replaced by a new connection")
        pc = RTCPeerConnection()
        session = PublisherSession(drone_id, pc)
        for kind in kinds:
            self.publishers[(drone_id, kind)] = session

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind != "video":
                return
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            kind = kinds[len(session.taps)] if len(session.taps) < len(kinds) else f"extra{len(session.taps)}"
            self._attach(session, kind, transceiver.receiver)
            session.decoded_tracks[kind] = track

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self._forget_publisher(session):
                log.info("video: %s publisher connection (%s) %s", drone_id, ", ".join(kinds), pc.connectionState)
                await self._close_publisher(session, f"connection {pc.connectionState}")

        try:
            await asyncio.wait_for(pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer")), NEGOTIATION_TIMEOUT_S)
            for t in pc.getTransceivers():
                t.direction = "recvonly" if t.kind == "video" else "inactive"
            answer = await pc.createAnswer()
            await asyncio.wait_for(pc.setLocalDescription(answer), NEGOTIATION_TIMEOUT_S)
        except Exception as exc:
            self._forget_publisher(session)
            if session.feeds:
                await self._close_publisher(session, "offer refused")
            else:
                await pc.close()
            raise VideoError(f"cannot accept {drone_id}'s video offer: {exc}") from exc
        log.info("video: %s publishing %s", drone_id, ", ".join(kinds))
        return pc.localDescription.sdp

    def _attach(self, session: PublisherSession, kind: str, receiver: RTCRtpReceiver) -> None:
        clock = CaptureClock()
        aiortc_hooks.watch_sender_reports(receiver, clock.observe_sender_report)
        feed_box: list[Feed] = []

        def request_keyframe() -> None:
            ssrc = aiortc_hooks.media_ssrc(receiver)
            if ssrc is not None:
                self._spawn(receiver._send_rtcp_pli(ssrc))

        def sink(codec: Any, jitter_frame: Any) -> None:
            if not feed_box:
                if (session.drone_id, kind) in self.ingests:
                    return  # the camera's own stream is pulled for this kind: it keeps the feed
                if codec.name.upper() not in RELAY_CODECS:
                    log.warning("video: %s sends %s, which the relay cannot forward", session.drone_id, codec.name)
                    return
                feed = Feed(session.drone_id, kind, codec.name, request_keyframe)
                feed_box.append(feed)
                session.feeds[kind] = feed
                self.feeds[feed.key] = feed
                if self._on_feeds_changed:
                    self._on_feeds_changed(session.drone_id)
            origin = aiortc_hooks.rtp_origin(receiver) or 0
            data = bytes(jitter_frame.data)
            feed_box[0].push(
                EncodedFrame(
                    data=data,
                    rtp_ts=jitter_frame.timestamp,
                    keyframe=is_keyframe(codec.name, data),
                    capture_time=clock.capture_time((jitter_frame.timestamp + origin) & 0xFFFFFFFF),
                    received=time.monotonic(),
                )
            )

        tap = EncodedTap(aiortc_hooks.decoder_queue(receiver), sink)
        aiortc_hooks.install_decoder_tap(receiver, tap)
        aiortc_hooks.complete_frames_on_marker(receiver)
        tap.decode = self.mode == "reencode"
        session.taps[kind] = tap

    def decoded(self, drone_id: str, kind: str) -> MediaStreamTrack:
        """aiortc's decoded track for one feed: decoding starts now (and a keyframe is requested)."""
        session = self.publishers.get((drone_id, kind))
        if session is None or kind not in session.taps:
            raise NoSuchFeed(f"{drone_id} has no live {kind} feed")
        session.taps[kind].decode = True
        feed = session.feeds.get(kind)
        if feed is not None:
            feed.request_keyframe()
        return session.decoded_tracks[kind]

    async def close_drone(self, drone_id: str) -> None:
        """The drone landed or went away: end all its connections and pulled cameras, and their viewers."""
        for session in self.publishing(drone_id):
            self._forget_publisher(session)
            await self._close_publisher(session, "publisher ended")
        for d, kind in [k for k in self.ingests if k[0] == drone_id]:
            await self.stop_ingest(d, kind)

    async def unpublish(self, drone_id: str, kind: str) -> bool:
        """End the connection carrying one camera (and any other camera on that same connection); the drone's
        other connections go on. False if no connection carries it."""
        session = self.publishers.get((drone_id, kind))
        if session is None:
            return False
        self._forget_publisher(session)
        await self._close_publisher(session, "publisher ended")
        return True

    # --- feeds from outside WebRTC (RTSP cameras) -----------------------------------------

    async def ingest(self, drone_id: str, kind: str, codec: str, source: FrameSource) -> IngestSession:
        """Start a feed whose encoded frames `source` pushes; replaces an earlier ingest of the same feed.

        Refused (VideoError) while a WebRTC publisher has that feed live: one source per feed.
        """
        if kind not in KINDS:
            raise VideoError(f"unknown camera kind {kind!r}; expected one of {', '.join(KINDS)}")
        codec = codec.upper()
        if codec not in RELAY_CODECS:
            raise VideoError(f"the relay cannot forward {codec}; it forwards {', '.join(RELAY_CODECS)}")
        live = self.feeds.get((drone_id, kind))
        if live is not None and (drone_id, kind) not in self.ingests:
            raise VideoError(f"{drone_id} already publishes its {kind} feed over WebRTC")
        if (drone_id, kind) in self.ingests:
            await self.stop_ingest(drone_id, kind)
        session = IngestSession(drone_id, kind, codec, source)
        self.ingests[(drone_id, kind)] = session

        def push(frame: EncodedFrame) -> None:
            if self.ingests.get((drone_id, kind)) is not session:
                return
            feed = session.feed
            if feed is None:
                feed = session.feed = Feed(drone_id, kind, codec, source.request_keyframe)
                self.feeds[feed.key] = feed
                log.info("video: %s/%s feed live from its camera stream", drone_id, kind)
                if self._on_feeds_changed:
                    self._on_feeds_changed(drone_id)
            feed.push(frame)

        source.start(push)
        return session

    async def stop_ingest(self, drone_id: str, kind: str) -> bool:
        """End one pulled feed (its source, its viewers); False if there was none."""
        session = self.ingests.pop((drone_id, kind), None)
        if session is None:
            return False
        await session.source.stop()
        feed = session.feed
        if feed is not None:
            feed.close()
            if self.feeds.get(feed.key) is feed:
                self.feeds.pop(feed.key, None)
            for viewer in [v for v in self.viewers.values() if v.drone_id == drone_id and v.kind == kind]:
                await self.leave(viewer.id)
            log.info("video: %s/%s camera feed closed", drone_id, kind)
            if self._on_feeds_changed:
                self._on_feeds_changed(drone_id)
        return True

    async def _close_publisher(self, session: PublisherSession, why: str) -> None:
        for feed in session.feeds.values():
            feed.close()
            if self.feeds.get(feed.key) is feed:
                self.feeds.pop(feed.key, None)
        for viewer in [v for v in self.viewers.values() if v.drone_id == session.drone_id and v.kind in session.feeds]:
            await self.leave(viewer.id)
        await session.pc.close()
        log.info("video: %s feeds closed (%s)", session.drone_id, why)
        if self._on_feeds_changed:
            self._on_feeds_changed(session.drone_id)

    # --- viewers ------------------------------------------------------------------

    async def watch(self, drone_id: str, kind: str, offer_sdp: str, who: str) -> tuple[str, str]:
        """Answer a viewer's offer with the feed's tracks; returns (viewer id, answer SDP)."""
        feed = self.feeds.get((drone_id, kind))
        if feed is None:
            raise NoSuchFeed(f"{drone_id} has no live {kind} feed")
        check_offer(offer_sdp)
        pc = RTCPeerConnection()
        viewer = ViewerSession(f"v{next(self._ids)}", who, drone_id, kind, pc)
        self.viewers[viewer.id] = viewer

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and viewer.id in self.viewers:
                await self.leave(viewer.id)

        try:
            await asyncio.wait_for(pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer")), NEGOTIATION_TIMEOUT_S)
            video = [t for t in pc.getTransceivers() if t.kind == "video"]
            if not video:
                raise VideoError("the offer has no video section")
            # Forwarding works only if the viewer decodes what the drone encodes: offer that codec alone.
            wanted = (f"video/{feed.codec.lower()}", "video/rtx")
            codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.lower() in wanted]
            transceiver = video[0]
            transceiver.setCodecPreferences(codecs)
            _keep_only_codec(transceiver, feed.codec)
            if self.mode == "forward" or (drone_id, kind) in self.ingests:
                track = feed.subscribe()
                forward_keyframes = True
            else:
                from aiortc.contrib.media import MediaRelay

                if self._media_relay is None:
                    self._media_relay = MediaRelay()
                track = self._media_relay.subscribe(self.publishers[(drone_id, kind)].decoded_tracks[kind])
                forward_keyframes = False
            viewer.tracks.append(track)
            pc.addTrack(track)
            transceiver.direction = "sendonly"
            _silence_audio(pc)
            if forward_keyframes:
                aiortc_hooks.redirect_keyframe_requests(transceiver.sender, feed.request_keyframe)
            answer = await pc.createAnswer()
            await asyncio.wait_for(pc.setLocalDescription(answer), NEGOTIATION_TIMEOUT_S)
        except Exception as exc:
            await self.leave(viewer.id)
            raise VideoError(f"cannot answer the viewer's offer: {exc}") from exc
        log.info("video: %s watches %s/%s (%d viewers)", who, drone_id, kind, len(feed.subscribers))
        return viewer.id, pc.localDescription.sdp

    async def leave(self, viewer_id: str) -> bool:
        viewer = self.viewers.pop(viewer_id, None)
        if viewer is None:
            return False
        for track in viewer.tracks:
            track.stop()
        await viewer.pc.close()
        return True

    # --- housekeeping -------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for drone_id in {d for d, _ in self.publishers}:
            await self.close_drone(drone_id)
        for drone_id, kind in list(self.ingests):
            await self.stop_ingest(drone_id, kind)
        for viewer_id in list(self.viewers):
            await self.leave(viewer_id)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def ingest_stats(self) -> dict[str, Any]:
        """Each pulled camera stream: its state and counters (what the source reports)."""
        out: dict[str, Any] = {}
        for (drone_id, kind), session in sorted(self.ingests.items()):
            stats = getattr(session.source, "stats", None)
            out[f"{drone_id}/{kind}"] = {
                "live": session.feed is not None and not session.feed.closed,
                **({k: v for k, v in vars(stats).items() if k != "history"} if stats is not None else {}),
            }
        return out

    def stats(self) -> dict[str, Any]:
        return {
            "publishers": len({id(s) for s in self.publishers.values()}),
            "feeds": len(self.feeds),
            "viewers": len(self.viewers),
            "forwarded_streams": sum(len(f.subscribers) for f in self.feeds.values()),
        }
