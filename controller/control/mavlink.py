"""What a pilot command is on the wire, as data, and the one function that sends it over a DroneLink.

ArduCopter 4.7 (ArduCopter/GCS_MAVLink_Copter.cpp, libraries/GCS_MAVLink/GCS_Common.cpp, AC_Circle, AP_Mount):

- fly to / change height / hold: COMMAND_INT MAV_CMD_DO_REPOSITION in MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, param1 -1
  (default speed), param2 MAV_DO_REPOSITION_FLAGS_CHANGE_MODE (GUIDED from AUTO or CIRCLE too; without it a
  vehicle outside GUIDED answers DENIED), x/y lat/lon in 1e-7 degrees, z metres above home;
- orbit: PARAM_SET CIRCLE_RADIUS (centimetres), CIRCLE_RATE (deg/s, positive clockwise), CIRCLE_OPTIONS 12
  (INIT_AT_CENTER 4 + ROI_AT_CENTER 8), DO_REPOSITION to the centre, and once there DO_SET_MODE CIRCLE: with
  INIT_AT_CENTER the vehicle takes where it stands as the centre and moves out to the radius;
- camera: COMMAND_INT MAV_CMD_DO_SET_ROI_LOCATION (z 0: the ground), cleared by COMMAND_LONG
  MAV_CMD_DO_SET_ROI_NONE; gimbal pitch: COMMAND_LONG MAV_CMD_DO_MOUNT_CONTROL (param1 pitch deg, param7
  MAV_MOUNT_MODE_MAVLINK_TARGETING);
- land here / resume: COMMAND_LONG MAV_CMD_DO_SET_MODE LAND / AUTO (AUTO resumes the current mission item).

Requests are plain values so tests can check them without a vehicle; `send` is the only code that talks to
the link, and it times the acknowledgements.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.control.commands import Direction
from controller.fleet.copter import CUSTOM_MODE_ENABLED, CopterMode
from controller.fleet.drone_link import DroneLink

#: CIRCLE_OPTIONS: start the circle at the centre (where the vehicle stands) and point the nose at the centre.
CIRCLE_INIT_AT_CENTER = 4
CIRCLE_ROI_AT_CENTER = 8
CIRCLE_OPTIONS = CIRCLE_INIT_AT_CENTER | CIRCLE_ROI_AT_CENTER
#: ArduCopter's CIRCLE_RATE range (deg/s).
MAX_CIRCLE_RATE_DEG_S = 90.0


@dataclass(frozen=True, slots=True)
class CommandInt:
    command: int
    params: tuple[float, float, float, float]
    lat: float
    lon: float
    alt: float
    what: str
    frame: int = mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT


@dataclass(frozen=True, slots=True)
class CommandLong:
    command: int
    params: tuple[float, ...]
    what: str


@dataclass(frozen=True, slots=True)
class ParamSet:
    name: str
    value: float


VehicleRequest = CommandInt | CommandLong | ParamSet


def reposition(lat: float, lon: float, alt_m: float) -> CommandInt:
    """Fly there in GUIDED (switching to GUIDED from any mode), at the default speed."""
    return CommandInt(
        mavlink2.MAV_CMD_DO_REPOSITION, (-1.0, float(mavlink2.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE), 0.0, 0.0),
        lat, lon, alt_m, "reposition",
    )


def set_mode(mode: CopterMode) -> CommandLong:
    return CommandLong(mavlink2.MAV_CMD_DO_SET_MODE, (float(CUSTOM_MODE_ENABLED), float(int(mode))), f"mode {mode.name}")


def circle_rate_deg_s(radius_m: float, speed_ms: float, direction: Direction) -> float:
    """CIRCLE_RATE for a speed along the circle: degrees of the circle per second, positive clockwise."""
    rate = min(math.degrees(speed_ms / radius_m), MAX_CIRCLE_RATE_DEG_S)
    return round(rate if direction is Direction.CW else -rate, 3)


def orbit_setup(lat: float, lon: float, alt_m: float, radius_m: float, speed_ms: float, direction: Direction) -> list[VehicleRequest]:
    """The circle's parameters, then the flight to its centre (CIRCLE is entered there: `set_mode(CIRCLE)`)."""
    return [
        ParamSet("CIRCLE_RADIUS", round(radius_m * 100.0)),
        ParamSet("CIRCLE_RATE", circle_rate_deg_s(radius_m, speed_ms, direction)),
        ParamSet("CIRCLE_OPTIONS", float(CIRCLE_OPTIONS)),
        reposition(lat, lon, alt_m),
    ]


def roi(lat: float, lon: float) -> CommandInt:
    return CommandInt(mavlink2.MAV_CMD_DO_SET_ROI_LOCATION, (0.0, 0.0, 0.0, 0.0), lat, lon, 0.0, "camera region of interest")


def roi_clear() -> CommandLong:
    return CommandLong(mavlink2.MAV_CMD_DO_SET_ROI_NONE, (), "clear region of interest")


def gimbal_pitch(pitch_deg: float) -> CommandLong:
    return CommandLong(
        mavlink2.MAV_CMD_DO_MOUNT_CONTROL,
        (float(pitch_deg), 0.0, 0.0, 0.0, 0.0, 0.0, float(mavlink2.MAV_MOUNT_MODE_MAVLINK_TARGETING)),
        "gimbal pitch",
    )


async def send(link: DroneLink, requests: Sequence[VehicleRequest], *, timeout: float, retries: int = 2) -> float:
    """Send each request and wait for its confirmation (COMMAND_ACK ACCEPTED, or the PARAM_VALUE echo), in order;
    returns the milliseconds it all took. Raises the link's CommandRejected / CommandTimeout / LinkDown.

    Parameter sets next to each other go out together (each echo names its parameter, so they cannot be
    confused): an orbit's three CIRCLE_* sets cost one round trip instead of three before its reposition."""
    started = time.perf_counter()
    params: list[ParamSet] = []

    async def flush() -> None:
        if params:
            batch = list(params)
            params.clear()
            await asyncio.gather(*(link.set_param(p.name, p.value, timeout=timeout, retries=retries) for p in batch))

    for r in requests:
        if isinstance(r, CommandInt):
            await flush()
            await link.command_int(r.command, r.params, r.lat, r.lon, r.alt, frame=r.frame, what=r.what,
                                   timeout=timeout, retries=retries)
        elif isinstance(r, CommandLong):
            await flush()
            await link.command_long(r.command, r.params, what=r.what, timeout=timeout, retries=retries)
        else:
            params.append(r)
    await flush()
    return (time.perf_counter() - started) * 1000.0
