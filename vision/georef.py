"""Pixel <-> ground: viewing rays intersected with the ground, and how wrong the answer may be.

Pure functions. Geometry is done in a local East-North-Up frame centred on the
camera; metres in that frame are turned into latitude/longitude with pyproj's
geodesic solver on WGS84 (an azimuthal-equidistant mapping about the camera),
which is exact at the few hundred metres a thermal camera sees.

The ground is "flat" at a given elevation: a surface of constant height, so it
drops below the camera's tangent plane by d^2 / 2R at horizontal distance d (8 cm
at 1 km; kept so that long oblique rays stay consistent both ways). Any object
with `elevation_m(lat, lon)` can stand in for a terrain model; rays are then
marched and refined by bisection, so the first hill a ray meets wins.

The error estimate propagates the pose's 1-sigma uncertainties (pixel,
tilt, heading, height, horizontal position) through the same intersection by
finite differences. It grows naturally off nadir: a tilt error moves the hit by
range/sin(depression) per radian, a height error by 1/tan(depression).
`error_m` is the horizontal radial RMS error (DRMS, ~63-68 % of fixes fall
inside it); double it for a ~95 % circle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from pyproj import Geod

from vision.camera import CameraIntrinsics
from vision.pose import CameraPose

_GEOD = Geod(ellps="WGS84")
#: Mean Earth radius used for the drop of constant-elevation ground below the tangent plane.
EARTH_RADIUS_M = 6_371_008.8
#: Rays that meet the ground further than this (near the horizon) get no ground point.
DEFAULT_MAX_RANGE_M = 5_000.0


@runtime_checkable
class GroundModel(Protocol):
    """Anything that gives the ground elevation (same datum as `CameraPose.alt_amsl`) at given coordinates."""

    def elevation_m(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FlatGround:
    """Level ground at one elevation; intersections are solved in closed form."""

    elevation: float = 0.0

    def elevation_m(self, lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
        return np.full(np.shape(lat_deg), self.elevation, dtype=float)


@dataclass(frozen=True)
class GroundPoints:
    """Ground fixes for a batch of pixels (arrays of equal length). Invalid rays have NaN coordinates."""

    lat_deg: np.ndarray
    lon_deg: np.ndarray
    elevation_m: np.ndarray
    #: Slant range from the camera to the ground point, metres.
    range_m: np.ndarray
    #: Horizontal radial RMS error (1-sigma DRMS), metres; NaN where invalid.
    error_m: np.ndarray
    #: False where the ray misses the ground (above the horizon, beyond max range, camera below ground).
    valid: np.ndarray


@dataclass(frozen=True)
class PixelPoints:
    """Image positions of ground points; `visible` is False behind the camera or off the sensor."""

    u: np.ndarray
    v: np.ndarray
    visible: np.ndarray


@dataclass(frozen=True)
class RowSampling:
    """Ground sampling per image row along the centre column (what the detector's size gates use)."""

    #: Metres per pixel across the image (horizontal direction) per row.
    gsd_x_m: np.ndarray
    #: Metres per pixel along the ground in the image's vertical direction per row.
    gsd_y_m: np.ndarray
    #: Angle of the row's ray below the horizon, degrees.
    depression_deg: np.ndarray
    #: Slant range to the ground per row, metres (inf where the row sees no ground).
    range_m: np.ndarray
    valid: np.ndarray


# --------------------------------------------------------------------------- geometry in the local frame


def _flat_hit_t(d_enu: np.ndarray, height: np.ndarray | float) -> np.ndarray:
    """Distance along unit rays `d_enu` (N, 3) from the camera to constant-height ground `height` m below it."""
    h = np.broadcast_to(np.asarray(height, dtype=float), (d_enu.shape[0],))
    dz = d_enu[:, 2]
    k_h2 = (d_enu[:, 0] ** 2 + d_enu[:, 1] ** 2) / (2.0 * EARTH_RADIUS_M)
    disc = dz * dz - 4.0 * k_h2 * h
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = -dz + np.sqrt(np.maximum(disc, 0.0))
        t = np.where((disc >= 0) & (denom > 0) & (h > 0), 2.0 * h / denom, np.inf)
    return t


def _enu_from_t(d_enu: np.ndarray, t: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return d_enu * t[:, None]


def _enu_to_geodetic(pose: CameraPose, east: np.ndarray, north: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = np.hypot(east, north)
    az = np.degrees(np.arctan2(east, north))
    n = dist.size
    lon, lat, _ = _GEOD.fwd(np.full(n, pose.lon), np.full(n, pose.lat), az, dist)
    return np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)


def _geodetic_to_en(pose: CameraPose, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = lat.size
    az, _, dist = _GEOD.inv(np.full(n, pose.lon), np.full(n, pose.lat), lon, lat)
    az = np.radians(np.asarray(az, dtype=float))
    dist = np.asarray(dist, dtype=float)
    return dist * np.sin(az), dist * np.cos(az)


def _rot(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float)


def _flat_hits_local(camera: CameraIntrinsics, r_enu_cam: np.ndarray, u: np.ndarray, v: np.ndarray,
                     height: np.ndarray | float, max_range_m: float) -> tuple[np.ndarray, np.ndarray]:
    d = camera.rays(u, v) @ r_enu_cam.T
    t = _flat_hit_t(d, height)
    t = np.where(t <= max_range_m, t, np.inf)
    return _enu_from_t(d, t), t


# --------------------------------------------------------------------------- public functions


def pixel_to_ground(camera: CameraIntrinsics, pose: CameraPose, u: np.ndarray | float, v: np.ndarray | float,
                    ground: GroundModel | None = None, *, max_range_m: float = DEFAULT_MAX_RANGE_M,
                    terrain_step_m: float = 2.0) -> GroundPoints:
    """Latitude/longitude where the rays through pixels (u, v) meet the ground, with an error estimate.

    `ground` defaults to flat ground at `pose.ground_elevation`.
    """
    ground = FlatGround(pose.ground_elevation) if ground is None else ground
    u = np.atleast_1d(np.asarray(u, dtype=float)).ravel()
    v = np.atleast_1d(np.asarray(v, dtype=float)).ravel()
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same length, got {u.shape} and {v.shape}")
    r = pose.enu_from_camera()
    if isinstance(ground, FlatGround):
        height = pose.alt_amsl - ground.elevation
        enu, t = _flat_hits_local(camera, r, u, v, height, max_range_m)
        elev = np.full(u.shape, ground.elevation)
    else:
        d = camera.rays(u, v) @ r.T
        t, elev = _march_terrain(pose, d, ground, max_range_m, terrain_step_m)
        enu = _enu_from_t(d, t)
        height = pose.alt_amsl - elev
    valid = np.isfinite(t)
    lat = np.full(u.shape, np.nan)
    lon = np.full(u.shape, np.nan)
    if valid.any():
        lat[valid], lon[valid] = _enu_to_geodetic(pose, enu[valid, 0], enu[valid, 1])
    err = np.full(u.shape, np.nan)
    if valid.any():
        h_valid = np.broadcast_to(np.asarray(height, dtype=float), u.shape)[valid]
        err[valid] = _error_drms(camera, pose, u[valid], v[valid], h_valid, enu[valid, :2], max_range_m)
    return GroundPoints(lat, lon, np.where(valid, elev, np.nan), np.where(valid, t, np.nan), err, valid)


def ground_to_pixel(camera: CameraIntrinsics, pose: CameraPose, lat_deg: np.ndarray | float, lon_deg: np.ndarray | float,
                    elevation_m: np.ndarray | float | None = None) -> PixelPoints:
    """Pixel coordinates at which ground points appear (the inverse of `pixel_to_ground`).

    `elevation_m` defaults to the pose's flat ground elevation.
    """
    lat = np.atleast_1d(np.asarray(lat_deg, dtype=float)).ravel()
    lon = np.atleast_1d(np.asarray(lon_deg, dtype=float)).ravel()
    if elevation_m is None:
        elevation_m = pose.ground_elevation
    elev = np.broadcast_to(np.asarray(elevation_m, dtype=float), lat.shape)
    east, north = _geodetic_to_en(pose, lat, lon)
    up = elev - pose.alt_amsl - (east**2 + north**2) / (2.0 * EARTH_RADIUS_M)
    cam = np.stack([east, north, up], axis=1) @ pose.enu_from_camera()  # row-vector form of R^T p
    u, v, front = camera.project(cam)
    return PixelPoints(u, v, front & camera.in_image(u, v))


def row_range(camera: CameraIntrinsics, pose: CameraPose, ground_elevation_m: float | None = None,
              rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Slant range to flat ground (metres, inf where the row sees none) and depression (degrees) per image row.

    Measured along the centre column: all the detector's size gates need (a
    person's size in pixels is the focal length over the range), in one ray
    cast. `ground_elevation_m` defaults to the pose's ground elevation.
    """
    if ground_elevation_m is None:
        ground_elevation_m = pose.ground_elevation
    r = pose.enu_from_camera()
    rows = np.arange(camera.height, dtype=float) if rows is None else np.asarray(rows, dtype=float).ravel()
    d = camera.rays(np.full_like(rows, camera.cx), rows) @ r.T
    t = _flat_hit_t(d, pose.alt_amsl - ground_elevation_m)
    return t, np.degrees(np.arcsin(np.clip(-d[:, 2], -1.0, 1.0)))


def row_sampling(camera: CameraIntrinsics, pose: CameraPose, ground_elevation_m: float | None = None,
                 rows: np.ndarray | None = None) -> RowSampling:
    """Metres per pixel for image rows (default: every row), measured along the centre column on flat ground.

    Why per row: in an oblique view the range, and so the size of a person in
    pixels, changes several-fold from the top of the frame to the bottom.
    `ground_elevation_m` defaults to the pose's ground elevation.
    """
    if ground_elevation_m is None:
        ground_elevation_m = pose.ground_elevation
    r = pose.enu_from_camera()
    rows = np.arange(camera.height, dtype=float) if rows is None else np.asarray(rows, dtype=float).ravel()
    cx = np.full_like(rows, camera.cx)
    height = pose.alt_amsl - ground_elevation_m
    inf = np.inf
    tc, depression = row_range(camera, pose, ground_elevation_m, rows)
    up, _ = _flat_hits_local(camera, r, cx, rows - 0.5, height, inf)
    dn, _ = _flat_hits_local(camera, r, cx, rows + 0.5, height, inf)
    lf, _ = _flat_hits_local(camera, r, cx - 0.5, rows, height, inf)
    rt, _ = _flat_hits_local(camera, r, cx + 0.5, rows, height, inf)
    with np.errstate(invalid="ignore"):
        gsd_y = np.hypot(*(dn - up)[:, :2].T)
        gsd_x = np.hypot(*(rt - lf)[:, :2].T)
    valid = np.isfinite(gsd_x) & np.isfinite(gsd_y) & np.isfinite(tc)
    return RowSampling(np.where(valid, gsd_x, np.inf), np.where(valid, gsd_y, np.inf), depression,
                       np.where(valid, tc, np.inf), valid)


def footprint(camera: CameraIntrinsics, pose: CameraPose, ground: GroundModel | None = None,
              max_range_m: float = DEFAULT_MAX_RANGE_M) -> GroundPoints:
    """Ground points under the four image corners (top-left, top-right, bottom-right, bottom-left)."""
    u = np.array([0.0, camera.width - 1.0, camera.width - 1.0, 0.0])
    v = np.array([0.0, 0.0, camera.height - 1.0, camera.height - 1.0])
    return pixel_to_ground(camera, pose, u, v, ground, max_range_m=max_range_m)


# --------------------------------------------------------------------------- error model


def _error_drms(camera: CameraIntrinsics, pose: CameraPose, u: np.ndarray, v: np.ndarray, height: np.ndarray,
                base_en: np.ndarray, max_range_m: float) -> np.ndarray:
    """Horizontal DRMS error by finite differences around each fix (local level ground at the fix).

    Each uncertainty (pixel, tilt, heading, height) perturbs every ray once; all perturbed rays are cast
    together, and the DRMS is the root of the summed squared shifts (the trace of the covariance)."""
    s = pose.uncertainty
    r = pose.enu_from_camera()
    rays = camera.rays(u, v)
    du, da, dh = 0.5, math.radians(0.05), 0.1
    # (ENU rays, ground height below the camera, sigma, step) per perturbation
    runs: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    if s.pixel > 0:
        runs.append((camera.rays(u + du, v) @ r.T, height, s.pixel, du))
        runs.append((camera.rays(u, v + du) @ r.T, height, s.pixel, du))
    if s.tilt_deg > 0:
        for axis in (0, 1):  # tilt about East, then about North
            runs.append((rays @ (_rot(axis, da) @ r).T, height, math.radians(s.tilt_deg), da))
    if s.heading_deg > 0:
        runs.append((rays @ (_rot(2, da) @ r).T, height, math.radians(s.heading_deg), da))
    if s.height_m > 0:
        runs.append((rays @ r.T, height + dh, s.height_m, dh))
    var = np.zeros(u.size)
    lost = np.zeros(u.size, dtype=bool)
    if runs:
        d = np.concatenate([run[0] for run in runs])
        h = np.concatenate([np.broadcast_to(run[1], u.shape) for run in runs])
        en = _enu_from_t(d, _flat_hit_t(d, h))[:, :2].reshape(len(runs), u.size, 2)
        scale = np.array([run[2] / run[3] for run in runs])[:, None, None]
        with np.errstate(invalid="ignore"):
            shift = (en - base_en[None]) * scale
        bad = ~np.isfinite(shift).all(axis=2)
        lost = bad.any(axis=0)
        shift[bad] = 0.0
        var = (shift ** 2).sum(axis=(0, 2))
    drms = np.sqrt(var + 2.0 * s.horizontal_m**2)
    # A small perturbation that loses the ground (a ray grazing the horizon): the fix is worthless.
    return np.where(lost, max_range_m, drms)


# --------------------------------------------------------------------------- terrain


def _march_terrain(pose: CameraPose, d: np.ndarray, ground: GroundModel, max_range_m: float,
                   step_m: float) -> tuple[np.ndarray, np.ndarray]:
    """First intersection of rays with a terrain model: march in `step_m` steps, then bisect.

    Returns (t, elevation) with t = inf where a ray meets no ground within max_range_m.
    """
    if step_m <= 0:
        raise ValueError(f"terrain_step_m must be positive, got {step_m}")
    n = d.shape[0]

    def clearance(t: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = d[idx] * t[:, None]
        lat, lon = _enu_to_geodetic(pose, p[:, 0], p[:, 1])
        elev = np.asarray(ground.elevation_m(lat, lon), dtype=float)
        drop = (p[:, 0] ** 2 + p[:, 1] ** 2) / (2.0 * EARTH_RADIUS_M)
        return pose.alt_amsl + p[:, 2] - (elev - drop), elev  # height of the ray above the ground

    t_hit = np.full(n, np.inf)
    elev_hit = np.full(n, np.nan)
    lo = np.zeros(n)
    active = np.arange(n)
    c0, _ = clearance(lo, active)
    if np.any(c0 <= 0):
        active = active[c0 > 0]  # camera at or below the ground: no fix
    t = 0.0
    while active.size and t < max_range_m:
        t = min(t + step_m, max_range_m)
        tt = np.full(active.size, t)
        c, _ = clearance(tt, active)
        crossed = c <= 0
        if crossed.any():
            idx = active[crossed]
            a, b = lo[idx], tt[crossed]
            for _ in range(40):  # bisection to ~step / 2^40
                mid = 0.5 * (a + b)
                cm, _ = clearance(mid, idx)
                above = cm > 0
                a = np.where(above, mid, a)
                b = np.where(above, b, mid)
            t_hit[idx] = 0.5 * (a + b)
            _, elev_hit[idx] = clearance(t_hit[idx], idx)
        lo[active] = t
        active = active[~crossed]
    return t_hit, elev_hit
