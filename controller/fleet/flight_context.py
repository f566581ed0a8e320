"""What flying one mission needs to know beyond the vehicle (profile, model, policy, zones, the return rule),
and the battery the way home takes from a point: shared by the mission runner and the pilot's command checks,
so a command is never accepted on a return the runner would not make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller import geo
from controller.config.models import DispatchPolicy, DroneModel, FlightProfile
from controller.dispatch.returns import ReturnPlanner
from controller.fleet.nofly import NoFlyGuard
from controller.geo import LocalFrame


@dataclass(frozen=True)
class FlightContext:
    profile: FlightProfile
    model_id: str
    model: DroneModel
    #: Heights (departure, transit, scene) and the battery reserve, as the dispatch engine plans with them.
    policy: DispatchPolicy
    guard: NoFlyGuard
    #: The shared return rule (the dispatch engine's), and the frame its metres are in.
    returns: ReturnPlanner
    frame: LocalFrame
    #: The drone's own station (id, lat, lon): home when the vehicle has not reported one.
    station: tuple[str, float, float]


@dataclass(frozen=True, slots=True)
class ReturnOptions:
    """Where the drone can go home from here, and the battery each option takes (before the reserve)."""

    home: tuple[float, float]
    home_pct: float
    #: The station the return rule names (None when no station is reachable) and its cost.
    site: tuple[str, float, float] | None
    site_pct: float

    @property
    def need_pct(self) -> float:
        """What the battery rule counts on: the station the rule names, or home when none is reachable."""
        return self.site_pct if self.site is not None else self.home_pct


def return_options(ctx: FlightContext, lat: float, lon: float, alt_m: float, home: tuple[float, float] | None) -> ReturnOptions:
    """Home (the vehicle's, else its station), and the station the shared return rule names, each with the battery
    the flight there from (lat, lon, alt_m) takes."""
    cruise = ctx.model.cruise_speed_ms
    x, y = ctx.frame.to_xy(lat, lon)
    home = home if home is not None else (ctx.station[1], ctx.station[2])
    home_s = ctx.returns.flight_time_to(x, y, *ctx.frame.to_xy(*home), cruise)
    if not math.isfinite(home_s):  # no flyable route in the model's wind: the straight line is the best guess
        home_s = geo.distance_m(lat, lon, *home) / cruise
    home_pct = ctx.returns.need_pct(home_s, alt_m, ctx.model)
    site = ctx.returns.site(x, y, ctx.model_id, cruise)
    if site is None:
        return ReturnOptions(home, home_pct, None, math.inf)
    slat, slon = ctx.frame.to_latlon(site.x, site.y)
    return ReturnOptions(home, home_pct, (site.station_id, slat, slon), ctx.returns.need_pct(site.flight_s, alt_m, ctx.model))
