"""The stream scheduler on its own (no vehicle, no sockets), and the vehicle asking it what to send."""

from __future__ import annotations

import math

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl import telemetry
from sitl.streams import MAX_STREAM_HZ, MIN_INTERVAL_S, STREAM_ALL, StreamScheduler
from sitl.vehicle import SimCopter
from tests.sitl.conftest import copter

A, B, C = 1, 2, 3  # stream groups of the toy table below
GROUPS = {A: (101, 102), B: (201,), C: (301, 302, 303)}


def scheduler() -> StreamScheduler:
    return StreamScheduler(GROUPS)


def test_nothing_requested_nothing_due() -> None:
    s = scheduler()
    assert not s.active
    assert s.due(0.0) == [] and s.due(100.0) == []


def test_a_group_is_due_at_once_then_at_its_rate() -> None:
    s = scheduler()
    s.request_data_stream(C, 4, 1, now=10.0)
    assert s.active and s.streaming(C) and s.rate(C) == 4.0
    assert s.due(10.0) == [301, 302, 303]
    assert s.due(10.2) == []
    assert s.due(10.25) == [301, 302, 303]
    assert s.due(10.4) == []


def test_all_means_every_group_in_table_order_and_rates_are_capped() -> None:
    s = scheduler()
    s.request_data_stream(STREAM_ALL, 400, 1, now=0.0)
    assert [s.rate(g) for g in GROUPS] == [MAX_STREAM_HZ] * 3
    assert s.due(0.0) == [101, 102, 201, 301, 302, 303]


def test_groups_are_sent_in_the_order_they_were_asked_for() -> None:
    s = scheduler()
    s.request_data_stream(C, 1, 1, now=0.0)
    s.request_data_stream(A, 1, 1, now=0.0)
    assert s.due(0.0) == [301, 302, 303, 101, 102]


def test_asking_again_keeps_the_phase_and_stopping_forgets_it() -> None:
    s = scheduler()
    s.request_data_stream(A, 2, 1, now=0.0)
    assert s.due(0.0) == [101, 102]
    s.request_data_stream(A, 2, 1, now=0.1)  # a second ground station asks for the same
    assert s.due(0.1) == []
    assert s.due(0.5) == [101, 102]
    s.request_data_stream(A, 2, 0, now=0.6)  # stop
    assert not s.streaming(A) and not s.active and s.due(1.0) == []
    s.request_data_stream(A, 2, 1, now=1.1)
    assert s.due(1.1) == [101, 102]  # restarted: due at once
    s.request_data_stream(A, 0, 1, now=1.2)  # rate 0 stops too
    assert not s.streaming(A)


def test_unknown_groups_are_ignored() -> None:
    s = scheduler()
    s.request_data_stream(99, 4, 1, now=0.0)
    assert not s.active


def test_a_late_caller_gets_one_set_not_a_burst() -> None:
    s = scheduler()
    s.request_data_stream(B, 10, 1, now=0.0)
    assert s.due(0.0) == [201]
    assert s.due(5.0) == [201]  # nobody asked for 5 s
    assert s.due(5.05) == []
    assert s.due(5.1) == [201]


def test_rates_that_divide_the_step_are_not_late_by_rounding() -> None:
    s = scheduler()
    s.request_data_stream(B, 50, 1, now=0.0)
    t, sent = 0.0, 0
    for _ in range(500):
        t += 0.02
        sent += len(s.due(t))
    assert sent == 500


def test_a_message_interval_takes_the_message_out_of_its_group() -> None:
    s = scheduler()
    s.request_data_stream(A, 1, 1, now=0.0)
    s.set_message_interval(102, 250_000, now=0.0)
    assert s.interval(102) == 0.25
    assert s.due(0.0) == [101, 102]  # group first, then the intervals
    assert s.due(0.25) == [102]
    assert s.due(0.5) == [102]
    assert s.due(1.0) == [101, 102]


