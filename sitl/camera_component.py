"""A camera on the simulated drone, answering as mavlink-camera-manager does on a companion computer.

Each stream is a MAVLink component of its own in the vehicle's system
(MAV_COMP_ID_CAMERA = 100, then 101, …). It sends a HEARTBEAT every second
(MAV_TYPE_CAMERA, MAV_AUTOPILOT_INVALID, base mode 0, MAV_STATE_STANDBY) and
answers only COMMAND_LONGs addressed to it (its own system and component;
broadcasts are ignored, as mavlink-camera-manager ignores them):

- MAV_CMD_REQUEST_MESSAGE(VIDEO_STREAM_INFORMATION): stream id 0 (all) or 1
  (its only stream) is ACCEPTED and followed by VIDEO_STREAM_INFORMATION
  (stream_id 1, count 0, type RTSP, flags THERMAL for a thermal camera else
  RUNNING, bitrate 5000, hfov 90, rotation 0, its name and URI); another
  stream id is DENIED.
- MAV_CMD_REQUEST_MESSAGE(CAMERA_INFORMATION) and
  MAV_CMD_REQUEST_CAMERA_INFORMATION: ACCEPTED, then CAMERA_INFORMATION with
  CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM.
- MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION (the older request): as above.
- any other REQUEST_MESSAGE id: DENIED; any other command: UNSUPPORTED.

The camera serves no video itself: the URI is whatever the vehicle spec says
(a real RTSP server in the tests). Its messages are packed with its own
component id and signed like the vehicle's when the link is signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mav

MAV_COMP_ID_CAMERA = mav.MAV_COMP_ID_CAMERA  # 100
STREAM_ID = 1  # mavlink-camera-manager numbers its one stream per component 1 (0 means all)


@dataclass(frozen=True)
class CameraStreamSpec:
    kind: str  # "visible" or "thermal"
    uri: str
    name: str = ""
    width: int = 640
    height: int = 512
    framerate: float = 15.0


class SimCamera:
    def __init__(self, sysid: int, compid: int, spec: CameraStreamSpec, vehicle_encoder: Any) -> None:
        self.sysid = sysid
        self.compid = compid
        self.spec = spec
        self.encoder = mav.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        self.encoder.signing = vehicle_encoder.signing  # one key for the whole vehicle, as the link signs
        self.outbox: list[Any] = []
        self.t = 0.0
        self._next_heartbeat = 0.0
        self.requests = 0

    # --- time ----------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        self.t += dt
        if self.t >= self._next_heartbeat:
            self._next_heartbeat = self.t + 1.0
            self._send(
                self.encoder.heartbeat_encode(mav.MAV_TYPE_CAMERA, mav.MAV_AUTOPILOT_INVALID, 0, 0, mav.MAV_STATE_STANDBY)
            )

    # --- messages -----------------------------------------------------------------------------

    def handle(self, msg: Any) -> None:
        if msg.get_type() != "COMMAND_LONG":
            return
        if msg.target_system != self.sysid or msg.target_component != self.compid:
            return
        self.requests += 1
        cmd = msg.command
        if cmd == mav.MAV_CMD_REQUEST_MESSAGE:
            msgid = int(msg.param1)
            if msgid == mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION:
                if int(msg.param2) not in (0, STREAM_ID):
                    self._ack(cmd, mav.MAV_RESULT_DENIED)
                    return
                self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
                self._send(self._stream_information())
            elif msgid == mav.MAVLINK_MSG_ID_CAMERA_INFORMATION:
                self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
                self._send(self._camera_information())
            else:
                self._ack(cmd, mav.MAV_RESULT_DENIED)
        elif cmd == mav.MAV_CMD_REQUEST_CAMERA_INFORMATION:
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._send(self._camera_information())
        elif cmd == mav.MAV_CMD_REQUEST_VIDEO_STREAM_INFORMATION:
            if int(msg.param2) not in (0, STREAM_ID):
                self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)
                return
            self._ack(cmd, mav.MAV_RESULT_ACCEPTED)
            self._send(self._stream_information())
        else:
            self._ack(cmd, mav.MAV_RESULT_UNSUPPORTED)

    def _stream_information(self) -> Any:
        s = self.spec
        flags = mav.VIDEO_STREAM_STATUS_FLAGS_THERMAL if s.kind == "thermal" else mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING
        return self.encoder.video_stream_information_encode(
            STREAM_ID, 0, mav.VIDEO_STREAM_TYPE_RTSP, flags, s.framerate, s.width, s.height, 5000, 0, 90,
            (s.name or s.kind).encode()[:31], s.uri.encode()[:159], mav.VIDEO_STREAM_ENCODING_H264,
        )

    def _camera_information(self) -> Any:
        s = self.spec
        return self.encoder.camera_information_encode(
            int(self.t * 1000) & 0xFFFFFFFF, _chars(b"sim"), _chars((s.name or s.kind).encode()), 0, 0.0, 0.0, 0.0,
            s.width, s.height, 0, mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM, 0, b"",
        )

    def _ack(self, command: int, result: int) -> None:
        self._send(self.encoder.command_ack_encode(command, result, 0, 0, 0, 0))

    def _send(self, msg: Any) -> None:
        msg._sim_encoder = self.encoder  # the endpoint packs it as this component  # noqa: SLF001
        self.outbox.append(msg)


def _chars(text: bytes, size: int = 32) -> list[int]:
    return list(text[: size - 1].ljust(size, b"\0"))
