"""Which part of a search area each drone sweeps, and the waypoints to fly it.

The area (a radius around the last-known position, or a polygon) is split into
as many equal strips as the search first asked drones for. A drone joining the
search takes, in order of preference: the unswept remainder of a strip whose
drone left early (battery, abort); else the free strip nearest to it; else,
when every strip is being swept (command added drones), the far half of the
largest remaining sweep, whose drone then stops at the halfway waypoint
(`end`) and goes home. Waypoints are lawnmower sweeps at the search altitude,
spaced by the drone's thermal footprint less the overlap, starting at the end
nearest the last-known position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from shapely import Point, Polygon

from controller.config import FleetConfig
from controller.config.models import DroneModel
from controller.domain.entities import Incident, Mission
from controller.domain.states import MissionState
from controller.search.coverage_plan import Footprint, lawnmower, split_equal_area, track_spacing

ACTIVE = frozenset({MissionState.ACCEPTED, MissionState.LAUNCHED, MissionState.ON_SCENE})
#: A sweep is split for a joining drone only if this many waypoints remain (two sweep legs at least).
MIN_SPLIT_WAYPOINTS = 4


def end_of(plan: dict[str, Any]) -> int:
    """Waypoints of a plan its drone is to fly: all, or up to `end` once it handed the rest to a joiner."""
    return int(plan.get("end", len(plan["waypoints"])))


class SearchPlanner:
    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.frame = config.frame
        self.policy = config.policy.search

    def area(self, inc: Incident) -> Polygon:
        """The search area in the city's metric frame."""
        spec = inc.search_area or {"radius_m": self.policy.default_radius_m}
        if "polygon" in spec:
            return Polygon(self.frame.ring_to_xy(spec["polygon"]))
        x, y = self.frame.to_xy(inc.lat, inc.lon)
        return Point(x, y).buffer(float(spec["radius_m"]), 64)

    def spacing(self, model: DroneModel) -> float:
        camera = model.cameras.thermal or model.cameras.visible
        return track_spacing(Footprint(camera.hfov_deg, self.policy.altitude_m), self.policy.overlap)

    def plan(self, inc: Incident, missions: Sequence[Mission], mission: Mission, drone_xy: tuple[float, float], model: DroneModel) -> dict[str, Any]:
        """The share of `inc`'s area that `mission` should sweep, given the incident's other missions."""
        others = [m for m in missions if m.id != mission.id and m.plan]
        # the partition is fixed by the first plan, so later changes to k do not reshuffle strips in flight
        k = next((m.plan["strips"] for m in others if "strips" in m.plan), max(1, inc.drones_requested))
        lkp = self.frame.to_xy(inc.lat, inc.lon)
        taken = {m.plan["strip"] for m in others if m.state in ACTIVE}
        # 1. resume a share whose drone left before finishing it
        leftovers = [
            m for m in others
            if m.state not in ACTIVE and m.plan["strip"] not in taken and m.plan["done"] < end_of(m.plan)
        ]
        if leftovers:
            left = min(leftovers, key=lambda m: m.plan["done"] - end_of(m.plan))
            rest = left.plan["waypoints"][max(0, left.plan["done"] - 1) : end_of(left.plan)]
            return self._doc(left.plan["strip"], k, rest, resumed_from=left.id)
        # 2. the nearest strip nobody has swept or is sweeping
        swept = {m.plan["strip"] for m in others if m.state is MissionState.COMPLETED}
        strips = split_equal_area(self.area(inc), k)
        free = [i for i in range(len(strips)) if i not in taken and i not in swept]
        if free:
            i = min(free, key=lambda j: strips[j].centroid.distance(Point(drone_xy)))
            xy = lawnmower(strips[i], self.spacing(model), lkp)
            return self._doc(i, k, [list(self.frame.to_latlon(x, y)) for x, y in xy])
        # 3. every strip is covered: take the far half of the largest remaining sweep
        donors = [m for m in others if m.state in ACTIVE and end_of(m.plan) - m.plan["done"] >= MIN_SPLIT_WAYPOINTS]
        if donors:
            donor = max(donors, key=lambda m: end_of(m.plan) - m.plan["done"])
            start, end = donor.plan["done"], end_of(donor.plan)
            cut = start + (end - start) // 2
            # the joiner starts at the donor's last waypoint, so the leg between the halves is swept too
            doc = self._doc(donor.plan["strip"], k, donor.plan["waypoints"][max(0, cut - 1) : end], split_from=donor.id)
            doc["donor_end"] = cut
            return doc
        # 4. nothing left to share out: sweep the nearest strip again (a second look)
        i = min(range(len(strips)), key=lambda j: strips[j].centroid.distance(Point(drone_xy)))
        xy = lawnmower(strips[i], self.spacing(model), lkp)
        return self._doc(i, k, [list(self.frame.to_latlon(x, y)) for x, y in xy])

    def _doc(
        self, strip: int, strips: int, waypoints: list[list[float]], resumed_from: str | None = None, split_from: str | None = None
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "strip": strip,
            "strips": strips,
            "waypoints": [[round(lat, 7), round(lon, 7)] for lat, lon in waypoints],
            "done": 0,
            "altitude_m": self.policy.altitude_m,
            "speed_ms": self.policy.speed_ms,
        }
        if resumed_from:
            doc["resumed_from"] = resumed_from
        if split_from:
            doc["split_from"] = split_from
        return doc

    @staticmethod
    def length_m(plan: dict[str, Any]) -> float:
        from controller import geo

        wps = plan["waypoints"]
        return sum(geo.distance_m(a[0], a[1], b[0], b[1]) for a, b in zip(wps, wps[1:])) if len(wps) > 1 else 0.0

    @staticmethod
    def eta_s(plan: dict[str, Any]) -> float:
        return SearchPlanner.length_m(plan) / plan["speed_ms"] if plan["speed_ms"] > 0 else math.inf
