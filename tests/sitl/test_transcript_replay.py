"""The built-in simulator answers the recorded conversations the way the real ArduCopter 4.7 SITL did.

Each test replays a transcript's ground-station messages at their recorded
simulated times and compares the simulator's answers with the real vehicle's:
COMMAND_ACK results in order, STATUSTEXT texts in order, flight mode and arming
state over time, the mission protocol, parameter echoes and failsafe reactions.
"""

from __future__ import annotations

import pytest

from tests.sitl.replay import (
    Replay,
    acks,
    first_time,
    heartbeat_mismatches,
    of_type,
    replay_full,
    texts,
    transcript_dir,
)

pytestmark = pytest.mark.skipif(transcript_dir() is None, reason="ArduPilot SITL transcripts not found")

_cache: dict[str, Replay] = {}


def run(name: str) -> Replay:
    if name not in _cache:
        _cache[name] = replay_full(name)
    return _cache[name]


def assert_same_conversation(r: Replay, ignore_texts: tuple[str, ...] = ()) -> None:
    assert acks(r.got) == acks(r.recorded), "COMMAND_ACK (command, result) sequence differs"
    keep = lambda ts: [t for t in ts if not t.startswith(ignore_texts)] if ignore_texts else ts  # noqa: E731
    assert keep(texts(r.got)) == keep(texts(r.recorded)), "STATUSTEXT sequence differs"
    assert heartbeat_mismatches(r) == []


def text_time(msgs, fragment: str) -> float | None:  # noqa: ANN001
    return first_time(msgs, lambda m: m.type == "STATUSTEXT" and fragment in m.fields["text"])


@pytest.mark.parametrize("name", ["boot_to_armable", "rejections", "guided_flight", "mission_auto", "battery"])
def test_same_acks_texts_and_modes(name: str) -> None:
    assert_same_conversation(run(name))


def test_boot_timeline() -> None:
    r = run("boot_to_armable")
    for fragment in ("EKF3 IMU0 origin set", "Field Elevation Set: 10m", "EKF3 IMU0 is using GPS"):
        real, ours = text_time(r.recorded, fragment), text_time(r.got, fragment)
        assert real is not None and ours is not None and abs(real - ours) < 1.5, (fragment, real, ours)
    # arming first accepted at the same moment (the ground station retried once a second)
    ok = lambda msgs: first_time(msgs, lambda m: m.type == "COMMAND_ACK" and m.fields["command"] == 400 and m.fields["result"] == 0)  # noqa: E731
    assert abs(ok(r.recorded) - ok(r.got)) < 1.5
    # EKF readiness as the controller reads it: constant-position mode until GPS, then ready
    ready = lambda msgs: first_time(msgs, lambda m: m.type == "EKF_STATUS_REPORT" and (m.fields["flags"] & 0x1F) == 0x1F and not m.fields["flags"] & 0x80)  # noqa: E731
    assert abs(ready(r.recorded) - ready(r.got)) < 6.0
    home = lambda msgs: first_time(msgs, lambda m: m.type == "HOME_POSITION")  # noqa: E731
    assert abs(home(r.recorded) - home(r.got)) < 1.5


def test_rejections_in_detail() -> None:
    r = run("rejections")
    assert (176, 4) in acks(r.got) and (22, 4) in acks(r.got)
    assert "No such mode 99" in texts(r.got)
    assert [m.fields["type"] for m in of_type(r.got, "MISSION_ACK")] == [m.fields["type"] for m in of_type(r.recorded, "MISSION_ACK")] == [0, 1]
    # unknown parameters: silence, exactly like the real vehicle
    names = lambda msgs: {m.fields["param_id"] for m in of_type(msgs, "PARAM_VALUE")}  # noqa: E731
    assert "NO_SUCH_PARAM" not in names(r.got) and "NO_SUCH_PARAM" not in names(r.recorded)
    assert "PreArm: Mode requires mission" in texts(r.got)


def test_guided_flight_positions_and_landing() -> None:
    r = run("guided_flight")
    sent = next(m for m in r.sent if m.type == "SET_POSITION_TARGET_GLOBAL_INT")
    echoes = [m for m in of_type(r.got, "POSITION_TARGET_GLOBAL_INT") if m.t > sent.t]
    assert echoes and echoes[0].fields["lat_int"] == sent.fields["lat_int"] and echoes[0].fields["lon_int"] == sent.fields["lon_int"]
    assert max(alt for _, _, _, alt in r.states) == pytest.approx(60.0, abs=0.5)
    rtl = next(m.t for m in r.sent if m.type == "SET_MODE" and m.fields["custom_mode"] == 6)
    real = text_time(r.recorded, "SIM Hit ground") - rtl
    ours = text_time(r.got, "SIM Hit ground") - rtl
    assert ours == pytest.approx(real, rel=0.08), "RTL from 880 m at 60 m takes as long as on the real vehicle"
    # after touchdown: disarmed, still in RTL
    assert r.vehicle.mode == 6 and not r.vehicle.armed


