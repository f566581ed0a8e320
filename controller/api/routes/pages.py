"""Browser pages served by the controller (static HTML/JS; they talk to the same API)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from controller.web import favicon

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
router = APIRouter(include_in_schema=False)

INDEX = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dronefleet</title><link rel="stylesheet" href="/static/common.css">
<main class="index"><h1>dronefleet</h1><ul>
<li><a href="/command">Command: live map and video</a></li>
<li><a href="/pilot">Pilot: incoming offers</a></li>
<li><a href="/team">Search team: thermal hotspots</a></li>
<li><a href="/docs">API (OpenAPI)</a></li>
<li><a href="/health">Health</a></li>
</ul></main></html>"""


@router.get("/", response_class=HTMLResponse)
async def index() -> str:
    return INDEX


@router.get("/favicon.ico")
async def favicon_ico() -> Response:
    return Response(favicon.ico(), media_type="image/vnd.microsoft.icon", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/favicon.svg")
async def favicon_svg() -> Response:
    return Response(favicon.SVG, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/pilot")
async def pilot_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "pilot.html", media_type="text/html")


@router.get("/command")
async def command_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "command.html", media_type="text/html")


@router.get("/team")
async def team_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "team.html", media_type="text/html")
