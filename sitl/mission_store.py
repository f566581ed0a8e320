"""The vehicle's stored mission and the MAVLink mission protocol, as ArduCopter answers it.

Upload: MISSION_COUNT -> the vehicle asks for each item with MISSION_REQUEST
(not _INT) -> MISSION_ITEM_INT -> MISSION_ACK accepted. Item 0 is always home,
whatever was uploaded in its place. Stored frames come back in their non-INT
form (6 -> 3), and commands without a location (DO_*, RTL) come back in frame 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

#: Frames as ArduCopter stores and returns them.
_STORED_FRAME = {
    mavlink2.MAV_FRAME_GLOBAL_INT: mavlink2.MAV_FRAME_GLOBAL,
    mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT,
}
NO_LOCATION = {mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH}
#: Mission item re-request interval while an upload waits for an item.
UPLOAD_RETRY_S = 1.5
UPLOAD_GIVE_UP_S = 8.0


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    frame: int
    command: int
    params: tuple[float, float, float, float]
    x: int  # lat * 1e7
    y: int  # lon * 1e7
    z: float  # alt in `frame`

    @property
    def lat(self) -> float:
        return self.x / 1e7

    @property
    def lon(self) -> float:
        return self.y / 1e7


def stored(item: Item) -> Item:
    """How ArduCopter keeps an uploaded item."""
    if item.command in NO_LOCATION or 176 <= item.command <= 252:
        return replace(item, frame=mavlink2.MAV_FRAME_GLOBAL, x=0, y=0, z=0.0)
    params = item.params
    if item.command == mavlink2.MAV_CMD_NAV_LOITER_TIME:
        params = (params[0], params[1], 1.0, params[3])
    return replace(item, frame=_STORED_FRAME.get(item.frame, item.frame), params=params)


class MissionStore:
    def __init__(self) -> None:
        self.items: list[Item] = []
        self._upload: list[Item | None] | None = None
        self._next_seq = 0
        self._last_request = 0.0
        self._last_item = 0.0

    @property
    def total(self) -> int:
        """MIS_TOTAL: items including home (0 before home is known)."""
        return len(self.items)

    @property
    def uploading(self) -> bool:
        return self._upload is not None

    def set_home(self, lat: float, lon: float, alt_amsl: float) -> None:
        home = Item(0, mavlink2.MAV_FRAME_GLOBAL, mavlink2.MAV_CMD_NAV_WAYPOINT, (0, 0, 0, 0), round(lat * 1e7), round(lon * 1e7), alt_amsl)
        if self.items:
            self.items[0] = home
        else:
            self.items.append(home)

    def clear(self) -> None:
        self.items = self.items[:0]
        self._upload = None

    # --- upload -----------------------------------------------------------------------

    def begin_upload(self, count: int, now: float) -> int | None:
        """Start receiving `count` items; returns the first seq to request (None for an empty mission)."""
        if count <= 0:
            self.items = self.items[:1]
            self._upload = None
            return None
        self._upload = [None] * count
        self._next_seq = 0
        self._last_item = self._last_request = now
        return 0

    def receive(self, item: Item, now: float) -> tuple[str, int]:
        """Take an item; returns ("request", seq), ("ack", MAV_MISSION_RESULT) or ("ignore", 0)."""
        if self._upload is None:
            if not 0 <= item.seq < len(self.items):
                return ("ack", mavlink2.MAV_MISSION_ERROR)
            self.items[item.seq] = stored(item) if item.seq else self.items[0]  # single-item update
            return ("ack", mavlink2.MAV_MISSION_ACCEPTED)
        if item.seq != self._next_seq:
            if 0 <= item.seq < len(self._upload):
                return ("request", self._next_seq)  # a repeat: ask again for what we need
            return ("ack", mavlink2.MAV_MISSION_INVALID_SEQUENCE)
        self._upload[item.seq] = item
        self._next_seq += 1
        self._last_request = self._last_item = now
        if self._next_seq < len(self._upload):
            return ("request", self._next_seq)
        home = self.items[0] if self.items else None
        received = [stored(i) for i in self._upload if i is not None]
        self.items = ([home] if home else [received[0]]) + received[1:]
        self._upload = None
        return ("ack", mavlink2.MAV_MISSION_ACCEPTED)

    def upload_tick(self, now: float) -> tuple[str, int] | None:
        """Re-request a missing item after a pause, and give up after a longer one."""
        if self._upload is None:
            return None
        if now - self._last_item > UPLOAD_GIVE_UP_S:
            self._upload = None
            return ("ack", mavlink2.MAV_MISSION_OPERATION_CANCELLED)
        if now - self._last_request > UPLOAD_RETRY_S:
            self._last_request = now
            return ("request", self._next_seq)
        return None

    def get(self, seq: int) -> Item | None:
        return self.items[seq] if 0 <= seq < len(self.items) else None
