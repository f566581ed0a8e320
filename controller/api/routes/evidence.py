"""Evidence: recorded mission video, listed, played back, exported, and every access audited.

Commanders and admins see every recording; pilots their own station's; search teams and drones none.
Exports (a signed zip `dronefleet evidence verify` checks offline) are for commanders and admins only. Each
list, view, segment download and export is written to `evidence_audit` with who and when (a segment fetched
again by the same person within AUDIT_REPEAT_S, as a playing video does in ranges, is logged once).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from controller.api.deps import COMMAND, require, runtime
from controller.api.errors import AUTH, BODY, responses
from controller.api.schemas import IdPath, IdQuery, Instant
from controller.auth import Principal, Role
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.evidence import export as ex
from controller.evidence import store
from controller.evidence.recorder import iso
from controller.evidence.service import EvidenceService, recording_view
from controller.runtime import Runtime

router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])

#: The same person fetching the same segment again within this many seconds is not logged again.
AUDIT_REPEAT_S = 300.0
MEDIA_TYPES = {"webm": "video/webm", "mkv": "video/x-matroska", "mp4": "video/mp4"}
VIEWERS = (*COMMAND, Role.PILOT)

RecordingId = Annotated[str, IdPath("recording")]
_recent: dict[tuple[str, str, int], float] = {}


def _service(rt: Runtime) -> EvidenceService:
    if rt.evidence is None:
        from controller.center import ServiceUnavailable

        raise ServiceUnavailable("evidence recording is not running in this controller")
    return rt.evidence


def _check(who: Principal, row: dict[str, Any]) -> None:
    if who.role is Role.PILOT and row["station_id"] != who.station_id:
        raise Forbidden(f"pilots see only their own station's recordings; {row['id']} is station {row['station_id']}'s")


async def _audit(rt: Runtime, who: Principal, action: str, recording_id: str | None, detail: str = "") -> None:
    row = store.audit_row(who, action, recording_id, detail, datetime.now(UTC))
    await rt.center.journal.commit(store.audit_changeset(row))


async def _get(rt: Runtime, who: Principal, recording_id: str) -> dict[str, Any]:
    db = rt.db
    row = await db.read(lambda c: store.get_recording(c, recording_id))
    if row is None:
        raise NotFound("recording", recording_id)
    _check(who, row)
    return row


async def _manifest(rt: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    if row["deleted_at"] is not None:
        raise Conflict(f"recording {row['id']} was deleted at {iso(row['deleted_at'])} by the retention policy")
    svc = _service(rt)
    try:
        _, _, doc = await asyncio.get_running_loop().run_in_executor(None, ex.read_manifest, FsPath(row["path"]), svc.key)
    except ex.NotReady as exc:
        raise Conflict(str(exc)) from None
    return doc


@router.get("/recordings", responses=responses(*AUTH, 422))
async def list_recordings(
    incident_id: str | None = IdQuery("incident"),
    mission_id: str | None = IdQuery("mission"),
    drone_id: str | None = IdQuery("drone"),
    since: Instant | None = Query(default=None, description="recordings still going on or ended after this"),
    until: Instant | None = Query(default=None, description="recordings started before this"),
    limit: int = Query(default=200, ge=1, le=1000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> list[dict[str, Any]]:
    """Recordings by incident, mission, drone and time, newest first (pilots: their station's)."""
    station = who.station_id if who.role is Role.PILOT else None
    db = rt.db
    rows = await db.read(lambda c: store.query_recordings(
        c, incident_id=incident_id, mission_id=mission_id, drone_id=drone_id, station_id=station, since=since,
        until=until, limit=limit,
    ))
    query = " ".join(f"{k}={v}" for k, v in (("incident", incident_id), ("mission", mission_id), ("drone", drone_id),
                                              ("since", since), ("until", until)) if v is not None)
    await _audit(rt, who, "list", None, query or "all")
    return [recording_view(r) for r in rows]


@router.get("/recordings/{recording_id}", responses=responses(*AUTH, 404, 409, 422, 503))
async def get_recording(
    recording_id: RecordingId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*VIEWERS)),
) -> dict[str, Any]:
    """The recording with its signed segments (times, frames, SHA-256, a URL each) and the signing key's id."""
    row = await _get(rt, who, recording_id)
    doc = await _manifest(rt, row)
    await _audit(rt, who, "view", recording_id)
    segments = [
        {**{k: s[k] for k in ("index", "codec", "container", "start", "end", "start_unix", "duration_s", "frames",
                              "bytes", "sha256", "poses", "marks")},
         "url": f"/api/v1/evidence/recordings/{recording_id}/segments/{s['index']}",
         "media_type": MEDIA_TYPES[s["container"]]}
        for s in doc["segments"]
    ]
    return {**recording_view(row), "segments": segments, "gaps": doc.get("gaps", []), "key_id": doc.get("key_id"),
            "manifest_status": doc.get("status")}


