"""The dispatch pass stays incremental: a queue of calls no drone can reach costs nothing per unrelated command."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.dispatch import Decision, Dispatcher, DroneCandidate, IncidentRequest
from controller.domain.states import IncidentStatus
from controller.runtime import Runtime
from tests import support

CMD = Principal(Role.COMMANDER, "cmd")
ADMIN = Principal(Role.ADMIN, "admin")


class Spy(Dispatcher):
    """Records what each pass asked the real engine to decide."""

    def __init__(self, inner: Dispatcher) -> None:
        self.inner = inner
        self.calls: list[tuple[int, frozenset[str] | None]] = []

    def decide(self, incidents: Sequence[IncidentRequest], drones: Sequence[DroneCandidate], now: datetime,
               freed: frozenset[str] | None = None, must: frozenset[str] = frozenset()) -> list[Decision]:
        self.calls.append((len(incidents), freed))
        return self.inner.decide(incidents, drones, now, freed, must)


def spy_on(rt: Runtime) -> Spy:
    spy = Spy(rt.center.passes.dispatcher)
    rt.center.passes.dispatcher = spy
    return spy


async def far_calls(rt: Runtime, n: int) -> list:
    out = []
    for i in range(n):  # 100 km east: beyond every drone
        lat, lon = geo.destination(32.05, 119.85, 90.0, 1000.0 * i)
        inc, merged = await rt.center.create_incident(NewIncident(grade=4, category="other", lat=lat, lon=lon), CMD)
        assert not merged and inc.status is IncidentStatus.QUEUED
        out.append(inc)
    return out


async def test_cancelling_a_queued_call_runs_no_pass(runtime: Runtime) -> None:
    queued = await far_calls(runtime, 30)
    spy = spy_on(runtime)
    for inc in queued[:10]:
        await runtime.center.close_incident(inc.id, CMD, resolved=False, reason="test")
    assert spy.calls == [], "nothing was freed and nothing lost a drone: nothing to decide"
    await runtime.center.sweep()
    assert spy.calls == [], "no drone changed since the last sweep"


async def test_a_freed_drone_is_tried_against_the_queue_and_the_sweep_tries_changed_drones(runtime: Runtime) -> None:
    await far_calls(runtime, 20)
    spy = spy_on(runtime)
    drone = next(iter(runtime.center.drones))
    await runtime.center.set_maintenance(drone, True, ADMIN)
    assert spy.calls == [], "a drone going to maintenance frees nothing"
    await runtime.center.set_maintenance(drone, False, ADMIN)
    (n, freed), = spy.calls
    assert freed == frozenset({drone}) and n == 20, "the freed drone is tried against every waiting call"
    spy.calls.clear()
    runtime.center.drones[drone].battery_pct = 99.0  # charging: no command says so
    runtime.center.touch(drone)
    await runtime.center.sweep()
    assert [f for _, f in spy.calls] == [frozenset({drone})]


async def test_a_new_call_is_decided_alone(runtime: Runtime) -> None:
    await far_calls(runtime, 20)
    spy = spy_on(runtime)
    s = runtime.config.station(support.STATION_A)
    lat, lon = geo.destination(s.lat, s.lon, 0.0, 500.0)
    inc, _ = await runtime.center.create_incident(NewIncident(grade=2, category="fire", lat=lat, lon=lon), CMD)
    assert inc.status is IncidentStatus.OFFERED
    assert spy.calls[0] == (1, None)
