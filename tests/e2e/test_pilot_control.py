"""A pilot flies the drone over the HTTP API, on both backends (issue 17): fly to a tapped point, orbit a point,
a no-fly target refused, the camera pointed, a search paused, directed and resumed, return to station, land here.

The pilot's side goes through a real HTTP server (uvicorn) with the pilot's bearer token, as the pilot page
does. What the drone does is read from the vehicle itself on a MAVLink connection of the test's own, not
through the controller: on the built-in simulator another client of the vehicle's TCP port (it sends nothing,
so it changes no stream rate the controller asked for); on ArduPilot SITL the vehicle's SERIAL2, a third
MAVLink port beside the controller's (SERIAL0, behind the link proxy) and the fault injector's (SERIAL1), with
streams of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymavlink.dialects.v20 import ardupilotmega as mav

from controller import geo
from controller.api.app import create_app
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, MissionState
from controller.fleet.copter import CopterMode
from controller.fleet.sweep import FIRST_SWEEP_SEQ
from tests import support
from tests.flying import NOFLY_STATION, World, flying_world

pytestmark = [pytest.mark.sitl, pytest.mark.slow]
CMD = Principal(Role.COMMANDER, "cmd")
PILOT = support.auth("pilot_a")
#: The one drone flown here: station A's (the first of the roster).
INSTANCE = 0
#: "Within a few metres": how close the vehicle must come to a fly-to point and stay while it holds there.
ARRIVED_M = 3.0
ALT_TOLERANCE_M = 2.0
#: Streams asked for on ArduPilot's SERIAL2 (Hz of simulated time).
STREAMS = (
    (mav.MAV_DATA_STREAM_EXTENDED_STATUS, 4),  # MISSION_CURRENT, POSITION_TARGET_GLOBAL_INT
    (mav.MAV_DATA_STREAM_POSITION, 8),  # GLOBAL_POSITION_INT
    (mav.MAV_DATA_STREAM_EXTRA1, 4),  # ATTITUDE
    (mav.MAV_DATA_STREAM_EXTRA3, 4),  # GIMBAL_DEVICE_ATTITUDE_STATUS
)


# --- the vehicle's own word ---------------------------------------------------------------------------


@dataclass
class Report:
    armed: bool | None = None
    mode: int | None = None
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    heading_deg: float | None = None
    ground_speed_ms: float | None = None
    pitch_deg: float | None = None
    mission_seq: int | None = None
    #: POSITION_TARGET_GLOBAL_INT: where the vehicle is flying to (GUIDED, AUTO), lat/lon.
    target: tuple[float, float] | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_flags: int | None = None
    heartbeats: int = 0
    positions: int = 0
    #: Every MISSION_CURRENT seq in the order seen (repeats collapsed), with the position at the change.
    seqs: list[tuple[int, float | None, float | None]] = field(default_factory=list)


class Vehicle:
    """A read-only MAVLink client of one vehicle: mode, position, mission item, gimbal, as the vehicle says."""

    def __init__(self, w: World, port: int, sysid: int, request_streams: bool) -> None:
        self.w = w
        self.port = port
        self.sysid = sysid
        self.request_streams = request_streams
        self.r = Report()
        self._mav = mav.MAVLink(None, srcSystem=251, srcComponent=mav.MAV_COMP_ID_USER1)
        self._mav.robust_parsing = True
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._listeners: list[Callable[[Report], None]] = []

    @classmethod
    def of(cls, w: World) -> Vehicle:
        if w.backend == "sim":
            assert w.sim is not None
            return cls(w, w.sim.port_of(INSTANCE), w.sim.spec(INSTANCE).system_id, request_streams=False)
        control = w.faults.injector.controls[INSTANCE]  # type: ignore[attr-defined]
        return cls(w, control.port + 1, control.sysid, request_streams=True)  # SERIAL2 is SERIAL1's port + 1

    async def start(self) -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self._task = asyncio.create_task(self._read(reader))
        if self.request_streams:
            for stream, hz in STREAMS:
                self._writer.write(self._mav.request_data_stream_encode(self.sysid, 1, stream, hz, 1).pack(self._mav))
        await self.until(lambda r: r.heartbeats > 0 and r.lat is not None and r.gimbal_flags is not None, 15,
                         "the vehicle's own reports (heartbeat, position, gimbal)")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        r = self.r
        while data := await reader.read(65536):
            for msg in self._mav.parse_buffer(data) or ():
                if msg.get_srcSystem() != self.sysid or msg.get_srcComponent() != 1:
                    continue
                kind = msg.get_type()
                if kind == "HEARTBEAT":
                    r.heartbeats += 1
                    r.armed = bool(msg.base_mode & mav.MAV_MODE_FLAG_SAFETY_ARMED)
                    r.mode = msg.custom_mode
                elif kind == "GLOBAL_POSITION_INT":
                    r.lat, r.lon, r.alt_m = msg.lat / 1e7, msg.lon / 1e7, msg.relative_alt / 1000.0
                    r.heading_deg = msg.hdg / 100.0 if msg.hdg != 65535 else None
                    r.ground_speed_ms = math.hypot(msg.vx, msg.vy) / 100.0
                    r.positions += 1
                    for listener in self._listeners:
                        listener(r)
                elif kind == "ATTITUDE":
                    r.pitch_deg = math.degrees(msg.pitch)
                elif kind == "MISSION_CURRENT":
                    r.mission_seq = msg.seq
                    if not r.seqs or r.seqs[-1][0] != msg.seq:
                        r.seqs.append((msg.seq, r.lat, r.lon))
                elif kind == "POSITION_TARGET_GLOBAL_INT":
                    r.target = (msg.lat_int / 1e7, msg.lon_int / 1e7)
                elif kind == "GIMBAL_DEVICE_ATTITUDE_STATUS":
                    qw, qx, qy, qz = msg.q
                    r.gimbal_pitch_deg = math.degrees(math.asin(max(-1.0, min(1.0, 2 * (qw * qy - qz * qx)))))
                    r.gimbal_flags = msg.flags

    async def until(self, pred: Callable[[Report], Any], timeout: float, what: str) -> Report:
        timeout *= self.w.slowdown
        deadline = time.monotonic() + timeout
        while not pred(self.r):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for the vehicle: {what}; it reports {self.r}")
            await asyncio.sleep(0.05)
        return self.r

    async def fresh(self, positions: int = 2) -> Report:
        """After `positions` more position reports: nothing read is older than the call."""
        n = self.r.positions
        return await self.until(lambda r: r.positions >= n + positions, 5, "fresh positions")

    @contextlib.contextmanager
    def track(self) -> Any:
        """Every position reported while inside the block: [(lat, lon, alt), ...]."""
        seen: list[tuple[float, float, float]] = []

        def add(r: Report) -> None:
            seen.append((r.lat, r.lon, r.alt_m))  # type: ignore[arg-type]

        self._listeners.append(add)
        try:
            yield seen
        finally:
            self._listeners.remove(add)

    def distance_m(self, lat: float, lon: float) -> float:
        assert self.r.lat is not None and self.r.lon is not None
        return geo.distance_m(self.r.lat, self.r.lon, lat, lon)


# --- the world: one drone, the API on a real port --------------------------------------------------------


@dataclass
class Pilot:
    w: World
    http: httpx.AsyncClient
    vehicle: Vehicle

    async def command(self, drone_id: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = await self.http.post(f"/api/v1/drones/{drone_id}/commands", json=body, headers=PILOT)
        assert r.status_code == status, f"{body} -> {r.status_code} {r.text}"
        return r.json()

    async def control(self, drone_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/v1/drones/{drone_id}/control", headers=PILOT)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(params=["sim", "ardupilot"])
async def pilot(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Pilot]:
    backend = request.param
    chosen = request.config.getoption("--backend")
    if chosen not in (backend, "both"):
        pytest.skip(f"--backend {chosen}")
    async with flying_world(tmp_path, backend, drones=1, speedup=request.config.getoption("--speedup")) as w:
        vehicle = Vehicle.of(w)
        await vehicle.start()
        try:
            async with support.serve(create_app(w.rt, manage_lifecycle=False)) as url:
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    yield Pilot(w, http, vehicle)
        finally:
            await vehicle.close()


def station_a(w: World) -> tuple[float, float]:
    s = w.rt.config.station(support.STATION_A)
    return s.lat, s.lon


async def accepted(p: Pilot, incident: NewIncident):
    inc, _ = await p.w.rt.center.create_incident(incident, CMD)
    (m,) = [m for m in p.w.rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
    assert m.station_id == support.STATION_A
    r = await p.http.post(f"/api/v1/missions/{m.id}/accept", headers=PILOT)
    assert r.status_code == 200, r.text
    return inc, m


async def on_scene(p: Pilot, north_m: float = 300.0):
    lat, lon = geo.destination(*station_a(p.w), 0.0, north_m)
    inc, m = await accepted(p, NewIncident(grade=2, category="traffic_accident", lat=lat, lon=lon))
    await p.w.until(lambda: m.state is MissionState.ON_SCENE, 60, "on scene")
    await p.vehicle.until(lambda r: r.mode == CopterMode.GUIDED and geo.distance_m(r.lat, r.lon, lat, lon) < 30, 20,
                          "over the scene")
    return inc, m


def events(w: World, since: int, type_: str) -> list[dict[str, Any]]:
    return [e.as_dict() for e in w.rt.center.bus.replay_from_memory(since) or [] if e.type == type_]


def unwrap_deg(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0


def swept_deg(centre: tuple[float, float], track: list[tuple[float, float, float]]) -> float:
    """How far round `centre` the track went, in degrees of bearing (positive: clockwise seen from above)."""
    bearings = [geo.bearing_deg(*centre, lat, lon) for lat, lon, _ in track]
    return sum(unwrap_deg(b - a) for a, b in zip(bearings, bearings[1:]))


# --- the tests ---------------------------------------------------------------------------------------


async def test_fly_to_reaches_the_point_and_holds_a_no_fly_target_is_refused_and_the_camera_points(pilot: Pilot) -> None:
    p, w, v = pilot, pilot.w, pilot.vehicle
    inc, m = await on_scene(p)
    drone = m.drone_id
    seq0 = w.rt.center.bus.last_published_seq

    # (a) fly to a point 150 m east of the scene at 50 m: acknowledged, flown, reached and held (the vehicle's word)
    target = geo.destination(inc.lat, inc.lon, 90.0, 150.0)
    out = await p.command(drone, {"kind": "fly_to", "lat": target[0], "lon": target[1], "alt_m": 50})
    assert out["accepted"] and out["kind"] == "fly_to" and out["by"] == {"name": "pilot-a", "role": "pilot"}
    assert 0 < out["acked_in_ms"] < 1000
    await v.until(lambda r: r.mode == CopterMode.GUIDED and r.target is not None
                  and geo.distance_m(*r.target, *target) < 1.0, 5, "the vehicle's target: the tapped point")
    await v.until(lambda r: geo.distance_m(r.lat, r.lon, *target) < ARRIVED_M and abs(r.alt_m - 50) < ALT_TOLERANCE_M,
                  60, "at the tapped point")
    with v.track() as held:
        await asyncio.sleep(3.0 * w.slowdown)  # 30 simulated seconds at speed-up 10
    assert len(held) > 10
    off = max(geo.distance_m(lat, lon, *target) for lat, lon, _ in held)
    assert off < ARRIVED_M, f"drifted {off:.1f} m from the point while holding"
    assert all(abs(alt - 50) < ALT_TOLERANCE_M for _, _, alt in held)
    assert v.r.mode == CopterMode.GUIDED
    assert (await p.control(drone))["mode"] == "pilot"
    f = (await p.http.get(f"/api/v1/missions/{m.id}/flight", headers=PILOT)).json()
    assert f["piloted"] and f["target"][:2] == pytest.approx(list(target))

    # (c) a target in the no-fly zone, and an orbit whose circle crosses it: 409 naming the zone, nothing sent
    s11 = w.rt.config.stations[NOFLY_STATION]
    zone_centre = geo.destination(s11.lat, s11.lon, 0.0, 400.0)  # the test zone (tests/flying.py)
    assert geo.distance_m(*station_a(w), *zone_centre) < w.rt.config.policy.control.geofence.radius_m
    before = await v.fresh()
    mode_before, target_before = before.mode, before.target
    assert target_before is not None
    r = await p.command(drone, {"kind": "fly_to", "lat": zone_centre[0], "lon": zone_centre[1], "alt_m": 50}, 409)
    assert "no-fly zone test-zone" in r["detail"] and "hospital helipad" in r["detail"], r
    toward_us = geo.bearing_deg(*zone_centre, *target)
    centre = geo.destination(*zone_centre, toward_us, 330.0)  # outside the zone and its buffer; the circle is not
    r = await p.command(drone, {"kind": "orbit", "lat": centre[0], "lon": centre[1], "radius_m": 200, "direction": "cw",
                                "speed_ms": 8}, 409)
    assert "orbit of 200 m" in r["detail"] and "no-fly zone test-zone" in r["detail"], r
    with v.track() as after:
        await asyncio.sleep(1.0 * w.slowdown)
    assert v.r.mode == mode_before == CopterMode.GUIDED
    assert v.r.target is not None and geo.distance_m(*v.r.target, *target_before) < 0.5, "the vehicle's target changed"
    assert max(geo.distance_m(lat, lon, *target) for lat, lon, _ in after) < ARRIVED_M

    # (d) gimbal pitch, then the camera on a point 80 m north on the ground: acknowledged, and the mount says so
    out = await p.command(drone, {"kind": "gimbal", "pitch_deg": -60})
    assert out["accepted"] and out["acked_in_ms"] > 0
    await v.until(lambda r: r.gimbal_pitch_deg is not None and abs(r.gimbal_pitch_deg + 60) < 2.0, 5,
                  "GIMBAL_DEVICE_ATTITUDE_STATUS at -60 degrees")
    here = await v.fresh()
    roi = geo.destination(here.lat, here.lon, 0.0, 80.0)
    out = await p.command(drone, {"kind": "roi", "lat": roi[0], "lon": roi[1]})
    assert out["accepted"]
    expected_pitch = -math.degrees(math.atan2(here.alt_m, 80.0))
    await v.until(lambda r: r.gimbal_flags & mav.GIMBAL_DEVICE_FLAGS_YAW_LOCK
                  and abs(r.gimbal_pitch_deg - expected_pitch) < 3.0
                  and r.heading_deg is not None and abs(unwrap_deg(r.heading_deg - 0.0)) < 10.0, 10,
                  f"the nose and the camera on the point: pitch {expected_pitch:.0f} degrees, yaw-locked, heading north")
    out = await p.command(drone, {"kind": "roi_clear"})
    await v.until(lambda r: not r.gimbal_flags & mav.GIMBAL_DEVICE_FLAGS_YAW_LOCK, 5, "the point of interest cleared")
    # the camera commands did not move the drone
    assert v.distance_m(*target) < ARRIVED_M and v.r.mode == CopterMode.GUIDED

    commands = [(e["data"]["kind"], e["data"]["ok"]) for e in events(w, seq0, "control.command")]
    assert commands == [("fly_to", True), ("fly_to", False), ("orbit", False), ("gimbal", True), ("roi", True), ("roi_clear", True)]


async def test_orbit_circles_the_point_at_the_radius_then_return_to_station(pilot: Pilot) -> None:
    p, w, v = pilot, pilot.w, pilot.vehicle
    inc, m = await on_scene(p)
    drone = m.drone_id
    radius, speed = 60.0, 8.0
    centre = geo.destination(inc.lat, inc.lon, 270.0, 100.0)
    out = await p.command(drone, {"kind": "orbit", "lat": centre[0], "lon": centre[1], "radius_m": radius,
                                  "direction": "ccw", "speed_ms": speed})
    assert out["accepted"] and "CIRCLE" in out["detail"]
    await v.until(lambda r: r.mode == CopterMode.CIRCLE, 60, "CIRCLE over the centre")
    await v.until(lambda r: v.distance_m(*centre) > radius - 5, 30, "out on the circle")
    alt0 = v.r.alt_m
    # one full turn, sampled from the vehicle's own positions
    turn_s = 2 * math.pi * radius / speed
    deadline = time.monotonic() + (2.5 * turn_s / w.speedup + 5) * w.slowdown
    with v.track() as circle:
        while abs(swept_deg(centre, circle)) < 360.0:
            assert time.monotonic() < deadline, f"no full turn in {2.5 * turn_s:.0f} s: {swept_deg(centre, circle):.0f} degrees"
            await asyncio.sleep(0.1)
    swept = swept_deg(centre, circle)
    distances = [geo.distance_m(*centre, lat, lon) for lat, lon, _ in circle]
    mean = sum(distances) / len(distances)
    assert abs(mean - radius) < 3.0, f"mean distance {mean:.1f} m from the centre, radius {radius:g} m"
    assert max(abs(d - radius) for d in distances) < 8.0, (min(distances), max(distances))
    assert swept < 0, "counter-clockwise seen from above: the bearing from the centre decreases"
    assert all(abs(alt - alt0) < 3.0 for _, _, alt in circle), "the orbit keeps its height"
    assert v.r.mode == CopterMode.CIRCLE

    # (f) return to station: the controller's way home, down on the station, the mission completed
    out = await p.command(drone, {"kind": "return"})
    assert out["accepted"]
    await w.until(lambda: m.state is MissionState.COMPLETED, 120, "home and landed")
    await v.until(lambda r: not r.armed, 20, "disarmed")
    assert v.distance_m(*station_a(w)) < 5.0
    assert w.rt.center.drones[drone].state in (DroneState.STANDBY, DroneState.CHARGING)
    r = await p.http.post(f"/api/v1/drones/{drone}/commands", json={"kind": "hold"}, headers=PILOT)
    assert r.status_code == 409 and "no mission in flight" in r.json()["detail"]


async def test_search_paused_directed_resumed_where_it_left_off_then_land_here(pilot: Pilot) -> None:
    p, w, v = pilot, pilot.w, pilot.vehicle
    lat, lon = geo.destination(*station_a(w), 90.0, 300.0)
    inc, m = await accepted(p, NewIncident(grade=1, category="missing_person", lat=lat, lon=lon,
                                           search_radius_m=150.0, drones_requested=1))
    drone = m.drone_id
    runner = lambda: w.rt.fleet.runner_of(drone)  # noqa: E731
    await w.until(lambda: runner() is not None and runner().phase.value == "searching", 90, "sweeping")
    await v.until(lambda r: r.mode == CopterMode.AUTO and (r.mission_seq or 0) >= FIRST_SWEEP_SEQ + 1, 60,
                  "on the second leg of the sweep")
    assert m.plan is not None

    # pause it by flying it 60 m off its leg: GUIDED, the vehicle's mission item stays where it was
    here = await v.fresh()
    item = here.mission_seq
    aside = geo.destination(here.lat, here.lon, 180.0, 60.0)
    out = await p.command(drone, {"kind": "fly_to", "lat": aside[0], "lon": aside[1], "alt_m": 45})
    assert out["accepted"]
    await v.until(lambda r: r.mode == CopterMode.GUIDED, 5, "GUIDED (the sweep paused)")
    await v.until(lambda r: geo.distance_m(r.lat, r.lon, *aside) < ARRIVED_M, 60, "at the pilot's point")
    control = await p.control(drone)
    assert control["mode"] == "pilot" and control["paused_sweep"] is True
    assert v.r.mission_seq == item, "the vehicle's current item did not move while paused"

    # resume: AUTO again, the same item flown to its waypoint from here, then the next
    seqs_before = len(v.r.seqs)
    out = await p.command(drone, {"kind": "resume"})
    assert out["accepted"] and "where it left off" in out["detail"]
    await v.until(lambda r: r.mode == CopterMode.AUTO, 5, "AUTO again")
    assert v.r.mission_seq == item
    await v.until(lambda r: (r.mission_seq or 0) > item, 60, "the paused item reached")
    nxt = v.r.seqs[seqs_before:]
    assert nxt[0][0] == item + 1, f"items after the resume: {[s for s, _, _ in nxt]} (paused at {item})"
    wp = m.plan.waypoints[item - FIRST_SWEEP_SEQ]
    assert geo.distance_m(nxt[0][1], nxt[0][2], *wp) < 15.0, "the item ended at its own waypoint, not skipped"
    control = await p.control(drone)
    assert control["mode"] == "controller" and control["paused_sweep"] is False
    assert runner().phase.value == "searching"

    # (f) land here: refused without confirmation; with it the drone comes down where it is, away from the station
    r = await p.http.post(f"/api/v1/drones/{drone}/commands", json={"kind": "land"}, headers=PILOT)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "confirm"
    assert v.r.mode == CopterMode.AUTO
    out = await p.command(drone, {"kind": "land", "confirm": True})
    assert out["accepted"]
    await v.until(lambda r: r.mode == CopterMode.LAND, 5, "LAND")
    spot = await v.fresh(1)
    spot_lat, spot_lon, speed = spot.lat, spot.lon, spot.ground_speed_ms
    await v.until(lambda r: not r.armed and r.alt_m < 1.0, 90, "down and disarmed")
    # LAND brakes from the sweep's speed, then comes straight down
    landed_off = v.distance_m(spot_lat, spot_lon)
    assert landed_off < 5.0 + speed**2 / 2.0, f"landed {landed_off:.1f} m from where LAND began at {speed:.1f} m/s"
    print(f"land here: LAND at {speed:.1f} m/s, down {landed_off:.1f} m further on")
    assert v.distance_m(*station_a(w)) > 100.0
    await w.until(lambda: m.state is MissionState.ABORTED, 30, "the mission ended there")
    assert m.reason.startswith("landed here by pilot pilot-a at"), m.reason
