"""The ground station's side of one MAVLink mission upload: a state machine fed messages and the time.

No I/O here (the way aiortc models its protocols): `MissionUpload` never reads a
socket or a clock. The owner calls `start(now)`, hands it every MISSION_REQUEST,
MISSION_REQUEST_INT and MISSION_ACK from the vehicle with `receive(msg, now)`,
calls `tick(now)` once `next_tick` has passed, and sends the messages all three
return. `finished` says when to stop; `failure` says why it failed, if it did.

How ArduCopter 4.7 runs an upload (libraries/GCS_MAVLink/MissionItemProtocol.cpp,
and the recordings in tests/sitl/transcripts/mission_upload_edge_cases.jsonl),
and what this side does about each part of it:

* MISSION_COUNT starts the upload; the vehicle asks for item 0 with
  MISSION_REQUEST (ArduPilot; PX4 and the spec use MISSION_REQUEST_INT: both are
  answered the same way, with MISSION_ITEM_INT). A COUNT can be lost, so it is
  sent again every `count_timeout` until the first request, `count_attempts`
  times in all. A repeated COUNT from the same ground station restarts the
  vehicle's upload from item 0, so a late answer to an earlier COUNT is harmless.
* The vehicle drives the transfer: after each item it asks for the next one, and
  it asks again for the same one after 1 s without it (plus its stream slowdown),
  giving up after 8 s without progress (MISSION_ACK OPERATION_CANCELLED and
  "Mission upload timeout"). So this side never sends an item nobody asked for:
  it answers every request for item k with item k, again if asked again
  (idempotent). A slow answer therefore meets the vehicle's own re-request, and
  the vehicle receives item k twice: it stores the first and answers the second
  with MISSION_ACK INVALID_SEQUENCE while the upload goes on. INVALID_SEQUENCE is
  a rejection of that one stray message, never of the upload, and is only counted.
* Requests for item k > 0 before the request for item 0, and acks that can never
  answer a MISSION_COUNT (INVALID_SEQUENCE, OPERATION_CANCELLED, a non-empty
  ACCEPTED) arriving before it, belong to an earlier transfer (say, one abandoned
  by an earlier call whose re-requests were still on the way): ignored. Once
  item 0 has been asked for, the link is ordered, so nothing older can follow.
* DENIED while the vehicle asks this station for items never ends the upload
  either: ArduPilot denies a download (MISSION_REQUEST_LIST, MISSION_REQUEST_INT)
  or another station's COUNT or item during an upload and carries on, and a
  station sharing our ids (QGroundControl's default is also 255/190) can draw
  such an answer to us. It is counted, and the timeouts catch a real stall.
* Any other MISSION_ACK error ends the upload on the vehicle's side (a rejected
  item, a cancelled upload, ERROR when it is no longer receiving): the upload
  fails with the MAV_MISSION_RESULT name, and says which item was last sent.
  Before the first request, DENIED (another ground station holds the upload)
  and ERROR (also what a stray item gets when the vehicle is not receiving) may
  be stale or pass, so they are remembered and the COUNT retried; they become
  the failure only if no request ever comes. NO_SPACE, UNSUPPORTED and the
  like are final at once.
* ACCEPTED after the last item has been sent ends the upload; ACCEPTED earlier,
  or a request for an item beyond the count once the transfer runs, is a protocol
  error.
* If the vehicle stops asking (`item_timeout` without a request or ack) the upload
  fails with a clear timeout; so does anything still running at `deadline`. The
  vehicle may still be waiting; a new upload's MISSION_COUNT from this ground
  station restarts it cleanly (ArduPilot lets the same sender restart).
* Only messages of this transfer count: `mission_type` must match (fence and
  rally transfers run beside it on ArduPilot), the vehicle must be `target_system`,
  and requests and acks must be addressed to this ground station (or broadcast).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

MISSION = mavlink2.MAV_MISSION_TYPE_MISSION
ACCEPTED = mavlink2.MAV_MISSION_ACCEPTED
INVALID_SEQUENCE = mavlink2.MAV_MISSION_INVALID_SEQUENCE
CANCELLED = mavlink2.MAV_MISSION_OPERATION_CANCELLED
DENIED = mavlink2.MAV_MISSION_DENIED
ERROR = mavlink2.MAV_MISSION_ERROR

#: ArduPilot re-requests a missing item after 1 s; three missed re-requests and the vehicle has stopped asking.
ITEM_TIMEOUT_S = 3.0
#: Answers that are never a reply to MISSION_COUNT: before the first request they are left over from an earlier transfer.
_NEVER_ANSWER_COUNT = frozenset({INVALID_SEQUENCE, CANCELLED, ACCEPTED})
#: Answers to MISSION_COUNT that may pass (another station's upload ends) or be stale: retry the COUNT first.
_RETRY_COUNT_ON = frozenset({DENIED, ERROR})
_REQUESTS = ("MISSION_REQUEST", "MISSION_REQUEST_INT")


def mission_result_name(result: int) -> str:
    """MAV_MISSION_RESULT name of a MISSION_ACK type (not a COMMAND_ACK MAV_RESULT)."""
    entry = mavlink2.enums["MAV_MISSION_RESULT"].get(result)
    return entry.name if entry is not None and result != mavlink2.MAV_MISSION_RESULT_ENUM_END else f"MAV_MISSION_RESULT {result}"


def mission_result_text(result: int) -> str:
    """'MAV_MISSION_UNSUPPORTED (Command is not supported.)'"""
    entry = mavlink2.enums["MAV_MISSION_RESULT"].get(result)
    desc = entry.description.strip() if entry is not None and result != mavlink2.MAV_MISSION_RESULT_ENUM_END else ""
    return f"{mission_result_name(result)} ({desc})" if desc else mission_result_name(result)


def e7(degrees: float) -> int:
    """Degrees as MAVLink's integer 1e-7 degrees, rounded (truncating moves points by up to 1 cm)."""
    return round(degrees * 1e7)


