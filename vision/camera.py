"""Pinhole camera intrinsics: pixels <-> viewing rays, and ground sampling distance.

Georeferencing and the detector's size gates both need to know how many metres a
pixel covers, so the camera is one small immutable value shared by both. Frames
follow OpenCV's convention: x right, y down, z along the optical axis; pixel
(0, 0) is the centre of the top-left pixel.

Optional lens distortion uses OpenCV's Brown-Conrady model (k1, k2, p1, p2, k3);
thermal lenses are usually close to distortion-free, so all zeros is the default
and the distortion-free path does not touch OpenCV at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CameraIntrinsics:
    """Intrinsics of one camera (all lengths in pixels).

    Build it with `from_hfov(width, height, hfov_deg)` or `from_focal(width, height, focal_px)`.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    #: OpenCV distortion coefficients (k1, k2, p1, p2, k3); all zero = ideal pinhole.
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if len(self.distortion) != 5:
            raise ValueError(f"distortion needs 5 coefficients (k1, k2, p1, p2, k3), got {len(self.distortion)}")

    @classmethod
    def from_hfov(cls, width: int, height: int, hfov_deg: float, vfov_deg: float | None = None) -> CameraIntrinsics:
        """Square-pixel camera with the principal point at the image centre, from its horizontal field of view."""
        if not 0.0 < hfov_deg < 180.0:
            raise ValueError(f"hfov_deg must be in (0, 180), got {hfov_deg}")
        fx = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        fy = fx if vfov_deg is None else (height / 2.0) / math.tan(math.radians(vfov_deg) / 2.0)
        return cls(width, height, fx, fy, (width - 1) / 2.0, (height - 1) / 2.0)

    @classmethod
    def from_focal(cls, width: int, height: int, focal_px: float) -> CameraIntrinsics:
        """Square-pixel camera with the principal point at the image centre, from its focal length in pixels."""
        return cls(width, height, float(focal_px), float(focal_px), (width - 1) / 2.0, (height - 1) / 2.0)

    @property
    def focal_px(self) -> float:
        """Geometric mean focal length, pixels (fx for square pixels)."""
        return math.sqrt(self.fx * self.fy)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan((self.width / 2.0) / self.fx))

    @property
    def vfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan((self.height / 2.0) / self.fy))

    @property
    def has_distortion(self) -> bool:
        return any(c != 0.0 for c in self.distortion)

    def matrix(self) -> np.ndarray:
        """3x3 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """The same lens after the frame was resized to width x height (e.g. a downscaled video link)."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width, height, self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            self.distortion,
        )

    def rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Unit viewing rays (N, 3) in the camera frame for pixel coordinates u (column) and v (row)."""
        u = np.asarray(u, dtype=float).ravel()
        v = np.asarray(v, dtype=float).ravel()
        if self.has_distortion:
            pts = np.stack([u, v], axis=1).reshape(-1, 1, 2)
            und = cv2.undistortPoints(pts, self.matrix(), np.asarray(self.distortion, dtype=float))
            x, y = und[:, 0, 0], und[:, 0, 1]
        else:
            x = (u - self.cx) / self.fx
            y = (v - self.cy) / self.fy
        d = np.stack([x, y, np.ones_like(x)], axis=1)
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel (u, v) of camera-frame points (N, 3), and a mask of points in front of the camera."""
        p = np.asarray(points_cam, dtype=float).reshape(-1, 3)
        z = p[:, 2]
        front = z > 1e-9
        zs = np.where(front, z, 1.0)
        x, y = p[:, 0] / zs, p[:, 1] / zs
        if self.has_distortion:
            k1, k2, p1, p2, k3 = self.distortion
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
            xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x, y = xd, yd
        return self.fx * x + self.cx, self.fy * y + self.cy, front

    def in_image(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """True where a pixel coordinate lies on the sensor."""
        u, v = np.asarray(u), np.asarray(v)
        return (u >= -0.5) & (u <= self.width - 0.5) & (v >= -0.5) & (v <= self.height - 0.5)

    def gsd_m(self, range_m: float) -> float:
        """Metres per pixel on a surface facing the camera at `range_m` (the nadir GSD when range = height)."""
        return range_m / math.sqrt(self.fx * self.fy)



#: The name the controller's adapter was written against; the same class.
CameraModel = CameraIntrinsics
