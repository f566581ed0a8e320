"""The flight battery as ArduPilot SITL reports it: constant voltage, current by flight phase, mAh counted.

SITL's battery voltage stays at 12.6 V, so what moves is the consumption:
`battery_remaining` (and the capacity failsafes BATT_LOW_MAH/BATT_CRT_MAH)
follow the mAh consumed against BATT_CAPACITY. The recorded SITL quad drew
about 28 A hovering, 31 A cruising at 10 m/s, 30.6 A climbing at 2.5 m/s and
27 A descending, and little while the motors spool up for a takeoff; `current`
scales those shares to the airframe's hover current.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VOLTAGE_V = 12.6
#: Share of hover current per (m/s)^2 of airspeed, per m/s of climb, per m/s of descent.
K_AIRSPEED = 0.00095
K_CLIMB = 0.036
K_DESCENT = 0.028
#: Motors spinning armed on the ground (MOT_SPIN_ARM): share of hover current.
IDLE_SHARE = 0.06


def current(hover_a: float, *, armed: bool, spool: float, airspeed: float, climb: float) -> float:
    """Amps drawn. `spool` is 0 on the ground at idle, 1 in flight, in between while spooling up."""
    if not armed:
        return 0.0
    flying = hover_a * (1.0 + K_AIRSPEED * airspeed * airspeed + (K_CLIMB * climb if climb > 0 else K_DESCENT * climb))
    ramp = max(0.0, min(1.0, spool)) ** 4  # the motors only work hard at the end of the spool-up
    return IDLE_SHARE * hover_a + (max(flying, 0.2 * hover_a) - IDLE_SHARE * hover_a) * ramp


def remaining_percent(consumed_mah: float, capacity_mah: float) -> int:
    """ArduPilot's battery_remaining: whole percent left, rounded down; -1 without a capacity."""
    if capacity_mah <= 0:
        return -1
    return max(0, min(100, math.floor(100.0 * (1.0 - consumed_mah / capacity_mah))))


@dataclass(slots=True)
class Battery:
    hover_current_a: float = 28.0
    consumed_mah: float = 0.0
    energy_wh: float = 0.0
    current_a: float = 0.0

    def step(self, dt: float, amps: float) -> None:
        self.current_a = amps
        self.consumed_mah += amps * dt / 3.6
        self.energy_wh += amps * VOLTAGE_V * dt / 3600.0

    def remaining_pct(self, capacity_mah: float) -> int:
        return remaining_percent(self.consumed_mah, capacity_mah)

    def remaining_mah(self, capacity_mah: float) -> float:
        return capacity_mah - self.consumed_mah

    def set_remaining(self, percent: float, capacity_mah: float) -> None:
        """Fault injection: pretend the pack has `percent` left (energy follows at the nominal voltage)."""
        self.consumed_mah = max(0.0, capacity_mah * (1.0 - percent / 100.0))
        self.energy_wh = self.consumed_mah * VOLTAGE_V / 1000.0

    @property
    def energy_hj(self) -> int:
        """BATTERY_STATUS energy_consumed: hectojoules."""
        return int(self.energy_wh * 36.0)
