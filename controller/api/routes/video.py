"""Video signalling: drones publish (offer/answer), authorised viewers watch, viewers leave."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from controller.api.deps import PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, field_error, responses
from controller.api.schemas import ID_MAX, ID_PATTERN, Checked, IdPath, Text
from controller.auth import Principal, Role
from controller.domain.errors import Forbidden, NotFound
from controller.runtime import Runtime
from controller.video.hub import BadOffer, NoSuchFeed, VideoError

router = APIRouter(prefix="/api/v1/video", tags=["video"])

Kind = Literal["visible", "thermal"]


class PublishOffer(Checked):
    sdp: str = Text(min_length=10, max_length=60_000, description="the SDP offer")
    type: Literal["offer"]
    kinds: list[Kind] = Field(min_length=1, max_length=2, description="camera of each video section, in order")


class WatchOffer(Checked):
    drone_id: str = Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
    kind: Kind = "visible"
    sdp: str = Text(min_length=10, max_length=60_000, description="the SDP offer")
    type: Literal["offer"]


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"] = "answer"
    viewer_id: str | None = None


class FeedOut(BaseModel):
    drone_id: str
    kind: str
    codec: str
    viewers: int
    frames: int
    station_id: str | None


def _video(rt: Runtime):  # noqa: ANN202
    service = rt.video
    if service is None:
        raise HTTPException(503, "video is not enabled on this controller")
    return service


def _refused(exc: VideoError) -> HTTPException:
    field = exc.field if isinstance(exc, BadOffer) else "sdp"
    return field_error(["body", field], str(exc))


@router.post("/publish/{drone_id}", response_model=Answer, responses=responses(*AUTH, 404, *BODY, 503))
async def publish(
    drone_id: Annotated[str, IdPath("drone")],
    body: PublishOffer,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.DRONE)),
) -> dict:
    """A drone (with its own token, for itself only) offers its cameras; the controller answers receive-only.

    The offer must hold only video sections, one per entry of `kinds`, each with ICE credentials, a DTLS
    fingerprint and VP8 or H264; anything else is 422 and leaves the drone's current connection as it was.
    """
    if who.drone_id != drone_id:
        raise Forbidden(f"this token belongs to drone {who.drone_id}, not {drone_id}")
    if drone_id not in rt.center.view.drones:
        raise NotFound("drone", drone_id)
    try:
        sdp = await _video(rt).hub.publish(drone_id, body.sdp, list(body.kinds))
    except VideoError as exc:
        raise _refused(exc) from None
    return {"sdp": sdp, "type": "answer"}


@router.post("/watch", response_model=Answer, responses=responses(*AUTH, 404, *BODY, 503))
async def watch(
    body: WatchOffer, rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))
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
        raise _refused(exc) from None
    return {"sdp": sdp, "type": "answer", "viewer_id": viewer_id}


@router.delete("/viewers/{viewer_id}", status_code=204, responses=responses(*AUTH, 404, 422, 503))
async def leave(
    viewer_id: Annotated[str, IdPath("viewer")],
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> None:
    hub = _video(rt).hub
    viewer = hub.viewers.get(viewer_id)
    if viewer is None:
        raise NotFound("viewer", viewer_id)
    if viewer.who != who.actor and who.role is not Role.COMMANDER:
        raise Forbidden("only the viewer itself or a commander can end a viewing")
    await hub.leave(viewer_id)


@router.get("/feeds", response_model=list[FeedOut], responses=responses(*AUTH, 503))
async def feeds(rt: Runtime = Depends(runtime), who: Principal = Depends(require(*PEOPLE))) -> list[dict]:
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
