"""Offer timers: one per open offer; when it fires, the offer expires and the call goes to the next drone.

Timers live on the event loop (`call_later`), not in tasks, so thousands of
open offers cost nothing while they wait. Expiry itself is a command (it
commits), so it runs as a tracked task that `close` waits for; offers whose
timers fire in the same moment (made in one burst) expire in one batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from controller.domain.entities import Mission

log = logging.getLogger(__name__)


class OfferTimers:
    def __init__(self, clock: Callable[[], datetime], expire: Callable[[list[str]], Awaitable[None]]) -> None:
        self._clock = clock
        self._expire = expire
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due: list[str] = []

    def arm(self, m: Mission) -> None:
        delay = max(0.0, (m.expires_at - self._clock()).total_seconds())
        self._timers[m.id] = asyncio.get_running_loop().call_later(delay, self._fire, m.id)

    def disarm(self, mission_id: str) -> None:
        handle = self._timers.pop(mission_id, None)
        if handle is not None:
            handle.cancel()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a command in the background (expiry, or anything else the centre must not await inline)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _fire(self, mission_id: str) -> None:
        self._timers.pop(mission_id, None)
        if not self._due:  # the first of a burst: the others firing in this loop turn join it
            asyncio.get_running_loop().call_soon(self._flush)
        self._due.append(mission_id)

    def _flush(self) -> None:
        due, self._due = self._due, []
        self.spawn(self._expire(due))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background dispatch task failed", exc_info=task.exception())

    async def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
