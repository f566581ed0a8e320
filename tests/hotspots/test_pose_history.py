"""The pose used for a frame is the one at its capture time, interpolated between telemetry samples."""

from __future__ import annotations

import pytest

from controller.hotspots.pose_history import PoseHistory, PoseSample


def sample(t: float, lat: float, heading: float = 0.0) -> PoseSample:
    return PoseSample(t, lat, 118.8, 70.0, 60.0, heading)


def test_interpolates_position_and_heading_the_short_way() -> None:
    h = PoseHistory()
    h.add("d", sample(100.0, 32.0, heading=350.0))
    h.add("d", sample(100.25, 32.0001, heading=10.0))
    p = h.at("d", 100.125)
    assert p is not None
    assert p.lat == pytest.approx(32.00005)
    assert p.heading_deg == pytest.approx(0.0, abs=1e-9) or p.heading_deg == pytest.approx(360.0)


def test_refuses_times_it_does_not_cover_and_keeps_order() -> None:
    h = PoseHistory(size=3)
    assert h.at("d", 5.0) is None
    for t in (1.0, 2.0, 3.0, 4.0):
        h.add("d", sample(t, 32.0 + t * 1e-4))
    h.add("d", sample(3.5, 0.0))  # late and out of order: ignored
    assert h.at("d", 1.4) is None  # dropped from the ring, and more than 0.5 s before the oldest kept
    assert h.at("d", 4.3) is not None and h.at("d", 5.0) is None
    assert h.at("d", 3.5).lat == pytest.approx(32.00035)


def test_history_keeps_no_python_object_per_sample() -> None:
    """140 drones' history must not give the cyclic garbage collector tens of thousands of objects to walk."""
    import gc

    h = PoseHistory(size=400)
    h.add("d", sample(0.0, 32.0))
    gc.collect()
    before = len(gc.get_objects())
    for k in range(1, 2000):
        h.add("d", sample(k * 0.1, 32.0 + k * 1e-6))
    gc.collect()
    assert len(gc.get_objects()) - before < 20
    assert h.at("d", 199.85).lat == pytest.approx(32.0 + 1998.5e-6)
