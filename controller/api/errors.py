"""Map domain errors to HTTP: 404 unknown id, 403 not yours, 409 illegal in the current state, 413 too big."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from controller.center import ServiceUnavailable
from controller.domain.errors import Conflict, Forbidden, IllegalTransition, NotFound

MAX_BODY_BYTES = 64 * 1024


def _problem(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "error": error}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, "not_found", str(exc))

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return _problem(403, "forbidden", str(exc))

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return _problem(409, "illegal_transition", str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _problem(409, "conflict", str(exc))

    @app.exception_handler(ServiceUnavailable)
    async def _unavailable(_: Request, exc: ServiceUnavailable) -> JSONResponse:
        return _problem(503, "unavailable", str(exc))

    app.add_middleware(BodyLimit)


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES with 413 before they are read into memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            await _problem(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _problem(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")(scope, receive, send)


class _TooLarge(Exception):
    pass
