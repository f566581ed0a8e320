"""The vehicle's parts one at a time (boot, arming, failsafes, commands), without sockets or transcripts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.boot import EKF_FLAGS_BOOT, EKF_FLAGS_GPS, Boot, BootTimeline
from sitl.commands import COMMANDS
from sitl.mission import MissionStore
from sitl.modes import Mode
from sitl.params import ParamStore
from sitl.vehicle import SimCopter
from tests.sitl.conftest import copter


def command(v: SimCopter, cmd: int, *params: float) -> list[tuple[int, int]]:
    """Send a COMMAND_LONG; the (command, result) ACKs it produced."""
    p = list(params) + [0.0] * (7 - len(params))
    v.outbox.clear()
    v.handle(mav.MAVLink_command_long_message(v.sysid, 1, cmd, 0, *p))
    return [(m.command, m.result) for m in v.outbox if m.get_type() == "COMMAND_ACK"]


def texts(v: SimCopter) -> list[str]:
    return [m.text for m in v.outbox if m.get_type() == "STATUSTEXT"]


def run(v: SimCopter, seconds: float, dt: float = 0.02) -> None:
    for _ in range(round(seconds / dt)):
        v.step(dt)


# --- boot ----------------------------------------------------------------------------------------------


class FakeBootHost:
    """The narrow vehicle a Boot needs, recording what it is told."""

    def __init__(self) -> None:
        self.t = 0.0
        self.params = ParamStore()
        self.ground_amsl = 10.1
        self.mission = MissionStore()
        self.said: list[str] = []
        self.later: list[tuple[float, Callable[[], None]]] = []
        self.homes = 0

    def text(self, severity: int, text: str) -> None:
        self.said.append(text)

    def at(self, delay: float, action: Callable[[], None]) -> None:
        self.later.append((delay, action))

    def set_home_here(self, announce: bool = True) -> bool:
        self.homes += 1
        return False

    def set_param_and_report(self, name: str, value: float) -> None:
        self.params.set(name, value)


def test_boot_follows_its_timeline() -> None:
    host = FakeBootHost()
    boot = Boot(host, BootTimeline(link=1.0, accels_ok=2.0, gyros_ok=3.0, origin=4.0, gps=5.0, imu1_lag=0.5), warm=False)
    seen = []
    for t in (0.5, 1.5, 2.5, 3.5, 4.5, 5.5):
        host.t = t
        boot.step()
        seen.append((boot.linked, boot.sensor_failures(), boot.origin_set, boot.ekf_flags()))
    assert seen == [
        (False, ["Accels inconsistent"], False, EKF_FLAGS_BOOT),
        (True, ["Accels inconsistent"], False, EKF_FLAGS_BOOT),
        (True, ["Gyros inconsistent"], False, EKF_FLAGS_BOOT),
        (True, [], False, EKF_FLAGS_BOOT),
        (True, [], True, EKF_FLAGS_BOOT),
        (True, [], True, EKF_FLAGS_GPS),
    ]
    assert host.said == ["EKF3 IMU0 origin set", "Field Elevation Set: 10m", "EKF3 IMU0 is using GPS"]
    assert host.homes == 1 and host.params["BARO_FIELD_ELV"] == 10.1
    for _, action in host.later:  # IMU1 follows IMU0
        action()
    assert host.said[-2:] == ["EKF3 IMU1 origin set", "EKF3 IMU1 is using GPS"]


def test_a_warm_boot_has_happened_already() -> None:
    host = FakeBootHost()
    boot = Boot(host, BootTimeline(), warm=True)
    assert boot.origin_set and boot.using_gps and boot.sensor_failures() == [] and boot.ahrs_healthy
    boot.step()
    assert host.said == [] and host.homes == 0


def test_a_cold_vehicle_says_nothing_before_its_link_is_up() -> None:
    v = copter(warm=False)
    assert command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == []  # not even the ACK
    run(v, 4.9)
    assert v.outbox == []
    run(v, 0.2)
    assert [m.get_type() for m in v.outbox] == ["HEARTBEAT", "SYS_STATUS"]


def test_a_warm_vehicle_starts_quiet_with_home_set() -> None:
    v = copter()
    assert v.outbox == [] and v.home is not None and v.mission.count == 1 and v.ekf_ready


# --- arming --------------------------------------------------------------------------------------------


def test_arming_failures_in_arducopters_order() -> None:
    v = copter()
    v.faults.prearm_failure = "Compass not calibrated"
    assert v.change_mode(Mode.AUTO)
    assert v.arm_failures() == ["Compass not calibrated", "Mode requires mission"]
    v.faults.prearm_failure = None
    assert v.change_mode(Mode.RTL)
    assert v.arm_failures() == [] and v.arm_failures(arming=True) == ["Mode not armable"]


def test_arm_and_disarm_through_the_command() -> None:
    v = copter()
    assert v.change_mode(Mode.GUIDED)
    assert command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == [(mav.MAV_CMD_COMPONENT_ARM_DISARM, mav.MAV_RESULT_ACCEPTED)]
    assert v.armed and texts(v) == ["Arming motors"]
    assert v.base_mode() & mav.MAV_MODE_FLAG_SAFETY_ARMED
    assert command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 0) == [(mav.MAV_CMD_COMPONENT_ARM_DISARM, mav.MAV_RESULT_ACCEPTED)]
    assert not v.armed and texts(v) == ["Disarming motors"]


# --- failsafes -----------------------------------------------------------------------------------------


def test_the_gcs_failsafe_needs_a_heartbeat_first_and_clears_when_they_return() -> None:
    v = copter()
    v.params.set("FS_GCS_ENABLE", 1)
    run(v, 10.0)
    assert not v.gcs_failsafe  # never heard a ground station: nothing to lose
    hb = mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, 0, 3)
    hb._header.srcSystem = int(v.params["MAV_GCS_SYSID"])
    v.handle(hb)
    v.outbox.clear()
    run(v, v.params["FS_GCS_TIMEOUT"] + 0.5)
    assert v.gcs_failsafe and "GCS Failsafe" in texts(v)
    assert v.system_status() == mav.MAV_STATE_CRITICAL and "GCS failsafe on" in v.arm_failures()
    v.handle(hb)
    v.outbox.clear()
    run(v, 0.5)
    assert not v.gcs_failsafe and texts(v) == ["GCS Failsafe Cleared"]


def test_a_recharge_clears_the_battery_failsafe() -> None:
    v = copter()
    cap = v.capacity_mah
    v.params.set("BATT_LOW_MAH", cap * 0.3)
    v.params.set("BATT_CRT_MAH", cap * 0.1)
    v.battery.consumed_mah = cap * 0.8
    run(v, 0.1)
    assert v.battery_low and not v.battery_critical and v.battery_failsafe
    v.battery.consumed_mah = cap * 0.95
    run(v, 0.1)
    assert v.battery_critical
    v.battery.set_remaining(50, cap)
    v.failsafes.battery_recharged()
    assert not v.battery_low and not v.battery_critical and not v.battery_failsafe


# --- commands ------------------------------------------------------------------------------------------


def test_unknown_commands_are_unsupported_and_ignored_ones_get_no_answer() -> None:
    v = copter()
    assert 31999 not in COMMANDS
    assert command(v, 31999) == [(31999, mav.MAV_RESULT_UNSUPPORTED)]
    v.faults.ignore_commands.add(mav.MAV_CMD_COMPONENT_ARM_DISARM)
    assert command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == [] and not v.armed


def test_a_refused_mode_number_is_acked_before_its_text() -> None:
    v = copter()
    command(v, mav.MAV_CMD_DO_SET_MODE, 1, 99)
    kinds: list[Any] = [(m.get_type(), getattr(m, "result", None) if m.get_type() == "COMMAND_ACK" else m.text) for m in v.outbox]
    assert kinds == [("COMMAND_ACK", mav.MAV_RESULT_FAILED), ("STATUSTEXT", "No such mode 99")]


def test_takeoff_in_guided_then_the_mission_state() -> None:
    v = copter()
    assert v.mission_state() == mav.MISSION_STATE_NO_MISSION
    v.change_mode(Mode.GUIDED)
    command(v, mav.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    assert command(v, mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 10) == [(mav.MAV_CMD_NAV_TAKEOFF, mav.MAV_RESULT_ACCEPTED)]
    run(v, 20.0)
    assert v.flying and abs(v.relative_alt - 10.0) < 0.5
    assert command(v, mav.MAV_CMD_NAV_RETURN_TO_LAUNCH) == [(mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, mav.MAV_RESULT_ACCEPTED)]
    assert v.mode == Mode.RTL and v.rtl.phase == "climb"
