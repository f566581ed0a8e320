"""The simulator's mission item protocol rule by rule (the replay of real recordings covers the conversations).

MissionProtocol is transport-free: decoded requests and the time in, Reply
values out; these tests drive it directly, and through a SimCopter where the
rule involves the vehicle (a mission being flown, simulated time).
"""

from __future__ import annotations

from typing import Any

import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.mission import (
    FENCE,
    MAX_MISSION_ITEMS,
    MISSION,
    RALLY,
    REREQUEST_S,
    UPLOAD_TIMEOUT_S,
    Item,
    MissionProtocol,
    MissionStore,
    Reply,
    ReplyKind,
    check_mission_item,
)
from tests.sitl.conftest import copter

GCS, OTHER = (255, 190), (254, 190)
HOME = (32.0603, 118.7969, 10.1)


def wp(seq: int, alt: float = 30.0, command: int = mav.MAV_CMD_NAV_WAYPOINT, frame: int = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, **kw: Any) -> Item:
    return Item(seq, frame, command, kw.pop("params", (0.0, 0.0, 0.0, 0.0)), kw.pop("x", 320603000 + 1000 * seq), kw.pop("y", 1187969000), alt, **kw)


def protocol(running: bool = False) -> MissionProtocol:
    store = MissionStore()
    store.set_home(*HOME)
    return MissionProtocol(store, running=lambda: running)


