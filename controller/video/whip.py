"""WHIP ingest (RFC 9725) and WHEP playback on the existing hub: one HTTP resource per connection.

Nothing here relays media: a WHIP publish is `hub.publish(drone, offer, [kind])` and a WHEP viewing is
`hub.watch(...)`, so feeds, viewers, keyframe requests, landing and shutdown work as for the JSON endpoints.
This module only names the connections as HTTP resources and decides what a second publisher means.

- A WHIP resource is the drone's publishing connection. Its id is random (the URL is not guessable) and is
  kept beside the hub's session in a WeakKeyDictionary: when the hub drops the session (DELETE, landing,
  replacement, a failed connection, shutdown) the resource is gone too, with nothing to clean up here.
- The hub holds one publishing connection per drone. A WHIP POST for a feed whose drone already publishes
  only that camera replaces the connection (as /video/publish does: a drone that rebooted in flight gets
  its picture back at once; the old resource then answers 404). If the drone's connection also carries
  another camera, replacing it would cut that feed: 409, nothing changed.
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
    session = hub.publishers.get(drone_id)
    if session is not None and _resources.get(session) == (resource_id, kind):
        return session
    return None


async def whip_publish(hub: VideoHub, drone_id: str, kind: str, offer_sdp: str) -> tuple[str, str]:
    """Accept a WHIP offer for one camera; returns (resource id, answer SDP).

    Raises BadOffer (nothing opened or replaced), PublishConflict (the drone's connection carries another
    camera) or VideoError (negotiation failed).
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
    current = hub.publishers.get(drone_id)
    if current is not None:
        others = sorted(publisher_kinds(current) - {kind})
        if others:
            raise PublishConflict(
                f"{drone_id} publishes {', '.join(others)} over its current connection; a WHIP publish of {kind} "
                "would end it (one publishing connection per drone): end that connection first"
            )
    answer = await hub.publish(drone_id, offer_sdp, [kind])
    session = hub.publishers.get(drone_id)
    local = session.pc.localDescription if session is not None else None
    if session is None or local is None or local.sdp != answer:
        # another publish for this drone replaced ours while it was being negotiated
        raise PublishConflict(f"{drone_id}'s connection was replaced by another publish while this one was negotiated")
    return register(session, kind), answer


async def whip_end(hub: VideoHub, drone_id: str, kind: str, resource_id: str) -> bool:
    """DELETE of a WHIP resource: the drone's feeds end and their viewers are let go."""
    if whip_session(hub, drone_id, kind, resource_id) is None:
        return False
    await hub.close_drone(drone_id)
    return True


def whep_viewer(hub: VideoHub, drone_id: str, kind: str, viewer_id: str) -> ViewerSession | None:
    viewer = hub.viewers.get(viewer_id)
    if viewer is None or viewer.drone_id != drone_id or viewer.kind != kind:
        return None
    return viewer
