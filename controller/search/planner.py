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

from collections.abc import Sequence
from dataclasses import dataclass

from shapely import Point, Polygon

from controller.config import FleetConfig
from controller.config.models import DroneModel
from controller.domain.entities import Incident, Mission
from controller.domain.states import WORKING_MISSION, MissionState
from controller.search.coverage_plan import Footprint, lawnmower, split_equal_area, track_spacing
from controller.search.plan import LatLon, SearchPlan

#: A sweep is split for a joining drone only if this many waypoints remain (two sweep legs at least).
MIN_SPLIT_WAYPOINTS = 4


@dataclass(frozen=True, slots=True)
class PlannedShare:
    """A new mission's plan, and when it takes half of another drone's sweep, where that drone now stops."""

    plan: SearchPlan
    #: (donor mission id, waypoint index the donor stops at) when the share was split off a sweep in progress.
    donor_stops: tuple[str, int] | None = None


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

    def plan(
        self, inc: Incident, missions: Sequence[Mission], mission: Mission, drone_xy: tuple[float, float], model: DroneModel
    ) -> PlannedShare:
        """The share of `inc`'s area that `mission` should sweep, given the incident's other missions."""
        others = [(m, m.plan) for m in missions if m.id != mission.id and m.plan is not None]
        # the partition is fixed by the first plan, so later changes to k do not reshuffle strips in flight
        k = others[0][1].strips if others else max(1, inc.drones_requested)
        lkp = self.frame.to_xy(inc.lat, inc.lon)
        taken = {p.strip for m, p in others if m.state in WORKING_MISSION}
        resumed = {p.resumed_from for _, p in others if p.resumed_from}
        # 1. resume a share whose drone left before finishing it (and that no later drone took over)
        leftovers = [
            (m, p) for m, p in others
            if m.state not in WORKING_MISSION and p.strip not in taken and not p.finished and m.id not in resumed
        ]
        if leftovers:
            left, lp = min(leftovers, key=lambda mp: -mp[1].remaining)
            rest = lp.waypoints[max(0, lp.done - 1) : lp.stop_at]
            return PlannedShare(self._plan(lp.strip, k, rest, resumed_from=left.id))
        # 2. the nearest strip nobody has swept or is sweeping
        swept = {p.strip for m, p in others if m.state is MissionState.COMPLETED or p.finished}
        strips = split_equal_area(self.area(inc), k)
        free = [i for i in range(len(strips)) if i not in taken and i not in swept]
        if free:
            i = min(free, key=lambda j: strips[j].centroid.distance(Point(drone_xy)))
            xy = lawnmower(strips[i], self.spacing(model), lkp)
            return PlannedShare(self._plan(i, k, [self.frame.to_latlon(x, y) for x, y in xy]))
        # 3. every strip is covered: take the far half of the largest remaining sweep
        donors = [(m, p) for m, p in others if m.state in WORKING_MISSION and p.remaining >= MIN_SPLIT_WAYPOINTS]
        if donors:
            donor, dp = max(donors, key=lambda mp: mp[1].remaining)
            cut = dp.done + dp.remaining // 2
            # the joiner starts at the donor's last waypoint, so the leg between the halves is swept too
            plan = self._plan(dp.strip, k, dp.waypoints[max(0, cut - 1) : dp.stop_at], split_from=donor.id)
            return PlannedShare(plan, (donor.id, cut))
        # 4. nothing left to share out: sweep the nearest strip again (a second look)
        i = min(range(len(strips)), key=lambda j: strips[j].centroid.distance(Point(drone_xy)))
        xy = lawnmower(strips[i], self.spacing(model), lkp)
        return PlannedShare(self._plan(i, k, [self.frame.to_latlon(x, y) for x, y in xy]))

    def _plan(
        self, strip: int, strips: int, waypoints: Sequence[LatLon], resumed_from: str | None = None, split_from: str | None = None
    ) -> SearchPlan:
        return SearchPlan(
            strip=strip,
            strips=strips,
            waypoints=tuple((round(lat, 7), round(lon, 7)) for lat, lon in waypoints),
            altitude_m=self.policy.altitude_m,
            speed_ms=self.policy.speed_ms,
            resumed_from=resumed_from,
            split_from=split_from,
        )