@dataclass(frozen=True, slots=True)
class MissionItem:
    """One MISSION_ITEM_INT: lat/lon in degrees, alt in metres in `frame`."""

    command: int
    frame: int = mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT
    params: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    lat: float = 0.0
    lon: float = 0.0
    alt: float = 0.0


class Phase(Enum):
    IDLE = "idle"
    COUNTING = "waiting for the first request"  # MISSION_COUNT sent, re-sent on silence
    SENDING = "answering requests"  # the vehicle asks, we answer
    DONE = "accepted"
    FAILED = "failed"


class FailureKind(Enum):
    REJECTED = "rejected"  # the vehicle said no (a MISSION_ACK error)
    TIMEOUT = "timeout"  # the vehicle went quiet, or the deadline passed
    PROTOCOL = "protocol"  # the vehicle asked for something this upload does not have


@dataclass(frozen=True)
class UploadFailure:
    kind: FailureKind
    message: str
    result: int | None = None  # the MAV_MISSION_RESULT, when the vehicle sent one
    item: int | None = None  # the item last sent when it failed


@dataclass
class UploadStats:
    count_sent: int = 0  # MISSION_COUNTs sent
    items_sent: int = 0  # MISSION_ITEM_INTs sent, repeats included
    repeated_requests: int = 0  # requests for an item already sent (answered again)
    invalid_sequence_acks: int = 0  # MISSION_ACK INVALID_SEQUENCE during the transfer (ignored)
    denied_acks: int = 0  # MISSION_ACK DENIED during the transfer (someone else's request refused; ignored)
    stale: int = 0  # messages of an earlier transfer, ignored
    ignored: int = 0  # other mission types, other ground stations, other vehicles
    early_errors: list[int] = field(default_factory=list)  # error acks before the first request


