"""Starts each simulated drone's video uplink when it is airborne and stops it after landing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sitl.camera_render import SEARCH_SPAN_C, CameraPose, Intrinsics, ThermalSource
from sitl.fleet import SimFleet
from sitl.video_publisher import CameraSetup, CameraTrack, VideoPublisher

log = logging.getLogger(__name__)

AIRBORNE_ALT_M = 3.0
CHECK_PERIOD_S = 1.0
VISIBLE = Intrinsics(640, 512, 84.0)
THERMAL = Intrinsics(640, 512, 61.0)


class VideoManager:
    def __init__(
        self,
        fleet: SimFleet,
        controller_url: str,
        tokens: dict[str, str],
        scenario: Path | None = None,
        fps: float = 15.0,
    ) -> None:
        self.fleet = fleet
        self.url = controller_url
        self.tokens = tokens
        self.fps = fps
        self.sources: list[ThermalSource] = []
        if scenario is not None:
            from sitl.thermal_scene import load_scenarios

            self.sources = [src for sc in load_scenarios(scenario) for src in sc.sources]
        self.publishers: dict[int, VideoPublisher] = {}
        self._task: asyncio.Task[None] | None = None
        self._starting: set[int] = set()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-video")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self.publishers.values()), return_exceptions=True)
        self.publishers.clear()

    def _pose(self, instance: int) -> CameraPose | None:
        v = self.fleet.vehicles[instance]
        lat, lon = v.latlon()
        return CameraPose(lat, lon, max(v.motion.alt, 1.0), v.motion.heading)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_PERIOD_S)
            for spec in self.fleet.specs:
                v = self.fleet.vehicles[spec.instance]
                airborne = v.flying and v.motion.alt > AIRBORNE_ALT_M
                if airborne and spec.instance not in self.publishers and spec.instance not in self._starting:
                    asyncio.get_running_loop().create_task(self._publish(spec.instance, spec.name or f"sim-{spec.instance}"))
                elif not v.flying and spec.instance in self.publishers:
                    await self.publishers.pop(spec.instance).stop()

    async def _publish(self, instance: int, drone_id: str) -> None:
        token = self.tokens.get(drone_id)
        if token is None:
            log.warning("no video token for %s; not publishing", drone_id)
            return
        self._starting.add(instance)
        spec = self.fleet.specs[instance]
        origin = (spec.lat, spec.lon)
        tracks = {
            "visible": CameraTrack(drone_id, CameraSetup("visible", VISIBLE, self.fps), lambda: self._pose(instance), origin),
            "thermal": CameraTrack(
                drone_id, CameraSetup("thermal", THERMAL, self.fps, SEARCH_SPAN_C), lambda: self._pose(instance), origin,
                lambda: self.sources,
            ),
        }
        publisher = VideoPublisher(drone_id, self.url, token, tracks)
        try:
            await publisher.start()
            self.publishers[instance] = publisher
        except Exception as exc:  # noqa: BLE001 - keep flying without video
            log.warning("%s: video uplink failed: %s", drone_id, exc)
        finally:
            self._starting.discard(instance)
