"""Pilot control over the API against the built-in simulator: the control token, commands acknowledged by the
vehicle, refusals that send nothing, the flight view, the timeline and the event stream (issue 17)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller import geo
from controller.api.app import create_app
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, MissionState
from controller.fleet.copter import CopterMode
from tests import support
from tests.flying import World, flying_world

pytestmark = [pytest.mark.slow]
A = support.STATION_A
CMD = Principal(Role.COMMANDER, "cmd")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[World, httpx.AsyncClient]]:
    async with flying_world(tmp_path, "sim", drones=2) as w:
        app = create_app(w.rt, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            yield w, client


def events(w: World, since: int, type_: str) -> list[dict]:
    page = w.rt.center.bus.replay_from_memory(since) or []
    return [e.as_dict() for e in page if e.type == type_]


async def steps(w: World, mission_id: str) -> list[dict]:
    db = w.rt.db
    return await db.read(lambda c: db.mission_steps(c, mission_id))


async def on_scene(w: World, client: httpx.AsyncClient):
    s = w.rt.config.station(A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, 300.0)
    inc, _ = await w.rt.center.create_incident(NewIncident(grade=2, category="traffic_accident", lat=lat, lon=lon), CMD)
    (m,) = [m for m in w.rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]
    r = await client.post(f"/api/v1/missions/{m.id}/accept", headers=support.auth("pilot_a"))
    assert r.status_code == 200, r.text
    await w.until(lambda: m.state is MissionState.ON_SCENE, 60, "on scene")
    return inc, m


async def test_pilot_flies_the_drone_and_the_commander_takes_over(world) -> None:
    w, client = world
    inc, m = await on_scene(w, client)
    drone = m.drone_id
    url = f"/api/v1/drones/{drone}"
    pilot, cmd = support.auth("pilot_a"), support.auth("commander")
    seq0 = w.rt.center.bus.last_published_seq

    r = await client.get(f"{url}/control", headers=pilot)
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["holder"] == {"name": "pilot-a", "role": "pilot"} and c["mission_id"] == m.id and c["mode"] == "controller"
    assert c["limits"]["max_alt_m"] == 120.0

    # refusals: nothing is sent to the vehicle
    link = w.rt.fleet.links[drone]
    r = await client.post(f"{url}/commands", json={"kind": "fly_to", "lat": inc.lat, "lon": inc.lon, "alt_m": 130}, headers=pilot)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "alt_m"] and "120" in r.json()["detail"][0]["msg"]
    far = geo.destination(inc.lat, inc.lon, 90.0, 12_000.0)
    r = await client.post(f"{url}/commands", json={"kind": "fly_to", "lat": far[0], "lon": far[1]}, headers=pilot)
    assert r.status_code == 409 and "geofence" in r.json()["detail"], r.text
    r = await client.post(f"{url}/commands", json={"kind": "land"}, headers=pilot)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "confirm"]
    r = await client.post(f"{url}/commands", json={"kind": "hold"}, headers=support.auth("pilot_b"))
    assert r.status_code == 403
    # nothing was sent: the controller still holds the drone over the scene in GUIDED, and took no pilot phase
    assert link.telemetry.mode == CopterMode.GUIDED and w.rt.fleet.runner_of(drone).phase.value == "on scene"

    # fly to a point 150 m east at 50 m: acknowledged, and the drone gets there
    target = geo.destination(inc.lat, inc.lon, 90.0, 150.0)
    r = await client.post(f"{url}/commands", json={"kind": "fly_to", "lat": target[0], "lon": target[1], "alt_m": 50}, headers=pilot)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["accepted"] and out["kind"] == "fly_to" and out["by"] == {"name": "pilot-a", "role": "pilot"} and out["acked_in_ms"] > 0
    await w.until(lambda: geo.distance_m(link.telemetry.lat, link.telemetry.lon, *target) < 5
                  and abs((link.telemetry.alt_rel_m or 0) - 50) < 2, 60, "at the pilot's target")
    r = await client.get(f"/api/v1/missions/{m.id}/flight", headers=pilot)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["piloted"] and f["mode"] == "GUIDED" and f["link_up"] and f["return_need_pct"] > 0 and f["return_s"] > 0
    assert f["target"][:2] == pytest.approx(list(target)) and f["scene"] == [inc.lat, inc.lon] and f["track"]
    r = await client.get(f"{url}/control", headers=pilot)
    assert r.json()["mode"] == "pilot"

    # the commander takes over: the pilot's commands are refused naming who holds control
    r = await client.post(f"{url}/control/take", headers=cmd)
    assert r.status_code == 200 and r.json()["holder"] == {"name": "cmd", "role": "commander"}
    assert r.json()["taken_over_from"] == {"name": "pilot-a", "role": "pilot"}
    r = await client.post(f"{url}/commands", json={"kind": "hold"}, headers=pilot)
    assert r.status_code == 409 and "commander cmd" in r.json()["detail"]
    r = await client.post(f"{url}/control/take", headers=pilot)
    assert r.status_code == 409 and "commander cmd" in r.json()["detail"]
    r = await client.post(f"{url}/commands", json={"kind": "orbit", "lat": inc.lat, "lon": inc.lon, "radius_m": 60, "direction": "cw", "speed_ms": 5}, headers=cmd)
    assert r.status_code == 200, r.text
    await w.until(lambda: link.telemetry.mode == CopterMode.CIRCLE, 60, "circling")
    r = await client.post(f"{url}/control/release", headers=cmd)
    assert r.status_code == 200 and r.json()["holder"] == {"name": "pilot-a", "role": "pilot"}

    # back to the pilot: resume gives the flight back to the controller (over the scene again)
    r = await client.post(f"{url}/commands", json={"kind": "resume"}, headers=pilot)
    assert r.status_code == 200, r.text
    await w.until(lambda: geo.distance_m(link.telemetry.lat, link.telemetry.lon, inc.lat, inc.lon) < 20, 60, "back over the scene")

    changed = events(w, seq0, "control.changed")
    assert [e["data"]["holder"] for e in changed] == [{"name": "cmd", "role": "commander"}, {"name": "pilot-a", "role": "pilot"}]
    assert changed[0]["data"]["previous"] == {"name": "pilot-a", "role": "pilot"} and changed[0]["station_id"] == A
    commands = events(w, seq0, "control.command")
    assert [(e["data"]["kind"], e["data"]["ok"]) for e in commands] == [
        ("fly_to", False), ("fly_to", False), ("land", False), ("fly_to", True), ("hold", False), ("orbit", True), ("resume", True),
    ]
    assert commands[-2]["data"]["by"] == {"name": "cmd", "role": "commander"}
    recorded = [(s["step"], s["ok"]) for s in await steps(w, m.id)]
    assert ("pilot: fly to", 0) in recorded and ("pilot: fly to", 1) in recorded and ("pilot: orbit", 1) in recorded
    assert ("control", 1) in recorded and ("pilot in control", 1) in recorded


async def test_land_here_ends_the_mission_where_it_is(world) -> None:
    w, client = world
    inc, m = await on_scene(w, client)
    pilot = support.auth("pilot_a")
    r = await client.post(f"/api/v1/drones/{m.drone_id}/commands", json={"kind": "land", "confirm": True}, headers=pilot)
    assert r.status_code == 200, r.text
    drone = w.rt.center.drones[m.drone_id]
    await w.until(lambda: m.state is MissionState.ABORTED and drone.state is not DroneState.RETURNING, 90, "landed")
    assert m.reason.startswith("landed here by pilot pilot-a at"), m.reason

    def alerts() -> list[str]:
        page = w.rt.center.bus.replay_from_memory(0) or []
        return [e.data["text"] for e in page if e.type == "alert" and e.drone_id == m.drone_id]

    # the state changes in memory first; its events (the recovery alert among them) are published once committed
    await w.until(lambda: any("landed here by pilot pilot-a" in a and "recover it" in a for a in alerts()), 30,
                  "the recovery alert")
    r = await client.post(f"/api/v1/drones/{m.drone_id}/commands", json={"kind": "hold"}, headers=pilot)
    assert r.status_code == 409
