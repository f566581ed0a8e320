"""Map errors to HTTP, and guard the request body.

Domain errors: 404 unknown id, 403 not yours, 409 illegal in the current state, 503 a service is off.
Every error body is JSON: `{"detail": "...", "error": "slug"}` for one reason, or, for 422, FastAPI's
`{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}` naming each bad field. The 422 body is made
JSON-safe first (a NaN, an infinity or a lone surrogate in the input is echoed as text), so bad input can
never turn into a 500 while the error is being reported.

`BodyLimit` refuses bodies over MAX_BODY_BYTES with 413 (declared or chunked), a malformed Content-Length
with 400, and a body that does not arrive within BODY_TIMEOUT_S with 408.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.center import ServiceUnavailable
from controller.control.commands import CommandRefused
from controller.domain.errors import Conflict, Forbidden, IllegalTransition, NotFound

MAX_BODY_BYTES = 64 * 1024
#: The whole request body must arrive within this many seconds of the first read (a trickling client is cut off).
BODY_TIMEOUT_S = 15.0
#: Echoed inputs longer than this (as JSON) are left out of a 422 body.
MAX_ECHO_CHARS = 500

SLUGS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    502: "vehicle_refused",
    503: "unavailable",
    504: "vehicle_timeout",
}


class Problem(BaseModel):
    """The error body for one reason."""

    detail: str
    error: str


def _problem(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": error}, status_code=status, headers=headers)


# --- making error bodies JSON-safe ----------------------------------------------------------------------


def safe_text(value: str) -> str:
    """`value` with lone surrogates written as `\\udXXX` escapes (they cannot be encoded as UTF-8)."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of `value` that json.dumps(allow_nan=False) and UTF-8 always accept."""
    if depth > 20:
        return "..."
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # 'nan', 'inf', '-inf'
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bytes | bytearray):
        return safe_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, dict):
        return {safe_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in value]
    return safe_text(str(value))


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic/FastAPI error dicts as the documented 422 items: loc, msg, type (+ input and ctx when small)."""
    out = []
    for err in errors:
        item: dict[str, Any] = {
            "loc": [p if isinstance(p, int) and not isinstance(p, bool) else safe_text(str(p)) for p in err.get("loc", ())],
            "msg": safe_text(str(err.get("msg", ""))),
            "type": safe_text(str(err.get("type", "value_error"))),
        }
        if "input" in err:
            echoed = json_safe(err["input"])
            if len(json.dumps(echoed)) <= MAX_ECHO_CHARS:
                item["input"] = echoed
        ctx = err.get("ctx")
        if isinstance(ctx, dict):
            plain = {k: json_safe(v) for k, v in ctx.items() if v is None or isinstance(v, str | int | float)}
            if plain:
                item["ctx"] = plain
        out.append(item)
    return out


def field_error(loc: list[str | int], message: str, type_: str = "value_error") -> StarletteHTTPException:
    """A 422 naming one field, shaped like the validation errors: `loc` as in ["body", "lat"]."""
    return StarletteHTTPException(422, [{"loc": loc, "msg": message, "type": type_}])


# --- OpenAPI: the error responses each operation documents ------------------------------------------------

_DESCRIPTIONS = {
    400: "malformed request (e.g. a Content-Length that is not a number)",
    401: "missing or unknown bearer token",
    403: "the token's role may not do this, or not to this object (e.g. another station's)",
    404: "no such object",
    408: "the request body did not arrive in time",
    409: "not possible in the object's current state",
    413: f"request body over {MAX_BODY_BYTES} bytes",
    502: "the vehicle refused the command (its reason is quoted)",
    503: "the service this needs is not running in this controller",
    504: "the vehicle did not acknowledge the command in time",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status with its reason and the Problem body (422 keeps FastAPI's schema)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        if code == 422:
            out[422] = {
                "description": "invalid input: `detail` lists each bad field with its location, the reason and the error type",
                "model": ValidationProblem,
            }
        else:
            out[code] = {"description": _DESCRIPTIONS[code], "model": Problem}
    return out


class FieldError(BaseModel):
    """One bad field: where (e.g. ["body", "lat"]), why, and the error type."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationProblem(BaseModel):
    """The 422 body: every bad field of the request."""

    detail: list[FieldError]


