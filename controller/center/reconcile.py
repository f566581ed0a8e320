"""Reconciliation: what the drones and missions must be, given what each vehicle reports about itself.

The controller's state is a claim about the fleet; the vehicles are the truth.
After a restart (the controller was down while drones flew, landed, or ran
their failsafes) and whenever the continuous check finds the two disagreeing,
`decide` says, for one drone, which state it and its mission must be in and
what the flight layer must do (resume supervising, bring it down, nothing).
Pure functions: the tables below are the whole rule, and they are tested
case by case.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controller.domain.states import AIRBORNE, AIRBORNE_MISSION, ON_GROUND, DroneState, MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.reports import VehicleReport

D, M = DroneState, MissionState
#: A drone that lands with at least this much battery is ready at once; below, it charges first.
READY_BATTERY_PCT = 60.0
#: A vehicle this close to a station's dock is at that station.
AT_STATION_M = 150.0
#: A contradiction between state and vehicle must last this long to count (a report lags the vehicle by a moment).
GRACE_S = 5.0
#: Missions the flight layer is flying or preparing, before the drone heads home.
FLYING_FOR_INCIDENT = frozenset({M.ACCEPTED, M.LAUNCHED, M.ON_SCENE})


class Fix(StrEnum):
    """What the flight layer does after the verdict."""

    NOTHING = "nothing"
    RESUME = "resume"  # supervise the mission from where the vehicle is (its runner's resume)
    HOME = "home"  # the vehicle is coming down, or must: follow it (or command it) home
    LOST = "lost"  # no link: the vehicle's own failsafe acts; reconciled again when the link is back


@dataclass(frozen=True, slots=True)
class Verdict:
    fix: Fix
    reason: str
    #: The state the drone must be in (None: as it is).
    drone: DroneState | None = None
    #: The state the drone's mission must be in (None: as it is).
    mission: MissionState | None = None


def on_the_ground(battery_pct: float, at_station: bool) -> DroneState:
    """Where a drone on the ground stands: ready, charging, or (away from any station) out of service until recovered."""
    if not at_station:
        return D.MAINTENANCE
    return D.STANDBY if battery_pct >= READY_BATTERY_PCT else D.CHARGING


def _mode(v: VehicleReport) -> str:
    try:
        return CopterMode(v.mode).name if v.mode is not None else "an unknown mode"
    except ValueError:
        return f"mode {v.mode}"


def decide(
    drone: DroneState,
    mission: MissionState | None,
    *,
    incident_open: bool,
    searching: bool,
    vehicle: VehicleReport | None,
    at_station: bool,
) -> Verdict:
    """The states a drone and its mission must be in given its vehicle's report (None: no link)."""
    v = vehicle
    if v is None:
        if drone is D.LOST_LINK:
            return Verdict(Fix.LOST, "still no telemetry from the vehicle")
        return Verdict(Fix.LOST, "no telemetry from the vehicle", D.LOST_LINK)
    ground = on_the_ground(v.battery_pct if v.battery_pct is not None else 0.0, at_station)
    where = f"{v.alt_rel_m:.0f} m, {_mode(v)}"
    if v.in_air:
        if mission in FLYING_FOR_INCIDENT and incident_open:
            if v.mode in (CopterMode.RTL, CopterMode.LAND):
                return Verdict(Fix.HOME, f"the vehicle is coming down in {_mode(v)} (its failsafe)", D.RETURNING, M.RETURNING)
            flown = M.LAUNCHED if mission is M.ACCEPTED else mission
            state = D.ENROUTE if flown is M.LAUNCHED else D.SEARCHING if searching else D.ON_SCENE
            return Verdict(Fix.RESUME, f"the vehicle flies the mission ({where})", state, flown)
        if mission in FLYING_FOR_INCIDENT:
            return Verdict(Fix.HOME, f"its incident is closed; the vehicle is flying ({where})", D.RETURNING, M.RETURNING)
        if mission is M.RETURNING:
            return Verdict(Fix.HOME, f"on its way home ({where})", D.RETURNING)
        return Verdict(Fix.HOME, f"flying with no mission ({where}): brought home", D.RETURNING)
    if v.on_ground:
        landed = "on the ground, disarmed"
        if mission is M.OFFERED:
            return Verdict(Fix.NOTHING, f"{landed}, offered to its pilot")
        if mission is M.ACCEPTED:
            return Verdict(Fix.RESUME, f"{landed}; the pilot accepted: preflight continues", D.PREFLIGHT)
        if mission in AIRBORNE_MISSION:
            return Verdict(Fix.NOTHING, f"{landed}: it landed while nobody supervised it", ground, M.ABORTED)
        if mission is M.RETURNING:
            return Verdict(Fix.NOTHING, f"{landed}: back", ground, M.COMPLETED)
        if drone in ON_GROUND:
            return Verdict(Fix.NOTHING, landed)
        return Verdict(Fix.NOTHING, landed, ground)
    # armed on the ground: taking off or just touched down
    if mission is M.ACCEPTED:
        return Verdict(Fix.RESUME, f"armed on the ground ({_mode(v)}): take-off continues", D.PREFLIGHT)
    if mission in FLYING_FOR_INCIDENT | {M.RETURNING}:
        return Verdict(Fix.HOME, f"armed on the ground ({_mode(v)}): landing", D.RETURNING, M.RETURNING)
    return Verdict(Fix.NOTHING, f"armed on the ground ({_mode(v)})")


def contradiction(drone: DroneState, mission: MissionState | None, vehicle: VehicleReport) -> str | None:
    """Why the drone's (and its mission's) state contradicts its vehicle right now, or None."""
    v = vehicle
    if drone is D.LOST_LINK:
        return "shows lost_link while its vehicle reports"
    if drone in AIRBORNE and v.on_ground:
        return f"shows {drone.value} while its vehicle is on the ground, disarmed"
    if drone in (D.ENROUTE, D.ON_SCENE, D.SEARCHING) and v.in_air and v.mode in (CopterMode.RTL, CopterMode.LAND):
        return f"shows {drone.value} while its vehicle is coming down in {_mode(v)}"
    if (drone in ON_GROUND or drone in (D.OFFERED, D.PREFLIGHT)) and v.in_air:
        return f"shows {drone.value} while its vehicle flies at {v.alt_rel_m:.0f} m"
    if mission in AIRBORNE_MISSION and drone not in AIRBORNE:
        return f"its mission is {mission.value} while it shows {drone.value}"
    return None
