"""Offer timers: two per open offer, a warning when OFFER_EXPIRING_S are left, then expiry.

Timers live on the event loop (`call_later`), not in tasks, so thousands of
open offers cost nothing while they wait (no loop polls the offers). Expiry
itself is a command (it commits), so it runs as a tracked task that `close`
waits for; offers whose timers fire in the same moment (made in one burst)
expire in one batch. The warning (an `offer_expiring` alert) fires once per
offer the same way, batched, and not again for an offer warned before a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from controller.domain.alerts import OFFER_EXPIRING_S
from controller.domain.entities import Mission

log = logging.getLogger(__name__)


Batch = Callable[[list[str]], Awaitable[None]]


async def _no_warning(mission_ids: list[str]) -> None:
    return None


class OfferTimers:
    def __init__(self, clock: Callable[[], datetime], expire: Batch, warn: Batch = _no_warning) -> None:
        self._clock = clock
        self._expire = expire
        self._warn = warn
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._warnings: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._due: list[str] = []
        self._due_warnings: list[str] = []

    def arm(self, m: Mission, *, warn: bool = True) -> None:
        """Start the offer's timers; `warn=False`: its warning was already given (before a restart)."""
        loop = asyncio.get_running_loop()
        now = self._clock()
        delay = max(0.0, (m.expires_at - now).total_seconds())
        self._timers[m.id] = loop.call_later(delay, self._fire, m.id)
        if warn:
            warn_at = m.expires_at - timedelta(seconds=OFFER_EXPIRING_S)
            self._warnings[m.id] = loop.call_later(max(0.0, (warn_at - now).total_seconds()), self._fire_warning, m.id)

    def disarm(self, mission_id: str) -> None:
        for timers in (self._timers, self._warnings):
            handle = timers.pop(mission_id, None)
            if handle is not None:
                handle.cancel()

    def _fire_warning(self, mission_id: str) -> None:
        self._warnings.pop(mission_id, None)
        if not self._due_warnings:
            asyncio.get_running_loop().call_soon(self._flush_warnings)
        self._due_warnings.append(mission_id)

    def _flush_warnings(self) -> None:
        due, self._due_warnings = self._due_warnings, []
        self.spawn(self._warn(due))

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
        for timers in (self._timers, self._warnings):
            for handle in timers.values():
                handle.cancel()
            timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
