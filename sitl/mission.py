"""The stored mission and the MAVLink mission item protocol, answered the way ArduCopter 4.7 answers it.

Upload: MISSION_COUNT -> the vehicle asks for each item with MISSION_REQUEST
(not _INT) -> MISSION_ITEM_INT -> ... -> MISSION_ACK accepted. Download:
MISSION_REQUEST_LIST -> MISSION_COUNT, MISSION_REQUEST_INT -> MISSION_ITEM_INT,
with frames and fields as ArduCopter stores them (see `stored`).

`ItemTransfer` is one of ArduPilot's MissionItemProtocol objects, one per
mission_type (mission, fence, rally; any other type is answered
MAV_MISSION_UNSUPPORTED, or not at all for a request), with its rules
(libraries/GCS_MAVLink/MissionItemProtocol*.cpp, checked against the recordings
in tests/sitl/transcripts/mission_upload_edge_cases.jsonl):

* MISSION_COUNT truncates the stored items to the count at once (MIS_TOTAL
  drops then), and starts asking from item 0; a COUNT from the same ground
  station during an upload restarts it, from another one is DENIED. Too many
  items: NO_SPACE and "Only N items are supported".
* Items must come in order from the station that sent the COUNT: any other seq
  gets MISSION_ACK INVALID_SEQUENCE (a repeated item included) and the upload
  goes on; the right seq from another station gets DENIED. An item the vehicle
  cannot store (unknown command, bad frame, bad value, DO_JUMP to nowhere) gets
  that error and ends the upload, leaving what was stored so far (the old
  mission's tail included). An item when no upload runs: MAV_MISSION_ERROR.
* A missing item is asked for again after 1 s, and the upload is given up 8 s
  after the last stored item: MISSION_ACK OPERATION_CANCELLED, "Mission upload
  timeout".
* During an upload, MISSION_REQUEST_LIST and MISSION_REQUEST_INT are DENIED; a
  legacy MISSION_REQUEST is still answered. MISSION_CLEAR_ALL cancels the upload.
* MISSION_REQUEST_INT beyond the stored items: MISSION_COUNT, then
  INVALID_SEQUENCE. Legacy MISSION_REQUEST and MISSION_ITEM get one warning text
  each per upload.

`MissionProtocol` is transport-free: it takes decoded requests and the time,
and returns `Reply` values for the vehicle to send.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum

from pymavlink.dialects.v20 import ardupilotmega as mav

#: Ask again for a missing item after this long (ArduPilot: 1000 ms plus the link's stream slowdown, 0 on a fast link) ...
REREQUEST_S = 1.0
#: ... and give the upload up this long after the last stored item (MissionItemProtocol::upload_timeout_ms).
UPLOAD_TIMEOUT_S = 8.0
#: Storage of ArduCopter 4.7 SITL ("Only N items are supported" to a larger MISSION_COUNT).
MAX_MISSION_ITEMS = 650
MAX_FENCE_ITEMS = 70
MAX_RALLY_ITEMS = 46

MISSION = mav.MAV_MISSION_TYPE_MISSION
FENCE = mav.MAV_MISSION_TYPE_FENCE
RALLY = mav.MAV_MISSION_TYPE_RALLY
SEV_WARNING = mav.MAV_SEVERITY_WARNING
SEV_INFO = mav.MAV_SEVERITY_INFO
SEV_DEBUG = mav.MAV_SEVERITY_DEBUG

_FLOAT_FRAME = {
    mav.MAV_FRAME_GLOBAL_INT: mav.MAV_FRAME_GLOBAL,
    mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: mav.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: mav.MAV_FRAME_GLOBAL_TERRAIN_ALT,
}
#: NAV commands that carry a location (everything else is stored without one).
LOCATION_COMMANDS = frozenset(
    {
        mav.MAV_CMD_NAV_WAYPOINT, mav.MAV_CMD_NAV_LOITER_UNLIM, mav.MAV_CMD_NAV_LOITER_TURNS,
        mav.MAV_CMD_NAV_LOITER_TIME, mav.MAV_CMD_NAV_LAND, mav.MAV_CMD_NAV_TAKEOFF,
        mav.MAV_CMD_NAV_SPLINE_WAYPOINT, mav.MAV_CMD_NAV_LOITER_TO_ALT, mav.MAV_CMD_NAV_PAYLOAD_PLACE,
        mav.MAV_CMD_DO_SET_ROI, mav.MAV_CMD_DO_SET_HOME, mav.MAV_CMD_DO_LAND_START,
    }
)

#: "Mission: N <name>" as ArduCopter announces each command it starts.
COMMAND_NAMES = {
    mav.MAV_CMD_NAV_WAYPOINT: "WP",
    mav.MAV_CMD_NAV_LOITER_UNLIM: "LoitUnlim",
    mav.MAV_CMD_NAV_LOITER_TURNS: "LoitTurns",
    mav.MAV_CMD_NAV_LOITER_TIME: "LoitTime",
    mav.MAV_CMD_NAV_RETURN_TO_LAUNCH: "RTL",
    mav.MAV_CMD_NAV_LAND: "Land",
    mav.MAV_CMD_NAV_TAKEOFF: "Takeoff",
    mav.MAV_CMD_NAV_SPLINE_WAYPOINT: "SplineWP",
    mav.MAV_CMD_NAV_DELAY: "Delay",
    mav.MAV_CMD_NAV_PAYLOAD_PLACE: "PayloadPlace",
    mav.MAV_CMD_DO_JUMP: "Jump",
    mav.MAV_CMD_DO_CHANGE_SPEED: "ChangeSpeed",
    mav.MAV_CMD_DO_SET_HOME: "SetHome",
    mav.MAV_CMD_DO_SET_SERVO: "SetServo",
    mav.MAV_CMD_DO_SET_RELAY: "SetRelay",
    mav.MAV_CMD_DO_SET_ROI: "SetROI",
    mav.MAV_CMD_DO_DIGICAM_CONTROL: "DigiCamCtrl",
    mav.MAV_CMD_DO_SET_CAM_TRIGG_DIST: "SetCamTrigDst",
    mav.MAV_CMD_DO_MOUNT_CONTROL: "MountControl",
    mav.MAV_CMD_DO_LAND_START: "LandStart",
    mav.MAV_CMD_CONDITION_DELAY: "CondDelay",
    mav.MAV_CMD_CONDITION_DISTANCE: "CondDist",
    mav.MAV_CMD_CONDITION_YAW: "CondYaw",
}


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    frame: int
    command: int
    params: tuple[float, float, float, float]
    x: int  # latitude * 1e7
    y: int  # longitude * 1e7
    z: float  # altitude in `frame`
    autocontinue: int = 1
    mission_type: int = MISSION

    @property
    def lat(self) -> float:
        return self.x / 1e7

    @property
    def lon(self) -> float:
        return self.y / 1e7

    @property
    def has_location(self) -> bool:
        return self.command in LOCATION_COMMANDS and (self.x != 0 or self.y != 0)


def stored(item: Item) -> Item:
    """How ArduCopter keeps (and later returns) an uploaded item: float frames, no location on DO commands."""
    if item.command not in LOCATION_COMMANDS:
        return replace(item, frame=mav.MAV_FRAME_GLOBAL, x=0, y=0, z=0.0)
    params = item.params
    if item.command == mav.MAV_CMD_NAV_LOITER_TIME:
        params = (params[0], params[1], 1.0, params[3])  # as downloaded from the recorded vehicle
    return replace(item, frame=_FLOAT_FRAME.get(item.frame, item.frame), params=params)


def home_item(lat: float, lon: float, alt_amsl: float) -> Item:
    return Item(0, mav.MAV_FRAME_GLOBAL, mav.MAV_CMD_NAV_WAYPOINT, (0.0, 0.0, 0.0, 0.0), round(lat * 1e7), round(lon * 1e7), alt_amsl)


class ReplyKind(Enum):
    REQUEST = "MISSION_REQUEST"  # ask the uploader for item `value`
    ACK = "MISSION_ACK"  # `value` is a MAV_MISSION_RESULT
    COUNT = "MISSION_COUNT"  # `value` items
    ITEM_INT = "MISSION_ITEM_INT"  # `item`
    ITEM = "MISSION_ITEM"  # `item`, float version (answer to a legacy MISSION_REQUEST)
    TOTAL = "MIS_TOTAL"  # the stored count (parameter `param`) changed to `value`
    TEXT = "STATUSTEXT"  # `text`, `value` is its MAV_SEVERITY


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    value: int = 0
    item: Item | None = None
    text: str = ""
    mission_type: int = 0
    to: tuple[int, int] = (255, 190)  # (sysid, compid) of the ground station it answers
    param: str = "MIS_TOTAL"  # for TOTAL: the parameter that counts the items (RALLY_TOTAL, FENCE_TOTAL)


class MissionStore:
    """Seq 0 is home (once known); items 1.. are the mission."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self._home: Item | None = None  # the last home, written back when an upload starts on an empty mission

    @property
    def count(self) -> int:
        """MIS_TOTAL: stored items including home."""
        return len(self.items)

    @property
    def has_mission(self) -> bool:
        return len(self.items) > 1

    def get(self, seq: int) -> Item | None:
        return self.items[seq] if 0 <= seq < len(self.items) else None

    def read(self, seq: int) -> Item | None:
        """What a download gets: item `seq`, and home for seq 0 even when nothing is stored."""
        if seq == 0 and not self.items:
            return self._home
        return self.get(seq)

    def set_home(self, lat: float, lon: float, alt_amsl: float) -> bool:
        """Put home in seq 0; returns True if that added an item (after a clear, or the first time)."""
        home = self._home = home_item(lat, lon, alt_amsl)
        if self.items:
            self.items[0] = home
            return False
        self.items.append(home)
        return True

    def clear(self) -> None:
        self.items = []

    def write(self, seq: int, item: Item) -> None:
        """Store an uploaded item at `seq` (at most one past the end); item 0 is home, whatever was uploaded.

        Appending to an empty mission writes home first, as ArduCopter does: the item then lands
        at 1 (and a full upload overwrites it with item 1 next).
        """
        if seq == 0 and self.items:
            return
        if not self.items:
            self.items.append(self._home if self._home is not None else replace(stored(item), seq=0))
            seq = 1
        item = replace(stored(item), seq=seq)
        if seq < len(self.items):
            self.items[seq] = item
        else:
            self.items.append(item)

    def truncate(self, count: int) -> None:
        """Keep the first `count` items (MISSION_COUNT does this before the first item arrives)."""
        del self.items[max(count, 0):]


