"""Pure checks of a pilot command before anything is sent: limits (422, naming the field), then the no-fly zones
with the routing buffer, the geofence and the battery (409). No I/O: a command and a picture of the drone in,
a refusal (or None) out.

The rules are the controller's own, not copies: the zones are the runner's `NoFlyGuard`, their buffer is the
dispatch engine's (`engine.nofly_buffer_m`: a target must lie outside a zone grown by it; a straight leg or an
orbit circle must keep half of it, as the runner's own detours do), and the battery need is the shared return
rule (`flight_context.return_options`, the `ReturnPlanner`) from the target, plus the flight there, the reserve
and the runner's return margin, so a command is never accepted that the runner would at once turn home from.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller import geo
from controller.config.models import ControlPolicy
from controller.control.commands import (
    Altitude, CommandRefused, FlyTo, Gimbal, Land, Orbit, PilotCommand,
)
from controller.dispatch.flight import battery_pct
from controller.fleet.flight_context import FlightContext, return_options


@dataclass(frozen=True, slots=True)
class Point3:
    lat: float
    lon: float
    alt_m: float


@dataclass(frozen=True, slots=True)
class Situation:
    """The drone as the checks see it."""

    position: Point3
    battery_pct: float | None
    #: Where the vehicle returns to (its HOME_POSITION), None: its station.
    home: tuple[float, float] | None
    #: Where the pilot last sent it (a fly-to, an orbit's centre), for a height change; None: where it is.
    target: Point3 | None = None


@dataclass(frozen=True, slots=True)
class Fence:
    lat: float
    lon: float
    radius_m: float


def fence_of(ctx: FlightContext) -> Fence:
    """The geofence around the drone's own station."""
    return Fence(ctx.station[1], ctx.station[2], ctx.policy.control.geofence.radius_m)


def buffer_m(ctx: FlightContext) -> float:
    return ctx.policy.engine.nofly_buffer_m


# --- fields (422) ------------------------------------------------------------------------------------


def check_fields(cmd: PilotCommand, limits: ControlPolicy) -> None:
    """Values outside the configured limits: 422 naming the field."""
    alt = cmd.alt_m if isinstance(cmd, FlyTo | Altitude) else None
    if alt is not None and not limits.min_alt_m <= alt <= limits.max_alt_m:
        raise CommandRefused(422, f"alt_m {alt:g} m is outside {limits.min_alt_m:g}..{limits.max_alt_m:g} m above home", "alt_m")
    if isinstance(cmd, Orbit):
        if not limits.min_orbit_radius_m <= cmd.radius_m <= limits.max_orbit_radius_m:
            raise CommandRefused(
                422, f"radius_m {cmd.radius_m:g} m is outside {limits.min_orbit_radius_m:g}..{limits.max_orbit_radius_m:g} m", "radius_m"
            )
        if not 0 < cmd.speed_ms <= limits.max_speed_ms:
            raise CommandRefused(422, f"speed_ms {cmd.speed_ms:g} m/s is outside 0..{limits.max_speed_ms:g} m/s", "speed_ms")
    if isinstance(cmd, Gimbal) and not -90.0 <= cmd.pitch_deg <= 0.0:
        raise CommandRefused(422, f"pitch_deg {cmd.pitch_deg:g} is outside -90..0 degrees", "pitch_deg")
    if isinstance(cmd, Land) and cmd.confirm is not True:
        raise CommandRefused(422, "land needs confirm: true (the drone lands where it is, away from its station)", "confirm")


# --- where a command sends the drone ------------------------------------------------------------------


def destination(cmd: PilotCommand, s: Situation, limits: ControlPolicy) -> Point3 | None:
    """The point a command flies the drone to (an orbit: its centre), None for commands that do not move it
    (camera, hold, resume, return, land: those are always allowed or checked elsewhere)."""
    here = s.position
    now_alt = min(max(here.alt_m, limits.min_alt_m), limits.max_alt_m)
    if isinstance(cmd, FlyTo):
        return Point3(cmd.lat, cmd.lon, cmd.alt_m if cmd.alt_m is not None else now_alt)
    if isinstance(cmd, Altitude):
        base = s.target or here
        return Point3(base.lat, base.lon, cmd.alt_m)
    if isinstance(cmd, Orbit):
        return Point3(cmd.lat, cmd.lon, now_alt)
    return None


