"""The mission upload state machine on its own: fed parsed wire bytes and a hand-moved clock.

Every vehicle message is packed to MAVLink 2 bytes with the vehicle's sysid and
parsed back (so the machine sees what a link would), either written here or
taken from the real ArduCopter recording
tests/sitl/transcripts/mission_upload_edge_cases.jsonl: replaying the vehicle's
side of a case must make the machine send exactly what the recording's ground
station sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from controller.fleet.mission_upload import (
    FailureKind,
    MissionItem,
    MissionUpload,
    Phase,
    mission_result_name,
    mission_result_text,
)
from tests.fleet.memory_link import Record, build, load

VEHICLE = 7
GCS = (255, 190)
MISSION, FENCE = mav.MAV_MISSION_TYPE_MISSION, mav.MAV_MISSION_TYPE_FENCE


class Wire:
    """Packs vehicle messages to bytes (any sysid/compid) and parses them back, as a link would receive them."""

    def __init__(self) -> None:
        self._enc: dict[tuple[int, int], mav.MAVLink] = {}
        self._parser = mav.MAVLink(None)

    def __call__(self, msg: Any, src: tuple[int, int] = (VEHICLE, 1)) -> Any:
        enc = self._enc.setdefault(src, mav.MAVLink(None, srcSystem=src[0], srcComponent=src[1]))
        buf = msg.pack(enc)
        enc.seq = (enc.seq + 1) % 256
        (parsed,) = self._parser.parse_buffer(buf)
        return parsed


wire = Wire()


def req(seq: int, mission_type: int = MISSION, to: tuple[int, int] = GCS, kind: str = "MISSION_REQUEST", src: int = VEHICLE) -> Any:
    cls = mav.MAVLink_mission_request_message if kind == "MISSION_REQUEST" else mav.MAVLink_mission_request_int_message
    return wire(cls(to[0], to[1], seq, mission_type), (src, 1))


def ack(result: int, mission_type: int = MISSION, to: tuple[int, int] = GCS) -> Any:
    return wire(mav.MAVLink_mission_ack_message(to[0], to[1], result, mission_type))


def items(n: int = 4) -> list[MissionItem]:
    out = [MissionItem(mav.MAV_CMD_NAV_WAYPOINT, frame=mav.MAV_FRAME_GLOBAL, lat=32.0603, lon=118.7969, alt=10.0)]
    out.append(MissionItem(mav.MAV_CMD_NAV_TAKEOFF, alt=30.0))
    out += [MissionItem(mav.MAV_CMD_NAV_WAYPOINT, lat=32.0603 + 0.001 * k, lon=118.7969, alt=30.0) for k in range(1, n - 1)]
    return out[:n]


def upload(n: int = 4, **kw: Any) -> MissionUpload:
    kw.setdefault("target_system", VEHICLE)
    return MissionUpload(items(n), **kw)


def seqs(out: list[Any]) -> list[int]:
    assert all(m.get_type() == "MISSION_ITEM_INT" for m in out), [m.get_type() for m in out]
    return [m.seq for m in out]


def run_to_done(up: MissionUpload, now: float = 0.0) -> None:
    for seq in range(up.count):
        assert seqs(up.receive(req(seq), now)) == [seq]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), now)
    assert up.accepted


# --- the plain upload ----------------------------------------------------------------------------------


def test_plain_upload_messages_and_fields() -> None:
    up = upload(4)
    (count,) = up.start(10.0)
    assert count.get_type() == "MISSION_COUNT"
    assert (count.target_system, count.target_component, count.count, count.mission_type) == (VEHICLE, 1, 4, MISSION)
    assert up.phase is Phase.COUNTING and up.next_tick == pytest.approx(11.5)
    (item,) = up.receive(req(0), 10.1)
    assert (item.seq, item.frame, item.command, item.x, item.y, item.z, item.current, item.autocontinue, item.mission_type) == (
        0, mav.MAV_FRAME_GLOBAL, mav.MAV_CMD_NAV_WAYPOINT, 320603000, 1187969000, 10.0, 0, 1, MISSION,
    )
    assert up.phase is Phase.SENDING and up.next_tick == pytest.approx(13.1)
    for seq in (1, 2, 3):
        assert seqs(up.receive(req(seq), 10.2)) == [seq]
    assert not up.finished
    assert up.receive(ack(mav.MAV_MISSION_ACCEPTED), 10.3) == []
    assert up.accepted and up.finished and up.failure is None and up.next_tick == float("inf")
    assert (up.stats.count_sent, up.stats.items_sent, up.stats.repeated_requests) == (1, 4, 0)
    assert up.receive(req(1), 10.4) == [] and up.tick(99.0) == []  # finished: deaf


def test_request_int_is_answered_like_request() -> None:
    up = upload(2)
    up.start(0.0)
    assert seqs(up.receive(req(0, kind="MISSION_REQUEST_INT"), 0.0)) == [0]
    assert seqs(up.receive(req(1, kind="MISSION_REQUEST_INT"), 0.0)) == [1]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.0)
    assert up.accepted


def test_an_empty_mission_is_a_count_of_zero_accepted() -> None:
    up = MissionUpload([], target_system=VEHICLE)
    assert up.start(0.0)[0].count == 0
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.1)
    assert up.accepted


# --- repeats: the vehicle asks again, items arrive twice ----------------------------------------------------


def test_a_repeated_request_is_answered_again_and_the_resulting_invalid_sequence_ignored() -> None:
    """The e2e failure: a slow answer meets the vehicle's re-request; it gets item 2 twice and says INVALID_SEQUENCE."""
    up = upload(5)
    up.start(0.0)
    for seq in (0, 1):
        up.receive(req(seq), 0.0)
    assert seqs(up.receive(req(2), 0.1)) == [2]
    assert seqs(up.receive(req(2), 1.1)) == [2]  # asked again: answered again (idempotent)
    assert seqs(up.receive(req(3), 1.2)) == [3]  # the first copy was stored ...
    assert up.receive(ack(mav.MAV_MISSION_INVALID_SEQUENCE), 1.2) == []  # ... the second refused: not our failure
    assert seqs(up.receive(req(4), 1.3)) == [4]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 1.4)
    assert up.accepted
    assert (up.stats.repeated_requests, up.stats.invalid_sequence_acks, up.stats.items_sent) == (1, 1, 6)


