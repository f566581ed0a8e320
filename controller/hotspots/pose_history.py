"""Where each drone was, recently: the pose at a video frame's capture time.

A frame reaches the detector tens to hundreds of milliseconds after it was
captured, and at 10 m/s the drone has moved metres by then. Georeferencing with
the latest telemetry would smear every hotspot along the track, so positions are
kept with their wall-clock arrival times and interpolated at the capture time.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

#: Samples kept per drone: at 4–10 Hz, tens of seconds of history.
HISTORY = 400
#: A capture time further than this outside the history is not trusted.
MAX_EXTRAPOLATION_S = 0.5


@dataclass(frozen=True, slots=True)
class PoseSample:
    t: float  # Unix seconds
    lat: float
    lon: float
    alt_amsl_m: float
    alt_rel_m: float
    heading_deg: float
    roll_deg: float = 0.0
    pitch_deg: float = 0.0


def _lerp_angle(a: float, b: float, f: float) -> float:
    d = (b - a + 180.0) % 360.0 - 180.0
    return (a + f * d) % 360.0


def interpolate(a: PoseSample, b: PoseSample, t: float) -> PoseSample:
    """Linear between two samples (angles the short way round); pure."""
    span = b.t - a.t
    f = 0.0 if span <= 0 else (t - a.t) / span
    return PoseSample(
        t=t,
        lat=a.lat + f * (b.lat - a.lat),
        lon=a.lon + f * (b.lon - a.lon),
        alt_amsl_m=a.alt_amsl_m + f * (b.alt_amsl_m - a.alt_amsl_m),
        alt_rel_m=a.alt_rel_m + f * (b.alt_rel_m - a.alt_rel_m),
        heading_deg=_lerp_angle(a.heading_deg, b.heading_deg, f),
        roll_deg=a.roll_deg + f * (b.roll_deg - a.roll_deg),
        pitch_deg=a.pitch_deg + f * (b.pitch_deg - a.pitch_deg),
    )


class PoseHistory:
    """Per-drone ring of pose samples in arrival order."""

    def __init__(self, size: int = HISTORY) -> None:
        self._size = size
        self._samples: dict[str, deque[PoseSample]] = {}

    def add(self, drone_id: str, sample: PoseSample) -> None:
        ring = self._samples.get(drone_id)
        if ring is None:
            ring = self._samples[drone_id] = deque(maxlen=self._size)
        if ring and sample.t <= ring[-1].t:
            return  # out of order or duplicate: keep the history monotonic
        ring.append(sample)

    def latest(self, drone_id: str) -> PoseSample | None:
        ring = self._samples.get(drone_id)
        return ring[-1] if ring else None

    def at(self, drone_id: str, t: float) -> PoseSample | None:
        """The pose at wall-clock time t, or None if the history does not cover it."""
        ring = self._samples.get(drone_id)
        if not ring:
            return None
        if t >= ring[-1].t:
            return ring[-1] if t - ring[-1].t <= MAX_EXTRAPOLATION_S else None
        if t <= ring[0].t:
            return ring[0] if ring[0].t - t <= MAX_EXTRAPOLATION_S else None
        times = [s.t for s in ring]
        i = bisect.bisect_right(times, t)
        return interpolate(ring[i - 1], ring[i], t)

    def forget(self, drone_id: str) -> None:
        self._samples.pop(drone_id, None)


def finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)