#: What every authenticated operation can answer, besides its own codes.
AUTH = (401, 403)
BODY = (400, 408, 413, 422)


# --- handlers -------------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, "not_found", safe_text(str(exc)))

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return _problem(403, "forbidden", safe_text(str(exc)))

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return _problem(409, "illegal_transition", safe_text(str(exc)))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _problem(409, "conflict", safe_text(str(exc)))

    @app.exception_handler(CommandRefused)
    async def _refused(_: Request, exc: CommandRefused) -> JSONResponse:
        if exc.status == 422:  # a value outside the configured limits: named like any bad field
            loc = ["body", exc.field] if exc.field else ["body"]
            return JSONResponse({"detail": validation_errors([{"loc": loc, "msg": exc.detail, "type": "value_error"}])}, status_code=422)
        return _problem(exc.status, SLUGS.get(exc.status, "error"), safe_text(exc.detail))

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _problem(503, "unavailable", safe_text(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_errors(exc.errors())}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            methods = allowed_methods(request.app.routes, request.scope)
            if methods:
                headers = {**(headers or {}), "Allow": ", ".join(methods)}
        if exc.status_code < 200 or exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        if isinstance(exc.detail, list):  # field errors raised by a route: same shape as validation errors
            return JSONResponse({"detail": validation_errors(exc.detail)}, status_code=exc.status_code, headers=headers)
        return _problem(exc.status_code, SLUGS.get(exc.status_code, "error"), safe_text(str(exc.detail)), headers)

    app.add_middleware(BodyLimit)


def _route_candidates(routes: Any) -> Any:
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # FastAPI's lazily included routers
        if contexts is not None:
            yield from contexts()
        else:
            yield route


def allowed_methods(routes: Any, scope: Scope) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in _route_candidates(routes):
        route_methods = getattr(route, "methods", None)
        if not route_methods:
            continue
        try:
            match, _ = route.matches(scope)
        except Exception:  # noqa: BLE001  (a route that cannot judge this scope does not serve it)
            continue
        if match is not Match.NONE:
            methods |= set(route_methods)
    return sorted(methods)


# --- the body guard ------------------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES with 413 before they are read into memory.

    A declared Content-Length over the limit is refused at once; a chunked body is counted as it arrives
    and refused (413, not the 400 a failed body read would give) as soon as it passes the limit. The body
    must also arrive within BODY_TIMEOUT_S (408), so a client trickling a byte at a time holds nothing long.
    """

    def __init__(self, app: ASGIApp, max_bytes: int | None = None, timeout_s: float | None = None) -> None:
        self.app = app
        self.max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes
        self.timeout_s = BODY_TIMEOUT_S if timeout_s is None else timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await _problem(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await self._too_large()(scope, receive, send)
                return
        received = 0
        body_done = False
        deadline: float | None = None
        refused: JSONResponse | None = None
        started = False

        async def limited() -> Message:
            nonlocal received, body_done, deadline, refused
            if body_done or refused is not None:
                return await receive()  # after the body: only http.disconnect, no deadline
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                why = f"request body not received within {self.timeout_s:g} s"
                refused = _problem(408, "timeout", why, {"Connection": "close"})
                raise StarletteHTTPException(408, why) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = self._too_large()
                    raise StarletteHTTPException(413, f"request body over {self.max_bytes} bytes")
                if not message.get("more_body", False):
                    body_done = True
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None:
                return  # whatever the app makes of the refused body, the client gets our answer
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except StarletteHTTPException:
            if refused is None:
                raise
        if refused is not None and not started:
            await refused(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        return _problem(413, "too_large", f"request body over {self.max_bytes} bytes", {"Connection": "close"})
