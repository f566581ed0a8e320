"""Replay a recorded ground-station conversation against a simulated copter, in simulated time.

The transcripts (../shared/reference/ardupilot-sitl/transcripts, copied to
tests/sitl/transcripts for CI) were recorded at speedup 5 with wall-clock
timestamps. Their simulated time is recovered from the vehicle's own clock:
a straight-line fit of time_boot_ms against the wall timestamp. Each `tx`
message is packed as MAVLink 2 by a ground-station encoder, parsed back by a
vehicle-side parser (so the bytes are real) and handed to the vehicle at the
simulated time it reached the real one. Everything the vehicle says is kept
with its simulated time for comparison with the recording's `rx` messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from sitl.vehicle import SimCopter

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ardupilot-sitl" / "transcripts"
#: A copy inside the repository, so the replay runs where ../shared is absent (CI).
LOCAL_COPY = Path(__file__).resolve().parent / "transcripts"
NAMES = ("boot_to_armable", "guided_flight", "mission_auto", "rejections", "gcs_failsafe", "battery")


def transcript_dir() -> Path | None:
    for d in (SHARED, LOCAL_COPY):
        if d.is_dir() and all((d / f"{n}.jsonl").exists() for n in NAMES):
            return d
    return None


@dataclass(frozen=True)
class Msg:
    t: float  # simulated seconds since boot
    dir: str
    type: str
    fields: dict[str, Any]


def sim_clock(raw: list[dict[str, Any]]) -> Callable[[float], float]:
    """Wall seconds -> simulated seconds, from the vehicle's time_boot_ms in the recording."""
    pts = [(r["t"], r["fields"]["time_boot_ms"] / 1000.0) for r in raw if r["dir"] == "rx" and r["type"] in ("ATTITUDE", "GLOBAL_POSITION_INT")]
    a, b = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
    return lambda t: float(a * t + b)


