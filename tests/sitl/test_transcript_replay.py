"""The simulator answers the recorded conversations the way the real ArduCopter 4.7 SITL did.

Each test replays a transcript's ground-station messages at their recorded
simulated times (see replay.py) and compares what the simulator says with what
the real vehicle said: COMMAND_ACK (command, result) in order, STATUSTEXT texts
in order, flight mode and arming state over time, the mission protocol,
parameter echoes, failsafe reactions, and the flight itself (positions, speeds,
battery) within stated tolerances.
"""

from __future__ import annotations

import bisect
import math

import pytest

import sitl.vehicle as vehicle_module
from tests.sitl.replay import (
    NAMES,
    Msg,
    Replay,
    acks,
    first_time,
    heartbeat_mismatches,
    load,
    make_vehicle,
    of_type,
    replay,
    settle_gcs_heartbeats,
    text_times,
    texts,
    transcript_dir,
)

pytestmark = pytest.mark.skipif(transcript_dir() is None, reason="ArduPilot SITL transcripts not found")

_cache: dict[str, Replay] = {}

#: The two IMUs' in-flight yaw alignment is reported in either order; which comes first is noise.
YAW_ALIGN = ("EKF3 IMU0 MAG0 in-flight yaw alignment complete", "EKF3 IMU1 MAG0 in-flight yaw alignment complete")
GCS_FLAPS = ("GCS Failsafe", "Arm: GCS failsafe on")
LOGGING_BIT = 1 << 24


def run(name: str) -> Replay:
    if name not in _cache:
        _, recorded = load(name)
        end = max(m.t for m in recorded)
        _cache[name] = replay(name, until=end, shape=settle_gcs_heartbeats if name == "gcs_failsafe" else None)
    return _cache[name]


def conversation_texts(msgs: list[Msg], drop: tuple[str, ...] = ()) -> list[str]:
    return ["EKF3 IMU# MAG0 in-flight yaw alignment complete" if t in YAW_ALIGN else t for t in texts(msgs, drop)]


def text_time(msgs: list[Msg], text: str) -> float:
    times = text_times(msgs, text)
    assert times, f"no {text!r}"
    return times[0]


def at(msgs: list[Msg], t: float) -> Msg:
    """The message of this (single) type nearest to time t."""
    times = [m.t for m in msgs]
    i = bisect.bisect_left(times, t)
    return min(msgs[max(i - 1, 0) : i + 1], key=lambda m: abs(m.t - t))


# --- the whole conversation --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_same_command_acks(name: str) -> None:
    r = run(name)
    assert acks(r.got) == acks(r.recorded)


@pytest.mark.parametrize("name", ["boot_to_armable", "rejections", "guided_flight", "mission_auto", "battery"])
def test_same_status_texts_in_the_same_order(name: str) -> None:
    r = run(name)
    assert conversation_texts(r.got) == conversation_texts(r.recorded)


