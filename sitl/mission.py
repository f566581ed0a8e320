"""The stored mission and the MAVLink mission protocol, answered the way ArduCopter 4.7 answers it.

Upload: MISSION_COUNT -> the vehicle asks for each item with MISSION_REQUEST
(not _INT) -> MISSION_ITEM_INT -> ... -> MISSION_ACK accepted. Items are stored
as they arrive (MIS_TOTAL grows as they do), seq 0 is always home whatever was
uploaded in its place, and a stalled upload is re-requested and then given up.
Download: MISSION_REQUEST_LIST -> MISSION_COUNT, MISSION_REQUEST_INT ->
MISSION_ITEM_INT, with frames and fields as ArduCopter stores them (see
`stored`). MISSION_CLEAR_ALL removes everything, home included, until the next
arming puts home back.

`MissionProtocol` is transport-free: it takes decoded requests and the time,
and returns `Reply` values for the vehicle to send.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum

from pymavlink.dialects.v20 import ardupilotmega as mav

#: Re-request a missing item after this long, give the upload up after this long (simulated seconds).
UPLOAD_RETRY_S = 1.0
UPLOAD_GIVE_UP_S = 8.0

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
    TOTAL = "MIS_TOTAL"  # the stored count changed to `value`
    TEXT = "STATUSTEXT"  # `text`


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    value: int = 0
    item: Item | None = None
    text: str = ""
    mission_type: int = 0
    to: tuple[int, int] = (255, 190)  # (sysid, compid) of the ground station it answers


class MissionStore:
    """Seq 0 is home (once known); items 1.. are the mission."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    @property
    def count(self) -> int:
        """MIS_TOTAL: stored items including home."""
        return len(self.items)

    @property
    def has_mission(self) -> bool:
        return len(self.items) > 1

    def get(self, seq: int) -> Item | None:
        return self.items[seq] if 0 <= seq < len(self.items) else None

    def set_home(self, lat: float, lon: float, alt_amsl: float) -> bool:
        """Put home in seq 0; returns True if that added an item (after a clear, or the first time)."""
        home = home_item(lat, lon, alt_amsl)
        if self.items:
            self.items[0] = home
            return False
        self.items.append(home)
        return True

    def clear(self) -> None:
        self.items = []

    def write(self, seq: int, item: Item) -> None:
        if seq == 0:
            if not self.items:  # no home yet: keep the uploaded item as a stand-in
                self.items.append(replace(stored(item), seq=0))
            return
        item = replace(stored(item), seq=seq)
        while len(self.items) < seq:
            self.items.append(replace(item, command=mav.MAV_CMD_NAV_WAYPOINT, seq=len(self.items)))
        if seq < len(self.items):
            self.items[seq] = item
        else:
            self.items.append(item)

    def truncate(self, count: int) -> None:
        del self.items[max(count, 1 if self.items else 0):]


@dataclass
class _Upload:
    count: int
    next_seq: int
    last_rx: float
    last_request: float
    peer: tuple[int, int]


class MissionProtocol:
    """The vehicle side of the mission protocol (mission_type 0 only; fences and rally points are refused)."""

    def __init__(self, store: MissionStore, running: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self._upload: _Upload | None = None
        self._running = running

    @property
    def uploading(self) -> bool:
        return self._upload is not None

    def count_received(self, count: int, mission_type: int, now: float, peer: tuple[int, int]) -> list[Reply]:
        if mission_type != mav.MAV_MISSION_TYPE_MISSION:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_UNSUPPORTED, mission_type=mission_type, to=peer)]
        if count <= 0:
            self._upload = None
            self.store.truncate(1)
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_ACCEPTED, to=peer), Reply(ReplyKind.TOTAL, self.store.count)]
        if count > 700:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_NO_SPACE, to=peer)]
        self._upload = _Upload(count, 0, now, now, peer)
        return [Reply(ReplyKind.REQUEST, 0, to=peer)]

    def item_received(self, item: Item, mission_type: int, now: float, peer: tuple[int, int]) -> list[Reply]:
        up = self._upload
        if mission_type != mav.MAV_MISSION_TYPE_MISSION:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_UNSUPPORTED, mission_type=mission_type, to=peer)]
        if up is None:
            # Nothing being uploaded: ArduCopter answers any stray item with an error.
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_ERROR, to=peer)]
        if item.seq != up.next_seq:
            if item.seq < up.next_seq:
                return []  # a repeat of one we have: the next request is already out
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_INVALID_SEQUENCE, to=peer)]
        before = self.store.count
        self.store.write(item.seq, item)
        up.next_seq += 1
        up.last_rx = up.last_request = now
        if up.next_seq < up.count:
            out = [Reply(ReplyKind.REQUEST, up.next_seq, to=up.peer)]
            if self.store.count != before:
                out.append(Reply(ReplyKind.TOTAL, self.store.count))
            return out
        self.store.truncate(up.count)
        self._upload = None
        return [
            Reply(ReplyKind.ACK, mav.MAV_MISSION_ACCEPTED, to=up.peer),
            Reply(ReplyKind.TEXT, text="Flight plan received"),
            Reply(ReplyKind.TOTAL, self.store.count),
        ]

    def request_list(self, mission_type: int, peer: tuple[int, int]) -> list[Reply]:
        if mission_type != mav.MAV_MISSION_TYPE_MISSION:
            return [Reply(ReplyKind.COUNT, 0, mission_type=mission_type, to=peer)]
        return [Reply(ReplyKind.COUNT, self.store.count, to=peer)]

    def request_item(self, seq: int, mission_type: int, as_int: bool, peer: tuple[int, int]) -> list[Reply]:
        if mission_type != mav.MAV_MISSION_TYPE_MISSION:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_UNSUPPORTED, mission_type=mission_type, to=peer)]
        item = self.store.get(seq)
        if item is None:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_INVALID_SEQUENCE, to=peer)]
        return [Reply(ReplyKind.ITEM_INT if as_int else ReplyKind.ITEM, item=item, to=peer)]

    def clear_all(self, mission_type: int, peer: tuple[int, int]) -> list[Reply]:
        if mission_type != mav.MAV_MISSION_TYPE_MISSION:
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_UNSUPPORTED, mission_type=mission_type, to=peer)]
        if self._running():
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_ERROR, to=peer)]
        self._upload = None
        self.store.clear()
        return [Reply(ReplyKind.ACK, mav.MAV_MISSION_ACCEPTED, to=peer), Reply(ReplyKind.TOTAL, 0)]

    def tick(self, now: float) -> list[Reply]:
        """Re-request a stalled item; give a dead upload up."""
        up = self._upload
        if up is None:
            return []
        if now - up.last_rx > UPLOAD_GIVE_UP_S:
            self._upload = None
            return [Reply(ReplyKind.ACK, mav.MAV_MISSION_OPERATION_CANCELLED, to=up.peer)]
        if now - up.last_request > UPLOAD_RETRY_S:
            up.last_request = now
            return [Reply(ReplyKind.REQUEST, up.next_seq, to=up.peer)]
        return []
