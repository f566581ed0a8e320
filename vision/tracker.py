"""Confirm hotspots across frames and drones, in ground coordinates.

A single frame's warm blob is often noise, a glint or a passing animal; a
person lying in a field is in the same place frame after frame, whichever
drone looks. Detections are therefore associated on the ground (not in
pixels: the camera moves), and a track becomes a hotspot after N sightings
within the last M frames of the drones that saw it. Sightings from several
drones merge into one hotspot. The position is the inverse-variance mean of
the sightings; its error keeps a share of the per-sighting error, because
pose biases (heading, altitude) do not average out over one pass.

Dismissed spots become suppression zones: detections there are ignored for
the rest of the search, so a team is not asked about the same dog twice.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from vision.detector import Detection

EARTH_M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class TrackerParams:
    #: Sightings needed to confirm a hotspot ...
    confirm_hits: int = 3
    #: ... within this many of the most recent frames of the drones that saw it.
    confirm_frames: int = 6
    #: A detection this close (metres, on the ground) to a track is the same thing.
    merge_radius_m: float = 8.0
    #: Detections scoring below this never start or feed a track.
    min_score: float = 0.5
    #: Unconfirmed tracks not seen for this long (seconds) are forgotten.
    max_age_s: float = 120.0
    #: Share of the mean per-sighting error kept in the hotspot's error (systematic pose error).
    bias_share: float = 0.5
    #: Radius of the suppression zone a dismissed hotspot leaves.
    dismiss_radius_m: float = 15.0

    def __post_init__(self) -> None:
        if not 1 <= self.confirm_hits <= self.confirm_frames:
            raise ValueError(f"need 1 <= confirm_hits ({self.confirm_hits}) <= confirm_frames ({self.confirm_frames})")
        if self.merge_radius_m <= 0 or self.max_age_s <= 0:
            raise ValueError("merge_radius_m and max_age_s must be positive")


@dataclass
class Hotspot:
    """A track; `confirmed` once it has had enough sightings."""

    id: int
    lat: float
    lon: float
    error_m: float
    first_seen: float
    last_seen: float
    hits: int = 0
    sources: set[str] = field(default_factory=set)
    kind: str = "other"
    score: float = 0.0
    confirmed: bool = False
    thumbnail: np.ndarray | None = field(default=None, repr=False)
    # inverse-variance accumulators in local metres about (lat0, lon0)
    _lat0: float = 0.0
    _lon0: float = 0.0
    _sw: float = 0.0
    _swx: float = 0.0
    _swy: float = 0.0
    _sum_err: float = 0.0
    _kinds: Counter[str] = field(default_factory=Counter, repr=False)
    _best: float = -1.0
    #: source -> frame numbers (of that source) with a sighting
    _frames: dict[str, deque[int]] = field(default_factory=dict, repr=False)


def _metres(lat0: float, lon0: float, lat: float, lon: float) -> tuple[float, float]:
    return (lon - lon0) * EARTH_M_PER_DEG * math.cos(math.radians(lat0)), (lat - lat0) * EARTH_M_PER_DEG


def _degrees(lat0: float, lon0: float, x: float, y: float) -> tuple[float, float]:
    return lat0 + y / EARTH_M_PER_DEG, lon0 + x / (EARTH_M_PER_DEG * math.cos(math.radians(lat0)))


class HotspotTracker:
    """Feed it each frame's detections; it returns the hotspots that frame confirmed."""

    def __init__(self, params: TrackerParams | None = None) -> None:
        self.params = params or TrackerParams()
        self._tracks: list[Hotspot] = []
        self._frame_no: dict[str, int] = {}
        self._zones: list[tuple[float, float, float]] = []
        self._next_id = 1

    @property
    def hotspots(self) -> list[Hotspot]:
        """Confirmed hotspots, oldest first."""
        return [t for t in self._tracks if t.confirmed]

    @property
    def tracks(self) -> list[Hotspot]:
        """Every live track, confirmed or not."""
        return list(self._tracks)

    def suppress(self, lat: float, lon: float, radius_m: float) -> None:
        """Ignore detections within radius_m of (lat, lon) from now on; drop unconfirmed tracks there."""
        self._zones.append((lat, lon, radius_m))
        self._tracks = [t for t in self._tracks if t.confirmed or not self._suppressed(t.lat, t.lon)]

    def dismiss(self, hotspot_id: int) -> None:
        """The hotspot was not the person: forget it and suppress its spot."""
        for t in self._tracks:
            if t.id == hotspot_id:
                self._tracks.remove(t)
                self.suppress(t.lat, t.lon, self.params.dismiss_radius_m)
                return
        raise KeyError(f"no hotspot {hotspot_id}")

    def _suppressed(self, lat: float, lon: float) -> bool:
        for zlat, zlon, r in self._zones:
            x, y = _metres(zlat, zlon, lat, lon)
            if x * x + y * y <= r * r:
                return True
        return False

    def update(self, source_id: str, t: float, detections: Iterable[Detection]) -> list[Hotspot]:
        """Associate one frame's georeferenced detections; returns tracks confirmed by this frame."""
        p = self.params
        frame = self._frame_no.get(source_id, 0) + 1
        self._frame_no[source_id] = frame
        candidates = sorted(
            (
                d for d in detections
                if d.has_position and d.score >= p.min_score and not self._suppressed(d.lat, d.lon)  # type: ignore[arg-type]
            ),
            key=lambda d: -d.score,
        )
        # One object per merge radius per frame: a blob split in two (head and body) is one sighting.
        usable: list[Detection] = []
        for d in candidates:
            if all(math.hypot(*_metres(k.lat, k.lon, d.lat, d.lon)) > p.merge_radius_m for k in usable):  # type: ignore[arg-type]
                usable.append(d)
        # Greedy nearest association, each track and each detection used once per frame.
        pairs: list[tuple[float, int, int]] = []
        for i, d in enumerate(usable):
            for j, tr in enumerate(self._tracks):
                x, y = _metres(tr.lat, tr.lon, d.lat, d.lon)  # type: ignore[arg-type]
                dist = math.hypot(x, y)
                if dist <= p.merge_radius_m:
                    pairs.append((dist, i, j))
        pairs.sort()
        used_d: set[int] = set()
        used_t: set[int] = set()
        for _, i, j in pairs:
            if i in used_d or j in used_t:
                continue
            used_d.add(i)
            used_t.add(j)
            self._add(self._tracks[j], source_id, frame, t, usable[i])
        for i, d in enumerate(usable):
            if i not in used_d:
                tr = Hotspot(self._next_id, d.lat, d.lon, d.error_m or p.merge_radius_m, t, t)  # type: ignore[arg-type]
                tr._lat0, tr._lon0 = tr.lat, tr.lon
                self._next_id += 1
                self._tracks.append(tr)
                self._add(tr, source_id, frame, t, d)
        confirmed = []
        for tr in self._tracks:
            if not tr.confirmed and self._recent_hits(tr) >= p.confirm_hits:
                tr.confirmed = True
                confirmed.append(tr)
        self._tracks = [tr for tr in self._tracks if tr.confirmed or t - tr.last_seen <= p.max_age_s]
        return confirmed

    def _recent_hits(self, tr: Hotspot) -> int:
        m = self.params.confirm_frames
        return sum(sum(1 for f in frames if f > self._frame_no[src] - m) for src, frames in tr._frames.items())

    def _add(self, tr: Hotspot, source: str, frame: int, t: float, d: Detection) -> None:
        sigma = max(d.error_m or self.params.merge_radius_m, 0.1)
        w = 1.0 / (sigma * sigma)
        x, y = _metres(tr._lat0, tr._lon0, d.lat, d.lon)  # type: ignore[arg-type]
        tr._sw += w
        tr._swx += w * x
        tr._swy += w * y
        tr._sum_err += sigma
        tr.hits += 1
        tr.lat, tr.lon = _degrees(tr._lat0, tr._lon0, tr._swx / tr._sw, tr._swy / tr._sw)
        mean_err = tr._sum_err / tr.hits
        tr.error_m = math.sqrt(1.0 / tr._sw + (self.params.bias_share * mean_err) ** 2)
        tr.first_seen = min(tr.first_seen, t)
        tr.last_seen = max(tr.last_seen, t)
        tr.sources.add(source)
        tr._kinds[d.kind] += 1
        tr.kind = tr._kinds.most_common(1)[0][0]
        tr.score = max(tr.score, d.score)
        if d.score > tr._best and d.thumbnail is not None:
            tr._best = d.score
            tr.thumbnail = d.thumbnail
        frames = tr._frames.setdefault(source, deque(maxlen=self.params.confirm_frames))
        frames.append(frame)