@pytest.mark.parametrize("name", NAMES)
def test_same_mode_and_arming_over_time(name: str) -> None:
    assert heartbeat_mismatches(run(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_status_texts_at_the_same_times(name: str) -> None:
    """Every text the real vehicle sent, the simulator sent too, within 1.5 s (+4% of the flight time)."""
    r = run(name)
    late = []
    for text in sorted(set(texts(r.recorded, drop=GCS_FLAPS + YAW_ALIGN + ("SIM Hit ground",)))):
        real, ours = text_times(r.recorded, text), text_times(r.got, text)
        for a, b in zip(real, ours, strict=False):
            if abs(a - b) > 1.5 + 0.04 * max(0.0, a - 42.0):
                late.append(f"{text!r}: real {a:.1f} s, simulated {b:.1f} s")
    assert late == []


def test_the_comparison_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A simulator whose EKF came up 10 s early is caught by the same comparisons."""
    monkeypatch.setattr(vehicle_module, "T_GPS", vehicle_module.T_GPS - 10.0)
    header, _ = load("boot_to_armable")
    r = replay("boot_to_armable", vehicle=make_vehicle(header))
    assert acks(r.got) != acks(r.recorded)
    assert conversation_texts(r.got) != conversation_texts(r.recorded)


# --- boot ----------------------------------------------------------------------------------------------


def test_boot_timeline() -> None:
    r = run("boot_to_armable")
    for text in ("EKF3 IMU0 origin set", "Field Elevation Set: 10m", "EKF3 IMU1 origin set", "EKF3 IMU0 is using GPS", "EKF3 IMU1 is using GPS"):
        assert abs(text_time(r.got, text) - text_time(r.recorded, text)) < 0.5, text
    first_home = lambda msgs: first_time(msgs, lambda m: m.type == "HOME_POSITION")  # noqa: E731
    assert abs(first_home(r.got) - first_home(r.recorded)) < 0.5
    home = of_type(r.got, "HOME_POSITION")[0].fields
    real = of_type(r.recorded, "HOME_POSITION")[0].fields
    assert (home["latitude"], home["longitude"], home["altitude"]) == (real["latitude"], real["longitude"], real["altitude"])
    # spontaneous parameters at origin: MIS_TOTAL=1 (home), barometer ground pressures
    spontaneous = lambda msgs: [(m.fields["param_id"], m.fields["param_value"]) for m in of_type(msgs, "PARAM_VALUE") if m.t < 25]  # noqa: E731
    assert [p for p, _ in spontaneous(r.got)] == [p for p, _ in spontaneous(r.recorded)] == ["MIS_TOTAL", "BARO1_GND_PRESS", "BARO2_GND_PRESS"]
    assert spontaneous(r.got)[0] == ("MIS_TOTAL", 1.0)
    # arming first accepted at the same retry
    accepted = lambda msgs: first_time(msgs, lambda m: m.type == "COMMAND_ACK" and m.fields["command"] == 400 and m.fields["result"] == 0)  # noqa: E731
    assert abs(accepted(r.got) - accepted(r.recorded)) < 0.5


def test_ekf_readiness_flags() -> None:
    r = run("boot_to_armable")
    ready = lambda m: (m.fields["flags"] & 0x1F) == 0x1F and not m.fields["flags"] & 0x80  # noqa: E731
    for msgs in (r.got, r.recorded):
        reports = of_type(msgs, "EKF_STATUS_REPORT")
        assert reports[0].fields["flags"] == 0xA7 and not ready(reports[0])
    t_real = first_time(of_type(r.recorded, "EKF_STATUS_REPORT"), ready)
    t_ours = first_time(of_type(r.got, "EKF_STATUS_REPORT"), ready)
    assert t_real is not None and t_ours is not None and abs(t_real - t_ours) < 1.5
    assert of_type(r.got, "EKF_STATUS_REPORT")[-1].fields["flags"] == of_type(r.recorded, "EKF_STATUS_REPORT")[-1].fields["flags"] == 0x33F


def test_sensor_health_bits_follow_the_recording() -> None:
    """SYS_STATUS sensor bitmasks (present, enabled, healthy) at the times they were recorded."""
    for name in NAMES:
        r = run(name)
        ours = of_type(r.got, "SYS_STATUS")
        # (the logging bit, which SITL sets and clears as its log files open and close, is not simulated)
        bits = lambda m: tuple(m.fields[f"onboard_control_sensors_{k}"] & ~LOGGING_BIT for k in ("present", "enabled", "health"))  # noqa: E731
        for m in of_type(r.recorded, "SYS_STATUS")[1:]:
            near = [bits(o) for o in ours if abs(o.t - m.t) < 2.0]
            assert bits(m) in near, (name, m.t, bits(m), near[:1])


# --- guided flight ----------------------------------------------------------------------------------------


def test_guided_flight_path_speeds_and_landing() -> None:
    r = run("guided_flight")
    lat0 = r.header["home"][0]
    ours = of_type(r.got, "GLOBAL_POSITION_INT")
    worst = 0.0
    for m in of_type(r.recorded, "GLOBAL_POSITION_INT"):
        o, f = at(ours, m.t).fields, m.fields
        dn = (f["lat"] - o["lat"]) / 1e7 * 111_195
        de = (f["lon"] - o["lon"]) / 1e7 * 111_195 * math.cos(math.radians(lat0))
        worst = max(worst, math.sqrt(dn * dn + de * de + ((f["relative_alt"] - o["relative_alt"]) / 1000) ** 2))
    assert worst < 25.0, f"{worst:.1f} m from the real copter's track (an 880 m flight)"
    climb = [m.fields["vz"] for m in ours if 20 < m.fields["relative_alt"] / 1000 < 25]
    assert min(climb) == pytest.approx(-250, abs=5)  # WPNAV_SPEED_UP 2.5 m/s
    cruise = [math.hypot(m.fields["vx"], m.fields["vy"]) for m in ours if 80 < m.t < 130]
    assert max(cruise) == pytest.approx(1000, abs=5)  # WPNAV_SPEED 10 m/s
    descent = [m.fields["vz"] for m in ours if 300 < m.t < 315]
    assert max(descent) == pytest.approx(150, abs=5)  # WPNAV_SPEED_DN 1.5 m/s above LAND_ALT_LOW
    final = [m.fields["vz"] for m in ours if 3 < m.fields["relative_alt"] / 1000 < 8 and m.t > 300]
    assert max(final) == pytest.approx(50, abs=3)  # LAND_SPEED 0.5 m/s below it
    rtl = next(m.t for m in r.sent if m.type == "SET_MODE" and m.fields["custom_mode"] == 6)
    real, sim = text_time(r.recorded, "SIM Hit ground") - rtl, text_time(r.got, "SIM Hit ground") - rtl
    assert sim == pytest.approx(real, rel=0.04)
    assert text_time(r.got, "Disarming motors") - text_time(r.got, "SIM Hit ground") == pytest.approx(2.07, abs=0.1)
    assert r.vehicle.mode == 6 and not r.vehicle.armed and r.vehicle.relative_alt == pytest.approx(0.0, abs=0.05)


def test_guided_position_target_echo() -> None:
    r = run("guided_flight")
    sent = next(m for m in r.sent if m.type == "SET_POSITION_TARGET_GLOBAL_INT")
    reposition = next(m for m in r.sent if m.type == "COMMAND_INT")
    rtl = next(m.t for m in r.sent if m.type == "SET_MODE" and m.fields["custom_mode"] == 6)
    for msgs in (r.recorded, r.got):
        echoes = of_type(msgs, "POSITION_TARGET_GLOBAL_INT")
        assert echoes and all(m.t > sent.t for m in echoes), "no target before the first SET_POSITION_TARGET"
        first = echoes[0].fields
        assert (first["lat_int"], first["lon_int"], first["coordinate_frame"], first["type_mask"]) == (sent.fields["lat_int"], sent.fields["lon_int"], 0, 0xFDF8)
        assert first["alt"] == pytest.approx(60 + 10.09, abs=0.05)  # frame 6 target, echoed above sea level
        moved = [m.fields for m in echoes if reposition.t + 1 < m.t < rtl]
        assert moved and all(f["lon_int"] == reposition.fields["y"] for f in moved)
        home = [m.fields for m in echoes if m.t > rtl + 1]
        assert home and all((f["lat_int"], f["lon_int"]) == (320603000, 1187969000) for f in home)


# --- missions --------------------------------------------------------------------------------------------


def test_mission_upload_and_download() -> None:
    r = run("mission_auto")
    seqs = lambda msgs, kind: [m.fields["seq"] for m in of_type(msgs, kind)]  # noqa: E731
    assert seqs(r.got, "MISSION_REQUEST") == seqs(r.recorded, "MISSION_REQUEST") == list(range(9))
    assert not of_type(r.got, "MISSION_REQUEST_INT"), "uploads are answered with MISSION_REQUEST, not _INT"
    assert [m.fields["type"] for m in of_type(r.got, "MISSION_ACK")] == [m.fields["type"] for m in of_type(r.recorded, "MISSION_ACK")] == [0]
    mis_total = lambda msgs: [m.fields["param_value"] for m in of_type(msgs, "PARAM_VALUE") if m.fields["param_id"] == "MIS_TOTAL"]  # noqa: E731
    assert mis_total(r.got) == mis_total(r.recorded) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert [m.fields["count"] for m in of_type(r.got, "MISSION_COUNT")] == [9]
    fields = ("seq", "frame", "command", "current", "autocontinue", "x", "y", "param1", "param2", "param3", "param4", "target_system", "target_component")
    items = lambda msgs: [tuple(m.fields[f] for f in fields) + (round(m.fields["z"], 2),) for m in of_type(msgs, "MISSION_ITEM_INT")]  # noqa: E731
    assert items(r.got) == items(r.recorded)


def test_mission_progress() -> None:
    r = run("mission_auto")
    reached = lambda msgs: [m.fields["seq"] for m in of_type(msgs, "MISSION_ITEM_REACHED")]  # noqa: E731
    assert reached(r.got) == reached(r.recorded) == [2, 3, 4, 5, 6, 7, 8]
    start = next(m.t for m in r.sent if m.type == "COMMAND_LONG" and m.fields["command"] == 300)
    for text in ("Mission: 3 WP", "Reached command #3", "Reached command #4", "Reached command #5", "Reached command #6", "Mission: 8 RTL", "SIM Hit ground"):
        real, ours = text_time(r.recorded, text) - start, text_time(r.got, text) - start
        assert ours == pytest.approx(real, rel=0.05), (text, real, ours)
    # the loiter item holds 10 s
    assert text_time(r.got, "Reached command #7") - text_time(r.got, "Mission: 7 LoitTime") == pytest.approx(10.0, abs=0.3)
    current = of_type(r.got, "MISSION_CURRENT")
    assert (current[0].fields["total"], current[0].fields["mission_state"]) == (0, 1)  # no mission yet
    last = current[-1].fields
    assert (last["seq"], last["total"], last["mission_state"], last["mission_mode"]) == (0, 8, 5, 1)  # complete, in AUTO
    assert r.vehicle.mode == 3 and not r.vehicle.armed


# --- refusals ------------------------------------------------------------------------------------------


def test_rejections_in_detail() -> None:
    r = run("rejections")
    assert acks(r.got) == [(400, 4), (22, 4), (176, 4), (400, 0), (22, 4), (400, 0), (400, 0), (22, 4), (400, 0)]
    assert "No such mode 99" in texts(r.got) and texts(r.got).count("No such mode 99") == 2
    assert [m.fields["type"] for m in of_type(r.got, "MISSION_ACK")] == [0, 1]  # clear accepted; stray item refused
    mis_total = [(round(m.t), m.fields["param_value"]) for m in of_type(r.got, "PARAM_VALUE") if m.fields["param_id"] == "MIS_TOTAL"]
    assert [v for _, v in mis_total] == [1.0, 0.0, 1.0]  # home, cleared, home again at arming
    names = lambda msgs: {m.fields["param_id"] for m in of_type(msgs, "PARAM_VALUE")}  # noqa: E731
    assert "NO_SUCH_PARAM" not in names(r.got) and "NO_SUCH_PARAM" not in names(r.recorded)  # silence
    assert "PreArm: Mode requires mission" in texts(r.got)


# --- failsafes -----------------------------------------------------------------------------------------


def test_gcs_failsafe() -> None:
    r = run("gcs_failsafe")
    assert conversation_texts(r.got, drop=GCS_FLAPS) == conversation_texts(r.recorded, drop=GCS_FLAPS)
    real, ours = text_times(r.recorded, "GCS Failsafe"), text_times(r.got, "GCS Failsafe")
    assert len(ours) == len(real)
    assert max(abs(a - b) for a, b in zip(real, ours, strict=True)) < 0.5, "failsafe trips and clears at the recorded times"
    # in flight, the first trip switched to RTL at once; the mode stayed RTL after "Cleared"
    takeoff = next(m.t for m in r.sent if m.type == "COMMAND_LONG" and m.fields["command"] == 22)
    trip = next(t for t in text_times(r.got, "GCS Failsafe") if t > takeoff + 5)
    rtl_at = next(t for t, mode, _, _ in r.states if mode == 6)
    assert 0 <= rtl_at - trip < 0.1
    assert all(mode == 6 for t, mode, _, _ in r.states if t > trip)
    assert text_time(r.got, "SIM Hit ground") == pytest.approx(text_time(r.recorded, "SIM Hit ground"), abs=3.0)
    assert text_times(r.got, "PreArm: GCS failsafe on") == pytest.approx(text_times(r.recorded, "PreArm: GCS failsafe on"), abs=0.5)
    # status CRITICAL while the failsafe is on
    status = {(m.fields["system_status"]) for m in of_type(r.got, "HEARTBEAT") if 200 < m.t < 290}
    assert status == {5}


def test_battery_failsafe() -> None:
    r = run("battery")
    low_real = text_times(r.recorded, "Battery 1 is low")
    low_ours = text_times(r.got, "Battery 1 is low")
    assert len(low_ours) == 1 and low_ours[0] == pytest.approx(low_real[0], abs=3.0)
    used = lambda msgs: int(next(m.fields["text"] for m in of_type(msgs, "STATUSTEXT") if m.fields["text"].startswith("Battery 1 is low")).split("used ")[1].split()[0])  # noqa: E731
    assert used(r.got) == pytest.approx(used(r.recorded), abs=5)  # BATT_LOW_MAH 300 of 500: about 200 used
    ours = of_type(r.got, "BATTERY_STATUS")
    for m in of_type(r.recorded, "BATTERY_STATUS"):
        assert at(ours, m.t).fields["battery_remaining"] == pytest.approx(m.fields["battery_remaining"], abs=4), m.t
        assert at(ours, m.t).fields["charge_state"] == m.fields["charge_state"] or abs(m.t - low_real[0]) < 4
    assert {m.fields["voltage_battery"] for m in of_type(r.got, "SYS_STATUS")} == {12600}
    hover = [m.fields["current_battery"] for m in of_type(r.got, "SYS_STATUS") if 60 < m.t < 70]
    assert hover and all(2700 <= c <= 2950 for c in hover)  # about 28 A hovering
    assert "PreArm: Battery 1 low capacity failsafe" in texts(r.got)
    assert r.vehicle.mode == 6 and not r.vehicle.armed


def test_parameter_echoes_keep_the_vehicles_types() -> None:
    for name in ("battery", "gcs_failsafe"):
        r = run(name)
        sets = [m.fields["param_id"] for m in r.sent if m.type in ("PARAM_SET", "PARAM_REQUEST_READ")]
        echo = lambda msgs: [(m.fields["param_id"], m.fields["param_value"], m.fields["param_type"]) for m in of_type(msgs, "PARAM_VALUE") if m.fields["param_id"] in sets]  # noqa: E731
        assert echo(r.got) == echo(r.recorded)
        counts = {m.fields["param_count"] for m in of_type(r.got, "PARAM_VALUE")}
        assert counts == {vehicle_module.PARAM_COUNT}
