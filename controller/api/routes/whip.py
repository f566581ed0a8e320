"""WHIP ingest (RFC 9725) and WHEP playback: standard WebRTC signalling over HTTP with application/sdp bodies.

    POST   /api/v1/whip/{drone_id}/{kind}          SDP offer → 201, SDP answer, Location, ETag
    DELETE /api/v1/whip/{drone_id}/{kind}/{id}     ends the publishing connection (204)
    POST   /api/v1/whep/{drone_id}/{kind}          SDP offer (recvonly) → 201, SDP answer, Location, ETag
    DELETE /api/v1/whep/{drone_id}/{kind}/{id}     ends the viewing (204)
    OPTIONS on all four paths                      CORS preflight (204, no token needed)

Roles: WHIP as /api/v1/video/publish (a drone's own token, for that drone only) plus admin; WHEP as
/api/v1/video/watch. Offers are answered complete (the controller gathers its candidates before answering),
so clients must not need trickle ICE: PATCH on a resource is 405 (RFC 9725 §4.3.1: no trickle, no ICE
restart), with an Allow header. The media goes through the same hub as the JSON endpoints (controller.video.whip).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.api.deps import PEOPLE, require, runtime
from controller.api.errors import AUTH, BODY, Problem, field_error, responses, validation_errors
from controller.api.schemas import IdPath
from controller.auth import Principal, Role
from controller.domain.errors import Forbidden, NotFound
from controller.runtime import Runtime
from controller.video import whip as signalling
from controller.video.hub import NoSuchFeed, VideoError

SDP = "application/sdp"
MAX_SDP_CHARS = 60_000
#: Cross-origin clients (a WHIP encoder's web UI, a player on another host) carry the bearer token in a header,
#: never a cookie, so any origin may call; the answer's Location and ETag must be readable.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, ETag, Accept-Post, Allow",
}
PREFLIGHT = {
    **CORS,
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Max-Age": "600",
}
ENDPOINT_METHODS = "POST, OPTIONS"
RESOURCE_METHODS = "DELETE, OPTIONS"

Kind = Literal["visible", "thermal"]


class CorsRoute(APIRoute):
    """Every answer of these routes, errors included, carries the CORS headers (a browser on another origin
    can then read why it was refused); problems raised by the domain become HTTP errors with them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def with_cors(request: Request) -> Response:
            try:
                response = await handler(request)
            except StarletteHTTPException as exc:
                exc.headers = {**(exc.headers or {}), **CORS}
                raise
            except RequestValidationError as exc:
                raise StarletteHTTPException(422, validation_errors(exc.errors()), headers=CORS) from None
            except NotFound as exc:
                raise StarletteHTTPException(404, str(exc), headers=CORS) from None
            except Forbidden as exc:
                raise StarletteHTTPException(403, str(exc), headers=CORS) from None
            for name, value in CORS.items():
                response.headers.setdefault(name, value)
            return response

        return with_cors


router = APIRouter(tags=["whip/whep"], route_class=CorsRoute)


def _sdp_body(description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {SDP: {"schema": {"type": "string", "maxLength": MAX_SDP_CHARS}}},
        }
    }


def _created(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        201: {
            "description": f"{what}: the SDP answer, complete with the controller's ICE candidates",
            "content": {SDP: {"schema": {"type": "string"}}},
            "headers": {
                "Location": {"description": "the resource URL: DELETE it to end", "schema": {"type": "string"}},
                "ETag": {"description": "entity tag of the ICE session", "schema": {"type": "string"}},
            },
        },
        415: {"description": f"the body is not {SDP} (the Accept-Post header says what is)", "model": Problem},
    }


def _video(rt: Runtime):  # noqa: ANN202
    if rt.video is None:
        raise HTTPException(503, "video is not enabled on this controller")
    return rt.video