def said(replies: list[Reply]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for r in replies:
        if r.kind == ReplyKind.TEXT:
            out.append(("TEXT", r.text))
        elif r.kind == ReplyKind.TOTAL:
            out.append((r.param, r.value))
        elif r.kind == ReplyKind.ACK:
            out.append(("ACK", mav.enums["MAV_MISSION_RESULT"][r.value].name, r.mission_type, r.to))
        else:
            out.append((r.kind.value, r.value, r.mission_type, r.to))
    return out


def upload(p: MissionProtocol, n: int, now: float = 0.0, peer: tuple[int, int] = GCS, mission_type: int = MISSION) -> list[tuple[Any, ...]]:
    out = said(p.count_received(n, mission_type, now, peer))
    for seq in range(n):
        out += said(p.item_received(wp(seq), mission_type, now, peer))
    return out


def test_a_plain_upload() -> None:
    p = protocol()
    assert said(p.count_received(3, MISSION, 0.0, GCS)) == [("MISSION_REQUEST", 0, 0, GCS)]
    assert said(p.item_received(wp(0), MISSION, 0.0, GCS)) == [("MISSION_REQUEST", 1, 0, GCS)]
    assert said(p.item_received(wp(1), MISSION, 0.0, GCS)) == [("MISSION_REQUEST", 2, 0, GCS), ("MIS_TOTAL", 2)]
    assert said(p.item_received(wp(2), MISSION, 0.0, GCS)) == [
        ("ACK", "MAV_MISSION_ACCEPTED", 0, GCS), ("TEXT", "Flight plan received"), ("MIS_TOTAL", 3),
    ]
    assert not p.uploading and p.store.count == 3 and p.store.items[0].z == pytest.approx(HOME[2])


def test_repeated_and_early_items_get_invalid_sequence_and_the_upload_goes_on() -> None:
    p = protocol()
    p.count_received(4, MISSION, 0.0, GCS)
    p.item_received(wp(0), MISSION, 0.0, GCS)
    p.item_received(wp(1), MISSION, 0.0, GCS)
    assert said(p.item_received(wp(1), MISSION, 0.1, GCS)) == [("ACK", "MAV_MISSION_INVALID_SEQUENCE", 0, GCS)]
    assert said(p.item_received(wp(3), MISSION, 0.1, GCS)) == [("ACK", "MAV_MISSION_INVALID_SEQUENCE", 0, GCS)]
    assert p.uploading
    p.item_received(wp(2), MISSION, 0.2, GCS)
    assert said(p.item_received(wp(3), MISSION, 0.2, GCS))[0] == ("ACK", "MAV_MISSION_ACCEPTED", 0, GCS)


def test_re_request_every_second_then_give_up_after_eight_seconds_without_an_item() -> None:
    p = protocol()
    p.count_received(3, MISSION, 100.0, GCS)
    p.item_received(wp(0), MISSION, 100.0, GCS)
    asked: list[float] = []
    replies: list[tuple[Any, ...]] = []
    t = 100.0
    while p.uploading:
        t = round(t + 0.01, 2)
        r = said(p.tick(t))
        asked += [t] * sum(1 for x in r if x[0] == "MISSION_REQUEST")
        replies += [x for x in r if x[0] != "MISSION_REQUEST"]
    assert asked == [pytest.approx(100.0 + k * REREQUEST_S + 0.01 * k, abs=0.011) for k in range(1, 8)]
    assert t == pytest.approx(100.0 + UPLOAD_TIMEOUT_S + 0.01)
    assert replies == [("ACK", "MAV_MISSION_OPERATION_CANCELLED", 0, GCS), ("TEXT", "Mission upload timeout")]
    assert said(p.item_received(wp(1), MISSION, t, GCS)) == [("ACK", "MAV_MISSION_ERROR", 0, GCS)]  # no longer receiving


def test_only_the_uploading_station_may_restart_the_upload() -> None:
    p = protocol()
    p.count_received(3, MISSION, 0.0, GCS)
    p.item_received(wp(0), MISSION, 0.0, GCS)
    assert said(p.count_received(2, MISSION, 0.1, OTHER)) == [("ACK", "MAV_MISSION_DENIED", 0, OTHER)]
    assert said(p.item_received(wp(1), MISSION, 0.1, OTHER)) == [("ACK", "MAV_MISSION_DENIED", 0, OTHER)]
    assert said(p.clear_all(MISSION, OTHER)) == [("ACK", "MAV_MISSION_DENIED", 0, OTHER), ("ACK", "MAV_MISSION_ERROR", 0, OTHER)]
    assert said(p.count_received(2, MISSION, 0.2, GCS)) == [("MISSION_REQUEST", 0, 0, GCS)]  # the uploader restarts


def test_downloads_are_denied_during_an_upload_but_a_legacy_request_is_answered() -> None:
    p = protocol()
    p.count_received(3, MISSION, 0.0, GCS)
    assert said(p.request_list(MISSION, GCS)) == [("ACK", "MAV_MISSION_DENIED", 0, GCS)]
    assert said(p.request_item(0, MISSION, True, GCS)) == [("ACK", "MAV_MISSION_DENIED", 0, GCS)]
    assert said(p.request_item(0, MISSION, False, GCS)) == [("MISSION_ITEM", 0, 0, GCS), ("TEXT", "got MISSION_REQUEST; use MISSION_REQUEST_INT!")]
    assert said(p.request_item(0, MISSION, False, GCS)) == [("MISSION_ITEM", 0, 0, GCS)]  # the warning once


def test_download_beyond_the_end() -> None:
    p = protocol()
    assert said(p.request_item(5, MISSION, True, GCS)) == [("MISSION_COUNT", 1, 0, GCS), ("ACK", "MAV_MISSION_INVALID_SEQUENCE", 0, GCS)]
    assert said(p.request_item(5, MISSION, False, GCS)) == [("ACK", "MAV_MISSION_INVALID_SEQUENCE", 0, GCS)]


def test_a_refused_item_ends_the_upload_and_keeps_what_was_stored() -> None:
    p = protocol()
    upload(p, 6)
    p.count_received(5, MISSION, 1.0, GCS)  # truncates to 5 at once
    assert p.store.count == 5
    p.item_received(wp(0), MISSION, 1.0, GCS)
    p.item_received(wp(1, alt=55.0), MISSION, 1.0, GCS)
    assert said(p.item_received(wp(2, frame=mav.MAV_FRAME_LOCAL_NED), MISSION, 1.0, GCS)) == [("ACK", "MAV_MISSION_UNSUPPORTED_FRAME", 0, GCS)]
    assert not p.uploading
    assert [i.z for i in p.store.items[1:]] == [55.0, 30.0, 30.0, 30.0]  # new item 1, old items 2-4


@pytest.mark.parametrize(
    ("item", "result"),
    [
        (wp(1, command=31999), "MAV_MISSION_UNSUPPORTED"),
        (wp(1, command=1), "MAV_MISSION_INVALID"),
        (wp(1, frame=mav.MAV_FRAME_BODY_NED), "MAV_MISSION_UNSUPPORTED_FRAME"),
        (wp(1, x=910_000_000), "MAV_MISSION_INVALID_PARAM5_X"),
        (wp(1, y=-1_810_000_000), "MAV_MISSION_INVALID_PARAM6_Y"),
        (wp(1, alt=float("nan")), "MAV_MISSION_INVALID_PARAM7"),
        (wp(1, params=(float("inf"), 0.0, 0.0, 0.0)), "MAV_MISSION_INVALID_PARAM1"),
        (wp(1, params=(0.0, float("nan"), 0.0, 0.0)), "MAV_MISSION_INVALID_PARAM2"),
        (wp(1, params=(0.0, 0.0, 0.0, float("nan"))), "MAV_MISSION_ACCEPTED"),  # a waypoint's yaw may be NaN
        (wp(1, command=mav.MAV_CMD_DO_CHANGE_SPEED, frame=mav.MAV_FRAME_BODY_NED), "MAV_MISSION_ACCEPTED"),  # no location
        (wp(1, command=mav.MAV_CMD_NAV_RETURN_TO_LAUNCH, x=0, y=0, alt=0.0), "MAV_MISSION_ACCEPTED"),
    ],
)
def test_item_checks(item: Item, result: str) -> None:
    assert mav.enums["MAV_MISSION_RESULT"][check_mission_item(item)].name == result


def test_do_jump_must_land_inside_the_mission() -> None:
    p = protocol()
    p.count_received(3, MISSION, 0.0, GCS)
    p.item_received(wp(0), MISSION, 0.0, GCS)
    jump = wp(1, command=mav.MAV_CMD_DO_JUMP, frame=mav.MAV_FRAME_MISSION, params=(5.0, 1.0, 0.0, 0.0), x=0, y=0, alt=0.0)
    assert said(p.item_received(jump, MISSION, 0.0, GCS)) == [("ACK", "MAV_MISSION_ERROR", 0, GCS)]


def test_too_many_items() -> None:
    p = protocol()
    assert said(p.count_received(MAX_MISSION_ITEMS + 1, MISSION, 0.0, GCS)) == [
        ("ACK", "MAV_MISSION_NO_SPACE", 0, GCS), ("TEXT", f"Only {MAX_MISSION_ITEMS} items are supported"),
    ]
    assert said(p.count_received(80, FENCE, 0.0, GCS))[1] == ("TEXT", "Only 70 items are supported")
    assert said(p.count_received(50, RALLY, 0.0, GCS))[1] == ("TEXT", "Only 46 items are supported")


def test_count_zero_clears_home_too_and_the_next_upload_writes_it_back() -> None:
    p = protocol()
    upload(p, 4)
    assert said(p.count_received(0, MISSION, 0.0, GCS)) == [("ACK", "MAV_MISSION_ACCEPTED", 0, GCS), ("TEXT", "Flight plan received"), ("MIS_TOTAL", 0)]
    assert said(p.request_list(MISSION, GCS)) == [("MISSION_COUNT", 0, 0, GCS)]
    assert said(p.request_item(0, MISSION, True, GCS))[0][0] == "MISSION_ITEM_INT"  # home can always be read
    p.count_received(3, MISSION, 1.0, GCS)
    assert ("MIS_TOTAL", 2) in said(p.item_received(wp(0), MISSION, 1.0, GCS))  # home first, then the item
    p.item_received(wp(1), MISSION, 1.0, GCS)
    p.item_received(wp(2), MISSION, 1.0, GCS)
    assert p.store.count == 3 and p.store.items[0].z == pytest.approx(HOME[2])


def test_a_mission_being_flown_cannot_be_cleared() -> None:
    p = protocol(running=True)
    assert said(p.clear_all(MISSION, GCS)) == [("ACK", "MAV_MISSION_ERROR", 0, GCS)]


def test_fence_and_rally_transfers_run_beside_the_mission_upload() -> None:
    p = protocol()
    p.count_received(3, MISSION, 0.0, GCS)
    p.item_received(wp(0), MISSION, 0.0, GCS)
    assert said(p.count_received(1, FENCE, 0.0, GCS)) == [("MISSION_REQUEST", 0, FENCE, GCS)]
    assert said(p.count_received(1, RALLY, 0.0, GCS)) == [("MISSION_REQUEST", 0, RALLY, GCS)]
    rally = wp(0, command=mav.MAV_CMD_NAV_RALLY_POINT)
    assert said(p.item_received(rally, RALLY, 0.1, GCS)) == [("ACK", "MAV_MISSION_ACCEPTED", RALLY, GCS), ("RALLY_TOTAL", 1)]
    assert said(p.item_received(wp(1), MISSION, 0.1, GCS))[0] == ("MISSION_REQUEST", 2, 0, GCS)
    assert said(p.item_received(wp(2), MISSION, 0.2, GCS))[0] == ("ACK", "MAV_MISSION_ACCEPTED", 0, GCS)
    assert p.uploading  # the fence still waits
    assert said(p.tick(8.5)) == [("ACK", "MAV_MISSION_OPERATION_CANCELLED", FENCE, GCS), ("TEXT", "Fence upload timeout")]
    assert p.rally[0].frame == mav.MAV_FRAME_GLOBAL_RELATIVE_ALT and p.fence == []


def test_rally_and_fence_item_checks() -> None:
    p = protocol()
    p.count_received(1, RALLY, 0.0, GCS)
    assert said(p.item_received(wp(0), RALLY, 0.0, GCS)) == [("ACK", "MAV_MISSION_UNSUPPORTED", RALLY, GCS)]
    p.count_received(1, FENCE, 0.0, GCS)
    circle = wp(0, command=mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, frame=mav.MAV_FRAME_GLOBAL_INT, params=(500.0, 0.0, 0.0, 0.0), alt=0.0)
    assert said(p.item_received(circle, FENCE, 0.0, GCS)) == [
        ("ACK", "MAV_MISSION_ACCEPTED", FENCE, GCS), ("TEXT", "Fence Indexed OK"), ("FENCE_TOTAL", 0),
    ]
    assert p.fence[0].frame == mav.MAV_FRAME_GLOBAL


@pytest.mark.parametrize("mission_type", [3, 5, mav.MAV_MISSION_TYPE_ALL])
def test_unknown_mission_types(mission_type: int) -> None:
    p = protocol()
    unsupported = [("ACK", "MAV_MISSION_UNSUPPORTED", mission_type, GCS)]
    assert said(p.count_received(2, mission_type, 0.0, GCS)) == unsupported
    assert said(p.request_list(mission_type, GCS)) == unsupported
    assert said(p.clear_all(mission_type, GCS)) == unsupported
    assert said(p.item_received(wp(0), mission_type, 0.0, GCS)) == unsupported
    assert p.request_item(0, mission_type, True, GCS) == [] and p.request_item(0, mission_type, False, GCS) == []


def test_a_legacy_float_item_is_stored_with_one_warning_per_upload() -> None:
    p = protocol()
    p.count_received(2, MISSION, 0.0, GCS)
    assert said(p.item_received(wp(0), MISSION, 0.0, GCS, legacy=True)) == [
        ("MISSION_REQUEST", 1, 0, GCS), ("TEXT", "got MISSION_ITEM; GCS should send MISSION_ITEM_INT"),
    ]
    assert said(p.item_received(wp(1), MISSION, 0.0, GCS, legacy=True))[:2] == [("ACK", "MAV_MISSION_ACCEPTED", 0, GCS), ("TEXT", "Flight plan received")]


def test_through_the_vehicle_in_simulated_time() -> None:
    """A SimCopter asks again for a missing item every simulated second, and gives up after eight."""
    v = copter()
    enc = mav.MAVLink(None, srcSystem=255, srcComponent=190)
    parser = mav.MAVLink(None)

    def send(msg: Any) -> None:
        (m,) = parser.parse_buffer(msg.pack(enc))
        v.handle(m)

    send(mav.MAVLink_mission_count_message(1, 1, 3, 0))
    send(mav.MAVLink_mission_item_int_message(1, 1, 0, 0, 16, 0, 1, 0, 0, 0, 0, 320603000, 1187969000, 10.0, 0))
    v.outbox.clear()
    for _ in range(int(9.0 / 0.05)):
        v.step(0.05)
    kinds = [(m.get_type(), getattr(m, "seq", getattr(m, "type", None))) for m in v.outbox if m.get_type() in ("MISSION_REQUEST", "MISSION_ACK")]
    assert kinds == [("MISSION_REQUEST", 1)] * 7 + [("MISSION_ACK", mav.MAV_MISSION_OPERATION_CANCELLED)]
    assert "Mission upload timeout" in [t for _, t in v.statustexts]