def test_the_vehicle_going_back_to_item_0_is_answered() -> None:
    """A second MISSION_COUNT (our retry) reached the vehicle after the first: it starts over from item 0."""
    up = upload(3, count_timeout=0.5)
    up.start(0.0)
    assert up.tick(0.6)[0].get_type() == "MISSION_COUNT"
    assert seqs(up.receive(req(0), 0.7)) == [0]
    assert seqs(up.receive(req(1), 0.7)) == [1]
    assert seqs(up.receive(req(0), 0.7)) == [0]  # the restart
    up.receive(ack(mav.MAV_MISSION_INVALID_SEQUENCE), 0.7)  # our item 1 arrived after it
    for seq in (1, 2):
        assert seqs(up.receive(req(seq), 0.8)) == [seq]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.8)
    assert up.accepted


def test_denied_during_the_transfer_is_someone_elses_refusal() -> None:
    """ArduPilot DENIES a download (or another station) during an upload and goes on; a station with our ids may get it."""
    up = upload(3)
    up.start(0.0)
    up.receive(req(0), 0.0)
    assert up.receive(ack(mav.MAV_MISSION_DENIED), 0.1) == [] and not up.finished
    run_rest = [seqs(up.receive(req(s), 0.2)) for s in (1, 2)]
    assert run_rest == [[1], [2]]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.3)
    assert up.accepted and up.stats.denied_acks == 1


# --- what belongs to this transfer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        pytest.param(lambda: req(0, mission_type=FENCE), id="fence-request"),
        pytest.param(lambda: req(0, mission_type=mav.MAV_MISSION_TYPE_RALLY), id="rally-request"),
        pytest.param(lambda: ack(mav.MAV_MISSION_ERROR, mission_type=FENCE), id="fence-error"),
        pytest.param(lambda: ack(mav.MAV_MISSION_OPERATION_CANCELLED, mission_type=FENCE), id="fence-timeout"),
        pytest.param(lambda: req(0, to=(254, 190)), id="request-to-another-station"),
        pytest.param(lambda: ack(mav.MAV_MISSION_DENIED, to=(254, 190)), id="ack-to-another-station"),
        pytest.param(lambda: req(0, to=(255, 1)), id="request-to-another-component"),
        pytest.param(lambda: req(0, src=VEHICLE + 1), id="another-vehicle"),
        pytest.param(lambda: wire(mav.MAVLink_mission_count_message(255, 190, 3, MISSION)), id="mission-count"),
    ],
)
def test_messages_of_other_transfers_are_ignored(msg: Any) -> None:
    up = upload(2)
    up.start(0.0)
    assert up.receive(msg(), 0.1) == []
    assert up.phase is Phase.COUNTING and up.stats.items_sent == 0
    up.receive(req(0), 0.2)
    assert up.receive(msg(), 0.3) == [] and up.phase is Phase.SENDING
    run = [seqs(up.receive(req(1), 0.4))]
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.5)
    assert run == [[1]] and up.accepted


