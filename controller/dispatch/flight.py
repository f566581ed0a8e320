"""Flight-time maths for dispatch: the wind triangle and the vertical legs, as pure vectorised functions.

Kept apart from routing and assignment so each rule can be checked by hand:
a drone holding airspeed V along a track with unit vector u in a wind W flies
over the ground at  W.u + sqrt(V^2 - (W x u)^2)  (it crabs into the crosswind
and the along-track wind adds or subtracts). No real root means the drone
cannot hold the track at all.
"""

from __future__ import annotations

import math

import numpy as np

from controller.config.models import DispatchPolicy, Wind
from controller.domain.states import DroneState

#: Below this ground speed (m/s) a leg is treated as unflyable rather than merely slow.
MIN_GROUND_SPEED_MS = 0.5


def wind_vector(wind: Wind) -> tuple[float, float]:
    """East/north components (m/s) of the air's motion; `from_deg` is where the wind comes from."""
    towards = math.radians(wind.from_deg + 180.0)
    return wind.speed_ms * math.sin(towards), wind.speed_ms * math.cos(towards)


def ground_speed(airspeed: np.ndarray | float, wx: float, wy: float, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Ground speed along unit track vectors (ux, uy); NaN where the wind makes the track unflyable."""
    along = wx * ux + wy * uy
    cross = wx * uy - wy * ux
    disc = np.asarray(airspeed, dtype=float) ** 2 - cross**2
    with np.errstate(invalid="ignore"):
        gs = along + np.sqrt(np.where(disc > 0, disc, np.nan))
    return np.where(gs >= MIN_GROUND_SPEED_MS, gs, np.nan)


def leg_time_s(
    dx: np.ndarray, dy: np.ndarray, airspeed: np.ndarray | float, wx: float, wy: float
) -> tuple[np.ndarray, np.ndarray]:
    """(time, length) of straight legs with displacement (dx, dy); time NaN where unflyable, 0 for zero length."""
    dist = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        ux = np.where(dist > 0, dx / np.where(dist > 0, dist, 1.0), 1.0)
        uy = np.where(dist > 0, dy / np.where(dist > 0, dist, 1.0), 0.0)
        t = dist / ground_speed(airspeed, wx, wy, ux, uy)
    return np.where(dist > 0, t, 0.0), dist


def return_seconds(flight_s: np.ndarray | float, alt_m: np.ndarray | float, descent_ms: np.ndarray | float) -> np.ndarray | float:
    """Seconds from a point at `alt_m` to wheels down: the cruise back (`flight_s`), then the descent."""
    return flight_s + np.maximum(alt_m, 0.0) / descent_ms


def battery_pct(seconds: np.ndarray | float, endurance_s: np.ndarray | float) -> np.ndarray | float:
    """Share of a full battery (%) that `seconds` of flight take."""
    return 100.0 * seconds / endurance_s


def launch_delay_s(policy: DispatchPolicy, state: DroneState) -> float:
    """Accept-to-wheels-up: hot standby is quickest, a just-landed drone needs checks, a charging one unplugging."""
    delays = policy.launch_delay_s
    if state is DroneState.CHARGING:
        return delays.charging
    if state is DroneState.LANDED:
        return delays.landed
    if state in (DroneState.ENROUTE, DroneState.ON_SCENE, DroneState.SEARCHING):
        return 0.0  # already flying: redirected in the air
    return delays.standby


def vertical_legs_s(policy: DispatchPolicy, climb_ms: np.ndarray, descent_ms: np.ndarray) -> dict[str, np.ndarray]:
    """Seconds for each vertical leg of a sortie: up to transit, down to the scene, back up, and down to land."""
    transit = policy.transit_altitude_m
    scene = min(policy.engine.scene_altitude_m, transit)
    return {
        "climb": transit / climb_ms,
        "scene_descent": (transit - scene) / descent_ms,
        "scene_climb": (transit - scene) / climb_ms,
        "land": return_seconds(0.0, transit, descent_ms),
    }
