"""The invariant in flight: a drone whose state contradicts its vehicle for more than a few seconds is repaired.

The controller's supervision of one flight is cut (its runner detached, as a
crashed runner would leave it) and the vehicle is sent home behind the
controller's back. The continuous check must notice, alert, count it, and
repair drone, mission and incident with the same reconciliation a restart uses.
"""

from __future__ import annotations

import pytest

from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.fleet.copter import CopterMode
from tests.e2e.test_missions import open_near, pilot, steps
from tests.flying import World

pytestmark = [pytest.mark.sitl, pytest.mark.slow]


async def test_a_ghost_on_scene_is_repaired_by_the_continuous_check(world: World) -> None:
    w = world
    inc, m = await open_near(w, 2, north_m=500)
    await w.rt.center.accept(m.id, pilot(m.station_id))
    await w.until(lambda: m.state is MissionState.ON_SCENE, 120, "on scene")
    drone = w.rt.center.drones[m.drone_id]
    runner = w.rt.fleet.runners[m.id]
    runner.detach()  # supervision stops, the state stays "on scene"
    await runner.finished.wait()
    await w.rt.fleet.links[drone.id].set_mode(CopterMode.RTL)  # someone else sends it home

    await w.until(lambda: m.state is not MissionState.ON_SCENE, 30, "the contradiction repaired")
    assert m.state is MissionState.RETURNING and drone.state is DroneState.RETURNING
    assert inc.status is not IncidentStatus.ON_SCENE, "the incident no longer claims a drone over it"
    await w.until(lambda: m.state is MissionState.COMPLETED, 120, "followed down and landed")
    assert drone.state in (DroneState.STANDBY, DroneState.CHARGING, DroneState.OFFERED)
    recorded = await steps(w, m.id)
    assert "reconciled" in recorded and recorded[-1] == "landed"
    stats = w.rt.center.reconciler.stats()
    assert stats["invariant_violations"] >= 1 and stats["repairs"] >= 1

    async def alerts() -> list[str]:
        db = w.rt.db
        return [e.data["text"] for e in await db.read(lambda c: db.events_after(c, 0)) if e.type == "alert"]

    texts = await w.eventually(alerts, lambda t: any("invariant" in x and drone.id in x for x in t), 5, "the alert")
    assert any("RTL" in x for x in texts if "invariant" in x)
