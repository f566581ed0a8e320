"""Restarts leave no ghosts (issue: a SIGTERM with a mission on scene and a drone flying home).

Real processes: the built-in simulator in its own process keeps flying while a
real `dronefleet serve` is stopped and started again, on SQLite and on a real
PostgreSQL server. While the controller is down the vehicles' ground-station
failsafe (set by the controller on connect) takes them home and lands them, and
one drone's link is cut; after the restart the controller must show the fleet
as it really is.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sitl.control import request
from sitl.fleet import free_base_port
from tests import support
from tests.persistence.test_kill_restart import Controller, near

pytestmark = pytest.mark.slow
SPEEDUP = 5
DRONES = 4
AIRBORNE = {"enroute", "on_scene", "searching", "returning"}


def configs(tmp_path: Path, base_port: int) -> Path:
    cfg = support.copy_configs(tmp_path / "configs", transit_altitude_m=40, offer_timeout_s=300)
    flight = yaml.safe_load((cfg / "flight.yaml").read_text())
    flight["failsafe"]["gcs_timeout_s"] = 5 * SPEEDUP  # 5 s of wall time: heartbeats are 1 Hz wall; the drones go home soon after the controller stops
    flight["on_scene"] = "hold"
    flight["links"]["base_port"] = base_port
    (cfg / "flight.yaml").write_text(yaml.safe_dump(flight))
    return cfg


def start_sim(tmp_path: Path, cfg: Path, base_port: int, control_port: int) -> subprocess.Popen:
    sim = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "sim", "--stations", str(cfg / "stations.json"),
         "--drone-models", str(cfg / "drone_models.yaml"), "--drones", str(DRONES), "--speedup", str(SPEEDUP), "--warm",
         "--control-port", str(control_port), "--base-port", str(base_port)],
        stdout=subprocess.PIPE, stderr=(tmp_path / "sim.log").open("wb"),
    )
    assert json.loads(sim.stdout.readline())["ready"]
    return sim


def truth(control_port: int, instance: int) -> dict:
    return asyncio.run(request(control_port, {"cmd": "truth", "instance": instance}))["truth"]


def wait(pred, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> list[str]:
    """Extra `serve` arguments: the default SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return []
    return ["--database-url", request.getfixturevalue("postgres").create_database("restart")]


def test_sigterm_restart_shows_the_fleet_as_it_really_is(tmp_path: Path, database: list[str]) -> None:
    base_port, control_port = free_base_port(DRONES), support.free_port()
    cfg = configs(tmp_path, base_port)
    sim = start_sim(tmp_path, cfg, base_port, control_port)
    ctl = Controller(tmp_path, cfg, ["--fleet", "external", "--drones", str(DRONES), *database])
    try:
        ctl.start()
        stations = ctl.get("/api/v1/stations")
        roster = [d for s in stations for d in s["drones"]]
        # A: a traffic accident with its drone on scene; B: a fire resolved while its drone was over it (flying home)
        pairs = []
        for station, who, category in ((support.STATION_A, "pilot_a", "traffic_accident"), (support.STATION_B, "pilot_b", "fire")):
            lat, lon = near(stations, station, 0.004)
            inc = ctl.post("/api/v1/incidents", {"grade": 2, "category": category, "lat": lat, "lon": lon}).json()
            (m,) = ctl.get(f"/api/v1/missions?incident={inc['id']}")
            assert ctl.post(f"/api/v1/missions/{m['id']}/accept", who=who).status_code == 200
            pairs.append((inc, m))
        (inc_a, m_a), (inc_b, m_b) = pairs
        wait(lambda: all(ctl.get(f"/api/v1/missions/{m['id']}")["state"] == "on_scene" for _, m in pairs), 90, "on scene")
        assert ctl.post(f"/api/v1/incidents/{inc_b['id']}/resolve", {"reason": "fire out"}).status_code == 200
        assert ctl.get(f"/api/v1/missions/{m_b['id']}")["state"] == "returning"

        # SIGTERM: a clean stop that touches no vehicle and marks nothing done
        assert ctl.proc is not None
        ctl.proc.send_signal(signal.SIGTERM)
        # uvicorn shuts the application down, then re-raises the signal (systemd counts that as a clean exit)
        assert ctl.proc.wait(20) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in ctl.log.read_text()
        inst_a, inst_b = roster.index(m_a["drone_id"]), roster.index(m_b["drone_id"])
        assert truth(control_port, inst_a)["flying"], "the drone keeps flying after the controller stopped"
        # a third drone's link is cut for longer than the restart takes: it must show lost_link, not a guess
        inst_c = next(i for i in range(DRONES) if i not in (inst_a, inst_b))
        asyncio.run(request(control_port, {"cmd": "cut_link", "instance": inst_c, "seconds": 60}))
        # the ground-station failsafe brings A and B home and lands them while nobody supervises them
        wait(lambda: not any(truth(control_port, i)["flying"] or truth(control_port, i)["armed"] for i in (inst_a, inst_b)),
             120, "the failsafe to land both drones")

        ctl.start()
        wait(lambda: ctl.get("/api/v1/missions/" + m_a["id"])["state"] != "on_scene", 30, "reconciliation")
        mission_a = ctl.get(f"/api/v1/missions/{m_a['id']}")
        assert mission_a["state"] == "aborted" and "landed while nobody supervised it" in mission_a["reason"]
        assert "reconciled" in [s["step"] for s in mission_a["steps"]]
        assert ctl.get(f"/api/v1/missions/{m_b['id']}")["state"] == "completed"
        incident_a = ctl.get(f"/api/v1/incidents/{inc_a['id']}")
        assert incident_a["status"] in ("queued", "offered"), "the incident is dispatched again, not left on scene"
        assert any(t["actor"] == "reconcile" for t in incident_a["timeline"])
        drones = {d["id"]: d for d in ctl.get("/api/v1/drones")}
        assert not any(d["state"] in AIRBORNE for d in drones.values()), {d["id"]: d["state"] for d in drones.values()}
        assert drones[roster[inst_c]]["state"] == "lost_link"
        assert drones[m_b["drone_id"]]["state"] in ("standby", "charging")
        metrics = ctl.get("/api/v1/metrics")
        assert metrics["reconcile"]["runs"] >= 1 and metrics["fleet"]["reconcile_startup_s"] is not None

        # a new call right by station B goes to station B's drone, not to one far away
        lat, lon = near(stations, support.STATION_B, 0.001)
        fire = ctl.post("/api/v1/incidents", {"grade": 2, "category": "fire", "lat": lat, "lon": lon}).json()
        assert fire["id"] != inc_b["id"]
        (offer,) = ctl.get(f"/api/v1/missions?incident={fire['id']}")
        assert offer["station_id"] == support.STATION_B

        # the cut link comes back: the drone is reconciled from what it reports, on the ground at its station
        asyncio.run(request(control_port, {"cmd": "restore_link", "instance": inst_c}))
        wait(lambda: ctl.get(f"/api/v1/drones/{roster[inst_c]}")["state"] in ("standby", "charging"), 30, "link back")
    finally:
        ctl.stop()
        sim.terminate()
        sim.wait(10)
