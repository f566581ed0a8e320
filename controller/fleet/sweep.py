"""The AUTO mission a search drone flies for its plan, and how the vehicle's mission sequence maps back to it.

Layout (ArduCopter): item 0 is home (the vehicle keeps its own), 1 take-off to
the search height, 2 the search speed, then one waypoint per plan waypoint,
then RTL. The runner reads the vehicle's MISSION_CURRENT seq; only this module
knows the offsets.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.fleet.copter import CopterMode
from controller.fleet.drone_link import MissionItem
from controller.search.plan import SearchPlan

#: Items before the first sweep waypoint: home, take-off, change speed.
FIRST_SWEEP_SEQ = 3


@dataclass(frozen=True, slots=True)
class SweepMission:
    plan: SearchPlan

    @property
    def waypoints(self) -> int:
        return len(self.plan.waypoints)

    @property
    def rtl_seq(self) -> int:
        return FIRST_SWEEP_SEQ + self.waypoints

    def items(self) -> list[MissionItem]:
        alt = self.plan.altitude_m
        return [
            MissionItem(mavlink2.MAV_CMD_NAV_WAYPOINT),  # home: the vehicle keeps its own
            MissionItem(mavlink2.MAV_CMD_NAV_TAKEOFF, alt=alt),
            MissionItem(mavlink2.MAV_CMD_DO_CHANGE_SPEED, params=(1, self.plan.speed_ms, -1, 0)),
            *(MissionItem(mavlink2.MAV_CMD_NAV_WAYPOINT, lat=lat, lon=lon, alt=alt) for lat, lon in self.plan.waypoints),
            MissionItem(mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH),
        ]

    def flown(self, seq: int) -> int:
        """Plan waypoints passed when the vehicle's current mission item is `seq`."""
        return max(0, min(self.waypoints, seq - FIRST_SWEEP_SEQ))

    def complete(self, seq: int, mode: int | None) -> bool:
        """The sweep is over: the vehicle reached the RTL item (or is in RTL on the last waypoint)."""
        return seq >= self.rtl_seq or (mode == CopterMode.RTL and seq >= self.rtl_seq - 1)
