"""Which confirmed hotspots reach the teams: person-like ones by default, others only when the policy asks."""

from __future__ import annotations

import numpy as np

from controller import geo
from controller.config.models import SearchPolicy
from controller.hotspots.pose_history import PoseSample
from controller.hotspots.vision_adapter import SearchCamera, VisionPipeline
from sitl.camera_render import SEARCH_SPAN_C, CameraPose, Intrinsics, ThermalSource, render_thermal

LAT, LON = 32.05, 118.78


def _world() -> tuple[ThermalSource, ThermalSource]:
    p_lat, p_lon = geo.destination(LAT, LON, 90.0, 12.0)
    r_lat, r_lon = geo.destination(LAT, LON, 270.0, 12.0)
    person = ThermalSource(p_lat, p_lon, 1.7, 0.5, 30.0, 29.0, "person_lying")
    rock = ThermalSource(r_lat, r_lon, 1.3, 0.7, 70.0, 16.0, "rock")  # sun-warmed, below body temperature
    return person, rock


def _fly(pipeline: VisionPipeline, frames: int = 10) -> list[tuple[float, float, str]]:
    """A drone hovering 60 m over the midpoint; returns (lat, lon, kind) of every hotspot `process` raised."""
    sources = list(_world())
    rng = np.random.default_rng(5)
    raised = []
    for k in range(frames):
        frame, _ = render_thermal(CameraPose(LAT, LON, 60.0, 0.0), Intrinsics(640, 512, 61.0), (LAT, LON), sources,
                                  rng=rng, span_c=SEARCH_SPAN_C)
        pose = PoseSample(1000.0 + k * 0.2, LAT, LON, 60.0, 60.0, 0.0)
        raised += [(h.lat, h.lon, h.kind) for h in pipeline.process("d1", pose.t, frame, pose)]
    return raised


def _nearest(lat: float, lon: float) -> str:
    person, rock = _world()
    return min((geo.distance_m(lat, lon, s.lat, s.lon), s.kind) for s in (person, rock))[1]


def test_only_person_like_hotspots_are_raised_by_default() -> None:
    pipeline = VisionPipeline(SearchCamera(), SearchPolicy())
    raised = _fly(pipeline)
    assert [(_nearest(lat, lon), kind) for lat, lon, kind in raised] == [("person_lying", "person")]
    # the rock was confirmed as a track but held back, and is not raised on later frames either
    assert sum(pipeline.held_back.values()) == 1
    assert len(pipeline.tracker.hotspots) == 2


def test_policy_can_report_other_classes() -> None:
    pipeline = VisionPipeline(SearchCamera(), SearchPolicy(report_kinds=["person", "vehicle", "other"]))
    raised = _fly(pipeline)
    assert sorted(_nearest(lat, lon) for lat, lon, _ in raised) == ["person_lying", "rock"]
    assert pipeline.held_back == {}


def test_report_kinds_are_validated() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="report_kinds"):
        SearchPolicy(report_kinds=["dog"])
    with pytest.raises(pydantic.ValidationError, match="report_kinds"):
        SearchPolicy(report_kinds=[])