def test_a_negative_interval_stops_a_message_and_zero_gives_it_back_to_its_group() -> None:
    s = scheduler()
    s.request_data_stream(A, 1, 1, now=0.0)
    s.set_message_interval(101, -1, now=0.0)
    assert s.interval(101) == math.inf
    assert s.due(0.0) == [102]
    s.set_message_interval(101, 0, now=0.5)
    assert s.interval(101) is None
    assert s.due(1.0) == [101, 102]


def test_an_interval_alone_keeps_the_scheduler_active_and_is_floored() -> None:
    s = scheduler()
    s.set_message_interval(500, 1, now=2.0)  # 1 µs: faster than ArduCopter sends anything
    assert s.active and s.interval(500) == MIN_INTERVAL_S
    assert s.due(2.0) == [500]
    assert s.due(2.01) == []
    assert s.due(2.02) == [500]


# --- the simulator's table and vehicle ----------------------------------------------------------------


def test_the_telemetry_table_is_what_the_scheduler_knows() -> None:
    assert tuple(telemetry.GROUP_MESSAGES) == telemetry.ALL_GROUPS
    for group, members in telemetry.GROUPS.items():
        assert telemetry.GROUP_MESSAGES[group] == tuple(msgid for msgid, _ in members)


def _request_streams(v: SimCopter, stream: int, hz: int, start: int = 1) -> None:
    v.handle(mav.MAVLink_request_data_stream_message(v.sysid, 1, stream, hz, start))


def test_the_vehicle_builds_what_its_scheduler_says_is_due() -> None:
    v = copter()
    assert v.telemetry() == []  # nobody asked
    _request_streams(v, mav.MAV_DATA_STREAM_POSITION, 5)
    assert v.streams.rate(mav.MAV_DATA_STREAM_POSITION) == 5.0
    v.step(0.02)
    assert [m.get_type() for m in v.telemetry()] == ["GLOBAL_POSITION_INT", "LOCAL_POSITION_NED"]
    v.step(0.02)
    assert v.telemetry() == []


def test_set_message_interval_reaches_the_scheduler_through_the_command() -> None:
    v = copter()
    v.outbox.clear()
    cmd = mav.MAVLink_command_long_message(v.sysid, 1, mav.MAV_CMD_SET_MESSAGE_INTERVAL, 0, mav.MAVLINK_MSG_ID_VFR_HUD, 500_000, 0, 0, 0, 0, 0)
    v.handle(cmd)
    assert [(m.command, m.result) for m in v.outbox] == [(mav.MAV_CMD_SET_MESSAGE_INTERVAL, mav.MAV_RESULT_ACCEPTED)]
    assert v.streams.interval(mav.MAVLINK_MSG_ID_VFR_HUD) == 0.5
    v.step(0.02)
    assert [m.get_type() for m in v.telemetry()] == ["VFR_HUD"]
    unknown = mav.MAVLink_command_long_message(v.sysid, 1, mav.MAV_CMD_SET_MESSAGE_INTERVAL, 0, 60000, 500_000, 0, 0, 0, 0, 0)
    v.outbox.clear()
    v.handle(unknown)
    assert [m.result for m in v.outbox] == [mav.MAV_RESULT_UNSUPPORTED]
    assert v.streams.interval(60000) is None


@pytest.mark.parametrize("streamed", [False, True])
def test_sys_status_comes_with_the_heartbeat_unless_its_stream_is_requested(streamed: bool) -> None:
    v = copter()
    if streamed:
        _request_streams(v, mav.MAV_DATA_STREAM_EXTENDED_STATUS, 1)
    v.outbox.clear()
    for _ in range(100):  # 2 s
        v.step(0.02)
    kinds = [m.get_type() for m in v.outbox]
    assert kinds.count("HEARTBEAT") == 2
    assert kinds.count("SYS_STATUS") == (0 if streamed else 2)
