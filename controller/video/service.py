"""Ties the video hub to the rest of the controller: who may watch what, feeds starting and ending with flights.

A drone publishes its WebRTC feeds itself. A drone whose cameras serve RTSP
(announced over MAVLink, or configured per drone: `CameraDirectory`) has its
streams pulled by the controller (controller/video/ingest/) from the moment it
is out on a mission (en route, on scene, searching) until it lands, the same
span a drone's own WebRTC feeds have.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from controller.auth import Principal, Role
from controller.domain.errors import Forbidden
from controller.domain.states import AIRBORNE, COMMITTED_MISSION, ON_GROUND, DroneState
from controller.events import Event, EventBus, Subscription
from controller.video.hub import VideoError, VideoHub
from controller.video.ingest.camera_info import CameraDirectory, CameraStream
from controller.video.ingest.rtsp import RtspIngest, RtspOptions, redact

if TYPE_CHECKING:
    from controller.center.view import LiveView

log = logging.getLogger(__name__)

#: Drone states in which its camera streams are pulled (out on a mission; a returning drone keeps what it has).
INGEST_STATES = frozenset({DroneState.ENROUTE, DroneState.ON_SCENE, DroneState.SEARCHING})
#: A drone in flight whose cameras told nothing (or could not be reached) is asked again after this long.
REDISCOVER_S = 30.0


class VideoService:
    def __init__(
        self,
        view: LiveView,
        bus: EventBus,
        mode: str = "forward",
        cameras: CameraDirectory | None = None,
        ingest_options: RtspOptions | None = None,
    ) -> None:
        self.view = view
        self.bus = bus
        self.hub = VideoHub(on_feeds_changed=self._feeds_changed, mode=mode)
        #: Where drones' RTSP camera streams are (None: no camera is pulled).
        self.cameras = cameras
        self.ingest_options = ingest_options or RtspOptions()
        self._watcher: asyncio.Task[None] | None = None
        self._ingest_tasks: dict[str, asyncio.Task[None]] = {}
        self._asked_at: dict[str, float] = {}

    async def start(self) -> None:
        sub = self.bus.subscribe(lambda e: e.type == "drone.updated")
        self._watcher = asyncio.get_running_loop().create_task(self._watch_landings(sub), name="video-landings")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        tasks = list(self._ingest_tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.hub.close()

    async def _watch_landings(self, sub: Subscription) -> None:
        try:
            while True:
                item = await sub.queue.get()
                if item is None:
                    sub = self.bus.subscribe(lambda e: e.type == "drone.updated")
                    continue
                event, _ = item
                state = DroneState(event.data["state"])
                drone_id = event.drone_id
                if state in ON_GROUND:
                    self._asked_at.pop(drone_id, None)
                    task = self._ingest_tasks.pop(drone_id, None)
                    if task is not None:
                        task.cancel()
                    if self.hub.publishing(drone_id) or any(d == drone_id for d, _ in self.hub.ingests):
                        log.info("video: %s is on the ground; ending its feeds", drone_id)
                        await self.hub.close_drone(drone_id)
                elif state in INGEST_STATES and drone_id is not None:
                    self._maybe_ingest(drone_id)
        finally:
            self.bus.unsubscribe(sub)

    # --- camera streams pulled over RTSP ---------------------------------------------------

    def _maybe_ingest(self, drone_id: str) -> None:
        if self.cameras is None or drone_id in self._ingest_tasks or self.hub.publishing(drone_id):
            return
        if any(d == drone_id for d, _ in self.hub.ingests):
            return
        now = asyncio.get_running_loop().time()
        if now - self._asked_at.get(drone_id, -REDISCOVER_S) < REDISCOVER_S:
            return
        self._asked_at[drone_id] = now
        task = asyncio.get_running_loop().create_task(self._start_ingest(drone_id), name=f"video-ingest-{drone_id}")
        self._ingest_tasks[drone_id] = task
        task.add_done_callback(lambda t, d=drone_id: self._ingest_tasks.pop(d, None) if self._ingest_tasks.get(d) is t else None)

    async def _start_ingest(self, drone_id: str) -> None:
        assert self.cameras is not None
        try:
            streams = await self.cameras.streams(drone_id)
        except Exception:  # noqa: BLE001 - no video is no reason to stop watching flights
            log.exception("video: %s: finding its camera streams failed", drone_id)
            return
        drone = self.view.drones.get(drone_id)
        if drone is None or drone.state not in AIRBORNE:
            return  # landed while we asked
        for kind, stream in sorted(streams.items()):
            await self.ingest(drone_id, kind, stream)

    async def ingest(self, drone_id: str, kind: str, stream: CameraStream) -> bool:
        """Pull one camera stream into the drone's `kind` feed (until it lands or `hub.stop_ingest`)."""
        o = self.ingest_options
        options = RtspOptions(
            transport=stream.transport, open_timeout_s=o.open_timeout_s, read_timeout_s=o.read_timeout_s,
            backoff_initial_s=o.backoff_initial_s, backoff_max_s=o.backoff_max_s, analyze_s=o.analyze_s,
        )
        source = RtspIngest(stream.uri, options, name=f"{drone_id}/{kind}")
        try:
            await self.hub.ingest(drone_id, kind, source.codec, source)
        except VideoError as exc:
            log.warning("video: %s/%s: not pulling %s: %s", drone_id, kind, source.name, exc)
            return False
        log.info("video: %s/%s: pulling its camera (%s, %s, %s)", drone_id, kind, stream.origin, stream.transport, redact(stream.uri))
        return True

    def _feeds_changed(self, drone_id: str) -> None:
        drone = self.view.drones.get(drone_id)
        feeds = sorted(kind for (d, kind) in self.hub.feeds if d == drone_id)
        self.bus.publish(
            [
                Event(
                    None, self.view.clock(), "video.feeds", {"drone_id": drone_id, "feeds": feeds},
                    station_id=drone.station_id if drone else None, drone_id=drone_id,
                )
            ]
        )

    # --- who may watch --------------------------------------------------------------

    def search_drones(self) -> set[str]:
        """Drones committed to an open missing-person search (their teams may watch them)."""
        return set(self.view.search_drones(COMMITTED_MISSION))

    def check_viewer(self, who: Principal, drone_id: str) -> None:
        drone = self.view.drones.get(drone_id)
        if who.role is Role.COMMANDER:
            return
        if who.role is Role.PILOT and drone is not None and drone.station_id == who.station_id:
            return
        if who.role is Role.SEARCH_TEAM and drone_id in self.search_drones():
            return
        raise Forbidden(
            "commanders see all feeds, pilots their station's drones, search teams the drones of their search"
        )

    def can_view(self, who: Principal, drone_id: str) -> bool:
        try:
            self.check_viewer(who, drone_id)
            return True
        except Forbidden:
            return False

    def airborne(self, drone_id: str) -> bool:
        drone = self.view.drones.get(drone_id)
        return drone is not None and drone.state in AIRBORNE
