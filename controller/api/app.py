"""The FastAPI application: routes, error mapping, static assets, and the runtime's life cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from typing_extensions import TypedDict

from controller import __version__
from controller.api import errors
from controller.api.deps import PEOPLE, require
from controller.api.errors import AUTH, responses
from controller.api.routes import (
    alerts, control, events_ws, evidence, fleet, hotspots, incidents, missions, pages, tiles, video, whip,
)
from controller.api.routes.pages import STATIC_DIR
from controller.auth import Principal, Role
from controller.maptiles.basemap import BasemapOut
from controller.runtime import Runtime


class UiConfigOut(TypedDict):
    basemap: BasemapOut | None
    tile_url: str
    tile_attribution: str
    centre: list[float]
    nofly: dict
    city: str


def create_app(rt: Runtime, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await rt.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await rt.stop()

    app = FastAPI(
        title="dronefleet",
        version=__version__,
        description=(
            "Police drone fleet controller: dispatch, flight, video and search.\n\n"
            "Every call but /health and the pages needs `Authorization: Bearer TOKEN`. Roles: commander and admin "
            "(everything; only admin switches maintenance), pilot (its own station), search_team (missing-person "
            "searches and hotspots), drone (publishes its own video, nothing else).\n\n"
            "Errors are JSON: `{\"detail\": reason, \"error\": slug}`, or for 422 `{\"detail\": [{\"loc\", \"msg\", "
            "\"type\"}]}` naming each bad field. Bodies are at most 64 KiB (413) and must arrive within 15 s (408).\n\n"
            "Event stream: WebSocket `/api/v1/events?since=SEQ&station=ID&incident=ID` (see the events module: close "
            "codes 4400 bad parameter, 4401/4403 auth, 4410 since too old for the role, 4429 too many streams or "
            "replays, 1013 fell behind: reconnect with since)."
        ),
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.streams = events_ws.StreamRegistry()
    errors.install(app)
    for module in (incidents, missions, fleet, control, alerts, events_ws, video, whip, hotspots, evidence, tiles, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/health", tags=["system"])
    async def health() -> dict:
        center = rt.center
        return {
            "status": "ok" if center.started else "starting",
            "drones": len(center.view.drones),
            "open_incidents": len(center.view.incidents),
            "last_event_seq": center.bus.last_published_seq,
        }

    @app.get("/api/v1/metrics", tags=["system"], responses=responses(*AUTH, 422))
    async def metrics(reset: bool = False, who: Principal = Depends(require(Role.COMMANDER, Role.ADMIN))) -> dict:
        """Event-loop lag and throughput counters (`reset=true` starts a new lag window)."""
        center = rt.center
        out = {
            "loop_lag": rt.lag.summary(),
            "events_published": center.bus.last_published_seq,
            "event_subscribers": center.bus.subscriber_count,
            "db_commits": center.journal.commits,
            "open_incidents": len(center.view.incidents),
            "reconcile": center.reconciler.stats(),
        }
        if rt.fleet is not None:
            out["fleet"] = {
                "links": len(rt.fleet.links),
                "links_up": sum(1 for link in rt.fleet.links.values() if link.up),
                "telemetry_messages": rt.fleet.telemetry_messages,
                "missions_flying": len(rt.fleet.runners),
                "reconcile_startup_s": rt.fleet.reconcile_startup_s,
            }
        if rt.video is not None:
            out["video"] = rt.video.hub.stats()
        if rt.evidence is not None:
            out["evidence"] = rt.evidence.stats()
        if rt.hotspots is not None:
            out["hotspots"] = rt.hotspots.stats()
        if reset:
            rt.lag.reset()
        return out

    @app.get("/api/v1/ui-config", tags=["system"], response_model=UiConfigOut, responses=responses(*AUTH))
    async def ui_config(who: Principal = Depends(require(*PEOPLE))) -> dict:
        """What the browser pages need to draw the map: the basemap (optional), centre, no-fly zones.

        `basemap`: `{url, attribution, min_zoom, max_zoom}` or null; an MBTiles basemap's url is this controller's
        `/tiles/{z}/{x}/{y}.png` (or .jpg/.webp). `tile_url`/`tile_attribution` repeat it for older pages."""
        basemap = rt.basemap.view() if rt.basemap is not None else None
        return {
            "basemap": basemap,
            "tile_url": basemap["url"] if basemap else "",
            "tile_attribution": basemap["attribution"] if basemap else "",
            "centre": [rt.config.frame.lat0, rt.config.frame.lon0],
            "nofly": rt.config.nofly.model_dump(mode="json"),
            "city": rt.config.city.name,
        }

    @app.get("/api/v1/me", tags=["system"], responses=responses(*AUTH))
    async def me(who: Principal = Depends(require(*PEOPLE))) -> dict:
        return {"role": who.role.value, "name": who.name, "station_id": who.station_id}

    return app
