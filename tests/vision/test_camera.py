"""Pinhole intrinsics: field of view, rays and projection are inverse, resizing keeps the geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vision.camera import CameraIntrinsics, CameraModel


def test_from_hfov_and_from_focal_agree() -> None:
    cam = CameraIntrinsics.from_hfov(640, 512, 61.0)
    assert cam.fx == pytest.approx(320 / math.tan(math.radians(30.5)))
    assert cam.hfov_deg == pytest.approx(61.0)
    same = CameraIntrinsics.from_focal(640, 512, cam.fx)
    assert same == cam
    assert CameraModel is CameraIntrinsics  # the adapter's name


@pytest.mark.parametrize("distortion", [(0.0,) * 5, (-0.12, 0.03, 0.001, -0.0005, 0.0)])
def test_rays_and_project_are_inverse(distortion: tuple[float, ...]) -> None:
    base = CameraIntrinsics.from_hfov(640, 512, 45.0)
    cam = CameraIntrinsics(640, 512, base.fx, base.fy, 318.0, 260.0, distortion)  # type: ignore[arg-type]
    u, v = np.meshgrid(np.linspace(0, 639, 9), np.linspace(0, 511, 7))
    rays = cam.rays(u, v)
    assert np.allclose(np.linalg.norm(rays, axis=1), 1.0)
    pu, pv, front = cam.project(rays * 37.0)
    assert front.all()
    assert np.allclose(pu, u.ravel(), atol=1e-3) and np.allclose(pv, v.ravel(), atol=1e-3)


def test_scaled_camera_sees_the_same_angles() -> None:
    cam = CameraIntrinsics.from_hfov(640, 512, 50.0)
    half = cam.scaled(320, 256)
    assert half.hfov_deg == pytest.approx(cam.hfov_deg)
    # the right edge of the sensor is the same ray at both sizes
    assert np.allclose(cam.rays(np.array([639.5]), np.array([255.5])), half.rays(np.array([319.5]), np.array([127.5])))


def test_bad_intrinsics_are_rejected() -> None:
    with pytest.raises(ValueError):
        CameraIntrinsics.from_hfov(640, 512, 190.0)
    with pytest.raises(ValueError):
        CameraIntrinsics(0, 512, 500, 500, 0, 0)


def test_gsd_is_range_over_focal() -> None:
    cam = CameraIntrinsics.from_focal(640, 512, 600.0)
    assert cam.gsd_m(60.0) == pytest.approx(0.1)
