"""A missing-person search flown end to end in simulation, scored against the planted truth.

The controller (dispatch, fleet link, mission runner, hotspot service) runs as
in production against the built-in simulator, with a roster cut down to the
stations nearest the scenario so the search drones are the ones that fly. A
pilot bot accepts the offers. While the drones search, each one's thermal
camera is rendered from the simulator's true pose at the moment of capture and
handed to the hotspot service with that capture time; the service looks the
pose up in its telemetry history exactly as it does for a live feed. (The
WebRTC path from camera to decoder is exercised by the end-to-end test; here
frames skip the encoder so the benchmark measures search, detection, tracking
and georeferencing, not video encoding on two cores.)
"""

from __future__ import annotations

import asyncio
from functools import partial
import json
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from shapely.geometry import Point, Polygon
from shapely.ops import unary_union

from controller import geo
from controller.auth import Principal, Role, TokenRegistry
from controller.config import default_config_dir
from controller.center import NewIncident
from controller.domain.states import AIRBORNE_MISSION, FINISHED_MISSION, MissionState
from controller.runtime import Runtime
from controller.settings import Settings
from sitl.camera_render import SEARCH_SPAN_C, CameraPose, Intrinsics, local_xy, render_thermal
from sitl.fleet import SimFleet, free_base_port
from sitl.roster import roster_specs
from sitl.thermal_scene import Scenario

THERMAL = Intrinsics(640, 512, 61.0)
#: A hotspot this close to a planted person is the person.
TRUE_MATCH_M = 15.0
COMMANDER = Principal(Role.COMMANDER, "bench-commander")


@dataclass
class SearchResult:
    scenario: str
    drones: int
    found: bool
    time_to_first_true_s: float | None
    true_hotspots: list[dict[str, Any]] = field(default_factory=list)
    false_hotspots: list[dict[str, Any]] = field(default_factory=list)
    location_errors_m: list[float] = field(default_factory=list)
    area_km2: float = 0.0
    covered_share: float = 0.0
    searched_km2: float = 0.0
    #: Search area the thermal camera covered (inside the search disc), km².
    covered_km2: float = 0.0
    frames: int = 0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    completed: bool = False


def nearest_station_configs(
    dest: Path, scenario: Scenario, stations: int, speedup: float, detect_fps: float, base_port: int = 5760
) -> Path:
    """A copy of configs/ with only the stations nearest the scenario, and failsafes scaled to the speed-up."""
    shutil.copytree(default_config_dir(), dest)
    doc = json.loads((dest / "stations.json").read_text())
    items = doc["stations"] if isinstance(doc, dict) else doc
    items.sort(key=lambda s: geo.distance_m(scenario.lat, scenario.lon, s["lat"], s["lon"]))
    kept = items[:stations]
    if isinstance(doc, dict):
        doc["stations"] = kept
    else:
        doc = kept
    (dest / "stations.json").write_text(json.dumps(doc))
    flight = yaml.safe_load((dest / "flight.yaml").read_text())
    flight["failsafe"]["gcs_timeout_s"] = 5 * speedup
    flight["links"]["base_port"] = base_port
    (dest / "flight.yaml").write_text(yaml.safe_dump(flight))
    policy = yaml.safe_load((dest / "dispatch.yaml").read_text())
    policy["offer_timeout_s"] = 300
    policy["search"]["detect_fps"] = detect_fps
    (dest / "dispatch.yaml").write_text(yaml.safe_dump(policy))
    return dest


def footprint(lat: float, lon: float, alt_m: float, heading_deg: float, origin: tuple[float, float]) -> Polygon:
    """The nadir thermal camera's ground rectangle in local metres."""
    x, y = local_xy(lat, lon, origin)
    half_w = alt_m * math.tan(math.radians(THERMAL.hfov_deg) / 2)
    half_h = half_w * THERMAL.height / THERMAL.width
    psi = math.radians(heading_deg)
    c, s = math.cos(psi), math.sin(psi)
    corners = []
    for r, f in ((-half_w, half_h), (half_w, half_h), (half_w, -half_h), (-half_w, -half_h)):
        corners.append((x + r * c + f * s, y - r * s + f * c))
    return Polygon(corners)


