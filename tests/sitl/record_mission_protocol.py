"""Record the mission item protocol's edge cases from a real ArduCopter SITL as a JSON Lines transcript.

A tool, not a test: it launches one ArduCopter SITL (binary and defaults from
ARDUPILOT_SITL_BIN / ARDUPILOT_SITL_DEFAULTS, as sitl/ardupilot_harness.py),
plays a ground station (sysid 255, compid 190; a second one as 254/190) with
pymavlink, walks through the cases in CASES and writes what went each way in
the format of tests/sitl/transcripts/*.jsonl: a header line, then
`{"t", "dir", "type", "sysid", "compid", "fields"}` per message, `t` in wall
seconds since launch. Each case starts with a `{"dir": "event", "type": "CASE"}`
line naming it. Everything of the mission protocol, every STATUSTEXT,
PARAM_VALUE and HEARTBEAT is kept; of the telemetry only the vehicle's clock
and state (TELEMETRY), one message per simulated second per type.

    ARDUPILOT_SITL_BIN=... ARDUPILOT_SITL_DEFAULTS=... \\
        .venv/bin/python -m tests.sitl.record_mission_protocol --instance 200 \\
        --out tests/sitl/transcripts/mission_upload_edge_cases.jsonl

tests/sitl/test_mission_protocol_replay.py replays the result against the
built-in simulator.
"""

from __future__ import annotations

import argparse
import json
import math
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.ardupilot_harness import ArduPilotFleet, SitlVehicle, sitl_paths

HOME = (32.0603, 118.7969, 10.0, 0.0)
GCS = (255, 190)
OTHER_GCS = (254, 190)
MISSION, FENCE, RALLY = mav.MAV_MISSION_TYPE_MISSION, mav.MAV_MISSION_TYPE_FENCE, mav.MAV_MISSION_TYPE_RALLY
#: Never thinned: the protocol under study and what explains it.
KEEP = frozenset(
    {
        "MISSION_COUNT", "MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ITEM", "MISSION_ITEM_INT", "MISSION_ACK",
        "MISSION_REQUEST_LIST", "MISSION_CLEAR_ALL", "STATUSTEXT", "PARAM_VALUE", "COMMAND_ACK", "HEARTBEAT",
        "HOME_POSITION", "GPS_GLOBAL_ORIGIN",
    }
)
#: Telemetry kept (thinned) besides: the vehicle's clock (time_boot_ms) and state. Any other type is not recorded.
TELEMETRY = frozenset({"ATTITUDE", "GLOBAL_POSITION_INT", "SYSTEM_TIME", "SYS_STATUS", "EKF_STATUS_REPORT", "GPS_RAW_INT", "MISSION_CURRENT"})
REQUESTS = ("MISSION_REQUEST", "MISSION_REQUEST_INT")
_CLASSES = {c.msgname: c for c in mav.mavlink_map.values()}


def fields_of(msg: Any) -> dict[str, Any]:
    out = {}
    for name in msg.get_fieldnames():
        value = getattr(msg, name)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace").rstrip("\x00")
        elif isinstance(value, str):
            value = value.rstrip("\x00")
        elif isinstance(value, float) and not math.isfinite(value):
            value = str(value)  # JSON has no NaN
        out[name] = value
    return out