def test_broadcast_requests_are_ours() -> None:
    up = upload(1)
    up.start(0.0)
    assert seqs(up.receive(req(0, to=(0, 0)), 0.0)) == [0]


@pytest.mark.parametrize(
    "stale",
    [
        pytest.param(lambda: req(4), id="request-for-a-later-item"),
        pytest.param(lambda: req(9), id="request-beyond-the-count"),
        pytest.param(lambda: ack(mav.MAV_MISSION_INVALID_SEQUENCE), id="invalid-sequence"),
        pytest.param(lambda: ack(mav.MAV_MISSION_OPERATION_CANCELLED), id="cancelled"),
        pytest.param(lambda: ack(mav.MAV_MISSION_ACCEPTED), id="accepted"),
    ],
)
def test_leftovers_of_an_earlier_transfer_before_the_first_request_are_ignored(stale: Any) -> None:
    """An abandoned upload's re-requests, or its late timeout ack, can still arrive after the new MISSION_COUNT."""
    up = upload(5)
    up.start(0.0)
    assert up.receive(stale(), 0.1) == []
    assert up.phase is Phase.COUNTING and up.stats.stale == 1
    run_to_done(up, 0.2)


# --- retries and timeouts -----------------------------------------------------------------------------------


def test_count_is_resent_until_the_first_request_then_gives_up() -> None:
    up = upload(3, count_timeout=1.5, count_attempts=3)
    up.start(0.0)
    assert up.tick(1.4) == []
    assert [m.get_type() for m in up.tick(1.5)] == ["MISSION_COUNT"]
    assert up.next_tick == pytest.approx(3.0)
    assert [m.get_type() for m in up.tick(3.0)] == ["MISSION_COUNT"]
    assert up.tick(4.5) == [] and up.finished
    f = up.failure
    assert f is not None and f.kind is FailureKind.TIMEOUT and f.message == "no MISSION_REQUEST after 3 MISSION_COUNTs 1.5 s apart"


def test_count_retry_stops_at_the_first_request() -> None:
    up = upload(2, count_timeout=1.0)
    up.start(0.0)
    up.tick(1.0)
    up.receive(req(0), 1.2)
    assert up.tick(2.1) == [] and up.stats.count_sent == 2  # no more COUNTs once the vehicle asks


def test_the_vehicle_going_quiet_mid_upload_is_a_timeout_and_nothing_is_sent_unasked() -> None:
    up = upload(5, item_timeout=3.0)
    up.start(0.0)
    up.receive(req(0), 0.0)
    up.receive(req(1), 0.5)
    assert up.next_tick == pytest.approx(3.5)
    assert up.tick(3.4) == []  # nothing re-sent on our own: the vehicle re-requests what it misses
    assert up.tick(3.5) == [] and up.finished
    f = up.failure
    assert f is not None and f.kind is FailureKind.TIMEOUT and f.item == 1
    assert "stopped asking for items 3 s ago (item 1 of 5 last sent" in f.message


def test_repeated_requests_keep_the_upload_alive() -> None:
    up = upload(3, item_timeout=3.0)
    up.start(0.0)
    up.receive(req(0), 0.0)
    for t in (1.0, 2.0, 3.0, 4.0):  # the vehicle asks again every second for item 1
        assert seqs(up.receive(req(1), t)) == [1]
    assert up.tick(6.9) == [] and not up.finished
    up.tick(7.0)
    assert up.failure is not None and up.failure.kind is FailureKind.TIMEOUT


def test_no_final_ack_after_the_last_item() -> None:
    up = upload(2, item_timeout=2.0)
    up.start(0.0)
    up.receive(req(0), 0.0)
    up.receive(req(1), 0.0)
    up.tick(2.0)
    assert up.failure is not None and up.failure.message == "no MISSION_ACK 2 s after the last item"


