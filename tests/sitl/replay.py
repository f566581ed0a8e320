"""Replay a recorded ground-station conversation against the simulated copter, in simulated time.

The recorded transcripts (../shared/reference/ardupilot-sitl/transcripts) ran
at speedup 5; each `tx` message is sent to the simulator at the simulated time
it was sent to the real vehicle (mapped from the recording's GPS timestamps),
as packed MAVLink 2 bytes parsed by a vehicle-side parser. Everything the
simulator sends back is collected with its simulated time, for comparison with
the recording's `rx` messages.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from sitl.kinematics import Home
from sitl.vehicle import SimCopter

TRANSCRIPTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ardupilot-sitl" / "transcripts"
#: A copy inside the repository, so the replay runs where ../shared is absent (CI).
LOCAL_COPY = Path(__file__).resolve().parent / "transcripts"


def transcript_dir() -> Path | None:
    for d in (TRANSCRIPTS, LOCAL_COPY):
        if d.is_dir() and any(d.glob("*.jsonl")):
            return d
    return None


@dataclass(frozen=True)
class Msg:
    t: float  # simulated seconds
    dir: str
    type: str
    fields: dict[str, Any]


def load(name: str) -> tuple[dict[str, Any], list[Msg]]:
    directory = transcript_dir()
    assert directory is not None
    lines = (directory / f"{name}.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    raw = [json.loads(line) for line in lines[1:]]
    xs = [r["t"] for r in raw if r["type"] == "GPS_RAW_INT"]
    ys = [r["fields"]["time_usec"] / 1e6 for r in raw if r["type"] == "GPS_RAW_INT"]
    a, b = np.polyfit(xs, ys, 1)
    return header, [Msg(a * r["t"] + b, r["dir"], r["type"], r["fields"]) for r in raw]


def _encode(gcs: Any, m: Msg) -> bytes:
    cls = next(c for c in mavlink2.mavlink_map.values() if c.msgname == m.type)
    fields = dict(m.fields)
    for name, kind in zip(cls.fieldnames, cls.fieldtypes, strict=True):
        if kind == "char" and isinstance(fields.get(name), str):
            fields[name] = fields[name].encode()
    msg = cls(**{k: v for k, v in fields.items() if k in cls.fieldnames})
    buf = msg.pack(gcs)
    gcs.seq = (gcs.seq + 1) % 256
    return buf


@dataclass
class Replay:
    recorded: list[Msg]  # the real vehicle's messages (rx)
    sent: list[Msg]  # what the ground station sent (tx)
    got: list[Msg]  # the simulator's answers
    states: list[tuple[float, int, bool, float]]  # (t, mode, armed, altitude) every step
    vehicle: SimCopter


def replay_full(name: str, until: float | None = None, dt: float = 0.02) -> Replay:
    header, recorded = load(name)
    lat, lon, alt, hdg = header["home"]
    vehicle = SimCopter(1, Home(lat, lon, alt), heading=hdg)
    gcs = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    parser = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    tx = [m for m in recorded if m.dir == "tx"]
    end = until if until is not None else max(m.t for m in recorded) + 1.0
    out: list[Msg] = []
    states: list[tuple[float, int, bool, float]] = []
    i = 0
    while vehicle.t < end:
        while i < len(tx) and tx[i].t <= vehicle.t:
            for msg in parser.parse_buffer(_encode(gcs, tx[i])) or []:
                vehicle.handle(msg)
            i += 1
        vehicle.step(dt)
        for msg in vehicle.outbox + vehicle.telemetry():
            out.append(Msg(vehicle.t, "rx", msg.get_type(), msg.to_dict()))
        vehicle.outbox = []
        states.append((vehicle.t, vehicle.mode, vehicle.armed, vehicle.motion.alt))
    return Replay([m for m in recorded if m.dir == "rx"], tx, out, states, vehicle)


def replay(name: str, until: float | None = None) -> tuple[list[Msg], list[Msg], SimCopter]:
    r = replay_full(name, until)
    return r.recorded, r.got, r.vehicle


# --- what to compare ---------------------------------------------------------------------


def acks(msgs: list[Msg]) -> list[tuple[int, int]]:
    return [(m.fields["command"], m.fields["result"]) for m in msgs if m.type == "COMMAND_ACK"]


NUMBER = re.compile(r"\d+\.\d+|\d+(?= mAh)")
#: Texts about sensors the simulator does not model (IMU consistency is simulated; these are not).
UNMODELLED = ("in-flight yaw alignment",)


def texts(msgs: list[Msg]) -> list[str]:
    out = []
    for m in msgs:
        if m.type == "STATUSTEXT":
            text = m.fields["text"]
            if not any(u in text for u in UNMODELLED):
                out.append(NUMBER.sub("#", text))
    return out


def texts_with_times(msgs: list[Msg]) -> list[tuple[float, str]]:
    return [(m.t, m.fields["text"]) for m in msgs if m.type == "STATUSTEXT"]


def modes(msgs: list[Msg]) -> list[tuple[int, bool]]:
    """(custom_mode, armed) each time the HEARTBEAT changes."""
    seq: list[tuple[int, bool]] = []
    for m in msgs:
        if m.type == "HEARTBEAT":
            state = (m.fields["custom_mode"], bool(m.fields["base_mode"] & 128))
            if not seq or seq[-1] != state:
                seq.append(state)
    return seq


def heartbeat_mismatches(r: Replay, tolerance: float = 1.5, drift: float = 0.06) -> list[str]:
    """Recorded heartbeats whose (mode, armed) the simulator was not in at about the same time.

    The window is `tolerance` seconds, plus `drift` of the time since the last command (flight
    durations differ a little from the real airframe's; boot and command reactions must not).
    """
    commands = [m.t for m in r.sent if m.type != "HEARTBEAT"]
    bad = []
    for m in r.recorded:
        if m.type != "HEARTBEAT":
            continue
        want = (m.fields["custom_mode"], bool(m.fields["base_mode"] & 128))
        since = m.t - max([c for c in commands if c <= m.t], default=0.0)
        window = tolerance + drift * since
        seen = {(mode, armed) for t, mode, armed, _ in r.states if abs(t - m.t) <= window}
        if want not in seen:
            bad.append(f"at {m.t:.1f} s recorded mode {want[0]} armed={want[1]}, simulator was {sorted(seen)}")
    return bad


def first_time(msgs: list[Msg], pred) -> float | None:  # noqa: ANN001
    return next((m.t for m in msgs if pred(m)), None)


def of_type(msgs: list[Msg], *kinds: str) -> list[Msg]:
    return [m for m in msgs if m.type in kinds]
