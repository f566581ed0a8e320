"""Where a drone's camera streams are: asked over MAVLink, or configured per drone.

A camera announces itself with HEARTBEATs of MAV_TYPE_CAMERA from its own
component of the vehicle's system (mavlink-camera-manager: component 100 and
up, one per stream; QGroundControl finds cameras the same way). Each one is
asked MAV_CMD_REQUEST_MESSAGE(VIDEO_STREAM_INFORMATION, stream 0 = all) and
answers COMMAND_ACK then VIDEO_STREAM_INFORMATION: type (RTSP, RTP/UDP, …),
flags (THERMAL for a thermal camera), name, URI, resolution, frame rate. The
autopilot itself is asked too (ArduPilot's camera library can report a gimbal
camera's stream), and answers UNSUPPORTED when it has none.

A URI configured for a drone and kind (stations file, `video:`) wins over
whatever the drone announces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.fleet.drone_link import DroneLink, LinkError

log = logging.getLogger(__name__)

VIDEO_STREAM_INFORMATION = mavlink2.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION  # 269
MAV_TYPE_CAMERA = mavlink2.MAV_TYPE_CAMERA  # 30
STREAM_TYPES = {
    mavlink2.VIDEO_STREAM_TYPE_RTSP: "rtsp",
    mavlink2.VIDEO_STREAM_TYPE_RTPUDP: "rtpudp",
    mavlink2.VIDEO_STREAM_TYPE_TCP_MPEG: "tcp-mpeg",
    mavlink2.VIDEO_STREAM_TYPE_MPEG_TS: "mpeg-ts",
}
#: A camera component heard from within this long is asked.
COMPONENT_FRESH_S = 10.0


@dataclass(frozen=True)
class CameraStream:
    """One stream the controller can pull: where, how, and which camera kind it is."""

    kind: str  # visible or thermal
    uri: str
    transport: Literal["tcp", "udp"] = "tcp"
    #: "config" or "mavlink:<component id>".
    origin: str = "config"
    name: str = ""
    width: int = 0
    height: int = 0
    framerate: float = 0.0


def _text(raw: Any) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return str(raw).split("\x00", 1)[0].strip()


def stream_from_message(msg: Any, component: int) -> CameraStream | None:
    """A pullable stream from a VIDEO_STREAM_INFORMATION, or None (not RTSP, no URI)."""
    uri = _text(msg.uri)
    kind_of_stream = STREAM_TYPES.get(msg.type, f"type {msg.type}")
    if kind_of_stream != "rtsp" or not uri.lower().startswith(("rtsp://", "rtsps://")):
        log.info("camera %d announces a %s stream %r: only RTSP is pulled", component, kind_of_stream, uri)
        return None
    thermal = bool(msg.flags & mavlink2.VIDEO_STREAM_STATUS_FLAGS_THERMAL)
    return CameraStream(
        kind="thermal" if thermal else "visible",
        uri=uri,
        origin=f"mavlink:{component}",
        name=_text(msg.name),
        width=int(msg.resolution_h),
        height=int(msg.resolution_v),
        framerate=float(msg.framerate),
    )


async def discover(link: DroneLink, timeout: float = 1.5, retries: int = 2) -> dict[str, CameraStream]:
    """Ask the drone's cameras (and its autopilot) for their video streams; kind -> the first stream of that kind."""
    now = link.clock()
    cameras = sorted(
        c for c, (mav_type, heard) in link.components.items() if mav_type == MAV_TYPE_CAMERA and now - heard < COMPONENT_FRESH_S
    )
    found: dict[str, CameraStream] = {}
    for component in [*cameras, link.config.compid]:
        try:
            answers = await link.request_message(VIDEO_STREAM_INFORMATION, (0,), component=component, timeout=timeout, retries=retries)
        except LinkError as exc:
            if component != link.config.compid:
                log.warning("%s: camera %d did not tell its video streams: %s", link.drone_id, component, exc)
            continue
        for msg in answers:
            stream = stream_from_message(msg, component)
            if stream is not None and stream.kind not in found:
                found[stream.kind] = stream
                log.info("%s: %s camera stream %s from MAVLink component %d", link.drone_id, stream.kind, stream.uri, component)
    return found


def configured_streams(stations: Any) -> dict[str, dict[str, CameraStream]]:
    """drone id -> kind -> stream, from the stations file's per-drone `video` entries (config.models.StationDrone)."""
    out: dict[str, dict[str, CameraStream]] = {}
    for station in stations:
        for drone in station.drones:
            for kind, v in drone.video.items():
                out.setdefault(drone.id, {})[kind] = CameraStream(kind, v.uri, v.transport, "config")
    return out


class CameraDirectory:
    """Each drone's camera streams by kind: configured URIs first, then what the drone announces over MAVLink."""

    def __init__(
        self,
        configured: Mapping[str, Mapping[str, CameraStream]] | None = None,
        links: Callable[[str], DroneLink | None] | None = None,
    ) -> None:
        self.configured = {d: dict(s) for d, s in (configured or {}).items()}
        self._links = links or (lambda _d: None)

    async def streams(self, drone_id: str) -> dict[str, CameraStream]:
        out: dict[str, CameraStream] = {}
        configured = self.configured.get(drone_id, {})
        link = self._links(drone_id)
        if link is not None and link.up and not {"visible", "thermal"} <= configured.keys():
            try:
                out.update(await discover(link))
            except LinkError as exc:  # pragma: no cover - discover handles its own
                log.warning("%s: camera discovery failed: %s", drone_id, exc)
        out.update(configured)
        return out