# --- checks of uploaded items (AP_Mission::mavlink_int_to_mission_cmd and its rally and fence cousins) ---------


def _cmds(*names: str) -> frozenset[int]:
    return frozenset(getattr(mav, n) for n in names if hasattr(mav, n))


#: The commands ArduCopter 4.7 stores in a mission (any other: MAV_MISSION_UNSUPPORTED).
SUPPORTED_COMMANDS = _cmds(
    "MAV_CMD_NAV_WAYPOINT", "MAV_CMD_NAV_LOITER_UNLIM", "MAV_CMD_NAV_LOITER_TURNS", "MAV_CMD_NAV_LOITER_TIME",
    "MAV_CMD_NAV_RETURN_TO_LAUNCH", "MAV_CMD_NAV_LAND", "MAV_CMD_NAV_TAKEOFF", "MAV_CMD_NAV_CONTINUE_AND_CHANGE_ALT",
    "MAV_CMD_NAV_LOITER_TO_ALT", "MAV_CMD_NAV_SPLINE_WAYPOINT", "MAV_CMD_NAV_GUIDED_ENABLE", "MAV_CMD_NAV_DELAY",
    "MAV_CMD_CONDITION_DELAY", "MAV_CMD_CONDITION_DISTANCE", "MAV_CMD_CONDITION_YAW", "MAV_CMD_DO_JUMP",
    "MAV_CMD_DO_JUMP_TAG", "MAV_CMD_JUMP_TAG", "MAV_CMD_DO_CHANGE_SPEED", "MAV_CMD_DO_SET_HOME", "MAV_CMD_DO_SET_RELAY",
    "MAV_CMD_DO_REPEAT_RELAY", "MAV_CMD_DO_SET_SERVO", "MAV_CMD_DO_REPEAT_SERVO", "MAV_CMD_DO_RETURN_PATH_START",
    "MAV_CMD_DO_LAND_START", "MAV_CMD_DO_GO_AROUND", "MAV_CMD_DO_SET_ROI_LOCATION", "MAV_CMD_DO_SET_ROI_NONE",
    "MAV_CMD_DO_SET_ROI", "MAV_CMD_DO_DIGICAM_CONFIGURE", "MAV_CMD_DO_DIGICAM_CONTROL", "MAV_CMD_DO_MOUNT_CONTROL",
    "MAV_CMD_DO_SET_CAM_TRIGG_DIST", "MAV_CMD_DO_FENCE_ENABLE", "MAV_CMD_DO_AUX_FUNCTION", "MAV_CMD_DO_PARACHUTE",
    "MAV_CMD_DO_INVERTED_FLIGHT", "MAV_CMD_DO_GRIPPER", "MAV_CMD_DO_GUIDED_LIMITS", "MAV_CMD_DO_AUTOTUNE_ENABLE",
    "MAV_CMD_NAV_ALTITUDE_WAIT", "MAV_CMD_NAV_VTOL_TAKEOFF", "MAV_CMD_NAV_VTOL_LAND", "MAV_CMD_DO_VTOL_TRANSITION",
    "MAV_CMD_DO_SET_REVERSE", "MAV_CMD_DO_ENGINE_CONTROL", "MAV_CMD_NAV_PAYLOAD_PLACE", "MAV_CMD_NAV_SET_YAW_SPEED",
    "MAV_CMD_DO_WINCH", "MAV_CMD_DO_SET_RESUME_REPEAT_DIST", "MAV_CMD_DO_SPRAYER", "MAV_CMD_DO_SEND_SCRIPT_MESSAGE",
    "MAV_CMD_NAV_SCRIPT_TIME", "MAV_CMD_NAV_ATTITUDE_TIME", "MAV_CMD_DO_PAUSE_CONTINUE",
    "MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW", "MAV_CMD_IMAGE_START_CAPTURE", "MAV_CMD_IMAGE_STOP_CAPTURE",
    "MAV_CMD_SET_CAMERA_ZOOM", "MAV_CMD_SET_CAMERA_FOCUS", "MAV_CMD_SET_CAMERA_SOURCE", "MAV_CMD_VIDEO_START_CAPTURE",
    "MAV_CMD_VIDEO_STOP_CAPTURE",
)
#: Commands whose x/y/z are a location (checked, and their frame must be a global one).
LOCATED_COMMANDS = _cmds(
    "MAV_CMD_NAV_WAYPOINT", "MAV_CMD_NAV_LOITER_UNLIM", "MAV_CMD_NAV_LOITER_TURNS", "MAV_CMD_NAV_LOITER_TIME",
    "MAV_CMD_NAV_LAND", "MAV_CMD_NAV_TAKEOFF", "MAV_CMD_NAV_CONTINUE_AND_CHANGE_ALT", "MAV_CMD_NAV_LOITER_TO_ALT",
    "MAV_CMD_NAV_SPLINE_WAYPOINT", "MAV_CMD_NAV_GUIDED_ENABLE", "MAV_CMD_DO_SET_HOME", "MAV_CMD_DO_RETURN_PATH_START",
    "MAV_CMD_DO_LAND_START", "MAV_CMD_DO_GO_AROUND", "MAV_CMD_DO_SET_ROI_LOCATION", "MAV_CMD_DO_SET_ROI",
    "MAV_CMD_NAV_VTOL_TAKEOFF", "MAV_CMD_NAV_VTOL_LAND", "MAV_CMD_NAV_PAYLOAD_PLACE",
)
#: Commands whose param4 (and for VTOL_LAND param3) may be NaN; every other NaN or any infinity is refused.
_NAN_PARAM4 = _cmds("MAV_CMD_NAV_WAYPOINT", "MAV_CMD_NAV_LOITER_UNLIM", "MAV_CMD_NAV_LAND", "MAV_CMD_NAV_TAKEOFF", "MAV_CMD_NAV_VTOL_TAKEOFF")
_GLOBAL_FRAMES = frozenset(
    {
        mav.MAV_FRAME_MISSION, mav.MAV_FRAME_GLOBAL, mav.MAV_FRAME_GLOBAL_INT, mav.MAV_FRAME_GLOBAL_RELATIVE_ALT,
        mav.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT, mav.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT,
    }
)
FENCE_COMMANDS = _cmds(
    "MAV_CMD_NAV_FENCE_RETURN_POINT", "MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION", "MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION",
    "MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION", "MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION",
)
LOCATION_ALT_MAX_M = 83000