def test_mission_protocol_and_progress() -> None:
    r = run("mission_auto")
    seqs = lambda msgs, kind: [m.fields["seq"] for m in of_type(msgs, kind)]  # noqa: E731
    assert seqs(r.got, "MISSION_REQUEST") == seqs(r.recorded, "MISSION_REQUEST") == list(range(9))
    assert not of_type(r.got, "MISSION_REQUEST_INT"), "uploads are answered with MISSION_REQUEST, not _INT"
    fields = ("seq", "frame", "command", "x", "y", "param1", "param2", "param3")
    items = lambda msgs: [tuple(m.fields[f] for f in fields) for m in of_type(msgs, "MISSION_ITEM_INT")]  # noqa: E731
    assert items(r.got) == items(r.recorded), "downloaded items (home as seq 0, stored frames) differ"
    alts = lambda msgs: [round(m.fields["z"], 1) for m in of_type(msgs, "MISSION_ITEM_INT")]  # noqa: E731
    assert alts(r.got) == alts(r.recorded)
    assert seqs(r.got, "MISSION_ITEM_REACHED") == seqs(r.recorded, "MISSION_ITEM_REACHED") == [2, 3, 4, 5, 6, 7, 8]
    start = next(m.t for m in r.sent if m.type == "COMMAND_LONG" and m.fields["command"] == 300)
    for n in (3, 5, 7):
        real = text_time(r.recorded, f"Reached command #{n}") - start
        ours = text_time(r.got, f"Reached command #{n}") - start
        assert ours == pytest.approx(real, rel=0.12), (n, real, ours)
    mis_total = [m.fields["param_value"] for m in of_type(r.got, "PARAM_VALUE") if m.fields["param_id"] == "MIS_TOTAL"]
    assert 9.0 in mis_total


def test_gcs_failsafe() -> None:
    r = run("gcs_failsafe")
    # The recorded station sent heartbeats every 5.0-5.3 s against a 5 s timeout, so brief flaps of
    # "GCS Failsafe"/"Cleared" hang on milliseconds the recording cannot resolve; compare the rest exactly.
    assert_same_conversation(r, ignore_texts=("GCS Failsafe", "Arm: GCS failsafe on"))
    beats = [m.t for m in r.sent if m.type == "HEARTBEAT"]
    silence_start, silence_end = next((a, b) for a, b in zip(beats, beats[1:]) if b - a > 30)
    trip = first_time(r.got, lambda m: m.type == "STATUSTEXT" and m.fields["text"] == "GCS Failsafe" and m.t > silence_start)
    assert 5.0 < trip - silence_start < 6.0
    cleared = first_time(r.got, lambda m: m.type == "STATUSTEXT" and m.fields["text"] == "GCS Failsafe Cleared" and m.t > silence_end - 0.01)
    assert cleared - silence_end < 0.5
    assert "PreArm: GCS failsafe on" in texts(r.got) and "PreArm: GCS failsafe on" in texts(r.recorded)
    # in flight, the first failsafe switched the vehicle to RTL, which it kept after clearing
    takeoff = next(m.t for m in r.sent if m.type == "COMMAND_LONG" and m.fields["command"] == 22)
    first_trip_in_flight = first_time(r.got, lambda m: m.type == "STATUSTEXT" and m.fields["text"] == "GCS Failsafe" and m.t > takeoff + 5)
    rtl_at = next(t for t, mode, armed, _ in r.states if mode == 6 and t >= first_trip_in_flight - 0.1)
    assert rtl_at - first_trip_in_flight < 0.2


def test_battery_failsafe() -> None:
    r = run("battery")
    low_real = next(m for m in of_type(r.recorded, "STATUSTEXT") if m.fields["text"].startswith("Battery 1 is low"))
    low_ours = next(m for m in of_type(r.got, "STATUSTEXT") if m.fields["text"].startswith("Battery 1 is low"))
    used = lambda m: int(m.fields["text"].split("used ")[1].split()[0])  # noqa: E731
    assert used(low_ours) == pytest.approx(used(low_real), abs=10)
    assert low_ours.t == pytest.approx(low_real.t, abs=4.0)
    assert "PreArm: Battery 1 low capacity failsafe" in texts(r.got)
    remaining = [m.fields["battery_remaining"] for m in of_type(r.got, "BATTERY_STATUS")]
    assert remaining[0] == 100 and 0 <= min(remaining) < 15
