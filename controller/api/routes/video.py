"""Video signalling: drones publish (offer/answer), authorised viewers watch, viewers leave."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from controller.api.deps import ANY_ROLE, require, runtime
from controller.auth import Principal, Role
from controller.domain.errors import Forbidden, NotFound
from controller.runtime import Runtime
from controller.video.hub import NoSuchFeed, VideoError

router = APIRouter(prefix="/api/v1/video", tags=["video"])

Kind = Literal["visible", "thermal"]


class PublishOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sdp: str = Field(min_length=10, max_length=60_000)
    type: Literal["offer"]
    kinds: list[Kind] = Field(min_length=1, max_length=2, description="camera of each video section, in order")


class WatchOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drone_id: str = Field(min_length=1, max_length=64)
    kind: Kind = "visible"
    sdp: str = Field(min_length=10, max_length=60_000)
    type: Literal["offer"]


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    viewer_id: str | None = None


def _video(rt: Runtime):  # noqa: ANN202
    service = rt.video
    if service is None:
        raise HTTPException(503, "video is not enabled on this controller")
    return service


@router.post("/publish/{drone_id}", response_model=Answer)
async def publish(
    drone_id: str, body: PublishOffer, rt: Runtime = Depends(runtime), who: Principal = Depends(require(Role.DRONE))
) -> dict:
    """A drone (with its own token) offers its cameras; the controller answers receive-only."""
    if who.drone_id != drone_id:
        raise Forbidden(f"this token belongs to drone {who.drone_id}, not {drone_id}")
    if drone_id not in rt.center.view.drones:
        raise NotFound("drone", drone_id)
    try:
        sdp = await _video(rt).hub.publish(drone_id, body.sdp, list(body.kinds))
    except VideoError as exc:
        raise HTTPException(422, [{"loc": ["body", "sdp"], "msg": str(exc), "type": "value_error"}]) from None
    return {"sdp": sdp, "type": "answer"}


@router.post("/watch", response_model=Answer)
async def watch(
    body: WatchOffer, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*ANY_ROLE))
) -> dict:
    """Watch one drone's camera: commanders any, pilots their station's drones, search teams their search's."""
    service = _video(rt)
    if body.drone_id not in rt.center.view.drones:
        raise NotFound("drone", body.drone_id)
    service.check_viewer(who, body.drone_id)
    try:
        viewer_id, sdp = await service.hub.watch(body.drone_id, body.kind, body.sdp, who.actor)
    except NoSuchFeed as exc:
        raise HTTPException(404, str(exc)) from None
    except VideoError as exc:
        raise HTTPException(422, [{"loc": ["body", "sdp"], "msg": str(exc), "type": "value_error"}]) from None
    return {"sdp": sdp, "type": "answer", "viewer_id": viewer_id}


@router.delete("/viewers/{viewer_id}", status_code=204)
async def leave(viewer_id: str, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*ANY_ROLE))) -> None:
    hub = _video(rt).hub
    viewer = hub.viewers.get(viewer_id)
    if viewer is None:
        raise NotFound("viewer", viewer_id)
    if viewer.who != who.actor and who.role is not Role.COMMANDER:
        raise Forbidden("only the viewer itself or a commander can end a viewing")
    await hub.leave(viewer_id)


@router.get("/feeds")
async def feeds(rt: Runtime = Depends(runtime), who: Principal = Depends(require(*ANY_ROLE))) -> list[dict]:
    """Live feeds the caller may watch."""
    service = _video(rt)
    out = []
    for (drone_id, kind), feed in sorted(service.hub.feeds.items()):
        if service.can_view(who, drone_id):
            drone = rt.center.view.drones.get(drone_id)
            out.append(
                {
                    "drone_id": drone_id,
                    "kind": kind,
                    "codec": feed.codec,
                    "viewers": len(feed.subscribers),
                    "frames": feed.frames,
                    "station_id": drone.station_id if drone else None,
                }
            )
    return out