def _check_location(item: Item, frames: frozenset[int] = _GLOBAL_FRAMES) -> int:
    if not -900_000_000 <= item.x <= 900_000_000:
        return mav.MAV_MISSION_INVALID_PARAM5_X
    if not -1_800_000_000 <= item.y <= 1_800_000_000:
        return mav.MAV_MISSION_INVALID_PARAM6_Y
    if math.isnan(item.z) or abs(item.z) >= LOCATION_ALT_MAX_M:
        return mav.MAV_MISSION_INVALID_PARAM7
    if item.frame not in frames:
        return mav.MAV_MISSION_UNSUPPORTED_FRAME
    return mav.MAV_MISSION_ACCEPTED


def check_mission_item(item: Item) -> int:
    """MAV_MISSION_RESULT for storing `item` in a mission (the DO_JUMP target is checked by the transfer)."""
    may_be_nan = {3} if item.command in _NAN_PARAM4 else ({2, 3} if item.command == getattr(mav, "MAV_CMD_NAV_VTOL_LAND", -1) else set())
    for i, p in enumerate(item.params):
        if math.isinf(p) or (math.isnan(p) and i not in may_be_nan):
            return mav.MAV_MISSION_INVALID_PARAM1 + i
    if item.command in (0, 1):
        return mav.MAV_MISSION_INVALID
    if item.command not in SUPPORTED_COMMANDS:
        return mav.MAV_MISSION_UNSUPPORTED
    if item.command in LOCATED_COMMANDS:
        return _check_location(item)
    return mav.MAV_MISSION_ACCEPTED


