"""Where the camera is and where it points: vehicle position/attitude plus gimbal angles.

A pose is one immutable value per frame, taken from telemetry at the frame's
time. Angles follow the conventions autopilots and gimbals report:

- yaw: the vehicle heading, degrees clockwise from true north (MAVLink yaw, compass heading);
- vehicle roll/pitch: aerospace Z-Y-X (yaw, pitch, roll), roll right-wing-down
  positive, pitch nose-up positive;
- gimbal pitch: 0 = horizon, -90 = straight down (DJI/MAVLink convention);
  gimbal yaw relative to the vehicle heading, positive clockwise;
- gimbal mode "earth" (a stabilised gimbal: its pitch and roll are relative to
  the horizon, so vehicle roll/pitch do not move the image) or "body" (angles
  relative to the airframe, so vehicle attitude adds to them).

Uncertainties (1-sigma) travel with the pose because they depend on the
vehicle's sensors (RTK vs plain GNSS, barometer vs rangefinder), and the
georeferencing error model needs them per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

GimbalMode = Literal["earth", "body"]


@dataclass(frozen=True)
class PoseUncertainty:
    """1-sigma errors of the pose inputs; the defaults suit a plain GNSS + barometer multicopter."""

    #: Horizontal position error of the camera (GNSS), metres.
    horizontal_m: float = 1.5
    #: Error of the height above the ground (barometer drift, ground elevation), metres.
    height_m: float = 2.0
    #: Roll/pitch error of the line of sight (vehicle attitude or gimbal stabilisation), degrees.
    tilt_deg: float = 0.5
    #: Heading error (compass), degrees: the dominant error far off nadir.
    heading_deg: float = 2.0
    #: Error of the hotspot's pixel position (centroid, timing between frame and telemetry), pixels.
    pixel: float = 1.5

    def __post_init__(self) -> None:
        for name in ("horizontal_m", "height_m", "tilt_deg", "heading_deg", "pixel"):
            if getattr(self, name) < 0:
                raise ValueError(f"uncertainty {name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class CameraPose:
    """Camera position and orientation for one frame.

    Heights: `alt_amsl` is the camera's altitude and `ground_elevation` the
    ground's under it, in one vertical datum (AMSL, or "above home" with the
    home at 0). Georeferencing intersects with flat ground at `ground_elevation`
    unless given a terrain model; `from_height` builds a pose from a height
    above ground.
    """

    lat: float
    lon: float
    #: Camera altitude, metres, in the same datum as `ground_elevation`.
    alt_amsl: float
    #: Vehicle attitude, degrees: roll right-wing-down +, pitch nose-up +, yaw = heading clockwise from true north.
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0
    #: Gimbal angles, degrees: pitch 0 = horizon, -90 = nadir; yaw relative to the vehicle heading, clockwise +.
    gimbal_pitch: float = -90.0
    gimbal_yaw: float = 0.0
    gimbal_roll: float = 0.0
    gimbal_mode: GimbalMode = "earth"
    #: Elevation of the (flat) ground under the camera, metres, same datum as `alt_amsl`.
    ground_elevation: float = 0.0
    uncertainty: PoseUncertainty = field(default_factory=PoseUncertainty)

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"lat must be in [-90, 90], got {self.lat}")
        if not -180.0 <= self.lon <= 360.0:
            raise ValueError(f"lon must be in [-180, 360], got {self.lon}")
        for name in ("alt_amsl", "roll", "pitch", "yaw", "gimbal_pitch", "gimbal_yaw", "gimbal_roll",
                     "ground_elevation"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)}")
        if self.gimbal_mode not in ("earth", "body"):
            raise ValueError(f"gimbal_mode must be 'earth' or 'body', got {self.gimbal_mode!r}")

    @classmethod
    def from_height(cls, lat: float, lon: float, height_agl: float, ground_elevation: float = 0.0,
                    **angles: object) -> CameraPose:
        """A pose from the height above the ground (rangefinder, or altitude above a flat take-off site)."""
        return cls(lat, lon, ground_elevation + height_agl, ground_elevation=ground_elevation, **angles)  # type: ignore[arg-type]

    @property
    def height_agl(self) -> float:
        """Camera height above the flat ground under it, metres."""
        return self.alt_amsl - self.ground_elevation

    def with_(self, **changes: object) -> CameraPose:
        """A copy with some fields changed (used by the error model to perturb one input at a time)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def ned_from_camera(self) -> np.ndarray:
        """Rotation matrix taking camera-frame vectors (x right, y down, z forward) to local North-East-Down."""
        yaw = math.radians(self.yaw)
        if self.gimbal_mode == "earth":
            r_ned_gimbal = _rz(yaw + math.radians(self.gimbal_yaw)) @ _ry(math.radians(self.gimbal_pitch)) \
                @ _rx(math.radians(self.gimbal_roll))
        else:
            r_ned_body = _rz(yaw) @ _ry(math.radians(self.pitch)) @ _rx(math.radians(self.roll))
            r_body_gimbal = _rz(math.radians(self.gimbal_yaw)) @ _ry(math.radians(self.gimbal_pitch)) \
                @ _rx(math.radians(self.gimbal_roll))
            r_ned_gimbal = r_ned_body @ r_body_gimbal
        return r_ned_gimbal @ _GIMBAL_FROM_CAMERA

    def enu_from_camera(self) -> np.ndarray:
        """Rotation matrix taking camera-frame vectors to local East-North-Up."""
        return _ENU_FROM_NED @ self.ned_from_camera()

    def depression_deg(self) -> float:
        """Angle of the optical axis below the horizon (90 = nadir); negative when looking up."""
        axis = self.enu_from_camera()[:, 2]
        return math.degrees(math.asin(max(-1.0, min(1.0, -axis[2]))))


def Pose(lat_deg: float, lon_deg: float, alt_m: float, heading_deg: float = 0.0, roll_deg: float = 0.0,  # noqa: N802
         pitch_deg: float = 0.0, gimbal_pitch_deg: float = -90.0, gimbal_yaw_deg: float = 0.0,
         gimbal_roll_deg: float = 0.0, gimbal_mode: GimbalMode = "earth", ground_elevation_m: float = 0.0,
         uncertainty: PoseUncertainty | None = None) -> CameraPose:
    """A CameraPose from the keyword names the controller's adapter uses (`*_deg`, `alt_m`, `heading_deg`)."""
    return CameraPose(lat_deg, lon_deg, alt_m, roll_deg, pitch_deg, heading_deg, gimbal_pitch_deg, gimbal_yaw_deg,
                      gimbal_roll_deg, gimbal_mode, ground_elevation_m, uncertainty or PoseUncertainty())


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# Gimbal frame is forward-right-down; the camera's z (forward) is gimbal x, x (right) is gimbal y, y (down) gimbal z.
_GIMBAL_FROM_CAMERA = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_ENU_FROM_NED = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
