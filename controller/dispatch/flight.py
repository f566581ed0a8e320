"""Flight-time maths for dispatch: the wind triangle and the vertical legs, as pure vectorised functions.

Kept apart from routing and assignment so each rule can be checked by hand:
a drone holding airspeed V along a track with unit vector u in a wind W flies
over the ground at  W.u + sqrt(V^2 - (W x u)^2)  (it crabs into the crosswind
and the along-track wind adds or subtracts). No real root means the drone
cannot hold the track at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def heights(policy: DispatchPolicy) -> tuple[float, float, float]:
    """(departure, transit, scene) heights above home: none above the transit height."""
    transit = policy.transit_altitude_m
    return min(policy.departure_altitude_m, transit), transit, min(policy.engine.scene_altitude_m, transit)


@dataclass(frozen=True, slots=True)
class OutboundProfile:
    """How a drone flies out to a scene (the mission runner flies it, the engine times it).

    Straight up to the departure height (clear of the station's surroundings),
    then one leg that climbs while it flies: at the transit height when climbing
    there and down again costs no time on a leg this long, else at the scene
    height; a transit leg starts its descent `descent_from_m` before the scene so
    the drone arrives at the scene height. Flying straight to the scene height
    with no needless climb and descent is what makes near calls quick.
    """

    departure_m: float
    cruise_m: float
    scene_m: float
    descent_from_m: float


def outbound_profile(policy: DispatchPolicy, distance_m: float, cruise_ms: float, climb_ms: float, descent_ms: float) -> OutboundProfile:
    departure, transit, scene = heights(policy)
    up_and_down_s = (transit - departure) / climb_ms + (transit - scene) / descent_ms
    if transit > scene and distance_m / cruise_ms >= up_and_down_s:
        return OutboundProfile(departure, transit, scene, cruise_ms * (transit - scene) / descent_ms)
    return OutboundProfile(departure, scene, scene, 0.0)


def vertical_legs_s(
    policy: DispatchPolicy, climb_ms: np.ndarray, descent_ms: np.ndarray, cruise_ms: np.ndarray, accel_ms2: np.ndarray
) -> dict[str, np.ndarray]:
    """Seconds of each part of a sortie that is not cruising (see OutboundProfile):

    - takeoff: straight up to the departure height;
    - rise: from there to the scene height, flown during the leg (it only adds time on legs shorter than it);
    - speed_change: what accelerating to cruise and braking at the scene add to a leg flown at cruise speed;
    - scene_climb: after the scene, up to the transit (return) height before flying home;
    - land: down from the transit height at home.
    """
    departure, transit, scene = heights(policy)
    return {
        "takeoff": departure / climb_ms,
        "rise": np.maximum(scene - departure, 0.0) / climb_ms,
        "speed_change": cruise_ms / accel_ms2,
        "scene_climb": (transit - scene) / climb_ms,
        "land": return_seconds(0.0, transit, descent_ms),
    }


def arrival_s(out_s: np.ndarray, speed_change_s: np.ndarray, rise_s: np.ndarray) -> np.ndarray:
    """Leg time to the scene from its cruise time: plus speeding up and braking, and any climb the leg is too short for."""
    return out_s + speed_change_s + np.maximum(rise_s - out_s, 0.0)