# --- the flight (409) --------------------------------------------------------------------------------


def check_zones(ctx: FlightContext, here: Point3, to: Point3, orbit_radius_m: float | None = None) -> None:
    guard, buf = ctx.guard, buffer_m(ctx)
    near = guard.zone_within(to.lat, to.lon, buf)
    if near is not None:
        zone, dist = near
        where = "inside" if dist <= 0 else f"{dist:.0f} m from"
        raise CommandRefused(
            409, f"the target {to.lat:.5f},{to.lon:.5f} is {where} no-fly zone {zone.id} ({zone.name}); "
            f"targets keep the {buf:.0f} m routing buffer",
        )
    zone = guard.zone_near_leg((here.lat, here.lon), (to.lat, to.lon), buf / 2)
    if zone is not None:
        raise CommandRefused(
            409, f"the straight flight to {to.lat:.5f},{to.lon:.5f} passes within {buf / 2:.0f} m of no-fly zone "
            f"{zone.id} ({zone.name})",
        )
    if orbit_radius_m is not None:
        zone = guard.zone_near_circle((to.lat, to.lon), orbit_radius_m, buf / 2)
        if zone is not None:
            raise CommandRefused(
                409, f"an orbit of {orbit_radius_m:.0f} m around {to.lat:.5f},{to.lon:.5f} comes within {buf / 2:.0f} m "
                f"of no-fly zone {zone.id} ({zone.name})",
            )


def check_fence(fence: Fence, to: Point3, orbit_radius_m: float = 0.0) -> None:
    reach = geo.distance_m(fence.lat, fence.lon, to.lat, to.lon) + orbit_radius_m
    if reach > fence.radius_m:
        raise CommandRefused(
            409, f"outside the geofence: {reach:.0f} m from the station at {fence.lat:.5f},{fence.lon:.5f}, "
            f"the limit is {fence.radius_m:.0f} m",
        )


def battery_need_pct(ctx: FlightContext, s: Situation, to: Point3) -> float:
    """Battery (%) for the straight flight there, then home by the shared return rule, plus reserve and margin."""
    here, model = s.position, ctx.model
    x, y = ctx.frame.to_xy(here.lat, here.lon)
    there_s = ctx.returns.flight_time_to(x, y, *ctx.frame.to_xy(to.lat, to.lon), model.cruise_speed_ms)
    if there_s == float("inf"):
        there_s = geo.distance_m(here.lat, here.lon, to.lat, to.lon) / model.cruise_speed_ms
    climb = max(to.alt_m - here.alt_m, 0.0) / model.climb_rate_ms
    there = float(battery_pct(there_s + climb, model.endurance_min * 60.0))
    home = return_options(ctx, to.lat, to.lon, to.alt_m, s.home).need_pct
    return there + home + ctx.policy.battery_reserve_pct + ctx.profile.battery_return_margin_pct


def check_battery(ctx: FlightContext, s: Situation, to: Point3) -> None:
    if s.battery_pct is None:
        return
    need = battery_need_pct(ctx, s, to)
    if s.battery_pct < need:
        raise CommandRefused(
            409, f"battery: needs {need:.0f}% to get there and home with the {ctx.policy.battery_reserve_pct:.0f}% "
            f"reserve, has {s.battery_pct:.0f}%",
        )


def check(cmd: PilotCommand, s: Situation, ctx: FlightContext) -> Point3 | None:
    """Every check for `cmd`, cheapest first; raises CommandRefused, else returns where the command flies to."""
    limits = ctx.policy.control
    check_fields(cmd, limits)
    to = destination(cmd, s, limits)
    if to is None:
        return None
    radius = cmd.radius_m if isinstance(cmd, Orbit) else None
    check_fence(fence_of(ctx), to, radius or 0.0)
    check_zones(ctx, s.position, to, radius)
    check_battery(ctx, s, to)
    return to
