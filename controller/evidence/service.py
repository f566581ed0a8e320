"""Evidence recording in the running controller: which feeds are recorded, their rows, alerts and retention.

A mission's feeds are recorded from the moment they appear (`video.feeds` events from the video service) to
the moment they end: the drone lands (its feeds are closed) or its publisher goes. The recorder listens to the
`Feed` like the thermal decoder does (Feed.add_listener), so nothing in the relay changes and nothing in it
waits for a disk. Position reports of recorded drones go to the segment's sidecar (at most POSE_HZ a second),
and so do hotspot events naming them. Each recording has a row (`recordings`: listing by incident, mission,
drone and time) and `recording.started` / `recording.ended` events on the mission's timeline; a write error
raises a `recording_error` alert once per failure streak.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.config.models import EvidencePolicy
from controller.domain.alerts import AlertKind, NewAlert
from controller.domain.states import ON_GROUND, DroneState
from controller.events import Event, Subscription
from controller.evidence.keys import SigningKey
from controller.evidence.recorder import Handle, Recorder, RecordingMeta, iso
from controller.store import schema
from controller.store.writer import Changeset
from controller.video.encoded_frames import EncodedFrame
from controller.video.feed import Feed

if TYPE_CHECKING:
    from controller.center.dispatch_center import DispatchCenter
    from controller.video.service import VideoService

log = logging.getLogger(__name__)

#: Position samples per second and drone written to the sidecar.
POSE_HZ = 5.0
#: How often the retention policy is applied.
RETENTION_PERIOD_S = 3600.0
_WATCHED = ("video.feeds", "drone.updated", "hotspot.raised", "hotspot.updated")


def new_recording_id(now: datetime) -> str:
    return f"REC-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def recording_row(meta: RecordingMeta, path: Path, summary: dict[str, Any] | None = None,
                  ended_at: datetime | None = None, status: str = "recording") -> dict[str, Any]:
    s = summary or {}
    return {
        "id": meta.id, "drone_id": meta.drone_id, "kind": meta.kind, "codec": meta.codec.upper(),
        "station_id": meta.station_id, "mission_id": meta.mission_id, "incident_id": meta.incident_id,
        "started_at": meta.started_at, "ended_at": ended_at, "status": status, "path": str(path),
        "segments": s.get("segments", 0), "bytes": s.get("bytes", 0), "frames": s.get("frames", 0),
        "dropped": s.get("dropped", 0), "write_errors": s.get("write_errors", 0), "deleted_at": None,
    }


def expired(rows: list[dict[str, Any]], now: datetime, policy: EvidencePolicy) -> list[str]:
    """Ended recordings the policy deletes: older than retention_days, then the oldest over max_total_gb."""
    ended = sorted((r for r in rows if r["ended_at"] is not None and r["deleted_at"] is None), key=lambda r: r["ended_at"])
    cutoff = now - timedelta(days=policy.retention_days)
    out = [r["id"] for r in ended if r["ended_at"] < cutoff]
    if policy.max_total_gb is not None:
        total = sum(r["bytes"] for r in rows if r["deleted_at"] is None and r["id"] not in out)
        cap = policy.max_total_gb * 1e9
        for r in ended:
            if total <= cap:
                break
            if r["id"] not in out:
                out.append(r["id"])
                total -= r["bytes"]
    return out


class EvidenceService:
    def __init__(
        self, center: DispatchCenter, video: VideoService | None, policy: EvidencePolicy, root: Path, key: SigningKey,
    ) -> None:
        self.center = center
        self.view = center.view
        self.video = video
        self.policy = policy
        self.root = root
        self.key = key
        self.recorder = Recorder(
            root, key, segment_s=policy.segment_minutes * 60, h264_container=policy.h264_container,
            queue_frames=policy.queue_frames, notify=self._notify_threadsafe,
        )
        #: (drone, kind) -> (feed, handle, listener) of recordings going on.
        self.active: dict[tuple[str, str], tuple[Feed, Handle, Any]] = {}
        self._metas: dict[str, RecordingMeta] = {}
        self._pose_at: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self.alerts_raised = 0
        self.deleted = 0

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.recorder.start()
        await self._close_interrupted()
        if not self.policy.enabled:
            return
        sub = self.center.bus.subscribe(lambda e: e.type in _WATCHED)
        self._watcher = self._loop.create_task(self._watch(sub), name="evidence-watch")
        self._retention = self._loop.create_task(self._retention_loop(), name="evidence-retention")

    async def stop(self) -> None:
        for task in (self._watcher, self._retention):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for key in list(self.active):
            self._end(key)
        await asyncio.get_running_loop().run_in_executor(None, self.recorder.stop)
        # the writer's last notifications were handed to the loop: let them commit
        for _ in range(3):
            await asyncio.sleep(0)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _watch(self, sub: Subscription) -> None:
        try:
            while True:
                item = await sub.queue.get()
                if item is None:
                    sub = self.center.bus.subscribe(lambda e: e.type in _WATCHED)
                    continue
                event, _ = item
                try:
                    self._on_event(event)
                except Exception:
                    log.exception("evidence: handling %s failed", event.type)
        finally:
            self.center.bus.unsubscribe(sub)

    def _on_event(self, event: Event) -> None:
        if event.type == "video.feeds" and event.drone_id:
            self.sync_feeds(event.drone_id)
        elif event.type == "drone.updated" and event.drone_id:
            if DroneState(event.data["state"]) in ON_GROUND:
                for key in [k for k in self.active if k[0] == event.drone_id]:
                    self._end(key)
            else:  # a mission given to a drone already publishing, or another mission: (re)start its recordings
                self.sync_feeds(event.drone_id)
        elif event.type.startswith("hotspot."):
            self._mark(event)

    # --- feeds ------------------------------------------------------------------------------------

    def sync_feeds(self, drone_id: str) -> None:
        """Start recording the drone's new feeds (if it flies a mission) and end those that are gone."""
        feeds = {kind: feed for (d, kind), feed in self.video.hub.feeds.items() if d == drone_id} if self.video else {}
        drone = self.view.drones.get(drone_id)
        mission_id = drone.mission_id if drone else None
        for key in [k for k in self.active if k[0] == drone_id]:
            feed, handle, _ = self.active[key]
            if feeds.get(key[1]) is not feed or (mission_id is not None and handle.meta.mission_id != mission_id):
                self._end(key)
        if drone is None or drone.mission_id is None:
            return
        for kind, feed in feeds.items():
            if (drone_id, kind) not in self.active and not feed.closed:
                self.attach(feed)

    def attach(self, feed: Feed, mission_id: str | None = None) -> Handle:
        """Record this feed (its drone's current mission unless given) until `detach` or the feed ends."""
        key = feed.key
        if key in self.active:
            return self.active[key][1]
        drone = self.view.drones.get(feed.drone_id)
        mission_id = mission_id or (drone.mission_id if drone else None)
        mission = self.view.missions.get(mission_id) if mission_id else None
        incident = self.view.incident(mission.incident_id) if mission else None
        now = datetime.now(UTC)
        meta = RecordingMeta(
            new_recording_id(now), feed.drone_id, feed.kind, feed.codec.upper(), now,
            station_id=drone.station_id if drone else None, mission_id=mission_id,
            incident_id=mission.incident_id if mission else None,
        )
        handle = self.recorder.begin(meta)
        recorder = self.recorder

        def listener(frame: EncodedFrame) -> None:
            recorder.offer_frame(handle, frame)
            if handle.want_keyframe:
                feed.request_keyframe()  # rate-limited by the feed

        feed.add_listener(listener)
        feed.request_keyframe()
        self.active[key] = (feed, handle, listener)
        self._metas[meta.id] = meta
        self._pose_at.pop(feed.drone_id, None)
        log.info("evidence: recording %s/%s as %s (mission %s)", feed.drone_id, feed.kind, meta.id, mission_id)
        category = incident.category if incident else None
        self._commit("recording.started", meta, recording_row(meta, self.root / meta.id), category=category)
        return handle

    def detach(self, drone_id: str, kind: str) -> None:
        if (drone_id, kind) in self.active:
            self._end((drone_id, kind))

    def _end(self, key: tuple[str, str]) -> None:
        feed, handle, listener = self.active.pop(key)
        feed.remove_listener(listener)
        self.recorder.end(handle)
        log.info("evidence: %s ended", handle.meta.id)

    # --- telemetry and marks ----------------------------------------------------------------------

    def position(self, drone_id: str, t: Any) -> None:
        """A position report from the fleet link (fleet position listener)."""
        if t.lat is None or t.lon is None:
            return
        handles = [h for (d, _), (_, h, _) in self.active.items() if d == drone_id]
        if not handles:
            return
        now = time.monotonic()
        if now - self._pose_at.get(drone_id, -1e9) < 1 / POSE_HZ:
            return
        self._pose_at[drone_id] = now
        sample = {
            "t": round(time.time(), 3), "lat": t.lat, "lon": t.lon, "alt_m": t.alt_rel_m, "alt_amsl_m": t.alt_amsl_m,
            "heading_deg": t.heading_deg if t.heading_deg is not None else getattr(t, "yaw_deg", None),
            "gimbal_pitch_deg": getattr(t, "gimbal_pitch_deg", None),
        }
        for h in handles:
            self.recorder.pose(h, sample)

    def _mark(self, event: Event) -> None:
        data = event.data
        drones = set(data.get("drones") or []) or ({event.drone_id} if event.drone_id else set())
        for (d, _), (_, h, _) in self.active.items():
            if d in drones or (h.meta.incident_id and h.meta.incident_id == data.get("incident_id") and not drones):
                self.recorder.mark(h, {
                    "t": round(time.time(), 3), "event": event.type, "hotspot_id": data.get("id"),
                    "lat": data.get("lat"), "lon": data.get("lon"), "kind": data.get("kind"),
                    "score": data.get("score"), "status": data.get("status"), "seq": event.seq,
                })

    # --- rows, events, alerts (notifications come from the writer thread) ---------------------------

    def _notify_threadsafe(self, kind: str, meta: RecordingMeta, summary: dict[str, Any]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_writer, kind, meta, summary)

    def _on_writer(self, kind: str, meta: RecordingMeta, summary: dict[str, Any]) -> None:
        path = self.root / meta.id
        if kind == "segment":
            self._spawn(self._upsert(recording_row(meta, path, summary)))
        elif kind == "finished":
            status = "complete" if not summary["write_errors"] else "complete_with_gaps"
            row = recording_row(meta, path, summary, ended_at=datetime.now(UTC), status=status)
            self._commit("recording.ended", meta, row, extra={"gaps": summary["gaps"], "lost": summary["lost"]})
        elif kind == "error" and summary.get("first"):
            self.alerts_raised += 1
            text = (f"recording {meta.id} of {meta.drone_id} {meta.kind} could not be written ({summary['reason'][:200]}); "
                    f"the live video goes on, the recording has a gap and is retried")
            alert = NewAlert(AlertKind.RECORDING_ERROR, text, drone_id=meta.drone_id, mission_id=meta.mission_id,
                             incident_id=meta.incident_id, station_id=meta.station_id)
            row = recording_row(meta, path, summary, status="recording")
            self._commit("recording.error", meta, row, alert=alert, extra={"reason": summary["reason"][:300]})

    def _commit(self, type: str, meta: RecordingMeta, row: dict[str, Any], *, alert: NewAlert | None = None,
                category: str | None = None, extra: dict[str, Any] | None = None) -> None:
        data = {**recording_view(row), **(extra or {})}
        self._spawn(self.center.record(
            type, data, [(schema.recordings, row)], alert=alert, drone_id=meta.drone_id, mission_id=meta.mission_id,
            incident_id=meta.incident_id, station_id=meta.station_id, category=category,
        ))

    async def _upsert(self, row: dict[str, Any]) -> None:
        cs = Changeset()
        cs.upsert((schema.recordings, row))
        await self.center.journal.commit(cs)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_interrupted(self) -> None:
        """Recordings a stopped controller left open: their manifests are signed up to the last closed segment."""
        db = self.center.journal.db
        rows = await db.read(lambda c: [dict(r._mapping) for r in c.execute(
            schema.recordings.select().where(schema.recordings.c.ended_at.is_(None)))])
        if not rows:
            return
        cs = Changeset()
        for row in rows:
            cs.upsert((schema.recordings, {**row, "status": "interrupted", "ended_at": datetime.now(UTC)}))
        await self.center.journal.commit(cs)
        log.warning("evidence: %d recording(s) were cut short by a stop: marked interrupted", len(rows))

    # --- retention --------------------------------------------------------------------------------

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.apply_retention()
            except Exception:
                log.exception("evidence: retention sweep failed")
            await asyncio.sleep(RETENTION_PERIOD_S)

    async def apply_retention(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        db = self.center.journal.db
        rows = await db.read(lambda c: [dict(r._mapping) for r in c.execute(
            schema.recordings.select().where(schema.recordings.c.deleted_at.is_(None)))])
        gone = expired(rows, now, self.policy)
        by_id = {r["id"]: r for r in rows}
        for rec_id in gone:
            row = by_id[rec_id]
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, row["path"], True)
            row = {**row, "status": "deleted", "deleted_at": now}
            meta = RecordingMeta(rec_id, row["drone_id"], row["kind"], row["codec"], row["started_at"], row["station_id"],
                                 row["mission_id"], row["incident_id"])
            await self.center.record(
                "recording.deleted", {**recording_view(row), "policy": self._policy_text()}, [(schema.recordings, row)],
                drone_id=meta.drone_id, mission_id=meta.mission_id, incident_id=meta.incident_id, station_id=meta.station_id,
            )
            self.deleted += 1
            log.info("evidence: %s deleted by the retention policy", rec_id)
        return gone

    def _policy_text(self) -> str:
        cap = f", at most {self.policy.max_total_gb:g} GB" if self.policy.max_total_gb else ""
        return f"kept {self.policy.retention_days:g} days{cap}"

    # --- figures ----------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        s = self.recorder.stats
        return {
            "recording": len(self.active),
            "frames_written": s.frames_written,
            "frames_dropped": s.frames_dropped,
            "frames_lost_to_write_errors": s.frames_lost_to_errors,
            "write_errors": s.write_errors,
            "segments_closed": s.segments_closed,
            "bytes_written": s.bytes_written,
            "queue": self.recorder.pending,
            "alerts_raised": self.alerts_raised,
            "deleted_by_retention": self.deleted,
            "writer_cpu_s": round(s.writer_cpu_s, 3),
        }


def recording_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "drone_id": row["drone_id"], "kind": row["kind"], "codec": row["codec"],
        "station_id": row["station_id"], "mission_id": row["mission_id"], "incident_id": row["incident_id"],
        "started_at": iso(row["started_at"]), "ended_at": iso(row["ended_at"]) if row["ended_at"] else None,
        "status": row["status"], "segments": row["segments"], "bytes": row["bytes"], "frames": row["frames"],
        "dropped": row["dropped"], "write_errors": row["write_errors"],
        "deleted_at": iso(row["deleted_at"]) if row.get("deleted_at") else None,
    }
