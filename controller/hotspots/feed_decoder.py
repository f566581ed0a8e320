"""Decode one drone's relayed video once, off the event loop, for the hotspot detector.

The relay forwards encoded frames to viewers without decoding them. For a drone
on a search, the detector needs pixels: this listens to the same feed as the
viewers, decodes each frame with PyAV in a worker thread (one decoder per
feed, so frames stay in order), and hands out (capture time, grey image)
pairs. It starts at a keyframe and asks for one when it joins, and it drops
frames rather than queue them when the detector falls behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np

from controller.video.encoded_frames import EncodedFrame
from controller.video.feed import Feed

log = logging.getLogger(__name__)

#: Encoded frames waiting for the decoder; beyond this the oldest non-key frames are dropped.
MAX_BACKLOG = 30


class FeedDecoder:
    """Decodes a feed's frames and calls `on_frame(capture_time, gray)` for every `every`-th one."""

    def __init__(
        self,
        feed: Feed,
        on_frame: Callable[[float, np.ndarray], Awaitable[None]],
        every: int = 1,
    ) -> None:
        self.feed = feed
        self.on_frame = on_frame
        self.every = max(1, every)
        self.decoded = 0
        self.dropped = 0
        self.errors = 0
        self._codec = av.CodecContext.create(feed.codec.lower(), "r")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"decode-{feed.drone_id}")
        self._queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._have_key = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"decode-{self.feed.drone_id}")
        self.feed.add_listener(self._push)
        self.feed.request_keyframe()

    async def stop(self) -> None:
        self.feed.remove_listener(self._push)
        if self._task is not None:
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(self._task, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _push(self, frame: EncodedFrame) -> None:
        if not self._have_key:
            if not frame.keyframe:
                return
            self._have_key = True
        if self._queue.qsize() >= MAX_BACKLOG:
            # Behind: throw the backlog away and start again at the next keyframe.
            while not self._queue.empty():
                self._queue.get_nowait()
                self.dropped += 1
            self._have_key = frame.keyframe
            if not frame.keyframe:
                self.feed.request_keyframe()
                return
        self._queue.put_nowait(frame)

    def _decode(self, data: bytes) -> list[np.ndarray]:
        out = []
        for image in self._codec.decode(av.Packet(data)):
            out.append(image.to_ndarray(format="gray"))
        return out

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        n = 0
        while True:
            frame = await self._queue.get()
            if frame is None:
                return
            try:
                images = await loop.run_in_executor(self._pool, self._decode, frame.data)
            except (av.FFmpegError, ValueError) as exc:
                self.errors += 1
                log.debug("%s: undecodable frame: %s", self.feed.drone_id, exc)
                self._have_key = False
                self.feed.request_keyframe()
                continue
            capture = frame.capture_time if frame.capture_time is not None else time.time()
            for gray in images:
                self.decoded += 1
                n += 1
                if n % self.every == 0:
                    try:
                        await self.on_frame(capture, gray)
                    except Exception:  # noqa: BLE001 - one bad frame must not stop the search
                        log.exception("%s: frame handler failed", self.feed.drone_id)
