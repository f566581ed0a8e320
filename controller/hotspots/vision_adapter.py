"""The controller's side of the vision library: its telemetry and config in, vision's detections out.

`vision/` knows nothing of the controller; this is the one place that turns a
pose sample into a vision Pose, the search policy into tracker parameters, and
keeps, per search, which tracker hotspot became which published hotspot.
`process` runs in a worker thread; the other methods on the event loop, hence
the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from controller.config.models import SearchPolicy
from controller.hotspots.pose_history import PoseSample
from vision.camera import CameraModel
from vision.detector import DetectorParams, ThermalDetector
from vision.pose import Pose
from vision.tracker import HotspotTracker, TrackerParams


@dataclass(frozen=True, slots=True)
class SearchCamera:
    """The search drones' thermal camera: 640 x 512, 61° HFOV, on an earth-stabilised gimbal looking down."""

    width: int = 640
    height: int = 512
    hfov_deg: float = 61.0
    gimbal_pitch_deg: float = -90.0

    def model(self) -> CameraModel:
        return CameraModel.from_hfov(self.width, self.height, self.hfov_deg)


def vision_pose(p: PoseSample, camera: SearchCamera) -> Pose:
    """Height above home over flat ground at home's elevation (datum: the home altitude, 0 m)."""
    return Pose(
        lat_deg=p.lat,
        lon_deg=p.lon,
        alt_m=p.alt_rel_m,
        heading_deg=p.heading_deg,
        roll_deg=p.roll_deg,
        pitch_deg=p.pitch_deg,
        gimbal_pitch_deg=camera.gimbal_pitch_deg,
        gimbal_mode="earth",
    )


class VisionPipeline:
    """Detector and tracker for one search; hotspots tracked across frames and drones."""

    def __init__(self, camera: SearchCamera, policy: SearchPolicy) -> None:
        self.camera = camera
        self.model = camera.model()
        self.span = policy.thermal_span_c
        self.detector = ThermalDetector(DetectorParams(body_min_c=policy.body_min_c))
        self.tracker = HotspotTracker(
            TrackerParams(
                confirm_hits=policy.confirm_hits,
                confirm_frames=policy.confirm_frames,
                merge_radius_m=policy.merge_radius_m,
            )
        )
        self.report_kinds = frozenset(policy.report_kinds)
        self._lock = threading.Lock()
        self._bound: dict[Any, str] = {}  # tracker hotspot id -> published hotspot id
        self._reported: set[Any] = set()  # tracker hotspot ids handed out by `process`
        self.detections = 0
        #: Confirmed tracks held back because their class is not reported (rocks, cars), by class.
        self.held_back: dict[str, int] = {}

    def process(self, source: str, t: float, gray: np.ndarray, pose: PoseSample) -> list[Any]:
        """Detect in one frame and feed the tracker; returns hotspots to raise, each once.

        A hotspot is raised when it is confirmed and its class (the tracker's majority over its sightings) is one
        the policy reports; one confirmed as another class is raised later if its sightings turn person-like.
        """
        frame: np.ndarray = gray
        if self.span is not None:  # fixed-span stream: grey levels are temperatures
            lo, hi = self.span
            frame = lo + gray.astype(np.float32) * np.float32((hi - lo) / 255.0)
        detections = self.detector.detect(frame, self.model, vision_pose(pose, self.camera))
        with self._lock:
            self.detections += len(detections)
            for h in self.tracker.update(source, t, detections):
                if h.kind not in self.report_kinds:
                    self.held_back[h.kind] = self.held_back.get(h.kind, 0) + 1
            raise_now = [h for h in self.tracker.hotspots if h.id not in self._reported and h.kind in self.report_kinds]
            self._reported.update(h.id for h in raise_now)
            return raise_now

    def held_back_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.held_back)

    def bind(self, hotspot: Any, record_id: str) -> None:
        with self._lock:
            self._bound[hotspot.id] = record_id

    def bound(self) -> list[tuple[str, Any]]:
        """(published id, the tracker's current view of that hotspot)."""
        with self._lock:
            by_id = {h.id: h for h in self.tracker.hotspots}
            return [(rec, by_id[hid]) for hid, rec in self._bound.items() if hid in by_id]

    def suppress(self, lat: float, lon: float, radius_m: float) -> None:
        with self._lock:
            self.tracker.suppress(lat, lon, radius_m)
