"""A controller with a recording in it, for the API and role-matrix tests."""

from __future__ import annotations

import asyncio
from typing import Any

from controller.evidence import store
from controller.runtime import Runtime
from controller.video.feed import Feed
from tests.evidence.frames import frames


async def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def recording_row(rt: Runtime, recording_id: str) -> dict[str, Any] | None:
    return await rt.db.read(lambda c: store.get_recording(c, recording_id))


async def record(rt: Runtime, drone_id: str, mission_id: str | None, n: int = 45, codec: str = "VP8",
                 segment_s: float = 1.0, capture0: float = 1_790_000_000.0, track: Any = None) -> str:
    """Record n frames of drone_id's visible camera for mission_id; returns the recording's id once it has ended.
    `track(t)`: a pose dict for time t, written every third frame (as position reports would be)."""
    assert rt.evidence is not None
    rt.evidence.recorder.segment_s = segment_s
    feed = Feed(drone_id, "visible", codec, lambda: None)
    handle = rt.evidence.attach(feed, mission_id=mission_id)
    for i, f in enumerate(frames(codec, n, capture0=capture0)):
        if track is not None and i % 3 == 0:
            rt.evidence.recorder.pose(handle, {"t": f.capture_time, **track(f.capture_time)})
        feed.push(f)
    rt.evidence.detach(drone_id, "visible")

    async def ended() -> bool:
        row = await recording_row(rt, handle.meta.id)
        return row is not None and row["ended_at"] is not None

    await wait_for(ended)
    return handle.meta.id
