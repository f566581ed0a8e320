"""Runtime health figures: event-loop lag (the loop must never be blocked), and throughput counters."""

from __future__ import annotations

import asyncio
import time
from collections import deque

import numpy as np

LAG_PERIOD_S = 0.05


class LoopLagMonitor:
    """Sleeps for a fixed period and records how late it wakes up: that lateness is what any
    other task (a telemetry message, an API call) would have waited for the loop."""

    def __init__(self, period_s: float = LAG_PERIOD_S, keep: int = 12_000) -> None:
        self.period_s = period_s
        self.samples: deque[float] = deque(maxlen=keep)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.period_s)
            self.samples.append(max(0.0, time.perf_counter() - started - self.period_s))

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {"n": 0}
        a = np.fromiter(self.samples, float) * 1000
        return {
            "n": int(a.size),
            "p50_ms": round(float(np.percentile(a, 50)), 2),
            "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2),
        }

    def reset(self) -> None:
        self.samples.clear()
