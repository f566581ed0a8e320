"""Fault injection with one interface for both flight backends, by vehicle instance.

`SimFaults` works on the built-in simulator's live vehicles (its control
channel, `sitl.fleet.SimFleet`). `ArduPilotFaults` uses ArduPilot's own
mechanisms on real SITL:

    fault             ArduPilot SITL                                   built-in simulator
    arming refused    BATT_ARM_VOLT above the pack's voltage: a real   Faults.prearm_failure
                      battery arming check ("Battery 1 below minimum
                      arming voltage")
    ignored command   the link proxy never passes the COMMAND_LONG/INT Faults.ignore_commands
                      on (sitl/link_proxy.py)
    link cut          the link proxy stops relaying both ways, or      the endpoint's cut
                      drops the connection and refuses new ones
    battery drain     MAV_CMD_BATTERY_RESET to the remaining share      the battery's consumed mAh
                      (BATT_CAPACITY and the failsafe thresholds stay)
    GPS loss          SIM_GPS1_ENABLE = 0: the simulated receiver      `lose_gps` below: ArduCopter's
                      stops, the EKF loses its position and            reaction as measured on SITL
                      ArduCopter's EKF failsafe acts

Parameters and commands go over the vehicle's SERIAL1
(sitl/ardupilot_control.py), so they reach it whatever the controller's link
is doing, and they read back what the vehicle really does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.ardupilot_control import ControlError, VehicleControl
from sitl.fleet import SimFleet
from sitl.link_proxy import LinkProxy
from sitl.modes import NEEDS_POSITION, Mode
from sitl.vehicle import SimCopter


class FaultInjector(Protocol):
    async def refuse_arming(self, instance: int) -> None: ...
    async def allow_arming(self, instance: int) -> None: ...
    async def drop_command(self, instance: int, command: int) -> None: ...
    async def cut_link(self, instance: int, seconds: float, mode: str = "drop") -> None: ...
    async def drain_battery(self, instance: int, remaining_pct: float) -> None: ...
    async def lose_gps(self, instance: int) -> None: ...
    async def armed(self, instance: int) -> bool: ...
    async def flying(self, instance: int) -> bool: ...
    async def mode(self, instance: int) -> int: ...


# --- the built-in simulator ------------------------------------------------------------------------

#: The pre-arm failure the simulator is told to report.
SIM_PREARM_FAILURE = "PreArm: Compass not calibrated"


class SimFaults:
    def __init__(self, sim: SimFleet) -> None:
        self.sim = sim

    async def refuse_arming(self, instance: int) -> None:
        self.sim.prearm_failure(instance, SIM_PREARM_FAILURE)

    async def allow_arming(self, instance: int) -> None:
        self.sim.prearm_failure(instance, None)

    async def drop_command(self, instance: int, command: int) -> None:
        self.sim.ignore_command(instance, command)

    async def cut_link(self, instance: int, seconds: float, mode: str = "drop") -> None:
        self.sim.cut_link(instance, seconds, mode)

    async def drain_battery(self, instance: int, remaining_pct: float) -> None:
        capacity = self.sim.vehicle(instance).params["BATT_CAPACITY"]
        self.sim.set_battery_used(instance, capacity * (100 - remaining_pct) / 100)

    async def lose_gps(self, instance: int) -> None:
        lose_gps(self.sim.vehicle(instance))

    async def armed(self, instance: int) -> bool:
        return self.sim.vehicle(instance).armed

    async def flying(self, instance: int) -> bool:
        return self.sim.vehicle(instance).flying

    async def mode(self, instance: int) -> int:
        return int(self.sim.vehicle(instance).mode)


# ArduCopter 4.7 SITL after SIM_GPS1_ENABLE=0, in GUIDED at 40 m (simulated seconds after the change; measured):
#: GPS_RAW_INT reports no fix (fix type 1, 3 satellites).
GPS_NO_FIX_AFTER_S = 0.5
#: The EKF has no horizontal position or velocity any more: EKF_STATUS_REPORT flags 0x25.
EKF_NO_POSITION_AFTER_S = 7.25
EKF_FLAGS_NO_POSITION = 0x25
#: One second of failed EKF checks later: "EKF variance", and the EKF failsafe (FS_EKF_ACTION 1, the default):
#: LAND if the mode needs a position ("EKF Failsafe: changed to LAND Mode"), else only "EKF Failsafe".
EKF_FAILSAFE_AFTER_S = 8.0
#: "EKF3 IMU0 stopped aiding", the same for IMU1, and the EKF in constant-position mode: flags 0xA7.
EKF_STOPPED_AIDING_AFTER_S = 15.0
EKF_FLAGS_CONST_POS = 0xA7
SEV_CRITICAL = mav.MAV_SEVERITY_CRITICAL
SEV_INFO = mav.MAV_SEVERITY_INFO


def _no_fix(msgs: list[Any] | None) -> list[Any] | None:
    for m in msgs or ():
        if m.get_type() == "GPS_RAW_INT":
            m.fix_type = mav.GPS_FIX_TYPE_NO_FIX
            m.satellites_visible = 3
    return msgs


def lose_gps(v: SimCopter) -> None:
    """The simulated copter's only GPS stops, and ArduCopter's EKF failsafe follows as on real SITL.

    The simulator has no GPS model of its own, so this wraps the vehicle's reports (GPS_RAW_INT, EKF flags)
    and schedules ArduCopter's reaction on its clock. What is not modelled: the LAND's 4 s pause before it
    descends (set_mode_land_with_pause) and the EKF's drifting position estimate (the truth is reported).
    """
    if getattr(v, "_gps_lost", False):
        return
    v._gps_lost = True  # type: ignore[attr-defined]
    telemetry, build_message, ekf_flags = v.telemetry, v.build_message, v.ekf_flags
    flags: list[int] = []
    fix_lost: list[bool] = []

    v.telemetry = lambda: _no_fix(telemetry()) if fix_lost else telemetry()  # type: ignore[method-assign]
    v.build_message = lambda msgid: _no_fix(build_message(msgid)) if fix_lost else build_message(msgid)  # type: ignore[method-assign]
    v.ekf_flags = lambda: flags[-1] if flags else ekf_flags()  # type: ignore[method-assign]
    # a cold-booting vehicle would find its GPS again at the timeline's moment: not any more
    v.boot.timeline = replace(v.boot.timeline, gps=float("inf"))

    def no_position() -> None:
        flags.append(EKF_FLAGS_NO_POSITION)
        v.boot.using_gps = False  # arming and position modes are refused from now on ("Need Position Estimate")

    def ekf_failsafe() -> None:
        v.text(SEV_CRITICAL, "EKF variance")
        if not v.armed:
            return
        if v.mode in NEEDS_POSITION:
            v.change_mode(Mode.LAND)
            v.text(SEV_CRITICAL, f"EKF Failsafe: changed to {Mode(v.mode).name} Mode")
        else:
            v.text(SEV_CRITICAL, "EKF Failsafe")

    def stopped_aiding() -> None:
        flags.append(EKF_FLAGS_CONST_POS)
        v.text(SEV_INFO, "EKF3 IMU0 stopped aiding")
        v.text(SEV_INFO, "EKF3 IMU1 stopped aiding")

    v.at(GPS_NO_FIX_AFTER_S, lambda: fix_lost.append(True))
    v.at(EKF_NO_POSITION_AFTER_S, no_position)
    v.at(EKF_FAILSAFE_AFTER_S, ekf_failsafe)
    v.at(EKF_STOPPED_AIDING_AFTER_S, stopped_aiding)


# --- ArduPilot SITL --------------------------------------------------------------------------------

#: BATT_ARM_VOLT this far above the simulated pack's voltage refuses arming.
ARM_VOLT_MARGIN_V = 1.0
MAV_CMD_BATTERY_RESET = 42651


class ArduPilotFaults:
    """Faults on ArduPilot SITL vehicles: `proxies` and `controls` by instance."""

    def __init__(self, proxies: Mapping[int, LinkProxy], controls: Mapping[int, VehicleControl]) -> None:
        self.proxies = proxies
        self.controls = controls

    async def refuse_arming(self, instance: int) -> None:
        c = self.controls[instance]
        report = await c.fresh()
        volts = report.voltage_v if report.voltage_v and report.voltage_v > 0 else 12.6
        await c.set_param("BATT_ARM_VOLT", round(volts + ARM_VOLT_MARGIN_V, 1))

    async def allow_arming(self, instance: int) -> None:
        await self.controls[instance].set_param("BATT_ARM_VOLT", 0.0)

    async def drop_command(self, instance: int, command: int) -> None:
        self.proxies[instance].drop_command(command)

    async def cut_link(self, instance: int, seconds: float, mode: str = "drop") -> None:
        self.proxies[instance].cut(seconds, mode)

    async def drain_battery(self, instance: int, remaining_pct: float) -> None:
        result = await self.controls[instance].command(MAV_CMD_BATTERY_RESET, [1, remaining_pct])  # battery 1
        if result != mav.MAV_RESULT_ACCEPTED:
            raise ControlError(f"instance {instance}: MAV_CMD_BATTERY_RESET to {remaining_pct:g}% refused ({result})")

    async def lose_gps(self, instance: int) -> None:
        await self.controls[instance].set_param("SIM_GPS1_ENABLE", 0)

    async def armed(self, instance: int) -> bool:
        return bool((await self.controls[instance].fresh()).armed)

    async def flying(self, instance: int) -> bool:
        return (await self.controls[instance].fresh()).flying

    async def mode(self, instance: int) -> int:
        return int((await self.controls[instance].fresh()).mode or 0)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.controls.values()), return_exceptions=True)
