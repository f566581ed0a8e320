"""The track log: thinned to one point per spacing, kept for a while, read back by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controller.center.tracks import TrackLog


def test_points_are_thinned_kept_and_read_by_age() -> None:
    now = [datetime(2026, 12, 8, 9, 0, tzinfo=UTC)]
    log = TrackLog(lambda: now[0], spacing_s=2.0, keep_s=60.0)
    for i in range(100):  # a sample every 0.5 s for 50 s
        log.add("D1", 32.0 + i * 1e-5, 118.8, 50.0)
        now[0] += timedelta(seconds=0.5)
    points = log.recent("D1", 3600)
    assert len(points) == 25  # one every 2 s
    assert all((b.at - a.at).total_seconds() == 2.0 for a, b in zip(points, points[1:]))
    assert [p.lat for p in points] == sorted(p.lat for p in points)  # oldest first
    assert len(log.recent("D1", 10)) == 5 and log.recent("D2", 600) == []
    now[0] += timedelta(seconds=40)
    log.add("D1", 32.1, 118.8, 50.0)
    assert all(p.at >= now[0] - timedelta(seconds=60) for p in log.recent("D1", 3600))  # older than keep_s dropped
    assert len(log.recent("D1", 3600)) == 1 + sum(1 for p in points if p.at >= now[0] - timedelta(seconds=60))
