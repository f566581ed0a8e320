"""Hotspots are confirmed after N sightings in M frames, merged across drones, and suppressed once dismissed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vision.detector import Detection
from vision.tracker import HotspotTracker, TrackerParams

LAT, LON = 32.38, 118.84
M = 1 / 111_320.0


def det(north_m: float = 0.0, east_m: float = 0.0, score: float = 0.9, err: float = 2.0, kind: str = "person") -> Detection:
    return Detection(
        bbox=(0, 0, 4, 4), centre=(2.0, 2.0), score=score, kind=kind, contrast=40.0, size_m=(1.7, 0.5),  # type: ignore[arg-type]
        lat=LAT + north_m * M, lon=LON + east_m * M / math.cos(math.radians(LAT)), error_m=err,
        thumbnail=np.full((8, 8), int(score * 255), np.uint8),
    )


def test_confirms_after_n_hits_within_m_frames_not_before() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=3, confirm_frames=5))
    assert tr.update("d1", 0.0, [det()]) == []
    assert tr.update("d1", 0.2, []) == []
    assert tr.update("d1", 0.4, [det(1.0)]) == []
    (h,) = tr.update("d1", 0.6, [det(-1.0, 0.5, score=0.95)])
    assert h.hits == 3 and h.confirmed and h.sources == {"d1"}
    # inverse-variance mean of the three sightings, error below one sighting's but not vanishing
    north = (h.lat - LAT) / M
    assert north == pytest.approx(0.0, abs=0.05)
    assert 1.0 < h.error_m < 2.0
    assert h.first_seen == 0.0 and h.last_seen == 0.6 and h.thumbnail[0, 0] == int(0.95 * 255)
    assert tr.update("d1", 0.8, [det()]) == []  # confirmed once only


def test_sightings_spread_over_too_many_frames_do_not_confirm() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=3, confirm_frames=4))
    for k in range(12):
        found = tr.update("d1", k * 0.2, [det()] if k % 3 == 0 else [])
        assert found == []


def test_two_drones_merge_into_one_hotspot_and_far_detections_stay_apart() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=3, confirm_frames=6, merge_radius_m=8))
    tr.update("d1", 0.0, [det(), det(40.0)])
    tr.update("d2", 0.1, [det(2.0)])
    (h,) = tr.update("d1", 0.2, [det(-1.0)])
    assert h.sources == {"d1", "d2"} and h.hits == 3
    assert len(tr.tracks) == 2 and len(tr.hotspots) == 1


def test_low_scores_and_unpositioned_detections_are_ignored() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=1, confirm_frames=1, min_score=0.5))
    assert tr.update("d1", 0.0, [det(score=0.3)]) == []
    unplaced = Detection(bbox=(0, 0, 4, 4), centre=(2.0, 2.0), score=0.9, kind="person", contrast=1, size_m=(1, 1))
    assert tr.update("d1", 0.1, [unplaced]) == []


def test_dismissed_spot_is_not_raised_again() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=2, confirm_frames=3, dismiss_radius_m=15))
    tr.update("d1", 0.0, [det()])
    (h,) = tr.update("d1", 0.1, [det(1.0)])
    tr.dismiss(h.id)
    assert tr.hotspots == []
    for k in range(6):
        assert tr.update("d2", 1 + k * 0.1, [det(5.0)]) == []
    # outside the zone a new hotspot can still be confirmed
    tr.update("d2", 3.0, [det(30.0)])
    assert len(tr.update("d2", 3.1, [det(30.5)])) == 1
    with pytest.raises(KeyError):
        tr.dismiss(999)


def test_stale_unconfirmed_tracks_are_forgotten() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=3, confirm_frames=6, max_age_s=10))
    tr.update("d1", 0.0, [det()])
    tr.update("d1", 20.0, [det(100.0)])
    assert len(tr.tracks) == 1


def test_params_are_checked() -> None:
    with pytest.raises(ValueError):
        TrackerParams(confirm_hits=5, confirm_frames=3)


def test_a_blob_split_in_two_is_one_sighting() -> None:
    tr = HotspotTracker(TrackerParams(confirm_hits=2, confirm_frames=3))
    tr.update("d1", 0.0, [det(0.0, score=0.8), det(0.5, score=0.95)])
    (h,) = tr.update("d1", 0.1, [det(0.2), det(0.6, score=0.7)])
    assert h.hits == 2 and len(tr.tracks) == 1