def test_the_overall_deadline_bounds_a_vehicle_that_keeps_asking_forever() -> None:
    up = upload(3, deadline=10.0, item_timeout=3.0)
    up.start(100.0)
    up.receive(req(0), 100.0)
    t = 100.0
    while not up.finished:
        t += 1.0
        up.receive(req(1), t)
        up.tick(t)
    assert t == 110.0 and up.failure is not None and up.failure.kind is FailureKind.TIMEOUT
    assert up.failure.message.startswith("not accepted within 10 s")


def test_default_deadline_grows_with_the_mission() -> None:
    assert upload(3).deadline < upload(30).deadline < upload(300).deadline


# --- refusals ----------------------------------------------------------------------------------------------------


def test_an_item_error_ends_the_upload_with_the_mission_result_name() -> None:
    up = upload(4)
    up.start(0.0)
    for seq in (0, 1, 2):
        up.receive(req(seq), 0.0)
    up.receive(ack(mav.MAV_MISSION_UNSUPPORTED_FRAME), 0.1)
    f = up.failure
    assert f is not None and f.kind is FailureKind.REJECTED and f.result == 2 and f.item == 2
    assert f.message == "refused at item 2 (command 16): MISSION_ACK MAV_MISSION_UNSUPPORTED_FRAME (Coordinate frame is not supported.)"


def test_vehicle_side_timeout_is_named() -> None:
    up = upload(4)
    up.start(0.0)
    up.receive(req(0), 0.0)
    up.receive(ack(mav.MAV_MISSION_OPERATION_CANCELLED), 8.0)
    f = up.failure
    assert f is not None and f.kind is FailureKind.REJECTED and f.result == 15
    assert f.message.startswith("the vehicle cancelled the upload at item 0 (command 16): MISSION_ACK MAV_MISSION_OPERATION_CANCELLED")


def test_error_when_the_vehicle_stopped_receiving_is_final() -> None:
    up = upload(4)
    up.start(0.0)
    up.receive(req(0), 0.0)
    up.receive(ack(mav.MAV_MISSION_ERROR), 0.1)  # someone cleared the mission, or it timed out unheard
    assert up.failure is not None and up.failure.result == mav.MAV_MISSION_ERROR


@pytest.mark.parametrize("result", [mav.MAV_MISSION_NO_SPACE, mav.MAV_MISSION_UNSUPPORTED, mav.MAV_MISSION_INVALID])
def test_a_refused_count_fails_at_once(result: int) -> None:
    up = upload(3)
    up.start(0.0)
    up.receive(ack(result), 0.1)
    assert up.failure is not None and up.failure.kind is FailureKind.REJECTED and up.failure.result == result
    assert up.failure.message == f"refused: MISSION_ACK {mission_result_text(result)}"


def test_a_count_denied_while_another_station_uploads_is_retried_then_reported() -> None:
    up = upload(3, count_timeout=1.0, count_attempts=3)
    up.start(0.0)
    up.receive(ack(mav.MAV_MISSION_DENIED), 0.1)
    assert not up.finished
    up.tick(1.0)
    up.receive(ack(mav.MAV_MISSION_DENIED), 1.1)
    up.tick(2.0)
    up.receive(ack(mav.MAV_MISSION_DENIED), 2.1)
    up.tick(3.0)
    f = up.failure
    assert f is not None and f.kind is FailureKind.REJECTED and f.result == mav.MAV_MISSION_DENIED
    assert f.message.startswith("refused: MISSION_ACK MAV_MISSION_DENIED") and "to each of 3 MISSION_COUNTs" in f.message


def test_a_count_denied_once_then_requested_goes_on() -> None:
    """The other station's upload ended (or the ERROR was a stray item's): the retried COUNT is answered."""
    up = upload(2, count_timeout=1.0)
    up.start(0.0)
    up.receive(ack(mav.MAV_MISSION_ERROR), 0.1)
    up.tick(1.0)
    run_to_done(up, 1.1)


def test_accepted_before_the_last_item_is_a_protocol_error() -> None:
    up = upload(4)
    up.start(0.0)
    up.receive(req(0), 0.0)
    up.receive(ack(mav.MAV_MISSION_ACCEPTED), 0.1)
    assert up.failure is not None and up.failure.kind is FailureKind.PROTOCOL


