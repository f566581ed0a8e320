"""Pilot commands as typed values, and what became of one.

The API turns its request bodies into these; the checks, the MAVLink encoding, the mission runner and the
timeline all take them. Each knows its step name for the mission timeline and a one-line description.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class Direction(StrEnum):
    CW = "cw"
    CCW = "ccw"


@dataclass(frozen=True, slots=True)
class FlyTo:
    kind: ClassVar[str] = "fly_to"
    lat: float
    lon: float
    #: None: at the height the drone flies now.
    alt_m: float | None = None

    def describe(self) -> str:
        at = f" at {self.alt_m:.0f} m" if self.alt_m is not None else " at the current height"
        return f"{self.lat:.5f},{self.lon:.5f}{at}"


@dataclass(frozen=True, slots=True)
class Altitude:
    kind: ClassVar[str] = "altitude"
    alt_m: float

    def describe(self) -> str:
        return f"to {self.alt_m:.0f} m"


@dataclass(frozen=True, slots=True)
class Orbit:
    kind: ClassVar[str] = "orbit"
    lat: float
    lon: float
    radius_m: float
    direction: Direction
    speed_ms: float

    def describe(self) -> str:
        return f"{self.lat:.5f},{self.lon:.5f} r {self.radius_m:.0f} m {self.direction.value} at {self.speed_ms:g} m/s"


@dataclass(frozen=True, slots=True)
class Roi:
    kind: ClassVar[str] = "roi"
    lat: float
    lon: float

    def describe(self) -> str:
        return f"camera at {self.lat:.5f},{self.lon:.5f}"


@dataclass(frozen=True, slots=True)
class RoiClear:
    kind: ClassVar[str] = "roi_clear"

    def describe(self) -> str:
        return "camera free"


@dataclass(frozen=True, slots=True)
class Gimbal:
    kind: ClassVar[str] = "gimbal"
    pitch_deg: float

    def describe(self) -> str:
        return f"pitch {self.pitch_deg:.0f} deg"


@dataclass(frozen=True, slots=True)
class Hold:
    kind: ClassVar[str] = "hold"

    def describe(self) -> str:
        return "hold position"


@dataclass(frozen=True, slots=True)
class Resume:
    kind: ClassVar[str] = "resume"

    def describe(self) -> str:
        return "back to the controller's plan"


@dataclass(frozen=True, slots=True)
class Return:
    kind: ClassVar[str] = "return"

    def describe(self) -> str:
        return "return to station"


@dataclass(frozen=True, slots=True)
class Land:
    kind: ClassVar[str] = "land"
    confirm: bool = False

    def describe(self) -> str:
        return "land here"


PilotCommand = FlyTo | Altitude | Orbit | Roi | RoiClear | Gimbal | Hold | Resume | Return | Land

#: Step names for the mission timeline (the steps column holds 40 characters).
STEP_NAMES = {
    "fly_to": "pilot: fly to",
    "altitude": "pilot: altitude",
    "orbit": "pilot: orbit",
    "roi": "pilot: point camera",
    "roi_clear": "pilot: free camera",
    "gimbal": "pilot: gimbal",
    "hold": "pilot: hold",
    "resume": "pilot: resume",
    "return": "pilot: return",
    "land": "pilot: land here",
}


class CommandRefused(Exception):
    """A command that was not sent (409 state, 422 field) or that the vehicle did not carry out (502, 504)."""

    def __init__(self, status: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        #: The request field a 422 is about (e.g. "alt_m").
        self.field = field


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command the vehicle acknowledged: what was done, and how long the acknowledgements took."""

    detail: str
    acked_in_ms: float