@router.get("/recordings/{recording_id}/track", responses=responses(*AUTH, 404, 409, 422, 503))
async def get_track(
    recording_id: RecordingId, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*VIEWERS)),
) -> dict[str, Any]:
    """The recorded positions (time, lat, lon, altitude, heading, gimbal pitch) and hotspot marks, by segment."""
    row = await _get(rt, who, recording_id)
    doc = await _manifest(rt, row)
    out = await asyncio.get_running_loop().run_in_executor(None, ex.track, FsPath(row["path"]), doc)
    await _audit(rt, who, "view", recording_id, "track")
    return out


@router.get(
    "/recordings/{recording_id}/segments/{index}",
    response_class=FileResponse,
    responses={206: {"description": "the requested byte range"}, **responses(*AUTH, 404, 409, 422, 503)},
)
async def get_segment(
    recording_id: RecordingId,
    index: Annotated[int, Path(ge=1, le=100_000, description="the segment's number (1 is the first)")],
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*VIEWERS)),
) -> FileResponse:
    """The segment as recorded (byte ranges supported, for seeking in a player)."""
    row = await _get(rt, who, recording_id)
    doc = await _manifest(rt, row)
    seg = next((s for s in doc["segments"] if s["index"] == index), None)
    if seg is None:
        raise NotFound("segment", f"{recording_id}/{index}")
    key = (who.actor, recording_id, index)
    now = time.monotonic()
    if now - _recent.get(key, -1e9) > AUDIT_REPEAT_S:
        _recent[key] = now
        await _audit(rt, who, "download", recording_id, f"segment {index} sha256 {seg['sha256']}")
    return FileResponse(FsPath(row["path"]) / seg["file"], media_type=MEDIA_TYPES[seg["container"]],
                        filename=f"{recording_id}-{seg['file']}", content_disposition_type="inline")


@router.post(
    "/recordings/{recording_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the evidence package"},
               **responses(*AUTH, 404, 409, *BODY, 503)},
)
async def export_recording(
    recording_id: RecordingId,
    reason: Annotated[str, Body(embed=True, max_length=300, description="why it is exported (logged)")] = "",
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> FileResponse:
    """A zip of the recording's segments, telemetry sidecars, signed manifest, the mission and incident timeline
    and an export manifest signed with the same key (`dronefleet evidence verify FILE` checks it offline)."""
    row = await _get(rt, who, recording_id)
    await _manifest(rt, row)
    svc = _service(rt)
    db = rt.db
    timeline = await db.read(lambda c: store.timeline(c, row["mission_id"], row["incident_id"]))
    timeline["recording"] = recording_view(row)
    at = iso(datetime.now(UTC))
    try:
        path = await asyncio.get_running_loop().run_in_executor(
            None, ex.build_export, FsPath(row["path"]), svc.key, timeline, who.actor, at)
    except ex.NotReady as exc:
        raise Conflict(str(exc)) from None
    digest = await asyncio.get_running_loop().run_in_executor(None, lambda: hashlib.sha256(path.read_bytes()).hexdigest())
    await _audit(rt, who, "export", recording_id, f"package sha256 {digest}" + (f"; reason: {reason}" if reason else ""))
    return FileResponse(path, media_type="application/zip", filename=f"evidence-{recording_id}.zip",
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/audit", responses=responses(*AUTH, 422))
async def list_audit(
    recording_id: str | None = Query(default=None, min_length=1, max_length=64, description="only this recording"),
    limit: int = Query(default=500, ge=1, le=5000),
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*COMMAND)),
) -> list[dict[str, Any]]:
    """Who listed, viewed, downloaded or exported evidence, and when (newest first)."""
    db = rt.db
    rows = await db.read(lambda c: store.query_audit(c, recording_id, limit))
    return [{**r, "at": iso(r["at"])} for r in rows]