def check_rally_item(item: Item) -> int:
    if item.command != mav.MAV_CMD_NAV_RALLY_POINT:
        return mav.MAV_MISSION_UNSUPPORTED
    if not -900_000_000 <= item.x <= 900_000_000:
        return mav.MAV_MISSION_INVALID_PARAM5_X
    if not -1_800_000_000 <= item.y <= 1_800_000_000:
        return mav.MAV_MISSION_INVALID_PARAM6_Y
    if math.isnan(item.z) or not -32768 <= item.z <= 32767:
        return mav.MAV_MISSION_INVALID_PARAM7
    if item.frame not in _GLOBAL_FRAMES - {mav.MAV_FRAME_MISSION}:
        return mav.MAV_MISSION_UNSUPPORTED_FRAME
    return mav.MAV_MISSION_ACCEPTED


def check_fence_item(item: Item) -> int:
    if item.command not in FENCE_COMMANDS:
        return mav.MAV_MISSION_UNSUPPORTED
    if item.frame not in _GLOBAL_FRAMES - {mav.MAV_FRAME_MISSION}:
        return mav.MAV_MISSION_UNSUPPORTED_FRAME
    return mav.MAV_MISSION_ACCEPTED
# --- the item stores behind each mission_type ---------------------------------------------------------------------