class MissionUpload:
    """One upload of `items` (item 0 is home; ArduCopter keeps its own) to one vehicle."""

    def __init__(
        self,
        items: Sequence[MissionItem],
        *,
        target_system: int,
        target_component: int = 1,
        gcs_system: int = 255,
        gcs_component: int = 190,
        mission_type: int = MISSION,
        count_timeout: float = 1.5,
        count_attempts: int = 4,
        item_timeout: float = ITEM_TIMEOUT_S,
        deadline: float | None = None,
    ) -> None:
        if count_attempts < 1:
            raise ValueError("count_attempts must be at least 1")
        self.items = list(items)
        self.count = len(self.items)
        self.target = (target_system, target_component)
        self.gcs = (gcs_system, gcs_component)
        self.mission_type = mission_type
        self.count_timeout = count_timeout
        self.count_attempts = count_attempts
        self.item_timeout = item_timeout
        #: Overall bound: every COUNT attempt, then time for each item, then the vehicle's own give-up time.
        self.deadline = deadline if deadline is not None else count_timeout * count_attempts + 0.5 * self.count + 10.0
        self.phase = Phase.IDLE
        self.failure: UploadFailure | None = None
        self.stats = UploadStats()
        self._started = 0.0
        self._count_at = 0.0
        self._heard = 0.0  # last request or ack of this transfer
        self._sent: set[int] = set()
        self._last_sent: int | None = None

    # --- state ----------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.FAILED)

    @property
    def accepted(self) -> bool:
        return self.phase is Phase.DONE

    @property
    def next_tick(self) -> float:
        """When `tick` has something to do (inf once finished)."""
        if self.finished or self.phase is Phase.IDLE:
            return math.inf
        end = self._started + self.deadline
        if self.phase is Phase.COUNTING:
            return min(end, self._count_at + self.count_timeout)
        return min(end, self._heard + self.item_timeout)

    # --- inputs ----------------------------------------------------------------------------------

    def start(self, now: float) -> list[Any]:
        if self.phase is not Phase.IDLE:
            raise RuntimeError("upload already started")
        self._started = now
        self.phase = Phase.COUNTING
        return [self._count(now)]

    def tick(self, now: float) -> list[Any]:
        if self.finished or self.phase is Phase.IDLE:
            return []
        if now >= self._started + self.deadline:
            self._fail(FailureKind.TIMEOUT, f"not accepted within {self.deadline:g} s ({self._progress()})")
            return []
        if self.phase is Phase.COUNTING:
            if now < self._count_at + self.count_timeout:
                return []
            if self.stats.count_sent < self.count_attempts:
                return [self._count(now)]
            if self.stats.early_errors:
                result = self.stats.early_errors[-1]
                self._fail(
                    FailureKind.REJECTED,
                    f"refused: MISSION_ACK {mission_result_text(result)} to each of {self.stats.count_sent} MISSION_COUNTs",
                    result,
                )
            else:
                self._fail(FailureKind.TIMEOUT, f"no MISSION_REQUEST after {self.stats.count_sent} MISSION_COUNTs {self.count_timeout:g} s apart")
            return []
        if now >= self._heard + self.item_timeout:
            if self._last_sent == self.count - 1:
                what = f"no MISSION_ACK {self.item_timeout:g} s after the last item"
            else:
                what = f"the vehicle stopped asking for items {self.item_timeout:g} s ago ({self._progress()})"
            self._fail(FailureKind.TIMEOUT, what)
        return []

    def receive(self, msg: Any, now: float) -> list[Any]:
        """A message from the vehicle; returns what to send (nothing for messages of other transfers)."""
        kind = msg.get_type()
        if self.finished or self.phase is Phase.IDLE or (kind not in _REQUESTS and kind != "MISSION_ACK"):
            return []
        if not self._ours(msg):
            self.stats.ignored += 1
            return []
        if kind == "MISSION_ACK":
            return self._on_ack(int(msg.type), now)
        return self._on_request(int(msg.seq), now)

    # --- the protocol ----------------------------------------------------------------------------

    def _ours(self, msg: Any) -> bool:
        if getattr(msg, "mission_type", MISSION) != self.mission_type:
            return False  # a fence or rally transfer runs beside this one
        src = msg.get_srcSystem() if hasattr(msg, "get_srcSystem") else self.target[0]
        if src != self.target[0]:
            return False
        to = (getattr(msg, "target_system", 0), getattr(msg, "target_component", 0))
        return to[0] in (0, self.gcs[0]) and to[1] in (0, self.gcs[1])

    def _on_request(self, seq: int, now: float) -> list[Any]:
        if self.phase is Phase.COUNTING:
            if seq != 0:
                self.stats.stale += 1  # an earlier transfer's re-request: this one starts at item 0
                return []
            self.phase = Phase.SENDING
        elif not 0 <= seq < self.count:
            self._fail(FailureKind.PROTOCOL, f"the vehicle asked for item {seq} of a {self.count}-item upload")
            return []
        self._heard = now
        if seq in self._sent:
            self.stats.repeated_requests += 1
        return [self._item(seq)]

    def _on_ack(self, result: int, now: float) -> list[Any]:
        if self.phase is Phase.COUNTING:
            if result == ACCEPTED and self.count == 0:
                self.phase = Phase.DONE
                return []
            if result in _NEVER_ANSWER_COUNT:
                self.stats.stale += 1
                return []
            if result in _RETRY_COUNT_ON:
                self.stats.early_errors.append(result)  # COUNT again on the timer; the failure if nothing else comes
                return []
            self._fail(FailureKind.REJECTED, f"refused: MISSION_ACK {mission_result_text(result)}", result)
            return []
        self._heard = now
        if result == INVALID_SEQUENCE:
            self.stats.invalid_sequence_acks += 1  # a repeated item: the vehicle kept the first, the upload goes on
            return []
        if result == DENIED:
            self.stats.denied_acks += 1  # a download or another station refused meanwhile: the upload goes on
            return []
        if result == ACCEPTED:
            if self.count - 1 in self._sent:
                self.phase = Phase.DONE
            else:
                # e.g. the ACK to a MISSION_CLEAR_ALL from a station sharing our ids: the upload is over either way
                self._fail(FailureKind.PROTOCOL, f"the vehicle acknowledged (ACCEPTED) before the last item was sent ({self._progress()})", result)
            return []
        item = self._last_sent
        where = f" at item {item} (command {self.items[item].command})" if item is not None else ""
        if result == CANCELLED:
            self._fail(FailureKind.REJECTED, f"the vehicle cancelled the upload{where}: MISSION_ACK {mission_result_text(result)}", result)
        else:
            self._fail(FailureKind.REJECTED, f"refused{where}: MISSION_ACK {mission_result_text(result)}", result)
        return []

    # --- messages ----------------------------------------------------------------------------------

    def _count(self, now: float) -> Any:
        self._count_at = now
        self.stats.count_sent += 1
        return mavlink2.MAVLink_mission_count_message(self.target[0], self.target[1], self.count, self.mission_type)

    def _item(self, seq: int) -> Any:
        it = self.items[seq]
        self._sent.add(seq)
        self._last_sent = seq
        self.stats.items_sent += 1
        return mavlink2.MAVLink_mission_item_int_message(
            self.target[0], self.target[1], seq, it.frame, it.command, 0, 1, *it.params,
            e7(it.lat), e7(it.lon), it.alt, self.mission_type,
        )

    def _progress(self) -> str:
        if self.phase is Phase.COUNTING:
            return "no item asked for yet"
        return f"item {self._last_sent} of {self.count} last sent, {len(self._sent)} distinct sent"

    def _fail(self, kind: FailureKind, message: str, result: int | None = None) -> None:
        self.phase = Phase.FAILED
        self.failure = UploadFailure(kind, message, result, self._last_sent)
