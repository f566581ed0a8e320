"""Ties the video hub to the rest of the controller: who may watch what, and feeds ending on landing."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from controller.auth import Principal, Role
from controller.domain.errors import Forbidden
from controller.domain.states import AIRBORNE, COMMITTED_MISSION, ON_GROUND, DroneState
from controller.events import Event, EventBus, Subscription
from controller.video.hub import VideoHub

if TYPE_CHECKING:
    from controller.center.view import LiveView

log = logging.getLogger(__name__)


class VideoService:
    def __init__(self, view: LiveView, bus: EventBus, mode: str = "forward") -> None:
        self.view = view
        self.bus = bus
        self.hub = VideoHub(on_feeds_changed=self._feeds_changed, mode=mode)
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sub = self.bus.subscribe(lambda e: e.type == "drone.updated")
        self._watcher = asyncio.get_running_loop().create_task(self._watch_landings(sub), name="video-landings")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await self.hub.close()

    async def _watch_landings(self, sub: Subscription) -> None:
        try:
            while True:
                item = await sub.queue.get()
                if item is None:
                    sub = self.bus.subscribe(lambda e: e.type == "drone.updated")
                    continue
                event, _ = item
                if DroneState(event.data["state"]) in ON_GROUND and event.drone_id in self.hub.publishers:
                    log.info("video: %s is on the ground; ending its feeds", event.drone_id)
                    await self.hub.close_drone(event.drone_id)
        finally:
            self.bus.unsubscribe(sub)

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
