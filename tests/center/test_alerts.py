"""Alerts raised where things happen, each with its kind, stored with its event, scoped, acknowledged once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.alerts import Alert, AlertKind, Severity
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.domain.states import MissionState
from controller.runtime import Runtime
from tests import support
from tests.center.test_reconciler import at_home, on_scene
from tests.conftest import build_runtime

CMD = Principal(Role.COMMANDER, "cmd")


def pilot(station_id: str) -> Principal:
    return Principal(Role.PILOT, f"p-{station_id}", station_id)


@asynccontextmanager
async def started(tmp_path: Path, **policy: object) -> AsyncIterator[Runtime]:
    cfg = tmp_path / "configs"
    if not cfg.exists():
        support.copy_configs(cfg, stations=support.SMALL_ROSTER, **policy)
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def stored(rt: Runtime, kind: AlertKind | None = None) -> list[Alert]:
    db = rt.db
    found = await db.read(lambda c: db.query_alerts(c, limit=1000))
    return [a for a in found if kind is None or a.kind is kind]


async def eventually(fn: Callable[[], object], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not await fn():  # type: ignore[misc]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def new_call(rt: Runtime, north_m: float = 500.0, **kw: object):
    s = rt.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, north_m)
    spec = {"grade": 2, "category": "traffic_accident", **kw}
    inc, _ = await rt.center.create_incident(NewIncident(lat=lat, lon=lon, **spec), CMD)  # type: ignore[arg-type]
    return inc


async def test_an_offer_about_to_expire_is_alerted_once_and_not_after_it_was_answered(tmp_path: Path) -> None:
    # 10.4 s to answer: the warning (<= 10 s left) is due 0.4 s after the offer
    async with started(tmp_path, offer_timeout_s=10.4) as rt:
        inc = await new_call(rt)
        (m,) = rt.center.incident_missions(inc.id)
        other = await new_call(rt, north_m=-2500.0, category="fire")
        (answered,) = rt.center.incident_missions(other.id)
        await rt.center.accept(answered.id, pilot(answered.station_id))  # answered before its warning
        assert not await stored(rt, AlertKind.OFFER_EXPIRING)
        t0 = time.monotonic()
        await eventually(lambda: stored(rt, AlertKind.OFFER_EXPIRING))
        assert 0.3 <= time.monotonic() - t0 <= 1.5
        await asyncio.sleep(0.6)
        (a,) = await stored(rt, AlertKind.OFFER_EXPIRING)  # once, and none for the answered offer
        assert (a.mission_id, a.station_id, a.drone_id, a.incident_id) == (m.id, m.station_id, m.drone_id, inc.id)
        assert a.severity is Severity.WARNING and "s left to answer" in a.text and a.ack is None
        # the event carries the same shape as GET /alerts, the alert's id is its event's number
        (ev,) = [e for e in rt.center.bus.replay_from_memory(0) or [] if e.type == "alert" and e.seq == a.id]
        assert ev.data["id"] == a.id and ev.data["kind"] == "offer_expiring" and ev.station_id == m.station_id
        assert ev.data["acknowledged"] is None and ev.category == "traffic_accident"

        await rt.center.decline(m.id, pilot(m.station_id), "battery swap")
        (d,) = await stored(rt, AlertKind.OFFER_DECLINED)
        (nxt,) = [x for x in rt.center.incident_missions(inc.id) if x.state is MissionState.OFFERED]
        assert d.mission_id == m.id and "battery swap" in d.text and f"offered to {nxt.drone_id}" in d.text


async def test_a_warned_offer_is_not_warned_again_after_a_restart(tmp_path: Path) -> None:
    async with started(tmp_path, offer_timeout_s=10.3) as rt:
        inc = await new_call(rt)
        await eventually(lambda: stored(rt, AlertKind.OFFER_EXPIRING))
    async with started(tmp_path) as rt:
        (m,) = rt.center.incident_missions(inc.id)
        assert m.state is MissionState.OFFERED
        await asyncio.sleep(0.5)
        assert [a.mission_id for a in await stored(rt, AlertKind.OFFER_EXPIRING)] == [m.id]


async def test_an_expired_offer_and_a_call_nobody_can_take(tmp_path: Path) -> None:
    async with started(tmp_path, offer_timeout_s=0.3) as rt:
        inc = await new_call(rt)
        (m,) = rt.center.incident_missions(inc.id)
        await eventually(lambda: stored(rt, AlertKind.OFFER_EXPIRED))
        (a,) = [a for a in await stored(rt, AlertKind.OFFER_EXPIRED) if a.mission_id == m.id]
        assert "did not answer" in a.text and "no answer within 0.3 s" in a.text and a.station_id == m.station_id

        far = await new_call(rt, north_m=60_000.0, grade=1, category="fire")  # beyond every drone's reach
        (q,) = await stored(rt, AlertKind.QUEUED_NO_DRONE)
        assert q.incident_id == far.id and q.station_id is None and "queued, no drone can take it" in q.text
        assert any(reason in q.text for reason in far.queue_decision.ruled_out_counts), q.text


async def test_flight_alerts_have_their_kinds(runtime: Runtime) -> None:
    rt = runtime
    inc, m = await on_scene(rt)
    await rt.center.reports.flight_returning(m.id, "vehicle switched to RTL by itself", alert=AlertKind.FAILSAFE)
    (f,) = await stored(rt, AlertKind.FAILSAFE)
    assert f.severity is Severity.CRITICAL and f.mission_id == m.id and "RTL" in f.text and f.incident_id == inc.id

    inc2, m2 = await on_scene(rt, north_m=-800.0, category="fire")
    await rt.center.reports.flight_returning(m2.id, "battery reserve: 31% left", alert=AlertKind.BATTERY_LOW)
    (b,) = await stored(rt, AlertKind.BATTERY_LOW)
    assert b.drone_id == m2.drone_id and "31% left" in b.text

    await rt.center.reports.link_state(m2.drone_id, False)
    (link,) = await stored(rt, AlertKind.LINK_LOST)
    assert link.drone_id == m2.drone_id and link.station_id == m2.station_id and link.severity is Severity.CRITICAL


async def test_a_contradiction_found_by_the_continuous_check(runtime: Runtime) -> None:
    rt = runtime
    _, m = await on_scene(rt)
    landed = at_home(rt, m.drone_id)
    await rt.center.reports.reconcile({m.drone_id: landed}, why="invariant: on_scene but the vehicle is on the ground")
    (c,) = await stored(rt, AlertKind.CONTRADICTION)
    assert c.drone_id == m.drone_id and "invariant" in c.text
    assert not await stored(rt, AlertKind.RECONCILED)


async def test_acknowledged_once_by_someone_allowed_to(runtime: Runtime) -> None:
    rt = runtime
    inc = await new_call(rt)
    (m,) = rt.center.incident_missions(inc.id)
    await rt.center.reports.link_state(m.drone_id, False)
    (a,) = await stored(rt, AlertKind.LINK_LOST)
    assert a.station_id == support.STATION_A
    with pytest.raises(Forbidden):
        await rt.center.acknowledge_alert(a.id, pilot(support.STATION_B))
    with pytest.raises(NotFound):
        await rt.center.acknowledge_alert(a.id + 10_000, CMD)
    seq = rt.center.bus.last_published_seq
    done = await rt.center.acknowledge_alert(a.id, pilot(support.STATION_A))
    assert done.ack is not None and done.ack.name == f"p-{support.STATION_A}" and done.ack.role == "pilot"
    (ev,) = rt.center.bus.replay_from_memory(seq) or []
    assert ev.type == "alert.acknowledged" and ev.data["id"] == a.id and ev.station_id == support.STATION_A
    assert ev.data["by"] == {"name": f"p-{support.STATION_A}", "role": "pilot"} and ev.data["at"]
    with pytest.raises(Conflict, match=f"already acknowledged by p-{support.STATION_A}"):
        await rt.center.acknowledge_alert(a.id, CMD)
    (again,) = await stored(rt, AlertKind.LINK_LOST)
    assert again.ack == done.ack  # stored


async def test_two_acknowledgements_at_once_one_wins(runtime: Runtime) -> None:
    rt = runtime
    inc = await new_call(rt)
    (m,) = rt.center.incident_missions(inc.id)
    await rt.center.reports.link_state(m.drone_id, False)
    (a,) = await stored(rt, AlertKind.LINK_LOST)
    results = await asyncio.gather(
        rt.center.acknowledge_alert(a.id, CMD), rt.center.acknowledge_alert(a.id, Principal(Role.ADMIN, "adm")),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