class _Items:
    """What one transfer stores into: the mission, the fence or the rally points."""

    mission_type: int
    max_items: int
    name: str  # "Mission" in "Mission upload timeout"

    def count(self) -> int:
        raise NotImplementedError

    def check(self, item: Item) -> int:
        raise NotImplementedError

    def truncate(self, count: int) -> list[Reply]:
        raise NotImplementedError

    def store(self, seq: int, item: Item) -> list[Reply]:
        raise NotImplementedError

    def read(self, seq: int) -> Item | None:
        """Item `seq` for a download, or None (INVALID_SEQUENCE)."""
        raise NotImplementedError

    def clear(self) -> bool:
        raise NotImplementedError

    def complete(self) -> list[Reply]:
        """Texts (and parameter echoes) once an upload is stored."""
        return []

    def cleared(self, before: int) -> list[Reply]:
        """What MISSION_CLEAR_ALL says besides its ACK (`before`: the count before it)."""
        return []


class _MissionItems(_Items):
    mission_type = MISSION
    max_items = MAX_MISSION_ITEMS
    name = "Mission"

    def __init__(self, store: MissionStore, running: Callable[[], bool]) -> None:
        self._store = store
        self._running = running

    def count(self) -> int:
        return self._store.count

    def check(self, item: Item) -> int:
        return check_mission_item(item)

    def truncate(self, count: int) -> list[Reply]:
        before = self._store.count
        self._store.truncate(count)
        return [Reply(ReplyKind.TOTAL, self._store.count)] if self._store.count != before else []

    def store(self, seq: int, item: Item) -> list[Reply]:
        before = self._store.count
        self._store.write(seq, item)
        return [Reply(ReplyKind.TOTAL, self._store.count)] if self._store.count != before else []

    def read(self, seq: int) -> Item | None:
        return self._store.read(seq)

    def clear(self) -> bool:
        if self._running():  # AP_Mission refuses to clear a mission it is flying
            return False
        self._store.clear()
        return True

    def complete(self) -> list[Reply]:
        return [Reply(ReplyKind.TEXT, SEV_INFO, text="Flight plan received")]

    def cleared(self, before: int) -> list[Reply]:
        return [Reply(ReplyKind.TOTAL, self._store.count)] if self._store.count != before else []


