"""Missing-person searches flown as AUTO missions: the area shared among k drones, swept, and replanned."""

from __future__ import annotations

import pytest

from controller import geo
from controller.auth import Principal, Role
from controller.center import NewIncident
from controller.domain.states import DroneState, MissionState
from tests.e2e.conftest import World

pytestmark = [pytest.mark.sitl, pytest.mark.slow]
CMD = Principal(Role.COMMANDER, "cmd")


async def open_search(w: World, station_index: int, radius_m: float, drones: int):
    s = w.rt.config.stations[station_index]
    lat, lon = geo.destination(s.lat, s.lon, 90.0, 300.0)
    inc, _ = await w.rt.center.create_incident(
        NewIncident(grade=1, category="missing_person", lat=lat, lon=lon, search_radius_m=radius_m, drones_requested=drones),
        CMD,
    )
    return inc


def offered(w: World, inc):  # noqa: ANN001, ANN201
    return [m for m in w.rt.center.incident_missions(inc.id) if m.state is MissionState.OFFERED]


async def test_two_drones_share_and_sweep_the_area(world: World) -> None:
    w = world
    inc = await open_search(w, 6, radius_m=150.0, drones=2)
    missions = offered(w, inc)
    assert len(missions) == 2, "a search asks for k drones"
    for m in missions:
        await w.rt.center.accept(m.id, Principal(Role.PILOT, "p", m.station_id))
    await w.until(lambda: all(w.rt.center.drones[m.drone_id].state is DroneState.SEARCHING for m in missions), 90, "both searching")
    strips = {m.plan.strip for m in missions}
    assert strips == {0, 1}, "each drone has its own half"
    await w.until(lambda: all(m.state is MissionState.COMPLETED for m in missions), 240, "both swept and landed")
    for m in missions:
        assert m.plan.done == len(m.plan.waypoints)
        db = w.rt.db
        steps = [s["step"] for s in await db.read(lambda c, mid=m.id: db.mission_steps(c, mid))]
        assert "search plan uploaded" in steps and "search pattern complete" in steps and "landed" in steps


async def test_a_drone_leaving_is_replaced_and_the_rest_of_its_strip_resumed(world: World) -> None:
    w = world
    inc = await open_search(w, 7, radius_m=250.0, drones=1)
    (first,) = offered(w, inc)
    await w.rt.center.accept(first.id, Principal(Role.PILOT, "p", first.station_id))
    await w.until(lambda: first.plan is not None and first.plan.done >= 3, 120, "a few sweeps flown")
    await w.faults.drain_battery(first.drone_id, 22)
    await w.until(lambda: first.state is MissionState.RETURNING, 30, "the first drone goes home")
    flown = first.plan.done
    assert 0 < flown < len(first.plan.waypoints)
    await w.until(lambda: len(offered(w, inc)) == 1, 15, "a replacement is offered")
    (second,) = offered(w, inc)
    assert second.drone_id != first.drone_id
    await w.rt.center.accept(second.id, Principal(Role.PILOT, "p", second.station_id))
    await w.until(lambda: second.plan is not None, 60, "the replacement is planned")
    assert second.plan.resumed_from == first.id
    assert second.plan.waypoints == first.plan.waypoints[flown - 1 :]


async def test_a_drone_joining_takes_half_of_the_remaining_sweep(world: World) -> None:
    w = world
    inc = await open_search(w, 8, radius_m=220.0, drones=1)
    (first,) = offered(w, inc)
    await w.rt.center.accept(first.id, Principal(Role.PILOT, "p", first.station_id))
    await w.until(lambda: first.plan is not None and first.plan.done >= 2, 120, "the first drone sweeping")
    await w.rt.center.add_search_drones(inc.id, 1, CMD)
    await w.until(lambda: len(offered(w, inc)) == 1, 15, "the added drone offered")
    (second,) = offered(w, inc)
    await w.rt.center.accept(second.id, Principal(Role.PILOT, "p", second.station_id))
    await w.until(lambda: second.plan is not None, 90, "the joiner planned")
    assert second.plan.split_from == first.id
    cut = first.plan.end
    assert first.plan.done < cut < len(first.plan.waypoints)
    assert second.plan.waypoints == first.plan.waypoints[cut - 1 :]
    await w.until(lambda: first.state in (MissionState.RETURNING, MissionState.COMPLETED), 240, "the first hands over")
    await w.until(lambda: second.state is MissionState.COMPLETED, 300, "the joiner sweeps the rest and lands")
    db = w.rt.db
    steps = [s["step"] for s in await db.read(lambda c: db.mission_steps(c, first.id))]
    assert "search share handed over" in steps and "search pattern complete" not in steps
    assert first.plan.done == cut and second.plan.done == len(second.plan.waypoints)
