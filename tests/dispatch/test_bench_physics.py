"""The benchmark's shared physics: whoever chooses a flight, the same battery and feasibility rules apply."""

from __future__ import annotations

from datetime import datetime

from controller.bench import dispatch_stream as ds
from controller.config import load_config
from controller.dispatch.base import Assignment, Decision, Dispatcher
from controller.dispatch.engine import DispatchEngine
from controller.dispatch.returns import StationSite
from controller.domain.states import DroneState
from tests import support

CFG = load_config(support.CONFIGS)
BASES = [ds.Base("A", "SA", "m30t", 0.0, 0.0), ds.Base("B", "SB", "m30t", 40_000.0, 0.0)]
SITES = [StationSite("SA", 0.0, 0.0, frozenset({"m30t"})), StationSite("SB", 40_000.0, 0.0, frozenset({"m30t"}))]
PHYSICS = DispatchEngine(CFG.policy, SITES, (), CFG.drone_models)


class AlwaysA(Dispatcher):
    """Offers drone A for every call, feasible or not (a dispatcher with a looser model than the physics)."""

    def decide(self, incidents, drones, now: datetime, freed=None, must=frozenset()):
        free = {d.id for d in drones if d.state in (DroneState.STANDBY, DroneState.CHARGING)}
        return [
            Decision(i.id, (Assignment("A", "SA", 0.0, 0.0),) if "A" in free and "A" not in i.excluded else ())
            for i in incidents
        ]


def call(cid: str, t: float, x: float, category: str = "traffic_accident") -> ds.Call:
    return ds.Call(cid, t, 2, category, x, 0.0, 1, False)


def test_an_infeasible_choice_is_refused_and_the_call_waits() -> None:
    sim = ds.simulate([call("C1", 0.0, 20_000.0)], BASES, CFG, AlwaysA(), PHYSICS)  # 20 km out: too far for A
    assert sim["refused"] >= 1
    assert sim["outcomes"]["C1"].arrivals == []  # A never flew it


def test_battery_drains_in_flight_and_recharges_on_the_dock() -> None:
    world = ds._World(BASES, CFG, PHYSICS)
    cand = world.candidate(world.drones["A"], 0.0)
    req = ds.IncidentRequest("C1", 2, "traffic_accident", 0.0, 0.0, 3000.0, 0.0, ds.T0)
    f = world.fly(req, cand, 0.0)
    assert f is not None and f.land_at[0] == "SA"
    landed = world.candidate(world.drones["A"], f.land + 1.0)
    assert landed.state is DroneState.CHARGING and 20.0 < landed.battery_pct < 70.0
    later = world.candidate(world.drones["A"], f.land + 3600.0)
    assert later.state is DroneState.STANDBY and later.battery_pct == 100.0


def test_a_second_long_flight_is_refused_until_the_battery_has_charged() -> None:
    world = ds._World(BASES, CFG, PHYSICS)
    req = ds.IncidentRequest("C1", 2, "fire", 0.0, 0.0, 4000.0, 0.0, ds.T0)
    f = world.fly(req, world.candidate(world.drones["A"], 0.0), 0.0)
    assert f is not None
    assert world.fly(req, world.candidate(world.drones["A"], f.land + 1.0), f.land + 1.0) is None
    assert world.fly(req, world.candidate(world.drones["A"], f.land + 3600.0), f.land + 3600.0) is not None
