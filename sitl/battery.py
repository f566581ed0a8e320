"""The simulated flight battery: current by flight phase, consumed mAh, remaining share.

SITL keeps the voltage at 12.6 V and counts consumption, so `battery_remaining`
falls with the mAh used against BATT_CAPACITY, which is what ArduCopter reports
and what its low-battery failsafe (BATT_LOW_MAH, remaining capacity) watches.
"""

from __future__ import annotations

from dataclasses import dataclass

VOLTAGE_V = 12.6


@dataclass(slots=True)
class Battery:
    #: Current in hover (A); forward flight and wind add to it. ArduPilot's SITL quad draws about 28 A.
    hover_current_a: float = 28.0
    consumed_mah: float = 0.0
    energy_wh: float = 0.0
    current_a: float = 0.0

    def step(self, dt: float, armed: bool, flying: bool, airspeed_ms: float) -> None:
        if not armed:
            self.current_a = 0.0
        elif not flying:
            self.current_a = 0.15 * self.hover_current_a  # spinning at idle on the ground
        else:
            self.current_a = self.hover_current_a * (1.0 + 0.002 * airspeed_ms**2)
        self.consumed_mah += self.current_a * dt / 3.6
        self.energy_wh += self.current_a * VOLTAGE_V * dt / 3600.0

    def remaining_pct(self, capacity_mah: float) -> int:
        if capacity_mah <= 0:
            return -1
        return max(0, min(100, round(100.0 * (1.0 - self.consumed_mah / capacity_mah))))

    def remaining_mah(self, capacity_mah: float) -> float:
        return capacity_mah - self.consumed_mah