def load(name: str) -> tuple[dict[str, Any], list[Msg]]:
    directory = transcript_dir()
    assert directory is not None, "transcripts not found"
    lines = (directory / f"{name}.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    raw = [json.loads(line) for line in lines[1:]]
    clock = sim_clock(raw)
    return header, [Msg(clock(r["t"]), r["dir"], r["type"], r["fields"]) for r in raw]


_CLASSES = {c.msgname: c for c in mavlink2.mavlink_map.values()}


def encode(gcs: Any, m: Msg) -> bytes:
    """Pack a recorded message the way the recording's ground station (sysid 255, compid 190) sent it."""
    cls = _CLASSES[m.type]
    fields = dict(m.fields)
    for name, kind in zip(cls.fieldnames, cls.fieldtypes, strict=True):
        if kind == "char" and isinstance(fields.get(name), str):
            fields[name] = fields[name].encode()
    msg = cls(**{k: fields.get(k, 0) for k in cls.fieldnames})
    buf = msg.pack(gcs)
    gcs.seq = (gcs.seq + 1) % 256
    return buf


@dataclass
class Replay:
    header: dict[str, Any]
    recorded: list[Msg]  # the real vehicle's messages (rx)
    sent: list[Msg]  # what the ground station sent (tx)
    got: list[Msg]  # the simulator's answers
    states: list[tuple[float, int, bool, float]]  # (t, mode, armed, relative altitude) at every step
    vehicle: SimCopter


def make_vehicle(header: dict[str, Any], **kwargs: Any) -> SimCopter:
    lat, lon, alt, hdg = header["home"]
    return SimCopter(1, SimpleNamespace(lat=lat, lon=lon, alt_amsl=alt), heading=hdg, **kwargs)


def replay(
    name: str,
    until: float | None = None,
    dt: float = 0.02,
    vehicle: SimCopter | None = None,
    shape: Callable[[list[Msg]], list[Msg]] | None = None,
) -> Replay:
    """Drive a vehicle with a transcript's `tx` messages; `shape` may adjust the recording first."""
    header, recorded = load(name)
    if shape is not None:
        recorded = shape(recorded)
    v = vehicle or make_vehicle(header)
    gcs = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    parser = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    tx = [m for m in recorded if m.dir == "tx"]
    end = until if until is not None else max(m.t for m in recorded) + 1.0
    got: list[Msg] = []
    states: list[tuple[float, int, bool, float]] = []
    i = 0
    while v.t < end:
        while i < len(tx) and tx[i].t <= v.t:
            for msg in parser.parse_buffer(encode(gcs, tx[i])) or []:
                v.handle(msg)
            i += 1
        v.step(dt)
        for msg in v.outbox + v.telemetry():
            got.append(Msg(v.t, "rx", msg.get_type(), msg.to_dict()))
        v.outbox.clear()
        states.append((v.t, int(v.mode), v.armed, v.relative_alt))
    return Replay(header, [m for m in recorded if m.dir == "rx"], tx, got, states, v)


# --- what to compare ---------------------------------------------------------------------------------


def acks(msgs: list[Msg]) -> list[tuple[int, int]]:
    return [(m.fields["command"], m.fields["result"]) for m in msgs if m.type == "COMMAND_ACK"]


_NUMBER = re.compile(r"\d+\.\d+|\d+(?= mAh)")


def texts(msgs: list[Msg], drop: tuple[str, ...] = ()) -> list[str]:
    """STATUSTEXTs in order, measured numbers masked ("SIM Hit ground at # m/s")."""
    out = []
    for m in msgs:
        if m.type == "STATUSTEXT":
            text = m.fields["text"]
            if not text.startswith(drop):
                out.append(_NUMBER.sub("#", text))
    return out


def text_times(msgs: list[Msg], text: str) -> list[float]:
    return [m.t for m in msgs if m.type == "STATUSTEXT" and m.fields["text"].startswith(text)]


def first_time(msgs: list[Msg], pred: Callable[[Msg], bool]) -> float | None:
    return next((m.t for m in msgs if pred(m)), None)


def of_type(msgs: list[Msg], *kinds: str) -> list[Msg]:
    return [m for m in msgs if m.type in kinds]


def heartbeat_mismatches(r: Replay, tolerance: float = 1.5, drift: float = 0.06) -> list[str]:
    """Recorded heartbeats whose (mode, armed) the simulator was not in at about the same time.

    The window is `tolerance` seconds plus `drift` of the time since the ground station's last
    command: flight times may differ a little from the real airframe's, reactions must not.
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


def settle_gcs_heartbeats(recorded: list[Msg], timeout: float = 5.0, check_period: float = 1.0 / 3.0) -> list[Msg]:
    """The recording's ground-station heartbeats, made as decisive as the real vehicle found them.

    The recorded station sent a heartbeat every 5.0-5.3 simulated seconds against a 5 s timeout
    that ArduCopter checks at 3 Hz, so whether a gap tripped "GCS Failsafe" hung on tens of
    milliseconds the recording cannot resolve (and the station, reacting to the failsafe text,
    sent its next heartbeat right after a trip). So: where the real vehicle did NOT trip during
    a gap longer than `timeout`, one extra heartbeat is sent just inside the timeout; where it
    did trip, the next heartbeat is held back, if need be, until one 3 Hz check has seen the gap.
    Everything else is sent as recorded.
    """
    tripped = [m.t for m in recorded if m.dir == "rx" and m.type == "STATUSTEXT" and m.fields["text"] == "GCS Failsafe"]
    beats = [m for m in recorded if m.dir == "tx" and m.type == "HEARTBEAT"]
    others = [m for m in recorded if not (m.dir == "tx" and m.type == "HEARTBEAT")]
    out: list[Msg] = beats[:1]
    for a, b in zip(beats, beats[1:], strict=False):
        sent_a = out[-1].t
        if b.t - a.t > timeout:
            if any(a.t + timeout - 0.05 < t <= b.t + 0.1 for t in tripped):
                out.append(Msg(max(b.t, sent_a + timeout + check_period + 0.01), "tx", "HEARTBEAT", b.fields))
                continue
            out.append(Msg(sent_a + timeout - 0.2, "tx", "HEARTBEAT", a.fields))
        out.append(Msg(max(b.t, out[-1].t), "tx", "HEARTBEAT", b.fields))
    return sorted(others + out, key=lambda m: m.t)