@dataclass
class _ItemList(_Items):
    """Fence or rally points: a plain list, checked by `checker`, returned in `frame_out` (or the float frame).

    `total_param` counts the items and is echoed when the count changes (RALLY_TOTAL); with
    `echo_total_when_done` it is echoed, unchanged, each time the items are stored or cleared
    (FENCE_TOTAL, which only counts the old-style fence points and stays 0), after `done_text`.
    """

    mission_type: int
    max_items: int
    name: str
    checker: Callable[[Item], int]
    frame_out: int | None = None
    done_text: str | None = None
    total_param: str | None = None
    echo_total_when_done: bool = False
    items: list[Item] = field(default_factory=list)

    def _total(self, before: int) -> list[Reply]:
        if self.total_param is None or self.echo_total_when_done or len(self.items) == before:
            return []
        return [Reply(ReplyKind.TOTAL, len(self.items), param=self.total_param)]

    def count(self) -> int:
        return len(self.items)

    def check(self, item: Item) -> int:
        return self.checker(item)

    def truncate(self, count: int) -> list[Reply]:
        before = len(self.items)
        del self.items[max(count, 0):]
        return self._total(before)

    def store(self, seq: int, item: Item) -> list[Reply]:
        before = len(self.items)
        frame = self.frame_out if self.frame_out is not None else _FLOAT_FRAME.get(item.frame, item.frame)
        item = replace(item, seq=seq, frame=frame, mission_type=self.mission_type)
        if seq < len(self.items):
            self.items[seq] = item
        else:
            self.items.append(item)
        return self._total(before)

    def read(self, seq: int) -> Item | None:
        return self.items[seq] if 0 <= seq < len(self.items) else None

    def clear(self) -> bool:
        self.items = []
        return True

    def complete(self) -> list[Reply]:
        out = [Reply(ReplyKind.TEXT, SEV_DEBUG, text=self.done_text)] if self.done_text else []
        if self.total_param is not None and self.echo_total_when_done:
            out.append(Reply(ReplyKind.TOTAL, 0, param=self.total_param))
        return out

    def cleared(self, before: int) -> list[Reply]:
        return self.complete() + self._total(before)


# --- one transfer (ArduPilot's MissionItemProtocol) ---------------------------------------------------------------


