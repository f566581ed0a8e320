"""`offer.ended`: the pilot whose offer expired or was declined learns why and where the call went next."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controller.runtime import Runtime
from tests import support
from tests.conftest import build_runtime
from tests.test_dispatch_center import new_incident, offered, pilot


def ended(rt: Runtime) -> list:
    return [e for e in rt.center.bus.replay_from_memory(0) or [] if e.type == "offer.ended"]


async def test_a_declined_offer_says_which_drone_and_station_got_the_call(runtime: Runtime) -> None:
    inc, _ = await new_incident(runtime)
    (first,) = offered(runtime, inc.id)
    await runtime.center.decline(first.id, pilot(first.station_id), "battery swap")
    (second,) = offered(runtime, inc.id)
    await asyncio.sleep(0.05)  # published after the commit
    (ev,) = ended(runtime)
    assert ev.station_id == first.station_id and ev.mission_id == first.id  # the first pilot's stream gets it
    assert ev.data["outcome"] == "declined" and ev.data["reason"] == "battery swap"
    assert ev.data["next"] == {"mission_id": second.id, "drone_id": second.drone_id, "station_id": second.station_id}
    assert ev.data["queued"] is False


async def test_an_expired_offer_says_where_the_call_went(tmp_path: Path) -> None:
    cfg = support.copy_configs(tmp_path / "configs", stations=support.SMALL_ROSTER, offer_timeout_s=0.3)
    rt = build_runtime(tmp_path, cfg)
    await rt.start()
    try:
        inc, _ = await new_incident(rt)
        (first,) = offered(rt, inc.id)
        await asyncio.sleep(0.5)
        (second,) = offered(rt, inc.id)
        evs = [e for e in ended(rt) if e.mission_id == first.id]
        assert len(evs) == 1
        data = evs[0].data
        assert data["outcome"] == "expired" and data["reason"] == "no answer within 0.3 s"
        assert data["next"]["drone_id"] == second.drone_id != first.drone_id
    finally:
        await rt.stop()
