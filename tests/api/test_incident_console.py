"""What the command console reads about incidents: a drawn search area and description at intake, the detail
(caller reports, timeline, queue reasons, each mission's strip with waypoints and progress), live progress
events, and a drone's recent track."""

from __future__ import annotations

import httpx

from controller import geo
from controller.auth import Principal, Role
from controller.runtime import Runtime
from tests import support

CMD = support.auth("commander")


def square(lat: float, lon: float, half_m: float) -> list[list[float]]:
    n, _ = geo.destination(lat, lon, 0.0, half_m)
    s, _ = geo.destination(lat, lon, 180.0, half_m)
    _, e = geo.destination(lat, lon, 90.0, half_m)
    _, w = geo.destination(lat, lon, 270.0, half_m)
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


async def test_a_drawn_search_its_detail_and_its_sweep_progress_live(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rt = runtime
    st = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(st.lat, st.lon, 0.0, 600.0)
    ring = square(lat, lon, 150.0)
    seq = rt.center.bus.last_published_seq
    r = await client.post("/api/v1/incidents", headers=CMD, json={
        "grade": 1, "category": "missing_person", "lat": lat, "lon": lon, "description": "boy, 8, red coat",
        "caller": "mother", "search_polygon": ring, "drones_requested": 1,
    })
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["search_area"] == {"polygon": ring} and inc["description"] == "boy, 8, red coat"
    (created,) = [e for e in rt.center.bus.replay_from_memory(seq) or [] if e.type == "incident.created"]
    assert created.data["search_area"] == {"polygon": ring} and created.data["description"] == "boy, 8, red coat"

    (m,) = rt.center.incident_missions(inc["id"])
    await rt.center.accept(m.id, Principal(Role.PILOT, "pilot-a", m.station_id))
    await rt.center.reports.flight_launched(m.id)
    plan = await rt.center.reports.search_plan(m.id)
    seq = rt.center.bus.last_published_seq
    await rt.center.reports.search_progress(m.id, 3)
    (progress,) = rt.center.bus.replay_from_memory(seq) or []
    assert progress.type == "mission.progress" and progress.incident_id == inc["id"]
    assert progress.data == {
        "mission_id": m.id, "drone_id": m.drone_id, "incident_id": inc["id"], "done": 3,
        "waypoints": len(plan.waypoints), "stop_at": len(plan.waypoints), "strip": plan.strip, "strips": plan.strips,
    }

    r = await client.get(f"/api/v1/incidents/{inc['id']}", headers=CMD)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail["search_area"] == {"polygon": ring}
    assert [(x["caller"], x["text"]) for x in detail["reports"]] == [("mother", "boy, 8, red coat")]
    assert [t["to"] for t in detail["timeline"]][:2] == ["queued", "offered"]
    (mission,) = detail["missions"]
    assert mission["state"] == "launched" and mission["plan"]["done"] == 3
    assert mission["plan"]["waypoints"] == [list(p) for p in plan.waypoints] and len(mission["plan"]["waypoints"]) > 3
    assert (mission["plan"]["strip"], mission["plan"]["strips"]) == (plan.strip, plan.strips)
    assert detail["queue_reasons"] == {}


async def test_a_queued_call_says_why_in_its_detail(client: httpx.AsyncClient, runtime: Runtime) -> None:
    st = runtime.config.station(support.STATION_A)
    lat, lon = geo.destination(st.lat, st.lon, 0.0, 60_000.0)  # beyond every drone's reach
    r = await client.post("/api/v1/incidents", headers=CMD, json={"grade": 2, "category": "fire", "lat": lat, "lon": lon})
    assert r.status_code == 201 and r.json()["status"] == "queued"
    detail = (await client.get(f"/api/v1/incidents/{r.json()['id']}", headers=CMD)).json()
    assert detail["queue_reasons"] and all(isinstance(v, str) and v for v in detail["queue_reasons"].values())


async def test_a_drones_recent_track(client: httpx.AsyncClient, runtime: Runtime) -> None:
    rt = runtime
    drone = f"{support.STATION_A}-D1"
    rt.center.tracks.spacing_s = 0.0  # every sample kept, for the test
    st = rt.config.station(support.STATION_A)
    for i in range(5):
        lat, lon = geo.destination(st.lat, st.lon, 0.0, 100.0 * i)
        rt.center.reports.telemetry(drone, lat, lon, 40.0 + i, 90.0)
    r = await client.get(f"/api/v1/drones/{drone}/track?minutes=5", headers=support.auth("pilot_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["drone_id"] == drone and body["minutes"] == 5
    assert [p[2] for p in body["points"]] == [40.0, 41.0, 42.0, 43.0, 44.0]  # oldest first
    assert all(0 <= p[3] < 60 for p in body["points"]) and body["points"][0][0] < body["points"][-1][0]
    assert (await client.get(f"/api/v1/drones/{drone}/track", headers=support.auth("pilot_b"))).status_code == 403
    assert (await client.get("/api/v1/drones/NOPE-D9/track", headers=CMD)).status_code == 404
    for bad in ("0", "31", "x", "nan"):
        r = await client.get(f"/api/v1/drones/{drone}/track?minutes={bad}", headers=CMD)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "minutes"], bad
    empty = (await client.get(f"/api/v1/drones/{support.STATION_B}-D1/track", headers=CMD)).json()
    assert empty["points"] == []
