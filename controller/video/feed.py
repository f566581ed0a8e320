"""A drone camera's live feed and the per-viewer tracks that forward it without re-encoding.

The feed receives encoded frames from the publisher's receiver and offers each
one to every subscribed `RelayTrack`. A track starts at a keyframe (a decoder
can do nothing with a delta frame it has no reference for), so a new viewer
triggers a keyframe request to the publisher, and so does a viewer that fell
behind and had its backlog dropped. Viewers' own keyframe requests (PLI) are
forwarded to the publisher too, rate-limited so a crowd cannot flood it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from controller.video.encoded_frames import VIDEO_CLOCK_HZ, EncodedFrame

log = logging.getLogger(__name__)

#: A viewer further behind than this many frames is resynchronised at the next keyframe.
MAX_BACKLOG = 30
#: At most one keyframe request per feed in this interval.
KEYFRAME_REQUEST_INTERVAL_S = 0.3
_TIME_BASE = Fraction(1, VIDEO_CLOCK_HZ)


class Feed:
    def __init__(self, drone_id: str, kind: str, codec: str, request_keyframe: Callable[[], None]) -> None:
        self.drone_id = drone_id
        self.kind = kind
        self.codec = codec
        self._request_keyframe = request_keyframe
        self.subscribers: set[RelayTrack] = set()
        self.frames = 0
        self.keyframes = 0
        self.bytes = 0
        self.keyframe_requests = 0
        self.last_frame: EncodedFrame | None = None
        self._last_request = 0.0
        self.closed = False
        #: In-process consumers of the encoded frames (the hotspot decoder), called on every frame.
        self.listeners: list[Callable[[EncodedFrame], None]] = []

    @property
    def key(self) -> tuple[str, str]:
        return (self.drone_id, self.kind)

    def push(self, frame: EncodedFrame) -> None:
        self.frames += 1
        self.bytes += len(frame.data)
        self.keyframes += frame.keyframe
        self.last_frame = frame
        for track in self.subscribers:
            track.offer(frame)
        for listener in self.listeners:
            listener(frame)

    def add_listener(self, listener: Callable[[EncodedFrame], None]) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Callable[[EncodedFrame], None]) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def request_keyframe(self) -> None:
        now = time.monotonic()
        if now - self._last_request >= KEYFRAME_REQUEST_INTERVAL_S:
            self._last_request = now
            self.keyframe_requests += 1
            self._request_keyframe()

    def subscribe(self) -> RelayTrack:
        if self.closed:
            raise MediaStreamError(f"feed {self.drone_id}/{self.kind} has ended")
        track = RelayTrack(self)
        self.subscribers.add(track)
        self.request_keyframe()
        return track

    def unsubscribe(self, track: RelayTrack) -> None:
        self.subscribers.discard(track)

    def close(self) -> None:
        """The publisher went away: end every viewer's track."""
        self.closed = True
        for track in list(self.subscribers):
            track.end()
        self.subscribers.clear()


class RelayTrack(MediaStreamTrack):
    """Yields the feed's encoded frames as av.Packet, which aiortc's sender only packetises."""

    kind = "video"

    def __init__(self, feed: Feed) -> None:
        super().__init__()
        self.feed = feed
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self._synced = False
        self.forwarded = 0
        self.dropped = 0
        self.first_frame_at: float | None = None
        self.created_at = time.monotonic()

    def offer(self, frame: EncodedFrame) -> None:
        if not self._synced:
            if not frame.keyframe:
                self.dropped += 1
                # Keep asking while waiting: the first request may have gone out before this viewer's
                # connection was up, and its keyframe passed unseen. The feed rate-limits the requests.
                self.feed.request_keyframe()
                return
            self._synced = True
        if self._queue.qsize() >= MAX_BACKLOG:
            # Too far behind: drop the backlog and start again at the next keyframe.
            self.dropped += self._queue.qsize() + 1
            while not self._queue.empty():
                self._queue.get_nowait()
            self._synced = False
            self.feed.request_keyframe()
            return
        self._queue.put_nowait(frame)

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        self.forwarded += 1
        packet = av.Packet(frame.data)
        packet.pts = frame.rtp_ts
        packet.time_base = _TIME_BASE
        return packet

    def stop(self) -> None:
        super().stop()
        self.feed.unsubscribe(self)
