"""A confirmed hotspot as the controller keeps, stores and shows it, and what teams may do with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from typing_extensions import TypedDict

from controller.domain.errors import Conflict


class HotspotStatus(StrEnum):
    NEW = "new"              # raised by the detector, nobody has looked yet
    CONFIRMED = "confirmed"  # a team looked at the thumbnail/feed: worth walking to
    DISMISSED = "dismissed"  # not the person (a dog, a warm rock): never raised again here
    FOUND = "found"          # the team is with the person: the search is over


H = HotspotStatus
TRANSITIONS: dict[HotspotStatus, frozenset[HotspotStatus]] = {
    H.NEW: frozenset({H.CONFIRMED, H.DISMISSED, H.FOUND}),
    H.CONFIRMED: frozenset({H.DISMISSED, H.FOUND}),
    H.DISMISSED: frozenset(),
    H.FOUND: frozenset(),
}


class HotspotView(TypedDict):
    """A hotspot as the event stream, the REST API and the exports show it."""

    id: str
    incident_id: str
    lat: float
    lon: float
    error_m: float
    kind: str
    score: float
    hits: int
    first_seen: str
    last_seen: str
    drones: list[str]
    status: str
    status_by: str | None
    status_at: str | None
    thumbnail_url: str | None


@dataclass(slots=True)
class HotspotRecord:
    id: str
    incident_id: str
    lat: float
    lon: float
    error_m: float
    kind: str
    score: float
    hits: int
    first_seen: datetime
    last_seen: datetime
    drones: list[str]
    status: HotspotStatus = H.NEW
    status_by: str | None = None
    status_at: datetime | None = None
    thumbnail_png: bytes | None = field(default=None, repr=False)

    def move_to(self, status: HotspotStatus, who: str, at: datetime) -> None:
        """Change status or raise Conflict (409) leaving the record as it was."""
        if status not in TRANSITIONS[self.status]:
            raise Conflict(f"hotspot {self.id} is {self.status.value} and cannot become {status.value}")
        self.status, self.status_by, self.status_at = status, who, at

    def view(self) -> HotspotView:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "lat": round(self.lat, 7),
            "lon": round(self.lon, 7),
            "error_m": round(self.error_m, 1),
            "kind": self.kind,
            "score": round(self.score, 3),
            "hits": self.hits,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "drones": list(self.drones),
            "status": self.status.value,
            "status_by": self.status_by,
            "status_at": self.status_at.isoformat() if self.status_at else None,
            "thumbnail_url": f"/api/v1/hotspots/{self.id}/thumbnail.png" if self.thumbnail_png else None,
        }
