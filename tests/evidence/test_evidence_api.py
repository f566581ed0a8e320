"""Evidence through the API: listing by incident/mission/drone/time, playback with byte ranges, the track,
exports that verify offline (and fail when altered), roles, and an audit row for every access."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from controller import geo
from controller.api.app import create_app
from controller.evidence import manifest as mf
from controller.runtime import Runtime
from controller.settings import Settings
from tests import support
from tests.evidence.frames import count_frames
from tests.evidence.helpers import record, recording_row, wait_for

A, B = support.STATION_A, support.STATION_B
DRONE_A = f"{A}-D1"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient, dict[str, str]]]:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'test.sqlite3'}", config_dir=cfg, var_dir=tmp_path / "var")
    rt = Runtime.build(settings, tokens=support.registry())
    await rt.start()
    app = create_app(rt, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            s = rt.config.station(A)
            lat, lon = geo.destination(s.lat, s.lon, 0, 400)
            r = await client.post("/api/v1/incidents", json={"grade": 2, "category": "fire", "lat": lat, "lon": lon},
                                  headers=support.auth("commander"))
            inc = r.json()["id"]
            (m,) = rt.center.incident_missions(inc)
            rec = await record(rt, DRONE_A, m.id)
            yield rt, client, {"incident": inc, "mission": m.id, "recording": rec}
    finally:
        await rt.stop()


async def audit(client: httpx.AsyncClient, rec: str | None = None) -> list[dict]:
    r = await client.get("/api/v1/evidence/audit", params={"recording_id": rec} if rec else {}, headers=support.auth("admin"))
    assert r.status_code == 200, r.text
    return r.json()


async def test_list_by_incident_mission_drone_and_time_with_roles(world) -> None:
    rt, client, ids = world
    rec = ids["recording"]
    for params in ({"incident_id": ids["incident"]}, {"mission_id": ids["mission"]}, {"drone_id": DRONE_A},
                   {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z"}, {}):
        r = await client.get("/api/v1/evidence/recordings", params=params, headers=support.auth("commander"))
        assert r.status_code == 200 and [x["id"] for x in r.json()] == [rec], (params, r.text)
    for params in ({"incident_id": "INC-999999"}, {"drone_id": f"{B}-D1"}, {"until": "2020-01-01T00:00:00Z"}):
        r = await client.get("/api/v1/evidence/recordings", params=params, headers=support.auth("commander"))
        assert r.json() == [], params
    (row,) = (await client.get("/api/v1/evidence/recordings", headers=support.auth("admin"))).json()
    assert row["status"] == "complete" and row["segments"] == 3 and row["frames"] == 45 and row["mission_id"] == ids["mission"]
    assert [x["id"] for x in (await client.get("/api/v1/evidence/recordings", headers=support.auth("pilot_a"))).json()] == [rec]
    assert (await client.get("/api/v1/evidence/recordings", headers=support.auth("pilot_b"))).json() == []
    assert (await client.get(f"/api/v1/evidence/recordings/{rec}", headers=support.auth("pilot_b"))).status_code == 403
    assert (await client.get("/api/v1/evidence/recordings", headers=support.auth("search_team"))).status_code == 403
    assert (await client.get("/api/v1/evidence/recordings", headers=support.auth("drone_a1"))).status_code == 403
    rows = await audit(client)
    assert {(r["actor"], r["action"]) for r in rows} >= {("commander:cmd", "list"), ("admin:admin", "list"), ("pilot:pilot-a", "list")}
    assert all(r["at"].endswith("Z") for r in rows)


async def test_playback_segments_with_ranges_and_track(world) -> None:
    rt, client, ids = world
    rec = ids["recording"]
    r = await client.get(f"/api/v1/evidence/recordings/{rec}", headers=support.auth("pilot_a"))
    assert r.status_code == 200, r.text
    detail = r.json()
    assert [s["frames"] for s in detail["segments"]] == [15, 15, 15] and detail["key_id"] == rt.evidence.key.id
    seg = detail["segments"][1]
    whole = await client.get(seg["url"], headers=support.auth("pilot_a"))
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/webm" and len(whole.content) == seg["bytes"]
    part = await client.get(seg["url"], headers={**support.auth("pilot_a"), "Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == whole.content[10:100]
    assert part.headers["content-range"] == f"bytes 10-99/{seg['bytes']}"
    track = (await client.get(f"/api/v1/evidence/recordings/{rec}/track", headers=support.auth("commander"))).json()
    assert track == {"poses": [], "marks": []}  # no fleet in this world: no positions
    rows = await audit(client, rec)
    acts = [(r["actor"], r["action"]) for r in rows]
    assert acts.count(("pilot:pilot-a", "download")) == 1  # the range request of the same segment is not logged again
    assert ("pilot:pilot-a", "view") in acts and ("commander:cmd", "view") in acts
    assert (await client.get(f"/api/v1/evidence/recordings/{rec}/segments/9", headers=support.auth("commander"))).status_code == 404


async def test_export_only_for_commanders_and_admins_and_it_verifies_offline(world, tmp_path: Path) -> None:
    rt, client, ids = world
    rec = ids["recording"]
    for who in ("pilot_a", "search_team", "drone_a1"):
        r = await client.post(f"/api/v1/evidence/recordings/{rec}/export", headers=support.auth(who))
        assert r.status_code == 403, who
    r = await client.post(f"/api/v1/evidence/recordings/{rec}/export", json={"reason": "court case 12"},
                          headers=support.auth("commander"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip", r.text
    package = tmp_path / "package.zip"
    package.write_bytes(r.content)
    report = mf.verify_path(package, pinned=rt.evidence.key.public)
    assert report.ok, report.problems
    with zipfile.ZipFile(package) as zf:
        names = set(zf.namelist())
        timeline = json.loads(zf.read("timeline.json"))
        seg = zf.read(f"recording/{rec}/seg-00001.webm")
    assert {"export.json", "export.sig", "public-key.pem", "timeline.json", f"recording/{rec}/manifest.json",
            f"recording/{rec}/seg-00003.jsonl"} <= names
    assert any(e["type"] == "recording.started" for e in timeline["events"]) and timeline["mission_transitions"]
    (tmp_path / "s.webm").write_bytes(seg)
    assert count_frames(tmp_path / "s.webm") == (15, 15)
    (row,) = [x for x in await audit(client, rec) if x["action"] == "export"]
    assert row["actor"] == "commander:cmd" and "court case 12" in row["detail"] and "sha256" in row["detail"]

    # the same package with one byte of segment 2 flipped: verification names it
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("seg-00002.webm"):
                data = bytearray(data)
                data[len(data) // 2] ^= 0x40
                data = bytes(data)
            dst.writestr(info, data)
    report = mf.verify_path(tampered)
    assert not report.ok and any("seg-00002.webm was altered" in p for p in report.problems), report.problems


async def test_recording_follows_a_missions_feed_and_ends_on_landing(world) -> None:
    rt, client, ids = world
    from controller.video.feed import Feed
    from tests.evidence.frames import frames

    drone = rt.center.view.drones[DRONE_A]
    assert drone.mission_id == ids["mission"]
    feed = Feed(DRONE_A, "visible", "VP8", lambda: None)
    rt.video.hub.feeds[feed.key] = feed
    rt.video._feeds_changed(DRONE_A)  # as the hub does when a publisher's first frame arrives
    await wait_for(lambda: _true(feed.key in rt.evidence.active))
    _, handle, _ = rt.evidence.active[feed.key]
    for f in frames("VP8", 30, capture0=1_790_000_100.0):
        feed.push(f)
    del rt.video.hub.feeds[feed.key]
    feed.close()
    rt.video._feeds_changed(DRONE_A)  # the drone landed: the video service closed its feeds
    await wait_for(lambda: _true(feed.key not in rt.evidence.active))

    async def ended() -> bool:
        row = await recording_row(rt, handle.meta.id)
        return bool(row and row["ended_at"])

    await wait_for(ended)
    row = await recording_row(rt, handle.meta.id)
    assert row["frames"] == 30 and row["mission_id"] == ids["mission"] and row["incident_id"] == ids["incident"]
    assert not feed.listeners


async def _true(value: bool) -> bool:
    return value


async def test_retention_deletes_the_files_and_says_so(world) -> None:
    from datetime import UTC, datetime, timedelta

    rt, client, ids = world
    rec = ids["recording"]
    row = await recording_row(rt, rec)
    assert Path(row["path"]).is_dir()
    assert await rt.evidence.apply_retention(datetime.now(UTC) + timedelta(days=89)) == []
    assert await rt.evidence.apply_retention(datetime.now(UTC) + timedelta(days=91)) == [rec]
    row = await recording_row(rt, rec)
    assert row["status"] == "deleted" and row["deleted_at"] is not None and not Path(row["path"]).exists()
    assert (await client.get("/api/v1/evidence/recordings", headers=support.auth("commander"))).json() == []
    r = await client.get(f"/api/v1/evidence/recordings/{rec}", headers=support.auth("commander"))
    assert r.status_code == 409 and "retention" in r.json()["detail"]


async def test_a_full_disk_raises_one_alert_and_counts_in_metrics(world) -> None:
    import errno

    rt, client, ids = world

    def full(path: Path):  # noqa: ANN202  (the file-system boundary: every open fails as on a full disk)
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    rt.evidence.recorder.opener = full
    rec = await record(rt, DRONE_A, ids["mission"], n=45)
    row = await recording_row(rt, rec)
    assert row["status"] == "complete_with_gaps" and row["frames"] == 0 and row["write_errors"] >= 1

    async def alerted() -> list:
        r = await client.get("/api/v1/alerts", params={"kind": "recording_error"}, headers=support.auth("pilot_a"))
        return r.json()

    (alert,) = await wait_for(alerted)
    assert alert["drone_id"] == DRONE_A and alert["mission_id"] == ids["mission"] and "No space left" in alert["text"]
    m = (await client.get("/api/v1/metrics", headers=support.auth("admin"))).json()["evidence"]
    assert m["write_errors"] >= 1 and m["frames_lost_to_write_errors"] > 0 and m["alerts_raised"] == 1


async def test_a_recording_left_open_by_a_stop_is_marked_interrupted_at_start(world) -> None:
    from controller.store import schema
    from controller.store.writer import Changeset

    rt, client, ids = world
    row = await recording_row(rt, ids["recording"])
    cs = Changeset()
    cs.upsert((schema.recordings, {**row, "id": "REC-OPEN", "ended_at": None, "status": "recording"}))
    await rt.center.journal.commit(cs)
    await rt.evidence._close_interrupted()
    left = await recording_row(rt, "REC-OPEN")
    assert left["status"] == "interrupted" and left["ended_at"] is not None


async def test_the_sidecar_carries_the_gimbal_pitch_the_vehicle_reports(world) -> None:
    """A position report from the fleet's link (Telemetry folded from wire bytes, as DroneLink folds them):
    the sidecar and the track have the mount's pitch from ArduCopter's GIMBAL_DEVICE_ATTITUDE_STATUS."""
    import math

    from pymavlink.dialects.v20 import ardupilotmega as mavlink2

    from controller.fleet.telemetry import Telemetry
    from controller.video.feed import Feed
    from tests.evidence.frames import frames

    rt, client, ids = world
    sink = type("Sink", (), {"data": bytearray(), "write": lambda self, b: self.data.extend(b)})()
    autopilot = mavlink2.MAVLink(sink, srcSystem=1, srcComponent=1)
    half, nan = math.radians(-45.0) / 2, float("nan")
    autopilot.gimbal_device_attitude_status_send(0, 0, 1000, 44, [math.cos(half), 0, math.sin(half), 0], nan, nan, nan, 0, nan, nan, 1)
    (msg,) = mavlink2.MAVLink(None).parse_buffer(bytes(sink.data))
    t = Telemetry(lat=32.06, lon=118.79, alt_rel_m=40.0, alt_amsl_m=50.0, heading_deg=90.0)
    t.apply(msg, 0.0)
    assert t.gimbal_pitch_deg == -45.0

    feed = Feed(DRONE_A, "visible", "VP8", lambda: None)
    handle = rt.evidence.attach(feed, mission_id=ids["mission"])
    for i, f in enumerate(frames("VP8", 20, capture0=1_790_000_100.0)):
        feed.push(f)
        if i == 5:
            rt.evidence.position(DRONE_A, t)
    rt.evidence.detach(DRONE_A, "visible")

    async def ended() -> bool:
        row = await recording_row(rt, handle.meta.id)
        return row is not None and row["ended_at"] is not None

    await wait_for(ended)
    sidecars = sorted((rt.evidence.root / handle.meta.id).glob("*.jsonl"))
    poses = [json.loads(line) for p in sidecars for line in p.read_text().splitlines() if '"pose"' in line]
    # (a segment opened later starts with the last pose again)
    assert poses and {(p["gimbal_pitch_deg"], p["heading_deg"], p["alt_m"]) for p in poses} == {(-45.0, 90.0, 40.0)}
    track = (await client.get(f"/api/v1/evidence/recordings/{handle.meta.id}/track", headers=support.auth("commander"))).json()
    assert track["poses"] and {p["gimbal_pitch_deg"] for p in track["poses"]} == {-45.0}
