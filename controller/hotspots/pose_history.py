"""Where each drone was, recently: the pose at a video frame's capture time.

A frame reaches the detector tens to hundreds of milliseconds after it was
captured, and at 10 m/s the drone has moved metres by then. Georeferencing with
the latest telemetry would smear every hotspot along the track, so positions are
kept with their wall-clock arrival times and interpolated at the capture time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


class _Ring:
    """One drone's samples in a fixed numpy array (oldest overwritten): no Python object per sample.

    140 drones at 4–10 Hz would otherwise keep ~56,000 small objects alive, and every full
    garbage collection would walk them all on the event loop (tens of milliseconds of lag).
    """

    __slots__ = ("data", "count", "head")

    def __init__(self, size: int) -> None:
        self.data = np.empty((size, len(_FIELDS)), dtype=np.float64)
        self.count = 0
        self.head = 0  # next row to write

    def append(self, row: tuple[float, ...]) -> None:
        self.data[self.head] = row
        self.head = (self.head + 1) % self.data.shape[0]
        self.count = min(self.count + 1, self.data.shape[0])

    def ordered(self) -> np.ndarray:
        """Rows oldest first."""
        if self.count < self.data.shape[0]:
            return self.data[: self.count]
        return np.roll(self.data, -self.head, axis=0)

    def last(self) -> np.ndarray:
        return self.data[(self.head - 1) % self.data.shape[0]]

    def first(self) -> np.ndarray:
        return self.data[0] if self.count < self.data.shape[0] else self.data[self.head]


_FIELDS = ("t", "lat", "lon", "alt_amsl_m", "alt_rel_m", "heading_deg", "roll_deg", "pitch_deg")


def _sample(row: np.ndarray) -> PoseSample:
    return PoseSample(*(float(v) for v in row))


class PoseHistory:
    """Per-drone ring of pose samples in arrival order."""

    def __init__(self, size: int = HISTORY) -> None:
        if size < 1:
            raise ValueError("PoseHistory size must be >= 1")
        self._size = size
        self._rings: dict[str, _Ring] = {}

    def add(self, drone_id: str, sample: PoseSample) -> None:
        ring = self._rings.get(drone_id)
        if ring is None:
            ring = self._rings[drone_id] = _Ring(self._size)
        if ring.count and sample.t <= ring.last()[0]:
            return  # out of order or duplicate: keep the history monotonic
        ring.append((sample.t, sample.lat, sample.lon, sample.alt_amsl_m, sample.alt_rel_m, sample.heading_deg,
                     sample.roll_deg, sample.pitch_deg))

    def latest(self, drone_id: str) -> PoseSample | None:
        ring = self._rings.get(drone_id)
        return _sample(ring.last()) if ring and ring.count else None

    def at(self, drone_id: str, t: float) -> PoseSample | None:
        """The pose at wall-clock time t, or None if the history does not cover it."""
        ring = self._rings.get(drone_id)
        if not ring or not ring.count:
            return None
        last, first = ring.last(), ring.first()
        if t >= last[0]:
            return _sample(last) if t - last[0] <= MAX_EXTRAPOLATION_S else None
        if t <= first[0]:
            return _sample(first) if first[0] - t <= MAX_EXTRAPOLATION_S else None
        rows = ring.ordered()
        i = int(np.searchsorted(rows[:, 0], t, side="right"))
        return interpolate(_sample(rows[i - 1]), _sample(rows[i]), t)

    def forget(self, drone_id: str) -> None:
        self._rings.pop(drone_id, None)


def finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)