class ItemTransfer:
    """Upload and download of one mission_type: at most one upload at a time, owned by the station that started it."""

    def __init__(self, items: _Items) -> None:
        self.items = items
        self.mission_type = items.mission_type
        self.receiving = False
        self._next = 0  # the item asked for
        self._last = -1  # the last item of this upload
        self._peer: tuple[int, int] = (0, 0)  # the uploading station
        self._last_stored = 0.0
        self._last_request = 0.0
        self._warned_item = False  # "got MISSION_ITEM" said in this upload
        self._warned_request = False  # "got MISSION_REQUEST" said since the last upload started

    def _ack(self, result: int, to: tuple[int, int]) -> Reply:
        return Reply(ReplyKind.ACK, result, mission_type=self.mission_type, to=to)

    def _request(self, now: float) -> Reply:
        self._last_request = now
        return Reply(ReplyKind.REQUEST, self._next, mission_type=self.mission_type, to=self._peer)

    def _end_upload(self) -> None:
        self.receiving = False

    def _cancel_by(self, peer: tuple[int, int]) -> Reply | None:
        """A COUNT or CLEAR_ALL during an upload: the uploader may restart it, anyone else is DENIED."""
        if not self.receiving:
            return None
        if peer != self._peer:
            return self._ack(mav.MAV_MISSION_DENIED, peer)
        self._end_upload()
        return None

    # --- upload ---------------------------------------------------------------------------------

    def count(self, count: int, now: float, peer: tuple[int, int]) -> list[Reply]:
        denied = self._cancel_by(peer)
        if denied is not None:
            return [denied]
        if count > self.items.max_items:
            return [self._ack(mav.MAV_MISSION_NO_SPACE, peer), Reply(ReplyKind.TEXT, SEV_WARNING, text=f"Only {self.items.max_items} items are supported")]
        out = self.items.truncate(count)
        if count == 0:
            return [self._ack(mav.MAV_MISSION_ACCEPTED, peer), *self.items.complete(), *out]
        self.receiving = True
        self._next, self._last, self._peer = 0, count - 1, peer
        self._last_stored = now
        self._warned_item = self._warned_request = False
        return [self._request(now), *out]

    def item(self, item: Item, now: float, peer: tuple[int, int], legacy: bool = False) -> list[Reply]:
        texts: list[Reply] = []
        if legacy and not self._warned_item:
            self._warned_item = True
            texts.append(Reply(ReplyKind.TEXT, SEV_WARNING, text="got MISSION_ITEM; GCS should send MISSION_ITEM_INT"))
        if not self.receiving:
            return [self._ack(mav.MAV_MISSION_ERROR, peer), *texts]
        if item.seq != self._next:
            return [self._ack(mav.MAV_MISSION_INVALID_SEQUENCE, peer), *texts]
        if peer != self._peer:
            return [self._ack(mav.MAV_MISSION_DENIED, peer), *texts]
        count = self.items.count()
        result = self.items.check(item)
        if result == mav.MAV_MISSION_ACCEPTED and self.mission_type == MISSION and item.command == mav.MAV_CMD_DO_JUMP:
            target = int(item.params[0])
            if (target >= count and target > self._last) or target == 0:
                result = mav.MAV_MISSION_ERROR
        if result == mav.MAV_MISSION_ACCEPTED and item.seq > count:
            result = mav.MAV_MISSION_ERROR
        if result != mav.MAV_MISSION_ACCEPTED:
            self._end_upload()  # what was stored so far stays
            return [self._ack(result, peer), *texts]
        stored_replies = self.items.store(item.seq, item)
        self._last_stored = now
        self._next += 1
        if self._next > self._last:
            self._end_upload()
            return [self._ack(mav.MAV_MISSION_ACCEPTED, peer), *texts, *self.items.complete(), *stored_replies]
        return [self._request(now), *texts, *stored_replies]

    def tick(self, now: float) -> list[Reply]:
        """Ask again for a missing item; give a stalled upload up."""
        if not self.receiving:
            return []
        if now - self._last_stored > UPLOAD_TIMEOUT_S:
            self._end_upload()
            return [
                self._ack(mav.MAV_MISSION_OPERATION_CANCELLED, self._peer),
                Reply(ReplyKind.TEXT, SEV_WARNING, text=f"{self.items.name} upload timeout"),
            ]
        if now - self._last_request > REREQUEST_S:
            return [self._request(now)]
        return []

    # --- download and clear -----------------------------------------------------------------------

    def request_list(self, peer: tuple[int, int]) -> list[Reply]:
        if self.receiving:
            return [self._ack(mav.MAV_MISSION_DENIED, peer)]
        return [Reply(ReplyKind.COUNT, self.items.count(), mission_type=self.mission_type, to=peer)]

    def request_item(self, seq: int, as_int: bool, peer: tuple[int, int]) -> list[Reply]:
        if as_int and self.receiving:
            return [self._ack(mav.MAV_MISSION_DENIED, peer)]
        item = self.items.read(seq)
        if item is None:
            count = [Reply(ReplyKind.COUNT, self.items.count(), mission_type=self.mission_type, to=peer)] if as_int else []
            return [*count, self._ack(mav.MAV_MISSION_INVALID_SEQUENCE, peer)]
        item = replace(item, seq=seq, mission_type=self.mission_type)
        if as_int:
            return [Reply(ReplyKind.ITEM_INT, item=item, mission_type=self.mission_type, to=peer)]
        out = [Reply(ReplyKind.ITEM, item=item, mission_type=self.mission_type, to=peer)]
        if not self._warned_request:
            self._warned_request = True
            out.append(Reply(ReplyKind.TEXT, SEV_WARNING, text="got MISSION_REQUEST; use MISSION_REQUEST_INT!"))
        return out

    def clear_all(self, peer: tuple[int, int]) -> list[Reply]:
        denied = self._cancel_by(peer)
        if denied is not None:
            return [denied, self._ack(mav.MAV_MISSION_ERROR, peer)]
        before = self.items.count()
        if not self.items.clear():
            return [self._ack(mav.MAV_MISSION_ERROR, peer)]
        return [self._ack(mav.MAV_MISSION_ACCEPTED, peer), *self.items.cleared(before)]