class SearchWorld:
    """Runs one scenario; `run()` returns its scored result."""

    def __init__(
        self, scenario: Scenario, speedup: float = 6.0, fps: float = 8.0, timeout_s: float = 600.0, gps_noise_m: float = 2.0
    ) -> None:
        self.gps_noise_m = gps_noise_m
        self.scenario = scenario
        self.speedup = speedup
        self.fps = fps
        self.timeout_s = timeout_s
        self.origin = (scenario.lat, scenario.lon)
        self.footprints: list[Polygon] = []
        self.frames = 0
        self._rng = np.random.default_rng(scenario.seed)

    async def run(self, progress: Any = None) -> SearchResult:
        sc = self.scenario
        with tempfile.TemporaryDirectory(prefix="dronefleet-search-") as tmp:
            tmp_path = Path(tmp)
            n = sc.drones + 2
            base = free_base_port(n)
            cfg = nearest_station_configs(tmp_path / "configs", sc, n, self.speedup, self.fps, base)
            sim = SimFleet(
                roster_specs(cfg / "stations.json", cfg / "drone_models.yaml", n, warm=True), speedup=self.speedup, base_port=base
            )
            await sim.start()
            for spec in sim.specs:  # the positions the drones report carry GPS noise, as real ones do
                sim.set_position_noise(spec.instance, self.gps_noise_m)
            settings = Settings(
                database_url=f"sqlite:///{tmp_path / 'search.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var",
                fleet="external", fleet_drones=n,
            )
            rt = Runtime.build(settings, tokens=TokenRegistry({}))
            await rt.start()
            try:
                return await self._fly(rt, sim, n, progress)
            finally:
                await rt.stop()
                await sim.stop()

    async def _fly(self, rt: Runtime, sim: SimFleet, n: int, progress: Any) -> SearchResult:
        sc = self.scenario
        wall0 = time.monotonic()
        deadline = wall0 + 60
        while rt.fleet.configured < n:
            if time.monotonic() > deadline:
                raise RuntimeError("drones did not link up within 60 s")
            await asyncio.sleep(0.1)
        roster = [d.id for s in rt.config.stations for d in s.drones][:n]
        instance_of = {drone_id: i for i, drone_id in enumerate(roster)}
        inc, _ = await rt.center.create_incident(
            NewIncident(
                grade=1, category="missing_person", lat=sc.lat, lon=sc.lon,
                search_radius_m=sc.radius_m, drones_requested=sc.drones,
                description=f"benchmark scenario {sc.name}",
            ),
            COMMANDER,
        )
        sim0 = sim.sim_time
        first_true: float | None = None
        completed = False
        period = 1.0 / self.fps
        next_frame = time.monotonic()
        last_note = 0.0
        while True:
            now = time.monotonic()
            if now - wall0 > self.timeout_s:
                break
            for m in rt.center.incident_missions(inc.id):
                if m.state is MissionState.OFFERED:
                    await rt.center.accept(m.id, Principal(Role.PILOT, "bench-pilot", m.station_id))
            missions = rt.center.incident_missions(inc.id)
            flying = [m for m in missions if m.state in AIRBORNE_MISSION]
            searching = [m for m in flying if m.plan is not None]
            if missions and all(m.state in FINISHED_MISSION for m in missions) and any(
                m.plan is not None for m in missions
            ):
                completed = True
                break
            if now >= next_frame:
                next_frame = max(next_frame + period, now)
                for m in searching:
                    await self._frame(rt, sim, inc.id, m.drone_id, instance_of[m.drone_id])
                if first_true is None and self._true_hotspots(rt, inc.id):
                    first_true = sim.sim_time - sim0
            if progress is not None and now - last_note > 10:
                last_note = now
                done = sum(m.plan.done for m in missions if m.plan is not None)
                total = sum(len(m.plan.waypoints) for m in missions if m.plan is not None)
                progress(
                    f"  {sc.name}: {sim.sim_time - sim0:5.0f} s simulated, {len(flying)} flying, "
                    f"waypoints {done}/{total}, {len(rt.hotspots.list(inc.id))} hotspots"
                )
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        return self._score(rt, inc.id, first_true, sim.sim_time - sim0, time.monotonic() - wall0, completed)

    async def _frame(self, rt: Runtime, sim: SimFleet, incident_id: str, drone_id: str, instance: int) -> None:
        v = sim.vehicle(instance)
        lat, lon = v.latlon()
        alt, heading = float(v.motion.alt), float(v.motion.heading)
        if alt < 20:
            return
        pose = CameraPose(lat, lon, alt, heading)
        capture = time.time()
        display, _ = await asyncio.get_running_loop().run_in_executor(
            None, partial(
                render_thermal, pose, THERMAL, self.origin, self.scenario.sources, self.scenario.conditions, self._rng,
                span_c=SEARCH_SPAN_C,
            )
        )
        self.frames += 1
        self.footprints.append(footprint(lat, lon, alt, heading, self.origin))
        await rt.hotspots.ingest(incident_id, drone_id, capture, display)

    def _true_hotspots(self, rt: Runtime, incident_id: str) -> list[Any]:
        people = self.scenario.people
        return [
            h for h in rt.hotspots.list(incident_id)
            if any(geo.distance_m(h.lat, h.lon, p.lat, p.lon) <= TRUE_MATCH_M for p in people)
        ]

    def _score(self, rt: Runtime, incident_id: str, first_true: float | None, sim_s: float, wall_s: float, completed: bool) -> SearchResult:
        sc = self.scenario
        cx, cy = local_xy(sc.lat, sc.lon, self.origin)
        disc = Point(cx, cy).buffer(sc.radius_m, 128)
        covered = unary_union(self.footprints).intersection(disc).area if self.footprints else 0.0
        searched_km2 = unary_union(self.footprints).area / 1e6 if self.footprints else 0.0
        result = SearchResult(
            scenario=sc.name, drones=sc.drones, found=first_true is not None, time_to_first_true_s=first_true,
            area_km2=round(disc.area / 1e6, 3), covered_share=round(covered / disc.area, 3), covered_km2=round(covered / 1e6, 3),
            searched_km2=round(searched_km2, 3), frames=self.frames, sim_seconds=round(sim_s, 1),
            wall_seconds=round(wall_s, 1), completed=completed,
        )
        for h in rt.hotspots.list(incident_id):
            errors = [geo.distance_m(h.lat, h.lon, p.lat, p.lon) for p in sc.people]
            nearest_kind = min(
                sc.sources, key=lambda s: geo.distance_m(h.lat, h.lon, s.lat, s.lon)
            )
            entry = {
                "id": h.id, "lat": h.lat, "lon": h.lon, "error_m_est": h.error_m, "hits": h.hits, "kind": h.kind,
                "nearest_source": nearest_kind.kind,
                "nearest_source_m": round(geo.distance_m(h.lat, h.lon, nearest_kind.lat, nearest_kind.lon), 1),
            }
            if min(errors) <= TRUE_MATCH_M:
                result.true_hotspots.append(entry)
                result.location_errors_m.append(round(min(errors), 2))
            else:
                result.false_hotspots.append(entry)
        return result
