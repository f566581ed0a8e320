"""Hotspots for missing-person searches: search drones' thermal feeds in, confirmed positions out to the teams.

For every drone flying for an open missing-person incident whose thermal feed
is live, one FeedDecoder decodes the relayed feed once. Every few frames go to
the detector (in a worker thread) with the drone's pose at the frame's capture
time; the incident's tracker associates detections on the ground across frames
and drones and confirms a hotspot after N hits in M frames. A confirmed hotspot
is stored, announced on the event stream (`hotspot.raised`), and sent as a CoT
event to the configured TAK endpoints. Teams mark hotspots confirmed, dismissed
(never raised again within a radius) or found (the search is closed and the
drones recalled).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np
from sqlalchemy import select

from controller.auth import Principal
from controller.config.models import SearchPolicy
from controller.domain.alerts import AlertKind, NewAlert
from controller.domain.categories import SEARCH_CATEGORY
from controller.domain.entities import Incident
from controller.domain.errors import NotFound
from controller.domain.states import AIRBORNE_MISSION, IncidentStatus
from controller.geo import equirectangular_m
from controller.hotspots.cot import hotspot_event
from controller.hotspots.cot_sender import CotEndpoint, CotSender
from controller.hotspots.feed_decoder import FeedDecoder
from controller.hotspots.pose_history import PoseHistory, PoseSample
from controller.hotspots.records import HotspotRecord, HotspotStatus
from controller.store import schema
from controller.store.database import Database
from controller.store.rows import hotspot_from_row, hotspot_row

if TYPE_CHECKING:  # the vision library (OpenCV) loads only when a search needs it
    from controller.center.view import LiveView
    from controller.hotspots.vision_adapter import SearchCamera, VisionPipeline
    from controller.video.service import VideoService

log = logging.getLogger(__name__)

#: Below this height above home the camera sees the station, not the search area.
MIN_DETECT_ALT_M = 20.0
RECONCILE_PERIOD_S = 1.0
#: A raised hotspot's position/hits are re-published when it moved this much or gained sightings.
UPDATE_MOVE_M = 1.0
UPDATE_PERIOD_S = 2.0


class SearchCommands(Protocol):
    """What the hotspot service asks of the dispatch centre: commit its rows with an event, close a search."""

    async def record(
        self, type: str, data: dict[str, Any], upserts: list[tuple[Any, dict[str, Any]]], *,
        alert: NewAlert | None = None, **ids: str | None,
    ) -> None: ...

    async def close_incident(self, incident_id: str, who: Principal, *, resolved: bool, reason: str) -> Incident: ...


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def thumbnail_png(thumb: np.ndarray | None) -> bytes | None:
    if thumb is None or thumb.size == 0:
        return None
    ok, buf = cv2.imencode(".png", thumb)
    return buf.tobytes() if ok else None


class HotspotService:
    def __init__(
        self,
        view: LiveView,
        commands: SearchCommands,
        db: Database,
        policy: SearchPolicy,
        video: VideoService | None = None,
        camera: SearchCamera | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.commands = commands
        self.db = db
        self.policy = policy
        self.video = video
        self.poses = PoseHistory()
        self.camera = camera
        self.wall_clock = wall_clock
        self.records: dict[str, HotspotRecord] = {}
        self.pipelines: dict[str, VisionPipeline] = {}  # incident id -> its tracker and detector
        self.decoders: dict[str, tuple[FeedDecoder, str, Any]] = {}  # drone id -> (decoder, incident id, feed)
        self.frames_in = 0
        self.frames_detected = 0
        self.frames_without_pose = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotspot-detect")
        self._busy: set[str] = set()
        self._last_detect: dict[str, float] = {}
        self._published: dict[str, tuple[float, float, int, float]] = {}
        self._no = 0
        self._task: asyncio.Task[None] | None = None
        endpoints = [CotEndpoint.parse(u) for u in policy.cot_endpoints]
        self.cot = CotSender(endpoints, policy.cot_timeout_s, policy.cot_retries)

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        stored = await self.db.read(_load_hotspots)
        for rec in stored:
            self.records[rec.id] = rec
            self._no = max(self._no, int(rec.id.rsplit("-", 1)[-1]))
            self._published[rec.id] = (rec.lat, rec.lon, rec.hits, 0.0)
        self.cot.start()
        self._task = asyncio.get_running_loop().create_task(self._reconcile_forever(), name="hotspots")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for decoder, _, _ in list(self.decoders.values()):
            await decoder.stop()
        self.decoders.clear()
        await self.cot.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # --- telemetry in -----------------------------------------------------------------------

    def pose(self, drone_id: str, sample: PoseSample) -> None:
        self.poses.add(drone_id, sample)

    def position(self, drone_id: str, t: Any) -> None:
        """A position report from the fleet link (controller.fleet.telemetry.Telemetry), stamped on arrival."""
        if t.lat is None or t.lon is None or t.alt_rel_m is None:
            return
        heading = t.heading_deg if t.heading_deg is not None else (t.yaw_deg or 0.0)
        self.poses.add(
            drone_id,
            PoseSample(
                self.wall_clock(), t.lat, t.lon, t.alt_amsl_m or 0.0, t.alt_rel_m, heading,
                t.roll_deg or 0.0, t.pitch_deg or 0.0,
            ),
        )

    # --- which feeds to watch ------------------------------------------------------------------

    def search_drones(self) -> dict[str, str]:
        """drone id -> incident id, for drones out over an open missing-person search."""
        return self.view.search_drones(AIRBORNE_MISSION)

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("hotspot feed reconcile failed")
            await asyncio.sleep(RECONCILE_PERIOD_S)

    async def reconcile(self) -> None:
        """Attach a decoder to each search drone's live thermal feed; detach from the rest."""
        wanted = self.search_drones()
        feeds = self.video.hub.feeds if self.video is not None else {}
        for drone_id, (decoder, incident_id, feed) in list(self.decoders.items()):
            live = feeds.get((drone_id, "thermal"))
            if wanted.get(drone_id) != incident_id or live is not feed or feed.closed:
                del self.decoders[drone_id]
                await decoder.stop()
                log.info("hotspots: stopped watching %s (%d frames decoded)", drone_id, decoder.decoded)
        for drone_id, incident_id in wanted.items():
            feed = feeds.get((drone_id, "thermal"))
            if drone_id in self.decoders or feed is None or feed.closed:
                continue

            async def on_frame(capture: float, gray: np.ndarray, d: str = drone_id, i: str = incident_id) -> None:
                await self.ingest(i, d, capture, gray)

            decoder = FeedDecoder(feed, on_frame)
            decoder.start()
            self.decoders[drone_id] = (decoder, incident_id, feed)
            log.info("hotspots: decoding %s's thermal feed for %s", drone_id, incident_id)
        await self._publish_updates()

    # --- frames to hotspots -----------------------------------------------------------------

    def _pipeline(self, incident_id: str) -> VisionPipeline:
        p = self.pipelines.get(incident_id)
        if p is None:
            from controller.hotspots.vision_adapter import SearchCamera, VisionPipeline

            if self.camera is None:
                self.camera = SearchCamera()
            p = self.pipelines[incident_id] = VisionPipeline(self.camera, self.policy)
            for rec in self.records.values():
                if rec.incident_id == incident_id and rec.status is HotspotStatus.DISMISSED:
                    p.suppress(rec.lat, rec.lon, self.policy.dismissed_radius_m)
        return p

    async def ingest(self, incident_id: str, drone_id: str, capture_time: float, gray: np.ndarray) -> list[HotspotRecord]:
        """One decoded thermal frame: detect (at most detect_fps per drone), track, raise new hotspots."""
        self.frames_in += 1
        if drone_id in self._busy or capture_time - self._last_detect.get(drone_id, 0.0) < 0.95 / self.policy.detect_fps:
            return []
        pose = self.poses.at(drone_id, capture_time)
        if pose is None:
            self.frames_without_pose += 1
            return []
        if pose.alt_rel_m < MIN_DETECT_ALT_M:
            return []
        self._last_detect[drone_id] = capture_time
        pipeline = self._pipeline(incident_id)
        self._busy.add(drone_id)
        try:
            confirmed = await asyncio.get_running_loop().run_in_executor(
                self._pool, pipeline.process, drone_id, capture_time, gray, pose
            )
        finally:
            self._busy.discard(drone_id)
        self.frames_detected += 1
        raised = []
        for h in confirmed:
            rec = await self._raise(incident_id, h)
            if rec is not None:
                raised.append(rec)
        return raised

    def _near_dismissed(self, incident_id: str, lat: float, lon: float) -> bool:
        return any(
            r.incident_id == incident_id
            and r.status is HotspotStatus.DISMISSED
            and equirectangular_m(lat, lon, r.lat, r.lon) <= self.policy.dismissed_radius_m
            for r in self.records.values()
        )

    async def _raise(self, incident_id: str, h: Any) -> HotspotRecord | None:
        inc = self.view.incidents.get(incident_id)
        if inc is None or not inc.is_open or self._near_dismissed(incident_id, h.lat, h.lon):
            return None
        self._no += 1
        rec = HotspotRecord(
            id=f"HS-{self._no:06d}",
            incident_id=incident_id,
            lat=h.lat,
            lon=h.lon,
            error_m=h.error_m,
            kind=h.kind,
            score=h.score,
            hits=h.hits,
            first_seen=_utc(h.first_seen),
            last_seen=_utc(h.last_seen),
            drones=sorted(h.sources),
            thumbnail_png=thumbnail_png(h.thumbnail),
        )
        self._pipeline(incident_id).bind(h, rec.id)
        self.records[rec.id] = rec
        await self._save(rec, "hotspot.raised")
        log.info(
            "%s: hotspot %s raised at %.6f, %.6f (±%.1f m, %s, score %.2f, %d sightings by %s)",
            incident_id, rec.id, rec.lat, rec.lon, rec.error_m, rec.kind, rec.score, rec.hits, ", ".join(rec.drones),
        )
        return rec

    async def _publish_updates(self) -> None:
        """Refined positions and new sightings of raised hotspots, at most every UPDATE_PERIOD_S each."""
        now = time.monotonic()
        for pipeline in self.pipelines.values():
            for rec_id, h in pipeline.bound():
                rec = self.records.get(rec_id)
                if rec is None or rec.status in (HotspotStatus.DISMISSED, HotspotStatus.FOUND):
                    continue
                lat, lon, hits, at = self._published.get(rec_id, (rec.lat, rec.lon, rec.hits, 0.0))
                moved = equirectangular_m(lat, lon, h.lat, h.lon)
                if (moved < UPDATE_MOVE_M and h.hits == hits) or now - at < UPDATE_PERIOD_S:
                    continue
                rec.lat, rec.lon, rec.error_m, rec.hits = h.lat, h.lon, h.error_m, h.hits
                rec.score, rec.last_seen, rec.drones = h.score, _utc(h.last_seen), sorted(h.sources)
                png = thumbnail_png(h.thumbnail)
                if png is not None:
                    rec.thumbnail_png = png
                await self._save(rec, "hotspot.updated")

    async def _save(self, rec: HotspotRecord, event_type: str) -> None:
        self._published[rec.id] = (rec.lat, rec.lon, rec.hits, time.monotonic())
        alert = None
        if event_type == "hotspot.raised":  # teams and commanders are told of each new one
            alert = NewAlert(
                AlertKind.HOTSPOT_NEW,
                f"{rec.incident_id}: new {rec.kind} hotspot {rec.id} at {rec.lat:.5f}, {rec.lon:.5f} "
                f"(±{rec.error_m:.0f} m, score {rec.score:.2f}, seen by {', '.join(rec.drones) or 'a drone'})",
                drone_id=rec.drones[0] if rec.drones else None, incident_id=rec.incident_id, category=SEARCH_CATEGORY,
            )
        await self.commands.record(
            event_type,
            rec.view(),
            [hotspot_row(rec)],
            alert=alert,
            incident_id=rec.incident_id,
            category=SEARCH_CATEGORY,
        )
        self.cot.send(hotspot_event(rec, datetime.now(UTC), self.policy.cot_stale_s))

    # --- what teams do -----------------------------------------------------------------------

    def get(self, hotspot_id: str) -> HotspotRecord:
        rec = self.records.get(hotspot_id)
        if rec is None:
            raise NotFound("hotspot", hotspot_id)
        return rec

    def list(self, incident_id: str | None = None, statuses: frozenset[str] = frozenset()) -> list[HotspotRecord]:
        out = [
            r for r in self.records.values()
            if (incident_id is None or r.incident_id == incident_id) and (not statuses or r.status.value in statuses)
        ]
        return sorted(out, key=lambda r: r.id)

    async def set_status(self, hotspot_id: str, status: HotspotStatus, who: Principal, note: str = "") -> HotspotRecord:
        rec = self.get(hotspot_id)
        before = (rec.status, rec.status_by, rec.status_at)
        rec.move_to(status, who.name, datetime.now(UTC))
        try:
            await self._save(rec, "hotspot.updated")
        except Exception:
            rec.status, rec.status_by, rec.status_at = before
            raise
        log.info("%s: hotspot %s marked %s by %s%s", rec.incident_id, rec.id, status.value, who.name, f" ({note})" if note else "")
        if status is HotspotStatus.DISMISSED:
            self._pipeline(rec.incident_id).suppress(rec.lat, rec.lon, self.policy.dismissed_radius_m)
        elif status is HotspotStatus.FOUND:
            inc = self.view.incidents.get(rec.incident_id)
            if inc is not None and inc.status is not IncidentStatus.RESOLVED:
                reason = f"person found at hotspot {rec.id} by {who.name}" + (f": {note}" if note else "")
                await self.commands.close_incident(rec.incident_id, who, resolved=True, reason=reason)
        return rec

    def stats(self) -> dict[str, Any]:
        return {
            "decoding": sorted(self.decoders),
            "frames_in": self.frames_in,
            "frames_detected": self.frames_detected,
            "frames_without_pose": self.frames_without_pose,
            "hotspots": len(self.records),
            # confirmed tracks of classes the policy does not report (rocks, cars), summed over searches
            "held_back": _sum_counts(p.held_back_counts() for p in list(self.pipelines.values())),
            "cot_sent": self.cot.sent,
            "cot_failed": self.cot.failed,
        }


def _sum_counts(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def _load_hotspots(conn: Any) -> list[HotspotRecord]:
    return [hotspot_from_row(r) for r in conn.execute(select(schema.hotspots))]