async def _offer(request: Request) -> str:
    """The SDP offer in the body: 415 for another media type, 422 for a body that is not text."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != SDP:
        raise HTTPException(
            415, f"the body must be {SDP} (an SDP offer), not {media_type or 'missing'}", headers={"Accept-Post": SDP}
        )
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise field_error(["body"], "the SDP offer is not UTF-8 text") from None
    if not text.strip():
        raise field_error(["body"], "the body is empty; it must be an SDP offer")
    if len(text) > MAX_SDP_CHARS:
        raise field_error(["body"], f"the SDP offer is longer than {MAX_SDP_CHARS} characters")
    return text


def _refused(exc: VideoError) -> HTTPException:
    return field_error(["body"], str(exc))


def _answer(sdp: str, location: str, resource_id: str) -> Response:
    return Response(
        sdp, status_code=201, media_type=SDP, headers={"Location": location, "ETag": f'"{resource_id}"', **CORS}
    )


def _preflight(methods: str, accept_post: bool) -> Response:
    headers = {**PREFLIGHT, "Access-Control-Allow-Methods": methods, "Allow": methods}
    if accept_post:
        headers["Accept-Post"] = SDP
    return Response(status_code=204, headers=headers)


# --- WHIP: a drone publishes one camera -------------------------------------------------------------------


@router.post(
    "/api/v1/whip/{drone_id}/{kind}",
    status_code=201,
    response_class=Response,
    responses={**_created("publishing"), **responses(*AUTH, 404, 409, *BODY, 503)},
    openapi_extra=_sdp_body("the publisher's SDP offer: one video section (VP8 or H264), ICE candidates included; an audio section is answered inactive"),
)
async def whip_publish(
    request: Request,
    drone_id: Annotated[str, IdPath("drone")],
    kind: Kind,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.DRONE, Role.ADMIN)),
) -> Response:
    """WHIP ingest (RFC 9725): publish one camera of a drone; a drone's token publishes only its own cameras.

    201 with the answer and `Location` (DELETE it to stop). Each camera is its own resource (visible and
    thermal publish side by side). A second publish of the same camera replaces its connection (the old
    resource then answers 404); 409 if that connection also carries another camera (a /video/publish one)
    or the camera is pulled over RTSP. An audio section in the offer is answered inactive, never relayed.
    415 when the body is not application/sdp; 422 for an offer the relay cannot use (nothing is opened
    or replaced); 404 unknown drone. No trickle ICE: put the candidates in the offer."""
    if who.role is Role.DRONE and who.drone_id != drone_id:
        raise Forbidden(f"this token belongs to drone {who.drone_id}, not {drone_id}")
    offer = await _offer(request)
    service = _video(rt)
    if drone_id not in rt.center.view.drones:
        raise NotFound("drone", drone_id)
    try:
        resource_id, answer = await signalling.whip_publish(service.hub, drone_id, kind, offer)
    except signalling.PublishConflict as exc:
        raise HTTPException(409, str(exc)) from None
    except VideoError as exc:
        raise _refused(exc) from None
    return _answer(answer, f"/api/v1/whip/{drone_id}/{kind}/{resource_id}", resource_id)


@router.delete(
    "/api/v1/whip/{drone_id}/{kind}/{resource_id}", status_code=204, response_class=Response,
    responses=responses(*AUTH, 404, 422, 503),
)
async def whip_end(
    drone_id: Annotated[str, IdPath("drone")],
    kind: Kind,
    resource_id: Annotated[str, IdPath("WHIP resource")],
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(Role.DRONE, Role.ADMIN)),
) -> Response:
    """End a WHIP publish: that camera's feed closes and its viewers are let go (the drone's other cameras go on)."""
    if who.role is Role.DRONE and who.drone_id != drone_id:
        raise Forbidden(f"this token belongs to drone {who.drone_id}, not {drone_id}")
    hub = _video(rt).hub
    if not await signalling.whip_end(hub, drone_id, kind, resource_id):
        raise NotFound("WHIP resource", resource_id)
    return Response(status_code=204)


@router.options("/api/v1/whip/{drone_id}/{kind}", status_code=204, response_class=Response)
async def whip_preflight() -> Response:
    """CORS preflight for the WHIP endpoint (no token needed; says POST and application/sdp)."""
    return _preflight(ENDPOINT_METHODS, accept_post=True)


@router.options("/api/v1/whip/{drone_id}/{kind}/{resource_id}", status_code=204, response_class=Response)
async def whip_resource_preflight() -> Response:
    """CORS preflight for a WHIP resource (DELETE)."""
    return _preflight(RESOURCE_METHODS, accept_post=False)


# --- WHEP: people watch one camera ------------------------------------------------------------------------


@router.post(
    "/api/v1/whep/{drone_id}/{kind}",
    status_code=201,
    response_class=Response,
    responses={**_created("watching"), **responses(*AUTH, 404, *BODY, 503)},
    openapi_extra=_sdp_body("the viewer's SDP offer: one recvonly video section, ICE candidates included"),
)
async def whep_watch(
    request: Request,
    drone_id: Annotated[str, IdPath("drone")],
    kind: Kind,
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> Response:
    """WHEP playback: watch one drone's camera (commanders any, pilots their station's drones, search teams
    their search's), as /api/v1/video/watch. 201 with the answer and `Location` (DELETE it to stop);
    404 unknown drone or no live feed; 415 not application/sdp; 422 an unusable offer."""
    offer = await _offer(request)
    service = _video(rt)
    if drone_id not in rt.center.view.drones:
        raise NotFound("drone", drone_id)
    service.check_viewer(who, drone_id)
    try:
        viewer_id, answer = await service.hub.watch(drone_id, kind, offer, who.actor)
    except NoSuchFeed as exc:
        raise HTTPException(404, str(exc)) from None
    except VideoError as exc:
        raise _refused(exc) from None
    return _answer(answer, f"/api/v1/whep/{drone_id}/{kind}/{viewer_id}", viewer_id)


@router.delete(
    "/api/v1/whep/{drone_id}/{kind}/{viewer_id}", status_code=204, response_class=Response,
    responses=responses(*AUTH, 404, 422, 503),
)
async def whep_end(
    drone_id: Annotated[str, IdPath("drone")],
    kind: Kind,
    viewer_id: Annotated[str, IdPath("viewer")],
    rt: Runtime = Depends(runtime),
    who: Principal = Depends(require(*PEOPLE)),
) -> Response:
    """End a WHEP viewing: the viewer itself or a commander."""
    hub = _video(rt).hub
    viewer = signalling.whep_viewer(hub, drone_id, kind, viewer_id)
    if viewer is None:
        raise NotFound("WHEP resource", viewer_id)
    if viewer.who != who.actor and who.role is not Role.COMMANDER:
        raise Forbidden("only the viewer itself or a commander can end a viewing")
    await hub.leave(viewer_id)
    return Response(status_code=204)


@router.options("/api/v1/whep/{drone_id}/{kind}", status_code=204, response_class=Response)
async def whep_preflight() -> Response:
    """CORS preflight for the WHEP endpoint."""
    return _preflight(ENDPOINT_METHODS, accept_post=True)


@router.options("/api/v1/whep/{drone_id}/{kind}/{viewer_id}", status_code=204, response_class=Response)
async def whep_resource_preflight() -> Response:
    """CORS preflight for a WHEP resource (DELETE)."""
    return _preflight(RESOURCE_METHODS, accept_post=False)
