"""Pixel <-> ground: round trips, known geometry, the error model and the terrain hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from vision.camera import CameraIntrinsics
from vision.georef import FlatGround, footprint, ground_to_pixel, pixel_to_ground, row_sampling
from vision.pose import CameraPose, Pose, PoseUncertainty

CAM = CameraIntrinsics.from_hfov(640, 512, 61.0)
LAT, LON = 47.397, 8.545
GEOD = Geod(ellps="WGS84")


def east_north(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    az, _, d = GEOD.inv(np.full(lat.size, LON), np.full(lat.size, LAT), lon, lat)
    az = np.radians(az)
    return d * np.sin(az), d * np.cos(az)


def grid() -> tuple[np.ndarray, np.ndarray]:
    u, v = np.meshgrid(np.linspace(0, 639, 11), np.linspace(0, 511, 9))
    return u.ravel(), v.ravel()


@pytest.mark.parametrize("gimbal_pitch", [-90.0, -70.0, -45.0, -30.0])
@pytest.mark.parametrize("yaw", [0.0, 45.0, 137.0, 270.0])
def test_ground_pixel_ground_round_trip_within_10_cm(gimbal_pitch: float, yaw: float) -> None:
    pose = CameraPose.from_height(LAT, LON, 80.0, ground_elevation=412.0, yaw=yaw, gimbal_pitch=gimbal_pitch)
    u, v = grid()
    g = pixel_to_ground(CAM, pose, u, v)
    ok = g.valid
    assert ok.sum() >= 0.8 * u.size  # only rays above the horizon may miss
    px = ground_to_pixel(CAM, pose, g.lat_deg[ok], g.lon_deg[ok])
    assert px.visible.all()
    back = pixel_to_ground(CAM, pose, px.u, px.v)
    e0, n0 = east_north(g.lat_deg[ok], g.lon_deg[ok])
    e1, n1 = east_north(back.lat_deg, back.lon_deg)
    assert np.max(np.hypot(e1 - e0, n1 - n0)) < 0.1
    assert np.allclose(px.u, u[ok], atol=0.01) and np.allclose(px.v, v[ok], atol=0.01)


@pytest.mark.parametrize("roll, pitch, yaw", [(5.0, -8.0, 30.0), (-12.0, 4.0, 200.0)])
def test_round_trip_with_a_body_fixed_gimbal_and_attitude(roll: float, pitch: float, yaw: float) -> None:
    pose = CameraPose(LAT, LON, 120.0, roll=roll, pitch=pitch, yaw=yaw, gimbal_pitch=-60.0, gimbal_yaw=10.0,
                      gimbal_mode="body")
    u, v = grid()
    g = pixel_to_ground(CAM, pose, u, v)
    ok = g.valid
    assert ok.sum() >= 0.8 * u.size
    px = ground_to_pixel(CAM, pose, g.lat_deg[ok], g.lon_deg[ok])
    assert px.visible.all()
    assert np.allclose(px.u, u[ok], atol=0.01) and np.allclose(px.v, v[ok], atol=0.01)
    # vehicle attitude moves a body-fixed camera's view, not an earth-stabilised one's
    earth = pixel_to_ground(CAM, pose.with_(gimbal_mode="earth"), CAM.cx, CAM.cy)
    level = pixel_to_ground(CAM, pose.with_(gimbal_mode="earth", roll=0.0, pitch=0.0), CAM.cx, CAM.cy)
    body = pixel_to_ground(CAM, pose, CAM.cx, CAM.cy)
    assert earth.lat_deg[0] == level.lat_deg[0] and earth.lon_deg[0] == level.lon_deg[0]
    e, n = east_north(body.lat_deg - earth.lat_deg + LAT, body.lon_deg - earth.lon_deg + LON)
    assert math.hypot(e[0], n[0]) > 5.0


def test_known_geometry() -> None:
    # nadir: the image centre is straight below; heading 90 puts the top of the image to the east
    pose = CameraPose.from_height(LAT, LON, 100.0, yaw=90.0)
    g = pixel_to_ground(CAM, pose, [CAM.cx, CAM.cx], [CAM.cy, 0.0])
    e, n = east_north(g.lat_deg, g.lon_deg)
    assert math.hypot(e[0], n[0]) < 1e-6
    expected = 100.0 * (CAM.cy / CAM.fy)  # top-edge ray: tan = cy / fy
    assert e[1] == pytest.approx(expected, rel=1e-4) and abs(n[1]) < 1e-3
    assert g.range_m[0] == pytest.approx(100.0)
    # 45 degrees down, heading north: the centre is one height ahead
    g = pixel_to_ground(CAM, CameraPose.from_height(LAT, LON, 50.0, gimbal_pitch=-45.0), CAM.cx, CAM.cy)
    e, n = east_north(g.lat_deg, g.lon_deg)
    assert n[0] == pytest.approx(50.0, abs=0.01) and abs(e[0]) < 0.01


def test_rays_above_the_horizon_have_no_ground_point() -> None:
    pose = CameraPose.from_height(LAT, LON, 60.0, gimbal_pitch=-10.0)
    g = pixel_to_ground(CAM, pose, [CAM.cx, CAM.cx], [0.0, 511.0])
    assert not g.valid[0] and np.isnan(g.lat_deg[0]) and g.valid[1]


def test_error_grows_off_nadir_and_with_pose_uncertainty() -> None:
    base = CameraPose.from_height(LAT, LON, 60.0)
    centre = [CAM.cx], [CAM.cy]
    nadir = pixel_to_ground(CAM, base, *centre).error_m[0]
    corner = pixel_to_ground(CAM, base, [0.0], [0.0]).error_m[0]
    oblique = pixel_to_ground(CAM, base.with_(gimbal_pitch=-35.0), *centre).error_m[0]
    assert nadir < corner < oblique
    # at nadir the error is mostly GNSS + tilt; a worse altimeter matters only off nadir
    worse_h = PoseUncertainty(height_m=10.0)
    assert pixel_to_ground(CAM, base.with_(uncertainty=worse_h), *centre).error_m[0] == pytest.approx(nadir, rel=0.01)
    assert pixel_to_ground(CAM, base.with_(gimbal_pitch=-35.0, uncertainty=worse_h), *centre).error_m[0] > 2 * oblique
    worse_tilt = PoseUncertainty(tilt_deg=3.0)
    assert pixel_to_ground(CAM, base.with_(uncertainty=worse_tilt), *centre).error_m[0] > 2 * nadir
    # with a perfect pose only the pixel error is left: a fraction of a metre at 60 m
    perfect = PoseUncertainty(0.0, 0.0, 0.0, 0.0, 1.0)
    assert 0.05 < pixel_to_ground(CAM, base.with_(uncertainty=perfect), *centre).error_m[0] < 0.3


class Ramp:
    """Terrain rising 0.2 m per metre northward from elevation 400 at the camera's latitude."""

    def elevation_m(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return 400.0 + 0.2 * (np.asarray(lat) - LAT) * 111_195.0


class Level:
    def elevation_m(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return np.full(np.shape(lat), 400.0)


def test_terrain_hook_matches_flat_ground_and_follows_a_slope() -> None:
    pose = CameraPose(LAT, LON, 500.0, gimbal_pitch=-50.0, ground_elevation=400.0)
    u, v = grid()
    flat = pixel_to_ground(CAM, pose, u, v, FlatGround(400.0))
    level = pixel_to_ground(CAM, pose, u, v, Level(), terrain_step_m=5.0)
    ok = flat.valid & level.valid
    e0, n0 = east_north(flat.lat_deg[ok], flat.lon_deg[ok])
    e1, n1 = east_north(level.lat_deg[ok], level.lon_deg[ok])
    assert np.max(np.hypot(e1 - e0, n1 - n0)) < 0.1
    ramp = pixel_to_ground(CAM, pose, [CAM.cx], [CAM.cy], Ramp(), terrain_step_m=5.0)
    e, n = east_north(ramp.lat_deg, ramp.lon_deg)
    assert ramp.elevation_m[0] == pytest.approx(400.0 + 0.2 * n[0], abs=0.5)
    # the hill is met earlier than the flat ground would be, and its point projects back to the centre
    flat_centre = pixel_to_ground(CAM, pose, CAM.cx, CAM.cy)
    assert n[0] < east_north(flat_centre.lat_deg, flat_centre.lon_deg)[1][0]
    px = ground_to_pixel(CAM, pose, ramp.lat_deg, ramp.lon_deg, ramp.elevation_m)
    assert px.u[0] == pytest.approx(CAM.cx, abs=0.05) and px.v[0] == pytest.approx(CAM.cy, abs=0.05)


def test_row_sampling_and_footprint() -> None:
    pose = CameraPose.from_height(LAT, LON, 60.0)
    rs = row_sampling(CAM, pose)
    assert rs.valid.all() and np.allclose(rs.gsd_x_m[CAM.height // 2], 60.0 / CAM.fx, rtol=1e-3)
    oblique = row_sampling(CAM, pose.with_(gimbal_pitch=-30.0))
    assert oblique.range_m[0] > oblique.range_m[-1]  # the top of an oblique frame is further away
    fp = footprint(CAM, pose)
    e, n = east_north(fp.lat_deg, fp.lon_deg)
    assert np.allclose(np.abs(e), 60.0 * 319.5 / CAM.fx, rtol=1e-3)


def test_adapter_style_pose_is_a_camera_pose() -> None:
    p = Pose(lat_deg=LAT, lon_deg=LON, alt_m=60.0, heading_deg=30.0, roll_deg=2.0, pitch_deg=-3.0,
             gimbal_pitch_deg=-90.0, gimbal_mode="earth")
    assert isinstance(p, CameraPose) and p.yaw == 30.0 and p.height_agl == 60.0
    with pytest.raises(ValueError):
        CameraPose(95.0, 0.0, 10.0)