class Gcs:
    """One TCP connection to the vehicle; every message either way goes into `records`."""

    def __init__(self, port: int, vehicle_sysid: int, speedup: float, t0: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.setblocking(False)
        self.sysid = vehicle_sysid
        self.speedup = speedup
        self.t0 = t0
        self.records: list[dict[str, Any]] = []
        self.inbox: list[Any] = []  # received, not yet looked at by a case
        self._encoders: dict[tuple[int, int], mav.MAVLink] = {}
        self._parser = mav.MAVLink(None, srcSystem=GCS[0], srcComponent=GCS[1])
        self._parser.robust_parsing = True
        self._last_kept: dict[str, float] = {}
        self._next_beat = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    # --- sending ------------------------------------------------------------------------------

    def send(self, msg: Any, src: tuple[int, int] = GCS) -> None:
        enc = self._encoders.get(src)
        if enc is None:
            enc = self._encoders[src] = mav.MAVLink(None, srcSystem=src[0], srcComponent=src[1])
        buf = msg.pack(enc)
        enc.seq = (enc.seq + 1) % 256
        self.sock.sendall(buf)
        self._record("tx", msg.get_type(), src, fields_of(msg))

    def count(self, n: int, mission_type: int = MISSION, src: tuple[int, int] = GCS) -> None:
        self.send(mav.MAVLink_mission_count_message(self.sysid, 1, n, mission_type), src)

    def item(self, it: dict[str, Any], seq: int | None = None, src: tuple[int, int] = GCS, mission_type: int = MISSION) -> None:
        f = dict(it)
        if seq is not None:
            f["seq"] = seq
        self.send(
            mav.MAVLink_mission_item_int_message(
                self.sysid, 1, f["seq"], f["frame"], f["command"], 0, 1, f.get("param1", 0.0), f.get("param2", 0.0),
                f.get("param3", 0.0), f.get("param4", 0.0), f.get("x", 0), f.get("y", 0), f.get("z", 0.0), mission_type,
            ),
            src,
        )

    def item_float(self, it: dict[str, Any]) -> None:
        self.send(
            mav.MAVLink_mission_item_message(
                self.sysid, 1, it["seq"], it["frame"], it["command"], 0, 1, it.get("param1", 0.0), it.get("param2", 0.0),
                it.get("param3", 0.0), it.get("param4", 0.0), it.get("x", 0) / 1e7, it.get("y", 0) / 1e7, it.get("z", 0.0), MISSION,
            )
        )

    def event(self, case: str, note: str) -> None:
        self.records.append({"t": round(self.now(), 3), "dir": "event", "type": "CASE", "sysid": 0, "compid": 0, "fields": {"case": case, "note": note}})
        print(f"{self.now():7.2f}  {case}: {note}", file=sys.stderr)

    # --- receiving ----------------------------------------------------------------------------

    def _record(self, direction: str, kind: str, src: tuple[int, int], fields: dict[str, Any]) -> None:
        self.records.append({"t": round(self.now(), 3), "dir": direction, "type": kind, "sysid": src[0], "compid": src[1], "fields": fields})

    def poll(self, timeout: float, early: bool = False) -> None:
        """Read for up to `timeout` wall seconds (with `early`, only until something arrives); keep the heartbeat going.

        The ground station's HEARTBEAT goes out once a simulated second, as a real one's does.
        """
        end = time.monotonic() + timeout
        while True:
            if self.now() >= self._next_beat:
                self._next_beat = self.now() + 1.0 / self.speedup
                self.send(mav.MAVLink_heartbeat_message(mav.MAV_TYPE_GCS, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_ACTIVE, 3))
            left = end - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(0.0, min(left, 0.02)))
            if ready:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("vehicle closed the connection")
                for msg in self._parser.parse_buffer(data) or ():
                    self._received(msg)
                if early:
                    return
            if left <= 0:
                return

    def _received(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA" or msg.get_srcSystem() != self.sysid:
            return
        self.inbox.append(msg)
        if kind not in KEEP and kind not in TELEMETRY:
            return
        if kind not in KEEP:
            last = self._last_kept.get(kind, -math.inf)
            if self.now() - last < 1.0 / self.speedup:
                return
            self._last_kept[kind] = self.now()
        self._record("rx", kind, (msg.get_srcSystem(), msg.get_srcComponent()), fields_of(msg))

    def wait(self, pred: Callable[[Any], bool], timeout: float) -> Any | None:
        """The first message in the inbox (or arriving within `timeout` wall s) that matches; earlier ones are dropped."""
        end = time.monotonic() + timeout
        while True:
            while self.inbox:
                msg = self.inbox.pop(0)
                if pred(msg):
                    return msg
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.poll(min(left, 0.05), early=True)

    def settle(self, sim_seconds: float) -> None:
        """Let `sim_seconds` of simulated time pass, keeping what arrives (and dropping it from the inbox)."""
        self.poll(sim_seconds / self.speedup)
        self.inbox.clear()


# --- predicates ---------------------------------------------------------------------------------------


def request(seq: int | None = None, mission_type: int = MISSION, to: tuple[int, int] = GCS) -> Callable[[Any], bool]:
    def pred(m: Any) -> bool:
        return (
            m.get_type() in REQUESTS and m.mission_type == mission_type and (seq is None or m.seq == seq)
            and (m.target_system, m.target_component) == to
        )

    return pred


def ack(mission_type: int = MISSION, to: tuple[int, int] = GCS, final: bool = True) -> Callable[[Any], bool]:
    """A MISSION_ACK; with `final`, not the INVALID_SEQUENCE ones (the upload goes on after those)."""

    def pred(m: Any) -> bool:
        return (
            m.get_type() == "MISSION_ACK" and m.mission_type == mission_type and (m.target_system, m.target_component) == to
            and not (final and m.type == mav.MAV_MISSION_INVALID_SEQUENCE)
        )

    return pred


def request_or_ack(mission_type: int = MISSION) -> Callable[[Any], bool]:
    r, a = request(mission_type=mission_type), ack(mission_type)
    return lambda m: r(m) or a(m)


# --- the mission ----------------------------------------------------------------------------------------


def mission(n: int, alt: float = 20.0, spacing_m: float = 40.0) -> list[dict[str, Any]]:
    """Home, takeoff, then waypoints going north (items as MISSION_ITEM_INT fields)."""
    lat, lon = HOME[0], HOME[1]
    items: list[dict[str, Any]] = [
        {"seq": 0, "frame": mav.MAV_FRAME_GLOBAL, "command": mav.MAV_CMD_NAV_WAYPOINT, "x": round(lat * 1e7), "y": round(lon * 1e7), "z": HOME[2]},
        {"seq": 1, "frame": mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, "command": mav.MAV_CMD_NAV_TAKEOFF, "x": 0, "y": 0, "z": alt},
    ]
    for seq in range(2, n):
        north = spacing_m * (seq - 1) / 111_195
        items.append({"seq": seq, "frame": mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, "command": mav.MAV_CMD_NAV_WAYPOINT,
                      "x": round((lat + north) * 1e7), "y": round(lon * 1e7), "z": alt})
    return items[:n]


def upload(g: Gcs, items: list[dict[str, Any]], on_request: Callable[[Any], bool] | None = None, send_count: bool = True) -> Any | None:
    """MISSION_COUNT, then answer every request (unless `on_request` handled it) until a final MISSION_ACK."""
    if send_count:
        g.count(len(items))
    while True:
        msg = g.wait(request_or_ack(), timeout=4.0)
        if msg is None or msg.get_type() == "MISSION_ACK":
            return msg
        if on_request is not None and on_request(msg):
            continue
        g.item(items[msg.seq])


def download(g: Gcs) -> list[Any]:
    g.send(mav.MAVLink_mission_request_list_message(g.sysid, 1, MISSION))
    count = g.wait(lambda m: m.get_type() == "MISSION_COUNT" and m.mission_type == MISSION, 2.0)
    got = []
    for seq in range(count.count if count is not None else 0):
        g.send(mav.MAVLink_mission_request_int_message(g.sysid, 1, seq, MISSION))
        item = g.wait(lambda m, s=seq: m.get_type() == "MISSION_ITEM_INT" and m.seq == s, 2.0)
        if item is not None:
            got.append(item)
    g.send(mav.MAVLink_mission_ack_message(g.sysid, 1, mav.MAV_MISSION_ACCEPTED, MISSION))
    return got


# --- the cases ---------------------------------------------------------------------------------------------


def case_upload(g: Gcs) -> None:
    g.event("upload", "a plain 6-item upload, each request answered once")
    upload(g, mission(6))


def case_duplicate_item(g: Gcs) -> None:
    g.event("duplicate_item", "request 2 answered with item 2 twice")
    items = mission(6)

    def twice(m: Any) -> bool:
        if m.seq == 2:
            g.item(items[2])
            g.item(items[2])
            return True
        return False

    upload(g, items, twice)


def case_late_answer(g: Gcs) -> None:
    g.event("late_answer", "request 2 answered only after the vehicle asked again; both requests answered (a slow ground station)")
    items = mission(6)
    seen = {"n": 0}

    def late(m: Any) -> bool:
        if m.seq != 2:
            return False
        seen["n"] += 1
        if seen["n"] == 1:
            again = g.wait(request(2), 2.0)  # the vehicle's own re-request
            g.item(items[2])  # answers the first request ...
            if again is not None:
                g.item(items[2])  # ... and the second: the vehicle now gets item 2 twice
        return True

    upload(g, items, late)


def case_item_ahead(g: Gcs) -> None:
    g.event("item_ahead", "item 3 sent when item 2 was asked for; then the re-request for 2 answered")
    items = mission(6)
    state = {"skipped": False}

    def ahead(m: Any) -> bool:
        if m.seq == 2 and not state["skipped"]:
            state["skipped"] = True
            g.item(items[3])
            return True
        return False

    upload(g, items, ahead)


def case_unanswered_request(g: Gcs) -> None:
    g.event("unanswered_request", "a 6-item upload (30 m) whose request 2 is never answered: re-requests, timeout; then a download")
    items = mission(6, alt=30.0)

    def silent(m: Any) -> bool:
        return m.seq >= 2

    g.count(len(items))
    while True:
        msg = g.wait(request_or_ack(), timeout=4.0)
        if msg is None or msg.get_type() == "MISSION_ACK":
            break
        if not silent(msg):
            g.item(items[msg.seq])
    g.settle(1.0)
    g.event("unanswered_request_download", "what the vehicle kept: new items 0-1, old items 2-5")
    download(g)


def case_restart_count(g: Gcs) -> None:
    g.event("restart_count", "a new MISSION_COUNT (4) when item 2 of 6 was asked for")
    six, four = mission(6), mission(4)
    state = {"restarted": False}

    def restart(m: Any) -> bool:
        if m.seq == 2 and not state["restarted"]:
            state["restarted"] = True
            g.count(4)
            return True
        g.item((four if state["restarted"] else six)[m.seq])
        return True

    upload(g, six, restart)
    g.settle(1.0)
    upload(g, mission(6), send_count=True)


def case_abandon_and_restart(g: Gcs) -> None:
    g.event("abandon_and_restart", "request 2 left unanswered for 3 simulated s (the vehicle asks again), then a new MISSION_COUNT")
    items = mission(6)
    state = {"abandoned": False}

    def abandon(m: Any) -> bool:
        if m.seq == 2 and not state["abandoned"]:
            state["abandoned"] = True
            g.settle(3.0)
            g.count(len(items))
            return True
        return False

    upload(g, items, abandon)
    g.settle(9.0)  # no late MISSION_ACK 15: the restart ended the abandoned upload


def case_count_twice(g: Gcs) -> None:
    g.event("count_twice", "MISSION_COUNT sent twice back to back")
    items = mission(6)
    g.count(len(items))
    upload(g, items)


def case_item_after_ack(g: Gcs) -> None:
    g.event("item_after_ack", "the last item sent again after the final ACK")
    items = mission(6)
    upload(g, items)
    g.item(items[-1])
    g.wait(ack(), 1.0)


def case_download_during_upload(g: Gcs) -> None:
    g.event("download_during_upload", "MISSION_REQUEST_LIST and MISSION_REQUEST_INT while an upload waits for item 2")
    items = mission(6)
    state = {"asked": False}

    def interleave(m: Any) -> bool:
        if m.seq == 2 and not state["asked"]:
            state["asked"] = True
            g.send(mav.MAVLink_mission_request_list_message(g.sysid, 1, MISSION))
            g.wait(ack(final=False), 1.0)
            g.send(mav.MAVLink_mission_request_int_message(g.sysid, 1, 0, MISSION))
            g.wait(ack(final=False), 1.0)
        return False

    upload(g, items, interleave)


def case_other_gcs(g: Gcs) -> None:
    g.event("other_gcs", "a second ground station (254/190) sends MISSION_COUNT and items while this one uploads")
    items = mission(6)
    state = {"done": False}

    def intrude(m: Any) -> bool:
        if m.seq == 2 and not state["done"]:
            state["done"] = True
            g.count(3, src=OTHER_GCS)
            g.wait(ack(to=OTHER_GCS, final=False), 1.0)
            g.item(items[2], src=OTHER_GCS)  # the seq the vehicle waits for, from the wrong sender
            g.wait(ack(to=OTHER_GCS, final=False), 1.0)
            g.item(items[4], src=OTHER_GCS)  # a wrong seq from the wrong sender
            g.wait(ack(to=OTHER_GCS, final=False), 1.0)
        return False

    upload(g, items, intrude)


def case_fence_during_upload(g: Gcs) -> None:
    g.event("fence_during_upload", "a fence MISSION_COUNT (2) while a mission upload runs; the fence requests are never answered")
    items = mission(6)
    state = {"done": False}

    def fence(m: Any) -> bool:
        if m.seq == 2 and not state["done"]:
            state["done"] = True
            g.count(2, mission_type=FENCE)
        return False

    upload(g, items, fence)
    g.wait(ack(FENCE), 4.0)  # the fence upload times out on its own
    g.settle(1.0)


def case_other_types(g: Gcs) -> None:
    g.event("other_types", "rally and fence counts of 0; an unknown mission_type (5) and MAV_MISSION_TYPE_ALL (255)")
    g.count(0, mission_type=RALLY)
    g.wait(ack(RALLY), 1.0)
    g.count(0, mission_type=FENCE)
    g.wait(ack(FENCE), 1.0)
    g.count(3, mission_type=5)
    g.wait(ack(5), 1.0)
    g.send(mav.MAVLink_mission_request_list_message(g.sysid, 1, 5))
    g.wait(ack(5), 1.0)
    g.send(mav.MAVLink_mission_request_int_message(g.sysid, 1, 0, 5))
    g.settle(1.0)
    g.item(mission(2)[1], seq=0, mission_type=5)
    g.wait(ack(5, final=False), 1.0)
    g.send(mav.MAVLink_mission_clear_all_message(g.sysid, 1, mav.MAV_MISSION_TYPE_ALL))
    g.wait(ack(mav.MAV_MISSION_TYPE_ALL), 1.0)
    g.send(mav.MAVLink_mission_request_list_message(g.sysid, 1, RALLY))
    g.wait(lambda m: m.get_type() == "MISSION_COUNT" and m.mission_type == RALLY, 1.0)


def case_fence_and_rally(g: Gcs) -> None:
    g.event("fence_and_rally", "a 1-point rally upload, a rally item with a mission command, a fence circle, too many of each, clears")
    lat, lon = round(HOME[0] * 1e7), round(HOME[1] * 1e7)
    rally = {"seq": 0, "frame": mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, "command": mav.MAV_CMD_NAV_RALLY_POINT, "x": lat + 5000, "y": lon, "z": 30.0}
    circle = {"seq": 0, "frame": mav.MAV_FRAME_GLOBAL_INT, "command": mav.MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION, "param1": 500.0, "x": lat, "y": lon}
    for mission_type, item in ((RALLY, rally), (RALLY, {**rally, "command": mav.MAV_CMD_NAV_WAYPOINT}), (FENCE, circle)):
        g.count(1, mission_type=mission_type)
        if g.wait(request(0, mission_type), 1.0) is not None:
            g.item(item, mission_type=mission_type)
        g.wait(ack(mission_type), 1.0)
        g.settle(0.5)
    for mission_type in (RALLY, FENCE):
        g.send(mav.MAVLink_mission_request_list_message(g.sysid, 1, mission_type))
        g.wait(lambda m, t=mission_type: m.get_type() == "MISSION_COUNT" and m.mission_type == t, 1.0)
        g.send(mav.MAVLink_mission_request_int_message(g.sysid, 1, 0, mission_type))
        g.wait(lambda m, t=mission_type: m.get_type() in ("MISSION_ITEM_INT", "MISSION_ACK") and m.mission_type == t, 1.0)
        g.count(5000, mission_type=mission_type)
        g.wait(ack(mission_type), 1.0)
        g.send(mav.MAVLink_mission_clear_all_message(g.sysid, 1, mission_type))
        g.wait(ack(mission_type), 1.0)
        g.settle(0.5)


def case_count_zero(g: Gcs) -> None:
    g.event("count_zero", "MISSION_COUNT 0, a download, then a 6-item upload")
    g.count(0)
    g.wait(ack(), 1.0)
    g.settle(1.0)
    download(g)
    upload(g, mission(6))


def case_too_many(g: Gcs) -> None:
    g.event("too_many", "MISSION_COUNT 5000")
    g.count(5000)
    g.wait(ack(), 1.0)


def case_bad_item(g: Gcs) -> None:
    g.event("bad_item", "item 2 with an unknown command (31999), then item 3; then a fresh upload")
    items = mission(6)
    state = {"bad": False}

    def bad(m: Any) -> bool:
        if m.seq == 2 and not state["bad"]:
            state["bad"] = True
            g.item({**items[2], "command": 31999})
            return True
        return False

    upload(g, items, bad)
    g.item(items[3])
    g.wait(ack(), 1.0)
    g.settle(1.0)
    upload(g, items)


def case_bad_values(g: Gcs) -> None:
    g.event("bad_values", "uploads refused for a bad frame, a bad latitude, an infinite param1, a DO_JUMP to 0")
    items = mission(4)
    for name, bad in (
        ("frame", {**items[2], "frame": mav.MAV_FRAME_LOCAL_NED}),
        ("latitude", {**items[2], "x": 910_000_000}),
        ("param1", {**items[2], "param1": float("inf")}),
        ("jump", {"seq": 2, "frame": mav.MAV_FRAME_MISSION, "command": mav.MAV_CMD_DO_JUMP, "param1": 0.0, "param2": 1.0}),
    ):
        g.event(f"bad_values_{name}", f"item 2 has a bad {name}")

        def swap(m: Any, b: dict[str, Any] = bad) -> bool:
            if m.seq == 2:
                g.item(b)
                return True
            return False

        upload(g, items, swap)
        g.settle(0.5)
    upload(g, mission(6))


def case_legacy_messages(g: Gcs) -> None:
    g.event("legacy_messages", "MISSION_REQUEST (not _INT) downloads, out-of-range requests, an upload in MISSION_ITEM (float)")
    g.send(mav.MAVLink_mission_request_message(g.sysid, 1, 1, MISSION))
    g.wait(lambda m: m.get_type() == "MISSION_ITEM", 1.0)
    g.send(mav.MAVLink_mission_request_message(g.sysid, 1, 2, MISSION))
    g.wait(lambda m: m.get_type() == "MISSION_ITEM", 1.0)
    g.send(mav.MAVLink_mission_request_int_message(g.sysid, 1, 99, MISSION))
    g.wait(ack(), 1.0)
    g.send(mav.MAVLink_mission_request_message(g.sysid, 1, 99, MISSION))
    g.wait(ack(), 1.0)
    g.settle(0.5)
    items = mission(4)
    g.count(len(items))
    while True:
        msg = g.wait(request_or_ack(), timeout=4.0)
        if msg is None or msg.get_type() == "MISSION_ACK":
            break
        g.item_float(items[msg.seq])
    g.settle(0.5)
    upload(g, mission(6))


def case_clear_during_upload(g: Gcs) -> None:
    g.event("clear_during_upload", "MISSION_CLEAR_ALL while an upload waits for item 2, then item 2; then a fresh upload")
    items = mission(6)
    state = {"cleared": False}

    def clear(m: Any) -> bool:
        if m.seq == 2 and not state["cleared"]:
            state["cleared"] = True
            g.send(mav.MAVLink_mission_clear_all_message(g.sysid, 1, MISSION))
            g.wait(ack(), 1.0)
            g.item(items[2])
            return True
        return False

    upload(g, items, clear)
    g.wait(ack(), 1.0)
    g.settle(1.0)
    upload(g, items)


CASES: dict[str, Callable[[Gcs], None]] = {
    "upload": case_upload,
    "duplicate_item": case_duplicate_item,
    "late_answer": case_late_answer,
    "item_ahead": case_item_ahead,
    "unanswered_request": case_unanswered_request,
    "restart_count": case_restart_count,
    "abandon_and_restart": case_abandon_and_restart,
    "count_twice": case_count_twice,
    "item_after_ack": case_item_after_ack,
    "download_during_upload": case_download_during_upload,
    "other_gcs": case_other_gcs,
    "fence_during_upload": case_fence_during_upload,
    "other_types": case_other_types,
    "fence_and_rally": case_fence_and_rally,
    "count_zero": case_count_zero,
    "too_many": case_too_many,
    "bad_item": case_bad_item,
    "bad_values": case_bad_values,
    "legacy_messages": case_legacy_messages,
    "clear_during_upload": case_clear_during_upload,
}


# --- running it --------------------------------------------------------------------------------------------


@contextmanager
def arducopter(instance: int, sysid: int, speedup: float) -> Iterator[tuple[subprocess.Popen[bytes], float, list[str]]]:
    binary, defaults = sitl_paths()
    vehicle = SitlVehicle(instance, HOME[0], HOME[1], HOME[2], HOME[3], sysid=sysid)
    workdir = Path(tempfile.mkdtemp(prefix="ardupilot-record-"))
    cmd = ArduPilotFleet([vehicle], speedup=speedup, binary=binary, defaults=defaults, workdir=workdir).command(vehicle)
    log = (workdir / "arducopter.log").open("wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc, t0, cmd
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def connect(port: int, sysid: int, speedup: float, t0: float, timeout: float = 30.0) -> Gcs:
    end = time.monotonic() + timeout
    while True:
        try:
            return Gcs(port, sysid, speedup, t0)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def wait_ready(g: Gcs, timeout: float) -> None:
    """Until the EKF uses GPS (home set): the state the controller flies from."""
    ready = lambda m: m.get_type() == "EKF_STATUS_REPORT" and (m.flags & 0x1F) == 0x1F and not m.flags & 0x80  # noqa: E731
    if g.wait(ready, timeout) is None:
        raise TimeoutError("the vehicle never became ready")
    g.settle(2.0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instance", type=int, default=200, help="SITL instance (-I, below 256: SITL keeps it in 8 bits): MAVLink on TCP 5760+10*N")
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--speedup", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "transcripts" / "mission_upload_edge_cases.jsonl")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = ap.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown cases: {unknown}")
    port = 5760 + 10 * args.instance
    with arducopter(args.instance, args.sysid, args.speedup) as (proc, t0, cmd):
        g = connect(port, args.sysid, args.speedup, t0)
        for stream, rate in ((mav.MAV_DATA_STREAM_EXTENDED_STATUS, 1), (mav.MAV_DATA_STREAM_EXTRA1, 2), (mav.MAV_DATA_STREAM_EXTRA3, 1), (mav.MAV_DATA_STREAM_POSITION, 1)):
            g.send(mav.MAVLink_request_data_stream_message(args.sysid, 1, stream, rate, 1))
        wait_ready(g, 120.0)
        for name in names:
            CASES[name](g)
            g.settle(2.0)
        if proc.poll() is not None:
            raise RuntimeError(f"arducopter exited with {proc.returncode}")
        version = "ArduCopter V4.7.0-dev (SITL, quad +)"
    header = {
        "scenario": "mission_upload_edge_cases",
        "speedup": args.speedup,
        "home": list(HOME),
        "ardupilot": version,
        "launch": " ".join(Path(c).name if c.startswith("/") else c for c in cmd),
        "vehicle_sysid": args.sysid,
        "gcs": {"sysid": GCS[0], "compid": GCS[1], "other": list(OTHER_GCS)},
        "cases": names,
        "recorder": "tests/sitl/record_mission_protocol.py",
        "notes": "Each case starts with a dir=event line (type CASE, fields.case). Mission protocol messages, STATUSTEXT, PARAM_VALUE "
                 "and HEARTBEAT kept; telemetry only " + ", ".join(sorted(TELEMETRY)) + ", 1 per simulated second per type. "
                 "t is wall seconds since launch; simulated time from the vehicle's time_boot_ms.",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as f:
        f.write(json.dumps(header) + "\n")
        for r in g.records:
            f.write(json.dumps(r) + "\n")
    print(f"wrote {len(g.records)} records to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
