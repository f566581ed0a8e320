"""Feed the hotspot service real rendered thermal frames of a planted person (the detector and tracker run for real)."""

from __future__ import annotations

import time

import numpy as np

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.hotspots.pose_history import PoseSample
from controller.runtime import Runtime
from sitl.camera_render import SEARCH_SPAN_C, CameraPose, Intrinsics, render_thermal
from sitl.thermal_scene import build_scenario
from tests import support

DRONE = f"{support.STATION_A}-D1"


async def search_in_flight(rt: Runtime, north_m: float = 450.0) -> str:
    """A missing-person search near station A whose drone has launched; returns the incident id."""
    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    inc, _ = await rt.center.create_incident(
        NewIncident(grade=1, category="missing_person", lat=lat, lon=lon, search_radius_m=150, drones_requested=1),
        Principal(Role.COMMANDER, "cmd"),
    )
    (m,) = rt.center.incident_missions(inc.id)
    await rt.center.accept(m.id, Principal(Role.PILOT, "pilot-a", support.STATION_A))
    await rt.center.reports.flight_launched(m.id)
    return inc.id


async def fly_over_person(rt: Runtime, incident_id: str, lat: float, lon: float, frames: int = 12, t0: float | None = None) -> int:
    """Frames of a drone hovering 15 m from a person lying at (lat, lon); returns how many hotspots were raised."""
    world = build_scenario({"name": "t", "seed": 3, "lat": lat, "lon": lon, "radius_m": 50, "people": [{"east_m": 0, "north_m": 0}]})
    cam_lat, cam_lon = geo.destination(lat, lon, 200.0, 15.0)
    pose = CameraPose(cam_lat, cam_lon, 60.0, 0.0)
    rng = np.random.default_rng(1)
    t0 = time.time() - 30 if t0 is None else t0
    raised = 0
    for k in range(frames):
        t = t0 + k * 0.25
        rt.hotspots.pose(DRONE, PoseSample(t, cam_lat, cam_lon, 70.0, 60.0, 0.0))
        frame, _ = render_thermal(
            pose, Intrinsics(640, 512, 61.0), (lat, lon), world.sources, world.conditions, rng, span_c=SEARCH_SPAN_C
        )
        raised += len(await rt.hotspots.ingest(incident_id, DRONE, t, frame))
    return raised
