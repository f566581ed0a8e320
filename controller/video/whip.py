"""WHIP ingest (RFC 9725) and WHEP playback on the existing hub: one HTTP resource per connection.

Nothing here relays media: a WHIP publish is `hub.publish(drone, offer, [kind])` and a WHEP viewing is
`hub.watch(...)`, so feeds, viewers, keyframe requests, landing and shutdown work as for the JSON endpoints.
This module only names the connections as HTTP resources and decides what a second publisher means.

- A WHIP resource is the drone's publishing connection. Its id is random (the URL is not guessable) and is
  kept beside the hub's session in a WeakKeyDictionary: when the hub drops the session (DELETE, landing,
  replacement, a failed connection, shutdown) the resource is gone too, with nothing to clean up here.
- The hub holds a publishing connection per camera, so a drone publishes visible and thermal as two WHIP
  resources (as real airframes and WHIP encoders do), and DELETE of one leaves the other camera live.
  A WHIP POST for a camera that already has a connection of its own replaces it (as /video/publish does:
  a drone that rebooted in flight gets its picture back at once; the old resource then answers 404). If
  that camera's connection also carries another camera (a /video/publish connection with both), replacing
  it would cut that feed: 409, nothing changed.
- Offers with an audio section (OBS always sends one) are accepted; the audio is answered inactive and
  never relayed.
- A WHEP resource is a hub viewer; its id is the viewer id (the same as /api/v1/video/viewers/{id}).
"""

from __future__ import annotations

import secrets
from weakref import WeakKeyDictionary

from controller.video import aiortc_hooks
from controller.video.hub import KINDS, BadOffer, PublisherSession, VideoError, VideoHub, ViewerSession, check_offer

# WHIP encoders are often GStreamer (RSA DTLS certificates): let the hub's aiortc connections talk to them.
aiortc_hooks.accept_rsa_dtls_peers()

#: hub publisher session → (WHIP resource id, camera kind)
_resources: WeakKeyDictionary[PublisherSession, tuple[str, str]] = WeakKeyDictionary()


class PublishConflict(VideoError):
    """The drone's current connection carries other cameras; a WHIP publish would cut them."""


def new_resource_id() -> str:
    return "w" + secrets.token_hex(12)


def register(session: PublisherSession, kind: str, resource_id: str | None = None) -> str:
    """Name a hub publisher session as a WHIP resource (tests register a session they built themselves)."""
    rid = resource_id or new_resource_id()
    _resources[session] = (rid, kind)
    return rid


def publisher_kinds(session: PublisherSession) -> set[str]:
    """The cameras a publishing connection carries (its taps are attached while the offer is applied)."""
    return set(session.taps) | set(session.feeds)


def whip_session(hub: VideoHub, drone_id: str, kind: str, resource_id: str) -> PublisherSession | None:
    session = hub.publisher_for(drone_id, kind)
    if session is not None and _resources.get(session) == (resource_id, kind):
        return session
    return None


async def whip_publish(hub: VideoHub, drone_id: str, kind: str, offer_sdp: str) -> tuple[str, str]:
    """Accept a WHIP offer for one camera; returns (resource id, answer SDP).

    Raises BadOffer (nothing opened or replaced), PublishConflict (this camera's current connection carries
    another camera too, or the camera is pulled over RTSP) or VideoError (negotiation failed).
    """
    if kind not in KINDS:
        raise BadOffer(f"unknown camera kind {kind!r}; expected one of {', '.join(KINDS)}", "kind")
    try:
        check_offer(offer_sdp, [kind])  # before anything is replaced: a junk offer leaves the current feed alone
    except BadOffer as exc:
        if exc.field != "kinds":
            raise
        raise BadOffer(f"a WHIP offer carries one camera ({kind}): one video section, not several", "sdp") from None
    if (drone_id, kind) in getattr(hub, "ingests", {}):
        raise PublishConflict(f"{drone_id}'s {kind} feed is pulled from its camera's own stream (RTSP)")
    current = hub.publisher_for(drone_id, kind)
    if current is not None:
        others = sorted(publisher_kinds(current) - {kind})
        if others:
            raise PublishConflict(
                f"{drone_id}'s {kind} camera shares its connection with {', '.join(others)}; a WHIP publish of "
                f"{kind} would end that connection and cut {', '.join(others)}: end that connection first"
            )
    answer = await hub.publish(drone_id, offer_sdp, [kind])
    session = hub.publisher_for(drone_id, kind)
    local = session.pc.localDescription if session is not None else None
    if session is None or local is None or local.sdp != answer:
        # another publish for this drone replaced ours while it was being negotiated
        raise PublishConflict(f"{drone_id}'s connection was replaced by another publish while this one was negotiated")
    return register(session, kind), answer


async def whip_end(hub: VideoHub, drone_id: str, kind: str, resource_id: str) -> bool:
    """DELETE of a WHIP resource: its camera's feed ends and its viewers are let go; the drone's other
    cameras (their own connections, or pulled over RTSP) go on."""
    if whip_session(hub, drone_id, kind, resource_id) is None:
        return False
    return await hub.unpublish(drone_id, kind)


def whep_viewer(hub: VideoHub, drone_id: str, kind: str, viewer_id: str) -> ViewerSession | None:
    viewer = hub.viewers.get(viewer_id)
    if viewer is None or viewer.drone_id != drone_id or viewer.kind != kind:
        return None
    return viewer
