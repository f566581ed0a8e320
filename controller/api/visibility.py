"""Who may see what. Pilots see their own station; search teams see missing-person searches."""

from __future__ import annotations

from collections.abc import Iterable

from controller.auth import Principal, Role
from controller.domain.categories import SEARCH_CATEGORY
from controller.domain.errors import Forbidden
from controller.events import Event


def check_incident(who: Principal, category: str, mission_stations: Iterable[str]) -> None:
    if who.role is Role.PILOT and who.station_id not in set(mission_stations):
        raise Forbidden("pilots see only incidents offered to their station")
    if who.role is Role.SEARCH_TEAM and category != SEARCH_CATEGORY:
        raise Forbidden("search teams see only missing-person incidents")


def check_mission(who: Principal, station_id: str, incident_category: str | None) -> None:
    if who.role is Role.PILOT and who.station_id != station_id:
        raise Forbidden("pilots see only their own station's missions")
    if who.role is Role.SEARCH_TEAM and incident_category != SEARCH_CATEGORY:
        raise Forbidden("search teams see only missions of missing-person incidents")


def event_filter(who: Principal, station: str | None, incident: str | None):
    """Build the predicate for one WebSocket subscriber from its role and its requested filters."""
    if who.role is Role.DRONE:
        raise Forbidden("drone tokens may only publish video; they get no event stream")
    if who.role is Role.PILOT:
        if station is not None and station != who.station_id:
            raise Forbidden(f"a pilot of {who.station_id} cannot subscribe to station {station}")
        station = who.station_id

    def accepts(event: Event) -> bool:
        if station is not None and event.station_id != station:
            return False
        if incident is not None and event.incident_id != incident:
            return False
        if who.role is Role.SEARCH_TEAM:
            return event.category == SEARCH_CATEGORY or event.type.startswith("hotspot.")
        return True

    return accepts
