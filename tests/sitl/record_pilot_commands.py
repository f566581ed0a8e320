"""Record a pilot's in-flight commands on a real ArduCopter SITL (with a servo gimbal) as a JSON Lines transcript.

A tool, not a test, built on tests/sitl/record_mission_protocol.py (same
ground station, same transcript format). One SITL instance gets the gimbal the
fleet's instances get (sitl.roster.SITL_GIMBAL_PARAMS) and is flown through
what the pilot page sends (the MAVLink table of issue 17): DO_REPOSITION in
GUIDED, refused variants, from AUTO without and with the CHANGE_MODE flag, AUTO
resumed after a GUIDED pause, DO_MOUNT_CONTROL, DO_SET_ROI_LOCATION /
DO_SET_ROI_NONE, CIRCLE with CIRCLE_OPTIONS INIT_AT_CENTER + ROI_AT_CENTER and
without, and LAND. Each case starts with a `{"dir": "event", "type": "CASE"}`
line. COMMAND_ACK, STATUSTEXT, PARAM_VALUE, HEARTBEAT, MISSION_CURRENT,
MISSION_ITEM_REACHED and GIMBAL_DEVICE_ATTITUDE_STATUS / MOUNT_STATUS are kept
whole; GLOBAL_POSITION_INT and ATTITUDE four times a simulated second (to
measure the orbit), other telemetry once.

    ARDUPILOT_SITL_BIN=... ARDUPILOT_SITL_DEFAULTS=... \\
        .venv/bin/python -m tests.sitl.record_pilot_commands --instance 150 \\
        --out tests/sitl/transcripts/pilot_commands.jsonl

tests/sitl/test_pilot_commands_replay.py replays the result against the
built-in simulator.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.ardupilot_harness import ArduPilotFleet, SitlVehicle, centre_sticks, sitl_paths
from sitl.roster import SITL_GIMBAL_PARAMS, SITL_RC_PARAMS
from tests.sitl.record_mission_protocol import GCS, Gcs, fields_of, upload, wait_ready

HOME = (32.0603, 118.7969, 10.0, 0.0)
M_PER_DEG_LAT = 110_886.0  # at 32 degrees north (WGS-84 meridian arc)
M_PER_DEG_LON = 94_450.0
KEEP = frozenset(
    {
        "COMMAND_ACK", "STATUSTEXT", "PARAM_VALUE", "HEARTBEAT", "MISSION_CURRENT", "MISSION_ITEM_REACHED", "MISSION_ACK",
        "MISSION_COUNT", "MISSION_REQUEST", "MISSION_REQUEST_INT", "HOME_POSITION", "GPS_GLOBAL_ORIGIN",
        "GIMBAL_DEVICE_ATTITUDE_STATUS", "MOUNT_STATUS", "MOUNT_ORIENTATION", "GIMBAL_MANAGER_STATUS",
    }
)
#: Telemetry kept, thinned to the period (simulated seconds) given.
TELEMETRY = {
    "GLOBAL_POSITION_INT": 0.25, "ATTITUDE": 0.25, "NAV_CONTROLLER_OUTPUT": 1.0, "POSITION_TARGET_GLOBAL_INT": 1.0,
    "SYS_STATUS": 1.0, "EKF_STATUS_REPORT": 1.0, "SYSTEM_TIME": 1.0, "VFR_HUD": 1.0,
}
REL = mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT


def offset(north: float, east: float) -> tuple[float, float]:
    """(lat, lon) `north`/`east` metres from home."""
    return HOME[0] + north / M_PER_DEG_LAT, HOME[1] + east / M_PER_DEG_LON


class PilotGcs(Gcs):
    """The mission recorder's ground station, keeping this recording's messages and the latest of each type."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.last: dict[str, Any] = {}

    def _received(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA" or msg.get_srcSystem() != self.sysid:
            return
        self.inbox.append(msg)
        self.last[kind] = msg
        if kind == "STATUSTEXT":
            print(f"{self.now():7.2f}    {msg.text}", file=sys.stderr)
        if kind not in KEEP and kind not in TELEMETRY:
            return
        if kind not in KEEP:
            last = self._last_kept.get(kind, -math.inf)
            if self.now() - last < TELEMETRY[kind] / self.speedup * 0.95:
                return
            self._last_kept[kind] = self.now()
        self._record("rx", kind, (msg.get_srcSystem(), msg.get_srcComponent()), fields_of(msg))

    # --- commands ---------------------------------------------------------------------------------

    def _ack(self, command: int, timeout: float = 3.0) -> int | None:
        m = self.wait(lambda m: m.get_type() == "COMMAND_ACK" and m.command == command, timeout)
        result = None if m is None else m.result
        print(f"{self.now():7.2f}    ack {command}: {result}", file=sys.stderr)
        return result

    def long(self, command: int, *params: float) -> int | None:
        p = list(params) + [0.0] * (7 - len(params))
        self.send(mav.MAVLink_command_long_message(self.sysid, 1, command, 0, *p))
        return self._ack(command)

    def int_(self, command: int, frame: int, p1: float = 0, p2: float = 0, p3: float = 0, p4: float = 0,
             lat: float = 0.0, lon: float = 0.0, z: float = 0.0) -> int | None:
        self.send(mav.MAVLink_command_int_message(self.sysid, 1, frame, command, 0, 0, p1, p2, p3, p4,
                                                  round(lat * 1e7), round(lon * 1e7), z))
        return self._ack(command)

    def mode(self, number: int) -> int | None:
        return self.long(mav.MAV_CMD_DO_SET_MODE, 1, number)

    def reposition(self, lat: float, lon: float, alt: float, flags: int = 0, frame: int = REL) -> int | None:
        return self.int_(mav.MAV_CMD_DO_REPOSITION, frame, -1, flags, 0, math.nan, lat, lon, alt)

    def param(self, name: str, value: float, kind: int = mav.MAV_PARAM_TYPE_REAL32) -> None:
        self.send(mav.MAVLink_param_set_message(self.sysid, 1, name.encode(), value, kind))
        self.wait(lambda m: m.get_type() == "PARAM_VALUE" and m.param_id == name, 3.0)

    # --- state --------------------------------------------------------------------------------------

    def position(self) -> tuple[float, float, float]:
        p = self.last["GLOBAL_POSITION_INT"]
        return p.lat / 1e7, p.lon / 1e7, p.relative_alt / 1000.0

    def fly(self, sim_seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Let up to `sim_seconds` pass (ending early once `until()` holds)."""
        end = time.monotonic() + sim_seconds / self.speedup
        while time.monotonic() < end:
            self.poll(0.1 / self.speedup)
            self.inbox.clear()
            if until is not None and until():
                return

    def near(self, lat: float, lon: float, alt: float | None = None, within: float = 2.0) -> Callable[[], bool]:
        def pred() -> bool:
            if "GLOBAL_POSITION_INT" not in self.last:
                return False
            la, lo, al = self.position()
            d = math.hypot((la - lat) * M_PER_DEG_LAT, (lo - lon) * M_PER_DEG_LON)
            p = self.last["GLOBAL_POSITION_INT"]
            slow = math.hypot(p.vx, p.vy) < 50
            return d < within and slow and (alt is None or abs(al - alt) < 1.0)

        return pred

    def current_seq(self) -> int:
        m = self.last.get("MISSION_CURRENT")
        return -1 if m is None else m.seq


# --- the flight -----------------------------------------------------------------------------------------


def mission_items() -> list[dict[str, Any]]:
    """Home, takeoff to 30 m, a long leg north (item 2), one east (3), back south (4)."""
    lat, lon = HOME[0], HOME[1]
    items: list[dict[str, Any]] = [
        {"seq": 0, "frame": mav.MAV_FRAME_GLOBAL, "command": mav.MAV_CMD_NAV_WAYPOINT, "x": round(lat * 1e7), "y": round(lon * 1e7), "z": HOME[2]},
        {"seq": 1, "frame": REL, "command": mav.MAV_CMD_NAV_TAKEOFF, "x": 0, "y": 0, "z": 30.0},
    ]
    for seq, (n, e) in enumerate([(500.0, 0.0), (500.0, 300.0), (0.0, 300.0)], start=2):
        la, lo = offset(n, e)
        items.append({"seq": seq, "frame": REL, "command": mav.MAV_CMD_NAV_WAYPOINT, "x": round(la * 1e7), "y": round(lo * 1e7), "z": 30.0})
    return items


def case_takeoff(g: PilotGcs) -> None:
    g.event("setup", "upload a 5-item mission (takeoff, 500 m north, east, south); GUIDED, arm, take off to 30 m")
    upload(g, mission_items())
    g.mode(mav.COPTER_MODE_GUIDED)
    for _ in range(30):
        if g.long(mav.MAV_CMD_COMPONENT_ARM_DISARM, 1) == mav.MAV_RESULT_ACCEPTED:
            break
        g.fly(1.0)
    g.long(mav.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 30.0)
    g.fly(40.0, lambda: g.position()[2] > 29.5)
    g.fly(2.0)


def case_reposition_guided(g: PilotGcs) -> None:
    g.event("reposition_guided", "DO_REPOSITION in GUIDED, no flag: 80 m east at 40 m; flown until there")
    lat, lon = offset(0.0, 80.0)
    g.reposition(lat, lon, 40.0)
    g.fly(60.0, g.near(lat, lon, 40.0))
    g.fly(2.0)


def case_reposition_invalid(g: PilotGcs) -> None:
    g.event("reposition_invalid", "relative alt 0, lat/lon 0,0, a local frame, out-of-range latitude, COMMAND_LONG")
    lat, lon, _ = g.position()
    g.reposition(lat, lon, 0.0)
    g.reposition(0.0, 0.0, 40.0)
    g.reposition(lat, lon, 40.0, frame=mav.MAV_FRAME_LOCAL_NED)
    g.send(mav.MAVLink_command_int_message(g.sysid, 1, REL, mav.MAV_CMD_DO_REPOSITION, 0, 0, -1, 0, 0, math.nan,
                                           950_000_000, round(lon * 1e7), 40.0))
    g._ack(mav.MAV_CMD_DO_REPOSITION)
    g.long(mav.MAV_CMD_DO_REPOSITION, -1, 0, 0, math.nan, lat, lon, 40.0)
    g.fly(2.0)


def case_mount(g: PilotGcs) -> None:
    g.event("mount", "DO_MOUNT_CONTROL pitch -45, then -90, then 0 (MAVLINK_TARGETING); -120 refused; a retract")
    for pitch in (-45.0, -90.0, 0.0, -30.0):
        g.long(mav.MAV_CMD_DO_MOUNT_CONTROL, pitch, 0, 0, 0, 0, 0, mav.MAV_MOUNT_MODE_MAVLINK_TARGETING)
        g.fly(3.0)
    g.long(mav.MAV_CMD_DO_MOUNT_CONTROL, -120.0, 0, 0, 0, 0, 0, mav.MAV_MOUNT_MODE_MAVLINK_TARGETING)
    g.fly(2.0)


def case_roi(g: PilotGcs) -> None:
    g.event("roi", "DO_SET_ROI_LOCATION 60 m north-west of the copter at ground level; 10 s; DO_SET_ROI_NONE; 5 s")
    lat, lon, _ = g.position()
    g.int_(mav.MAV_CMD_DO_SET_ROI_LOCATION, REL, lat=lat + 42.0 / M_PER_DEG_LAT, lon=lon - 42.0 / M_PER_DEG_LON, z=0.0)
    g.fly(10.0)
    g.int_(mav.MAV_CMD_DO_SET_ROI_NONE, REL)
    g.fly(5.0)
    g.event("roi_then_reposition", "ROI set, then a reposition 60 m south: does the copter keep facing the ROI?")
    lat, lon, _ = g.position()
    g.int_(mav.MAV_CMD_DO_SET_ROI_LOCATION, REL, lat=lat, lon=lon + 100.0 / M_PER_DEG_LON, z=0.0)
    g.fly(5.0)
    g.reposition(lat - 60.0 / M_PER_DEG_LAT, lon, 40.0)
    g.fly(30.0, g.near(lat - 60.0 / M_PER_DEG_LAT, lon, 40.0))
    g.fly(3.0)
    g.int_(mav.MAV_CMD_DO_SET_ROI_NONE, REL)
    g.fly(2.0)


def case_auto_pause_resume(g: PilotGcs) -> None:
    g.event("auto_start", "DO_SET_MODE AUTO: the mission from item 1; flown until 20 s into the leg north (item 2)")
    g.mode(mav.COPTER_MODE_AUTO)
    g.fly(90.0, lambda: g.current_seq() == 2)
    g.fly(20.0)
    g.event("reposition_auto_denied", "DO_REPOSITION in AUTO without CHANGE_MODE: refused, the mission flies on")
    lat, lon, alt = g.position()
    g.reposition(lat, lon + 60.0 / M_PER_DEG_LON, alt)
    g.fly(2.0)
    g.event("reposition_auto_flag", "DO_REPOSITION with CHANGE_MODE: GUIDED, 60 m east of where it was; flown until there")
    lat, lon, alt = g.position()
    target = (lat, lon + 60.0 / M_PER_DEG_LON)
    g.reposition(*target, alt, flags=mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE)
    g.fly(60.0, g.near(*target))
    g.fly(3.0)
    g.event("auto_resume", "DO_SET_MODE AUTO after the GUIDED pause: the same item (2) goes on; flown until item 3 starts")
    g.mode(mav.COPTER_MODE_AUTO)
    g.fly(120.0, lambda: g.current_seq() == 3)
    g.fly(5.0)
    g.event("hold", "DO_REPOSITION with CHANGE_MODE at the current position and altitude: hold in GUIDED")
    lat, lon, alt = g.position()
    g.reposition(lat, lon, round(alt), flags=mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE)
    g.fly(15.0)


def case_circle(g: PilotGcs) -> None:
    g.event("circle_center", "CIRCLE_RADIUS 3000 cm, CIRCLE_RATE 10 deg/s, CIRCLE_OPTIONS 12 (INIT_AT_CENTER + ROI_AT_CENTER); CIRCLE for 80 s")
    g.param("CIRCLE_RADIUS", 3000.0)
    g.param("CIRCLE_RATE", 10.0)
    g.param("CIRCLE_OPTIONS", 12.0, mav.MAV_PARAM_TYPE_INT16)
    g.mode(mav.COPTER_MODE_CIRCLE)
    g.fly(80.0)
    g.event("circle_roi", "DO_SET_ROI_LOCATION 100 m north of the copter while circling; 15 s; ROI none; 10 s")
    lat, lon, _ = g.position()
    g.int_(mav.MAV_CMD_DO_SET_ROI_LOCATION, REL, lat=lat + 100.0 / M_PER_DEG_LAT, lon=lon, z=0.0)
    g.fly(15.0)
    g.int_(mav.MAV_CMD_DO_SET_ROI_NONE, REL)
    g.fly(10.0)
    g.event("circle_hold", "DO_REPOSITION with CHANGE_MODE from CIRCLE at the current position: GUIDED hold")
    lat, lon, alt = g.position()
    g.reposition(lat, lon, round(alt), flags=mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE)
    g.fly(12.0)
    g.event("circle_ahead", "CIRCLE_RADIUS 2000, CIRCLE_RATE -15 (counter-clockwise), CIRCLE_OPTIONS 0: centre ahead of the nose; 50 s")
    g.param("CIRCLE_RADIUS", 2000.0)
    g.param("CIRCLE_RATE", -15.0)
    g.param("CIRCLE_OPTIONS", 0.0, mav.MAV_PARAM_TYPE_INT16)
    g.mode(mav.COPTER_MODE_CIRCLE)
    g.fly(50.0)
    g.event("circle_altitude", "DO_REPOSITION (flag) from CIRCLE to the same point 15 m higher, CIRCLE again: orbit at the new height")
    lat, lon, alt = g.position()
    g.reposition(lat, lon, round(alt) + 15.0, flags=mav.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE)
    g.fly(25.0, g.near(lat, lon, round(alt) + 15.0))
    g.param("CIRCLE_OPTIONS", 12.0, mav.MAV_PARAM_TYPE_INT16)
    g.mode(mav.COPTER_MODE_CIRCLE)
    g.fly(30.0)


def case_land(g: PilotGcs) -> None:
    g.event("land", "DO_SET_MODE LAND from CIRCLE: lands where it is, disarms")
    g.mode(mav.COPTER_MODE_LAND)
    g.fly(90.0, lambda: not (g.last["HEARTBEAT"].base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED))
    g.fly(3.0)


CASES: dict[str, Callable[[PilotGcs], None]] = {
    "takeoff": case_takeoff,
    "reposition_guided": case_reposition_guided,
    "reposition_invalid": case_reposition_invalid,
    "mount": case_mount,
    "roi": case_roi,
    "auto_pause_resume": case_auto_pause_resume,
    "circle": case_circle,
    "land": case_land,
}


@contextmanager
def arducopter(instance: int, sysid: int, speedup: float, params: dict[str, float]) -> Iterator[tuple[subprocess.Popen[bytes], float, list[str]]]:
    binary, defaults = sitl_paths()
    vehicle = SitlVehicle(instance, HOME[0], HOME[1], HOME[2], HOME[3], sysid=sysid, params=params)
    workdir = Path(tempfile.mkdtemp(prefix="ardupilot-record-"))
    cmd = ArduPilotFleet([vehicle], speedup=speedup, binary=binary, defaults=defaults, workdir=workdir).command(vehicle)
    log = (workdir / "arducopter.log").open("wb")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir / f"instance-{instance}", stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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


def connect_pilot(port: int, sysid: int, speedup: float, t0: float, timeout: float = 30.0) -> PilotGcs:
    end = time.monotonic() + timeout
    while True:
        try:
            return PilotGcs(port, sysid, speedup, t0)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instance", type=int, default=150, help="SITL instance (-I): MAVLink on TCP 5760+10*N")
    ap.add_argument("--sysid", type=int, default=1)
    ap.add_argument("--speedup", type=float, default=5.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "transcripts" / "pilot_commands.jsonl")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of: " + ", ".join(CASES))
    args = ap.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    unknown = [c for c in names if c not in CASES]
    if unknown:
        ap.error(f"unknown cases: {unknown}")
    port = 5760 + 10 * args.instance
    params = {**SITL_GIMBAL_PARAMS, **SITL_RC_PARAMS}  # as sitl.roster.ardupilot_overrides gives every instance
    with arducopter(args.instance, args.sysid, args.speedup, params) as (proc, t0, cmd):
        g = connect_pilot(port, args.sysid, args.speedup, t0)
        for stream, rate in ((mav.MAV_DATA_STREAM_EXTENDED_STATUS, 2), (mav.MAV_DATA_STREAM_EXTRA1, 4), (mav.MAV_DATA_STREAM_EXTRA3, 2),
                             (mav.MAV_DATA_STREAM_POSITION, 4), (mav.MAV_DATA_STREAM_EXTRA2, 1)):
            g.send(mav.MAVLink_request_data_stream_message(args.sysid, 1, stream, rate, 1))
        wait_ready(g, 120.0)
        centre_sticks(5501 + 10 * args.instance)  # as the harness does
        try:
            for name in names:
                CASES[name](g)
                g.fly(1.0)
        finally:
            if proc.poll() is not None:
                print(f"arducopter exited with {proc.returncode}", file=sys.stderr)
            header = {
                "scenario": "pilot_commands",
                "speedup": args.speedup,
                "home": list(HOME),
                "ardupilot": "ArduCopter V4.7.0-dev (SITL, quad +)",
                "launch": " ".join(Path(c).name if c.startswith("/") else c for c in cmd),
                "params": params,
                "vehicle_sysid": args.sysid,
                "gcs": {"sysid": GCS[0], "compid": GCS[1]},
                "cases": names,
                "recorder": "tests/sitl/record_pilot_commands.py",
                "notes": "Each case starts with a dir=event line (type CASE, fields.case). " + ", ".join(sorted(KEEP)) + " kept whole; "
                         "telemetry thinned (simulated seconds): " + json.dumps(TELEMETRY) + ". t is wall seconds since launch; "
                         "simulated time from the vehicle's time_boot_ms.",
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
