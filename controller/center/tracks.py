"""Recent positions of every drone, in memory: what the maps draw behind a flying drone.

Fed by the telemetry the flight layer folds into live state, thinned to one
point every SPACING_S and kept KEEP_S, so a console opening mid-flight gets
the last minutes in one cheap read (no database, no replay of telemetry,
which is not stored). Lost on restart, like the telemetry it comes from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

SPACING_S = 2.0
KEEP_S = 30 * 60.0


@dataclass(frozen=True, slots=True)
class TrackPoint:
    at: datetime
    lat: float
    lon: float
    alt_m: float


class TrackLog:
    def __init__(self, clock: Callable[[], datetime], spacing_s: float = SPACING_S, keep_s: float = KEEP_S) -> None:
        self.clock = clock
        self.spacing_s = spacing_s
        self.keep_s = keep_s
        self._points: dict[str, deque[TrackPoint]] = {}

    def add(self, drone_id: str, lat: float, lon: float, alt_m: float) -> None:
        now = self.clock()
        points = self._points.get(drone_id)
        if points is None:
            points = self._points[drone_id] = deque()
        elif points and (now - points[-1].at).total_seconds() < self.spacing_s:
            return
        points.append(TrackPoint(now, lat, lon, alt_m))
        oldest = now - timedelta(seconds=self.keep_s)
        while points and points[0].at < oldest:
            points.popleft()

    def recent(self, drone_id: str, seconds: float) -> list[TrackPoint]:
        """Points of the last `seconds`, oldest first."""
        since = self.clock() - timedelta(seconds=seconds)
        return [p for p in self._points.get(drone_id, ()) if p.at >= since]
