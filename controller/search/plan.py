"""A search mission's share of the area, as the planner hands it to the flight layer and the store keeps it.

Frozen: progress and hand-overs make a new plan (`flown`, `handed_over_at`), so
a plan read by the runner can never change under it. The JSON form keeps the
field names the store has always used, so missions stored before this type
existed load unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from controller import geo

LatLon = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SearchPlan:
    #: Which of the area's `strips` equal-area strips this is.
    strip: int
    strips: int
    #: Lawnmower waypoints (lat, lon) at `altitude_m`, flown in order at `speed_ms`.
    waypoints: tuple[LatLon, ...]
    altitude_m: float
    speed_ms: float
    #: Waypoints flown so far (a replacement resumes from here).
    done: int = 0
    #: Set once a joining drone took the rest: this drone flies waypoints[:end] and goes home.
    end: int | None = None
    #: The mission whose unfinished strip this resumes, or whose remaining sweep this took half of.
    resumed_from: str | None = None
    split_from: str | None = None

    @property
    def stop_at(self) -> int:
        """How many waypoints this drone is to fly: all, or up to `end` after a hand-over."""
        return len(self.waypoints) if self.end is None else self.end

    @property
    def finished(self) -> bool:
        """Its drone swept its whole share: the share needs no other drone."""
        return self.done >= self.stop_at

    @property
    def remaining(self) -> int:
        return self.stop_at - self.done

    def flown(self, done: int) -> SearchPlan:
        return replace(self, done=done)

    def handed_over_at(self, end: int) -> SearchPlan:
        return replace(self, end=end)

    def length_m(self) -> float:
        wps = self.waypoints
        return sum(geo.distance_m(a[0], a[1], b[0], b[1]) for a, b in zip(wps, wps[1:]))

    def eta_s(self) -> float:
        return self.length_m() / self.speed_ms if self.speed_ms > 0 else math.inf

    # --- storage ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "strip": self.strip,
            "strips": self.strips,
            "waypoints": [[lat, lon] for lat, lon in self.waypoints],
            "done": self.done,
            "altitude_m": self.altitude_m,
            "speed_ms": self.speed_ms,
        }
        if self.end is not None:
            doc["end"] = self.end
        if self.resumed_from:
            doc["resumed_from"] = self.resumed_from
        if self.split_from:
            doc["split_from"] = self.split_from
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> SearchPlan | None:
        if not doc:
            return None
        return cls(
            strip=int(doc["strip"]),
            strips=int(doc["strips"]),
            waypoints=tuple((float(lat), float(lon)) for lat, lon in doc["waypoints"]),
            altitude_m=float(doc["altitude_m"]),
            speed_ms=float(doc["speed_ms"]),
            done=int(doc.get("done", 0)),
            end=int(doc["end"]) if doc.get("end") is not None else None,
            resumed_from=doc.get("resumed_from"),
            split_from=doc.get("split_from"),
        )
