"""SIGKILL the controller with open incidents, pending offers and accepted missions; restart; all is back.

This runs the real `dronefleet serve` process, so it exercises start-up loading,
the writer's durability and the offer timers exactly as in production.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.support import auth

pytestmark = pytest.mark.slow
OFFER_TIMEOUT_S = 12


class Controller:
    def __init__(self, tmp: Path, config_dir: Path, extra: list[str] | None = None) -> None:
        self.tmp = tmp
        self.config_dir = config_dir
        self.extra = extra or ["--fleet", "none"]
        self.port = support.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = tmp / "controller.log"

    def start(self) -> None:
        env = dict(os.environ, DRONEFLEET_TOKENS=json.dumps({"tokens": support.TOKENS}))
        cmd = [
            sys.executable, "-m", "controller.cli", "serve", "--port", str(self.port),
            "--var-dir", str(self.tmp / "var"), "--config-dir", str(self.config_dir), *self.extra,
        ]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(self.url + "/health", timeout=1).json()["status"] == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("controller did not start:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def get(self, path: str, who: str = "commander") -> object:
        r = httpx.get(self.url + path, headers=auth(who), timeout=10)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict | None = None, who: str = "commander") -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=auth(who), timeout=10)


def near(stations: list[dict], station_id: str, dlat: float = 0.003) -> tuple[float, float]:
    s = next(s for s in stations if s["id"] == station_id)
    return s["lat"] + dlat, s["lon"]


def test_sigkill_and_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    cfg = support.copy_configs(tmp_path / "configs", offer_timeout_s=OFFER_TIMEOUT_S)
    ctl = Controller(tmp_path, cfg)
    ctl.start()
    try:
        stations = ctl.get("/api/v1/stations")
        # 1. an offer left pending at station A
        lat, lon = near(stations, support.STATION_A)
        pending = ctl.post("/api/v1/incidents", {"grade": 1, "category": "violent_crime", "lat": lat, "lon": lon}).json()
        # 2. a mission accepted by station B's pilot
        lat, lon = near(stations, support.STATION_B)
        accepted = ctl.post("/api/v1/incidents", {"grade": 2, "category": "traffic_accident", "lat": lat, "lon": lon}).json()
        (m_b,) = ctl.get(f"/api/v1/missions?incident={accepted['id']}")
        assert ctl.post(f"/api/v1/missions/{m_b['id']}/accept", who="pilot_b").status_code == 200
        # 3. a repeat call merged into the pending incident
        lat, lon = near(stations, support.STATION_A, 0.0031)
        merged = ctl.post("/api/v1/incidents", {"grade": 1, "category": "violent_crime", "lat": lat, "lon": lon})
        assert merged.status_code == 200 and merged.json()["id"] == pending["id"]
        # 4. an incident out of every drone's range, waiting in the queue (100 km east of the city)
        queued = ctl.post("/api/v1/incidents", {"grade": 3, "category": "other", "lat": 32.05, "lon": 119.85}).json()
        assert ctl.get(f"/api/v1/incidents/{queued['id']}")["status"] == "queued"

        before_incidents = ctl.get("/api/v1/incidents?limit=1000")
        before_missions = ctl.get("/api/v1/missions?limit=1000")
        before_drones = ctl.get("/api/v1/drones")
        before_health = ctl.get("/health")
        (offer,) = [m for m in before_missions if m["state"] == "offered"]
        ctl.kill()

        ctl.start()
        after_incidents = ctl.get("/api/v1/incidents?limit=1000")
        after_missions = ctl.get("/api/v1/missions?limit=1000")
        assert after_incidents == before_incidents
        strip = lambda ms: [{k: v for k, v in m.items() if k != "remaining_s"} for m in ms]  # noqa: E731
        assert strip(after_missions) == strip(before_missions)
        assert ctl.get("/api/v1/drones") == before_drones
        health = ctl.get("/health")
        assert health["open_incidents"] == before_health["open_incidents"] == 3
        # nothing was added by the restart; only the pending offer's warning (10 s before its deadline) may have
        # come due meanwhile, once (checked again on disk below)
        # (alerts read after /health: every event up to its last_event_seq is among them)
        since = [a for a in ctl.get("/api/v1/alerts") if before_health["last_event_seq"] < a["id"] <= health["last_event_seq"]]
        assert all((a["kind"], a["mission_id"]) == ("offer_expiring", offer["id"]) for a in since), since
        assert health["last_event_seq"] == before_health["last_event_seq"] + len(since)

        # The pending offer kept its deadline: its remaining time shrank by the downtime, it was not reset.
        now_offer = next(m for m in after_missions if m["id"] == offer["id"])
        assert now_offer["state"] == "offered" and now_offer["expires_at"] == offer["expires_at"]
        assert now_offer["remaining_s"] < offer["remaining_s"]

        # ... and it expires at that deadline, going to the next drone, exactly once.
        expires = datetime.fromisoformat(offer["expires_at"].replace("Z", "+00:00"))
        time.sleep(max(0.0, expires.timestamp() - time.time()) + 1.5)
        missions = ctl.get(f"/api/v1/missions?incident={pending['id']}")
        states = sorted(m["state"] for m in missions)
        assert states == ["expired", "offered"], states
        assert len({m["drone_id"] for m in missions}) == 2

        # The accepted mission is still accepted and the queued incident still waits.
        assert ctl.get(f"/api/v1/missions/{m_b['id']}")["state"] == "accepted"
        assert ctl.get(f"/api/v1/incidents/{queued['id']}")["status"] == "queued"
        assert ctl.get(f"/api/v1/incidents/{pending['id']}")["callers"] == 2
    finally:
        ctl.stop()

    # Nothing duplicated on disk: event numbers are contiguous, one report per call.
    db = sqlite3.connect(tmp_path / "var" / "dronefleet.sqlite3")
    seqs = [r[0] for r in db.execute("select seq from events order by seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert db.execute("select count(*) from caller_reports").fetchone()[0] == 4
    assert db.execute("select count(*) from incidents").fetchone()[0] == 3
    warned = "select count(*) from alerts where kind = 'offer_expiring' and mission_id = ?"
    assert db.execute(warned, (offer["id"],)).fetchone()[0] == 1  # warned once, across the restart


def test_sigkill_with_missions_in_flight(tmp_path: Path) -> None:
    """The drones keep flying while the controller is down; after the restart it resumes supervising them."""
    import json as _json

    import yaml

    from sitl.control import request

    speedup = 5
    cfg = support.copy_configs(tmp_path / "configs", transit_altitude_m=40, offer_timeout_s=300)
    flight = yaml.safe_load((cfg / "flight.yaml").read_text())
    flight["failsafe"]["gcs_timeout_s"] = 60  # simulated seconds: longer than the controller's restart
    flight["on_scene"] = "hold"
    (cfg / "flight.yaml").write_text(yaml.safe_dump(flight))
    control_port = support.free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "sim", "--stations", str(cfg / "stations.json"),
         "--drone-models", str(cfg / "drone_models.yaml"), "--drones", "4", "--speedup", str(speedup), "--warm",
         "--control-port", str(control_port)],
        stdout=subprocess.PIPE, stderr=(tmp_path / "sim.log").open("wb"),
    )
    assert _json.loads(sim.stdout.readline())["ready"]
    ctl = Controller(tmp_path, cfg, ["--fleet", "external", "--drones", "4"])
    try:
        ctl.start()
        stations = ctl.get("/api/v1/stations")
        flying = []
        for station, who in ((support.STATION_A, "pilot_a"), (support.STATION_B, "pilot_b")):
            lat, lon = near(stations, station, 0.004)
            inc = ctl.post("/api/v1/incidents", {"grade": 1, "category": "traffic_accident", "lat": lat, "lon": lon}).json()
            (m,) = ctl.get(f"/api/v1/missions?incident={inc['id']}")
            assert ctl.post(f"/api/v1/missions/{m['id']}/accept", who=who).status_code == 200
            flying.append((inc, m))
        deadline = time.monotonic() + 60
        while not all(ctl.get(f"/api/v1/missions/{m['id']}")["state"] == "on_scene" for _, m in flying):
            assert time.monotonic() < deadline, "missions did not reach the scene"
            time.sleep(0.5)
        before = {m["id"]: ctl.get(f"/api/v1/missions/{m['id']}")["state"] for _, m in flying}
        ctl.kill()

        # The drones hold over their scenes while nobody supervises them.
        import asyncio

        truths = [asyncio.run(request(control_port, {"cmd": "truth", "instance": i}))["truth"] for i in (0, 1)]
        assert all(t["flying"] and t["mode"] == 4 for t in truths)

        ctl.start()
        after = {mid: ctl.get(f"/api/v1/missions/{mid}") for mid in before}
        assert {mid: m["state"] for mid, m in after.items()} == before == {mid: "on_scene" for mid in before}
        for mid in before:
            steps = [s["step"] for s in after[mid]["steps"]]
            assert steps.count("takeoff") == 1, "the flight was resumed, not started again"
        deadline = time.monotonic() + 20
        while not all("resumed" in [s["step"] for s in ctl.get(f"/api/v1/missions/{mid}")["steps"]] for mid in before):
            assert time.monotonic() < deadline, "runners did not resume"
            time.sleep(0.5)
        drones = {d["id"]: d for d in ctl.get("/api/v1/drones")}
        assert all(drones[m["drone_id"]]["state"] == "on_scene" for _, m in flying)

        # And it still brings them home afterwards.
        for inc, _ in flying:
            assert ctl.post(f"/api/v1/incidents/{inc['id']}/resolve", {"reason": "done"}).status_code == 200
        deadline = time.monotonic() + 120
        while not all(ctl.get(f"/api/v1/missions/{mid}")["state"] == "completed" for mid in before):
            assert time.monotonic() < deadline, "drones did not land after the restart"
            time.sleep(0.5)
    finally:
        ctl.stop()
        sim.terminate()
        sim.wait(10)
