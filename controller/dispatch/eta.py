"""Time-to-scene and battery maths for dispatch v1, as pure vectorised functions.

v1 model: launch delay (by the drone's state) + climb to transit altitude +
straight-line cruise. The battery check covers the flight out, the planned time
on scene by category, the flight home and the configured reserve.
"""

from __future__ import annotations

import numpy as np



def time_to_scene_s(
    distance_m: np.ndarray, cruise_ms: np.ndarray, climb_ms: np.ndarray, launch_s: np.ndarray, transit_alt_m: float
) -> np.ndarray:
    """Launch delay + climb to transit altitude + straight-line cruise."""
    return launch_s + transit_alt_m / climb_ms + distance_m / cruise_ms


def battery_needed_pct(
    distance_m: np.ndarray,
    cruise_ms: np.ndarray,
    climb_ms: np.ndarray,
    descent_ms: np.ndarray,
    endurance_s: np.ndarray,
    on_scene_s: float,
    transit_alt_m: float,
) -> np.ndarray:
    """Share of a full battery used flying out, staying on scene, and flying home (before the reserve)."""
    flight_s = transit_alt_m / climb_ms + 2.0 * distance_m / cruise_ms + on_scene_s + transit_alt_m / descent_ms
    return 100.0 * flight_s / endurance_s