class MissionProtocol:
    """The vehicle side of the mission item protocol: one `ItemTransfer` per mission_type ArduCopter keeps."""

    def __init__(self, store: MissionStore, running: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self.transfers: dict[int, ItemTransfer] = {
            MISSION: ItemTransfer(_MissionItems(store, running)),
            FENCE: ItemTransfer(
                _ItemList(FENCE, MAX_FENCE_ITEMS, "Fence", check_fence_item, mav.MAV_FRAME_GLOBAL, "Fence Indexed OK", "FENCE_TOTAL", True)
            ),
            RALLY: ItemTransfer(_ItemList(RALLY, MAX_RALLY_ITEMS, "Rally", check_rally_item, total_param="RALLY_TOTAL")),
        }

    @property
    def uploading(self) -> bool:
        return any(t.receiving for t in self.transfers.values())

    @property
    def fence(self) -> list[Item]:
        return self.transfers[FENCE].items.items  # type: ignore[attr-defined]

    @property
    def rally(self) -> list[Item]:
        return self.transfers[RALLY].items.items  # type: ignore[attr-defined]

    def _unsupported(self, mission_type: int, peer: tuple[int, int]) -> list[Reply]:
        return [Reply(ReplyKind.ACK, mav.MAV_MISSION_UNSUPPORTED, mission_type=mission_type, to=peer)]

    def count_received(self, count: int, mission_type: int, now: float, peer: tuple[int, int]) -> list[Reply]:
        t = self.transfers.get(mission_type)
        return t.count(count, now, peer) if t is not None else self._unsupported(mission_type, peer)

    def item_received(self, item: Item, mission_type: int, now: float, peer: tuple[int, int], legacy: bool = False) -> list[Reply]:
        t = self.transfers.get(mission_type)
        if t is None:
            return self._unsupported(mission_type, peer)
        return t.item(replace(item, mission_type=mission_type), now, peer, legacy)

    def request_list(self, mission_type: int, peer: tuple[int, int]) -> list[Reply]:
        t = self.transfers.get(mission_type)
        return t.request_list(peer) if t is not None else self._unsupported(mission_type, peer)

    def request_item(self, seq: int, mission_type: int, as_int: bool, peer: tuple[int, int]) -> list[Reply]:
        t = self.transfers.get(mission_type)
        return t.request_item(seq, as_int, peer) if t is not None else []  # an unknown type's request: silence

    def clear_all(self, mission_type: int, peer: tuple[int, int]) -> list[Reply]:
        t = self.transfers.get(mission_type)
        return t.clear_all(peer) if t is not None else self._unsupported(mission_type, peer)

    def tick(self, now: float) -> list[Reply]:
        out: list[Reply] = []
        for t in self.transfers.values():
            out += t.tick(now)
        return out
