"""A read-only view of live state for the fleet, video, hotspot and API layers.

They need to look things up (a drone's state, an incident's missions, who may
watch a feed) but must never change state behind the centre's commands, so
they get mappings that cannot be assigned to and helpers that answer the
questions they ask, instead of the centre's own dictionaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from controller.center.state import LiveState
from controller.config import FleetConfig
from controller.domain.categories import is_search
from controller.domain.entities import Drone, Incident, Mission
from controller.domain.states import MissionState
from controller.views import offer_view


class LiveView:
    def __init__(self, state: LiveState, config: FleetConfig, clock: Callable[[], datetime]) -> None:
        self._state = state
        self.clock = clock
        self._stations = {s.id: s for s in config.stations}
        self._tz = ZoneInfo(config.city.timezone)
        self.drones: Mapping[str, Drone] = MappingProxyType(state.drones)
        #: Open incidents.
        self.incidents: Mapping[str, Incident] = MappingProxyType(state.incidents)
        #: Active missions and every mission of an open incident.
        self.missions: Mapping[str, Mission] = MappingProxyType(state.missions)

    def incident(self, incident_id: str) -> Incident | None:
        """An open incident, or a closed one a drone is still flying for."""
        return self._state.incident_any(incident_id)

    def incident_missions(self, incident_id: str) -> list[Mission]:
        return self._state.incident_missions(incident_id)

    def search_drones(self, states: frozenset[MissionState]) -> dict[str, str]:
        """drone id -> incident id, for drones whose mission for an open search is in one of `states`."""
        out: dict[str, str] = {}
        for inc in self._state.incidents.values():
            if not is_search(inc.category):
                continue
            for m in self._state.incident_missions(inc.id):
                if m.state in states:
                    out[m.drone_id] = inc.id
        return out

    def local_time(self, now: datetime) -> Any:
        return now.astimezone(self._tz).time()

    def pilot_on_duty(self, station_id: str, now: datetime) -> str | None:
        pilot = self._stations[station_id].on_duty(self.local_time(now))
        return pilot.id if pilot else None

    def offer_payload(self, m: Mission) -> dict[str, Any]:
        """A live mission with its incident's essentials, as pilots receive offers."""
        inc = self._state.incident_any(m.incident_id)
        return offer_view(m, inc, self.clock()) if inc else {}
