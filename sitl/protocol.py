"""The request/answer protocols: parameters (list, read, set) and mission transfer, answered as ArduCopter does.

Parameters: PARAM_REQUEST_LIST streams every parameter at a limited rate (in
simulated time), PARAM_REQUEST_READ answers by index or name, PARAM_SET echoes
the stored value with its type; unknown names get no answer at all, and the
values the vehicle keeps itself (MIS_TOTAL, STAT_*) are echoed unchanged.

Missions: the MISSION_* messages go to mission.py's `MissionProtocol` (one
transfer per mission_type, with ArduPilot's rules and timeouts), and its
replies are sent here as MAVLink messages (or as a MIS_TOTAL echo, or a text).
Stalled uploads are re-requested and given up from `tick`, every simulation step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mav

from sitl.mission import Item, MissionProtocol, MissionStore, Reply, ReplyKind
from sitl.params import COUNT as PARAM_COUNT
from sitl.params import PARAMS, ParamStore

if TYPE_CHECKING:
    from sitl.auto import MissionRunner

#: PARAM_REQUEST_LIST streaming rate (parameters per simulated second).
PARAMS_PER_SECOND = 1500.0
#: Parameters the vehicle keeps itself: a PARAM_SET only echoes them.
READ_ONLY = ("MIS_TOTAL", "STAT_RUNTIME", "STAT_FLTTIME", "STAT_BOOTCNT")

SEV_INFO = mav.MAV_SEVERITY_INFO


def param_name(raw: Any) -> str:
    """A param_id field as a name (bytes or str, NUL-padded)."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return str(raw).split("\x00", 1)[0]


def peer_of(msg: Any) -> tuple[int, int]:
    """(system, component) that sent `msg`: where the answer goes."""
    return msg.get_srcSystem(), msg.get_srcComponent()


class ParamHost(Protocol):
    params: ParamStore

    def send_param(self, name: str, index: int = 65535) -> None: ...


class ParamService:
    """Answers the parameter protocol; `tick(dt)` sends the next part of a requested list."""

    def __init__(self, host: ParamHost) -> None:
        self._v = host
        self._queue: list[int] = []  # indices still to send
        self._budget = 0.0

    @property
    def listing(self) -> bool:
        return bool(self._queue)

    def on_request_list(self, _msg: Any) -> None:
        self._queue = list(range(PARAM_COUNT))

    def on_request_read(self, msg: Any) -> None:
        v = self._v
        if msg.param_index >= 0:
            if msg.param_index < PARAM_COUNT:
                v.send_param(PARAMS[msg.param_index].name, msg.param_index)
            return
        name = param_name(msg.param_id)
        if name in v.params:  # an unknown name gets no answer at all
            v.send_param(name)

    def on_set(self, msg: Any) -> None:
        v = self._v
        name = param_name(msg.param_id)
        if name not in v.params:
            return  # ArduCopter answers an unknown name with silence
        if name in READ_ONLY:
            v.send_param(name)  # kept by the vehicle itself
            return
        try:
            v.params.set(name, msg.param_value)
        except ValueError:
            return
        v.send_param(name)

    def tick(self, dt: float) -> None:
        if not self._queue:
            self._budget = 0.0
            return
        self._budget += PARAMS_PER_SECOND * dt
        n = min(int(self._budget), len(self._queue))
        self._budget -= n
        for i in self._queue[:n]:
            self._v.send_param(PARAMS[i].name, i)
        del self._queue[:n]


class MissionHost(Protocol):
    t: float
    mission: MissionStore
    encoder: Any
    auto: MissionRunner

    def mission_running(self) -> bool: ...
    def send(self, msg: Any) -> None: ...
    def text(self, severity: int, text: str) -> None: ...
    def set_param_and_report(self, name: str, value: float) -> None: ...


class MissionTransfer:
    """The MISSION_* messages: upload, download, clear, set current."""

    def __init__(self, host: MissionHost) -> None:
        self._v = host
        self.protocol = MissionProtocol(host.mission, running=host.mission_running)

    def tick(self) -> None:
        """Ask again for a missing item (or give a stalled upload up), as ArduPilot's update() does."""
        if self.protocol.uploading:
            self._replies(self.protocol.tick(self._v.t))

    def on_count(self, msg: Any) -> None:
        self._replies(self.protocol.count_received(msg.count, msg.mission_type, self._v.t, peer_of(msg)))

    def on_item_int(self, msg: Any) -> None:
        item = Item(msg.seq, msg.frame, msg.command, (msg.param1, msg.param2, msg.param3, msg.param4), msg.x, msg.y, msg.z, msg.autocontinue)
        self._replies(self.protocol.item_received(item, msg.mission_type, self._v.t, peer_of(msg)))

    def on_item(self, msg: Any) -> None:
        """A legacy (float) MISSION_ITEM: stored like MISSION_ITEM_INT, with a warning once per upload."""
        item = Item(
            msg.seq, msg.frame, msg.command, (msg.param1, msg.param2, msg.param3, msg.param4),
            round(msg.x * 1e7), round(msg.y * 1e7), msg.z, msg.autocontinue,
        )
        self._replies(self.protocol.item_received(item, msg.mission_type, self._v.t, peer_of(msg), legacy=True))

    def on_request_list(self, msg: Any) -> None:
        self._replies(self.protocol.request_list(msg.mission_type, peer_of(msg)))

    def on_request_int(self, msg: Any) -> None:
        self._replies(self.protocol.request_item(msg.seq, msg.mission_type, True, peer_of(msg)))

    def on_request(self, msg: Any) -> None:
        self._replies(self.protocol.request_item(msg.seq, msg.mission_type, False, peer_of(msg)))

    def on_clear_all(self, msg: Any) -> None:
        self._replies(self.protocol.clear_all(msg.mission_type, peer_of(msg)))
        if not self._v.mission.has_mission:
            self._v.auto.reset()

    def on_set_current(self, msg: Any) -> None:
        self._v.auto.set_current(msg.seq)

    def _replies(self, replies: list[Reply]) -> None:
        v = self._v
        enc = v.encoder
        for r in replies:
            to_sys, to_comp = r.to
            if r.kind == ReplyKind.REQUEST:
                v.send(enc.mission_request_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.ACK:
                v.send(enc.mission_ack_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.COUNT:
                v.send(enc.mission_count_encode(to_sys, to_comp, r.value, r.mission_type))
            elif r.kind == ReplyKind.ITEM_INT:
                i = r.item
                assert i is not None
                v.send(enc.mission_item_int_encode(to_sys, to_comp, i.seq, i.frame, i.command, 0, i.autocontinue, *i.params, i.x, i.y, i.z, r.mission_type))
            elif r.kind == ReplyKind.ITEM:
                i = r.item
                assert i is not None
                v.send(
                    enc.mission_item_encode(
                        to_sys, to_comp, i.seq, i.frame, i.command, 0, i.autocontinue, *i.params, i.x / 1e7, i.y / 1e7, i.z, r.mission_type
                    )
                )
            elif r.kind == ReplyKind.TOTAL:
                v.set_param_and_report(r.param, r.value)
            elif r.kind == ReplyKind.TEXT:
                v.text(r.value, r.text)