def test_a_request_beyond_the_count_mid_transfer_is_a_protocol_error() -> None:
    up = upload(2)
    up.start(0.0)
    up.receive(req(0), 0.0)
    assert up.receive(req(2), 0.1) == []
    assert up.failure is not None and up.failure.message == "the vehicle asked for item 2 of a 2-item upload"


def test_result_names_are_mission_results_not_command_results() -> None:
    assert mission_result_name(13) == "MAV_MISSION_INVALID_SEQUENCE"  # MAV_RESULT 13 does not exist
    assert mission_result_name(4) == "MAV_MISSION_NO_SPACE"  # MAV_RESULT 4 is FAILED
    assert mission_result_name(99) == "MAV_MISSION_RESULT 99"
    assert mission_result_text(14) == "MAV_MISSION_DENIED (Not accepting any mission commands from this communication partner.)"


def test_start_twice_is_a_bug() -> None:
    up = upload(1)
    up.start(0.0)
    with pytest.raises(RuntimeError):
        up.start(0.0)
    with pytest.raises(ValueError):
        upload(1, count_attempts=0)


# --- against the real vehicle's recorded words -------------------------------------------------------------------

EDGES = "mission_upload_edge_cases"


def window(name: str) -> list[Record]:
    recs = load(EDGES)[1]
    start = next(i for i, r in enumerate(recs) if r.dir == "event" and r.fields["case"] == name)
    end = next((i for i, r in enumerate(recs) if i > start and r.dir == "event"), len(recs))
    return recs[start + 1 : end]


def recorded_items(recs: list[Record]) -> list[MissionItem]:
    by_seq: dict[int, MissionItem] = {}
    for r in recs:
        if r.dir == "tx" and r.type == "MISSION_ITEM_INT" and (r.sysid, r.compid) == GCS:
            f = r.fields
            by_seq.setdefault(
                f["seq"],
                MissionItem(f["command"], f["frame"], (f["param1"], f["param2"], f["param3"], f["param4"]), f["x"] / 1e7, f["y"] / 1e7, f["z"]),
            )
    return [by_seq[s] for s in sorted(by_seq)]


# Cases where the recording's ground station did what a correct uploader does (answer every request, once per request).
GOLDEN = ["upload", "late_answer", "download_during_upload", "other_gcs", "fence_during_upload", "clear_during_upload"]


@pytest.mark.parametrize("name", GOLDEN)
def test_the_vehicles_recorded_words_make_the_machine_send_what_the_recording_sent(name: str) -> None:
    recs = window(name)
    first_count = next(i for i, r in enumerate(recs) if r.dir == "tx" and r.type == "MISSION_COUNT" and r.fields["mission_type"] == MISSION)
    sysid = recs[first_count].fields["target_system"]
    wire_ = Wire()
    up = MissionUpload(recorded_items(recs), target_system=sysid)
    sent = up.start(recs[first_count].t)
    for r in recs[first_count + 1 :]:
        if r.dir == "rx" and not up.finished:
            sent += up.receive(wire_(build(r.type, r.fields), (r.sysid, r.compid)), r.t)
    ours = [(m.get_type(), getattr(m, "seq", None)) for m in sent]
    theirs = [
        (r.type, r.fields.get("seq")) for r in recs[first_count:]
        if r.dir == "tx" and (r.sysid, r.compid) == GCS and r.type in ("MISSION_COUNT", "MISSION_ITEM_INT") and r.fields["mission_type"] == MISSION
    ]
    # the recorder, unlike the machine, went on after its upload (a second upload, a stray item): compare its first upload
    assert ours == theirs[: len(ours)]
    if name == "clear_during_upload":  # a clear with our ids mid-upload: its ACCEPTED ends the upload early
        assert up.failure is not None and up.failure.kind is FailureKind.PROTOCOL and up.failure.item == 2
    else:
        assert up.accepted, up.failure
    if name == "late_answer":
        assert (up.stats.repeated_requests, up.stats.invalid_sequence_acks) == (1, 1)
    if name == "download_during_upload":
        assert up.stats.denied_acks == 2
    if name == "other_gcs":
        assert up.stats.ignored == 3  # the other station's three refusals
    if name == "fence_during_upload":
        assert up.stats.ignored >= 1  # the fence's request (its re-requests come after our upload)
