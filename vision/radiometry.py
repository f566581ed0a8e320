"""Radiometric frames: raw 16-bit counts to degrees Celsius.

Radiometric thermal cores deliver counts that map linearly to scene temperature
once the camera has applied its own calibration (FLIR "TLinear" streams: 0.01 K
or 0.04 K per count from 0 K; DJI's R-JPEG SDK produces a similar linear
output). The detector works in degrees Celsius so that its temperature gates
(body surface vs background) are physical, not tied to one camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KELVIN_OFFSET = -273.15


@dataclass(frozen=True)
class RadiometricCalibration:
    """celsius = gain_c_per_count * counts + offset_c."""

    gain_c_per_count: float
    offset_c: float

    def __post_init__(self) -> None:
        if not self.gain_c_per_count > 0:
            raise ValueError(f"gain_c_per_count must be positive, got {self.gain_c_per_count}")

    @classmethod
    def tlinear(cls, resolution_k: float = 0.01) -> RadiometricCalibration:
        """FLIR-style TLinear output: counts are kelvin / resolution_k."""
        return cls(resolution_k, KELVIN_OFFSET)

    def to_celsius(self, counts: np.ndarray) -> np.ndarray:
        """Temperature image (float32, degrees C) from raw counts."""
        return (np.asarray(counts, dtype=np.float32) * np.float32(self.gain_c_per_count)
                + np.float32(self.offset_c))

    def to_counts(self, celsius: np.ndarray) -> np.ndarray:
        """Raw uint16 counts for a temperature image (for tests and synthetic renders)."""
        c = np.rint((np.asarray(celsius, dtype=np.float64) - self.offset_c) / self.gain_c_per_count)
        return np.clip(c, 0, 65535).astype(np.uint16)
