"""Finding a drone's camera streams over MAVLink, on the built-in simulator's camera (mavlink-camera-manager's answers).

The simulated drone carries cameras as their own MAVLink components (100, 101); the controller's DroneLink
hears their HEARTBEATs (MAV_TYPE_CAMERA) without taking them for the autopilot's, asks each
MAV_CMD_REQUEST_MESSAGE(VIDEO_STREAM_INFORMATION) and gets the RTSP URI and kind (THERMAL flag). A URI
configured for a drone wins over the announced one, and the stations file's URIs are validated once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError
from pymavlink.dialects.v20 import ardupilotmega as mav

from controller.config.models import StationDrone
from controller.fleet.copter import CopterMode
from controller.fleet.drone_link import CommandRejected, DroneLink, LinkConfig
from controller.fleet.transport import Endpoint
from controller.video.ingest.camera_info import CameraDirectory, CameraStream, configured_streams, discover
from sitl.camera_component import CameraStreamSpec
from sitl.fleet import SimFleet, VehicleSpec, free_base_port

HOME = (32.05, 118.78, 10.0)
EO = "rtsp://192.0.2.10:8554/eo"
IR = "rtsp://192.0.2.10:8554/ir"


async def until(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimFleet, list[DroneLink]]]:
    specs = [
        VehicleSpec(0, *HOME, warm=True, cameras=(CameraStreamSpec("visible", EO, "EO"), CameraStreamSpec("thermal", IR, "IR"))),
        VehicleSpec(1, HOME[0] + 0.001, HOME[1], HOME[2], warm=True),
    ]
    async with SimFleet(specs, speedup=4.0, base_port=free_base_port(2)) as fleet:
        links = [
            DroneLink(LinkConfig(f"d{i + 1}", Endpoint.parse(f"tcp:127.0.0.1:{fleet.port_of(i)}"), sysid=i + 1))
            for i in range(2)
        ]
        for link in links:
            link.start()
        try:
            await until(lambda: all(link.up for link in links), 10, "links up")
            yield fleet, links
        finally:
            for link in links:
                await link.stop()


async def test_the_drones_cameras_tell_their_rtsp_streams(sim: tuple[SimFleet, list[DroneLink]]) -> None:
    fleet, (link, _) = sim
    await until(lambda: {100, 101} <= link.components.keys(), 5, "camera heartbeats")
    assert {c: t for c, (t, _) in link.components.items()} == {100: mav.MAV_TYPE_CAMERA, 101: mav.MAV_TYPE_CAMERA}
    streams = await discover(link)
    assert streams == {
        "visible": CameraStream("visible", EO, "tcp", "mavlink:100", "EO", 640, 512, 15.0),
        "thermal": CameraStream("thermal", IR, "tcp", "mavlink:101", "IR", 640, 512, 15.0),
    }
    cams = fleet.endpoint(0).components
    assert [c.requests for c in cams] == [1, 1]  # asked once each, no retry needed


async def test_camera_heartbeats_are_not_the_autopilots(sim: tuple[SimFleet, list[DroneLink]]) -> None:
    _, (link, _) = sim
    await link.set_mode(CopterMode.GUIDED)
    seen = len(link.components)
    await until(lambda: link.components.get(100, (0, 0.0))[1] > time.monotonic() - 0.2, 5, "a fresh camera heartbeat")
    await asyncio.sleep(0.3)
    assert link.telemetry.mode == CopterMode.GUIDED  # a camera HEARTBEAT (custom_mode 0) did not change it
    assert seen <= len(link.components)


async def test_camera_answers_as_mavlink_camera_manager(sim: tuple[SimFleet, list[DroneLink]]) -> None:
    fleet, (link, _) = sim
    await until(lambda: 100 in link.components, 5, "camera heartbeat")
    # stream 1 is its one stream; another stream id is DENIED, another message id too
    [info] = await link.request_message(mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, (1,), component=100)
    assert (info.stream_id, info.count, info.type, info.flags) == (1, 0, mav.VIDEO_STREAM_TYPE_RTSP, mav.VIDEO_STREAM_STATUS_FLAGS_RUNNING)
    with pytest.raises(CommandRejected) as denied:
        await link.request_message(mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, (5,), component=100)
    assert denied.value.result == mav.MAV_RESULT_DENIED
    [cam] = await link.request_message(mav.MAVLINK_MSG_ID_CAMERA_INFORMATION, component=101)
    assert cam.flags & mav.CAMERA_CAP_FLAGS_HAS_VIDEO_STREAM and cam.get_srcComponent() == 101
    # the autopilot has no stream to tell, and it did not act on the commands addressed to its cameras
    with pytest.raises(CommandRejected) as unsupported:
        await link.request_message(mav.MAVLINK_MSG_ID_VIDEO_STREAM_INFORMATION, (0,))
    assert unsupported.value.result == mav.MAV_RESULT_UNSUPPORTED


async def test_a_drone_without_cameras_has_no_streams_quickly(sim: tuple[SimFleet, list[DroneLink]]) -> None:
    _, (_, plain) = sim
    t0 = time.monotonic()
    assert await discover(plain) == {}
    assert time.monotonic() - t0 < 1.0 and plain.components == {}


async def test_a_configured_uri_overrides_the_announced_one(sim: tuple[SimFleet, list[DroneLink]]) -> None:
    fleet, (link, plain) = sim
    await until(lambda: {100, 101} <= link.components.keys(), 5, "camera heartbeats")
    drones = [
        StationDrone(id="d1", model="m", video={"thermal": {"uri": "rtsp://10.1.1.1/ir", "transport": "udp"}}),
        StationDrone(id="d2", model="m", video={"visible": "rtsp://10.1.1.2/eo"}),
    ]

    class Station:
        pass

    station = Station()
    station.drones = drones  # type: ignore[attr-defined]
    links = {"d1": link, "d2": plain}
    directory = CameraDirectory(configured_streams([station]), links=links.get)
    d1 = await directory.streams("d1")
    assert d1["thermal"] == CameraStream("thermal", "rtsp://10.1.1.1/ir", "udp", "config")
    assert d1["visible"].uri == EO and d1["visible"].origin == "mavlink:100"
    assert await directory.streams("d2") == {"visible": CameraStream("visible", "rtsp://10.1.1.2/eo", "tcp", "config")}
    # both kinds configured: the drone is not asked at all
    asked = [c.requests for c in fleet.endpoint(0).components]
    full = CameraDirectory({"d1": {"visible": d1["thermal"], "thermal": d1["thermal"]}}, links=links.get)
    await full.streams("d1")
    assert [c.requests for c in fleet.endpoint(0).components] == asked


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://cam/x", "rtsp:// or rtsps://"),
        ("rtsp:///x", "names no host"),
        ("rtsp://cam:99999/x", "bad port"),
        ("rtsp://cam/a b", "no spaces"),
    ],
)
def test_configured_uris_are_validated_once(uri: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        StationDrone(id="d1", model="m", video={"thermal": uri})
    with pytest.raises(ValidationError):
        StationDrone(id="d1", model="m", video={"infrared": "rtsp://cam/x"})
