"""Who flies a drone in the air: one control token per drone, and the pilot's commands recorded with who sent them.

The pilot of the station that accepted the mission holds the token from the accept; a commander (or admin) can
take it over, and releasing it gives it back to that pilot. A pilot who releases it leaves it free; the pilot of
the station may take a free token back. Only the holder's commands are sent (409 names who holds it).

Tokens live in memory: after a restart nobody has taken anything over, so the assigned pilot holds it again
(the default for a mission with no record). A record is for one mission: a drone's next mission starts afresh.

Every command, accepted or refused, becomes a step of the mission's timeline and a `control.command` event;
every change of holder a step and a `control.changed` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.auth import Principal, Role
from controller.center.journal import Journal
from controller.center.state import LiveState
from controller.control.commands import STEP_NAMES, CommandRefused, CommandResult, PilotCommand
from controller.domain.entities import Mission
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.domain.states import MissionState
from controller.fleet.reports import PilotFlight
from controller.store import schema
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

M = MissionState
#: Missions whose drone has a control token: from the accept until it is down.
IN_FLIGHT = frozenset({M.ACCEPTED, M.LAUNCHED, M.ON_SCENE, M.RETURNING})
COMMANDERS = frozenset({Role.COMMANDER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Holder:
    name: str
    role: str

    @classmethod
    def of(cls, who: Principal) -> Holder:
        return cls(who.name, who.role.value)

    @classmethod
    def from_actor(cls, actor: str | None) -> Holder | None:
        """The holder an actor string ("pilot:pilot-a") names, if it is a pilot's."""
        if not actor or ":" not in actor:
            return None
        role, name = actor.split(":", 1)
        return cls(name, role) if role == Role.PILOT.value else None

    def is_(self, who: Principal) -> bool:
        return self.name == who.name and self.role == who.role.value

    def json(self) -> dict[str, str]:
        return {"name": self.name, "role": self.role}

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


@dataclass(frozen=True, slots=True)
class ControlToken:
    drone_id: str
    mission_id: str
    holder: Holder | None
    since: datetime | None
    #: The pilot a commander took it over from (they get it back on release).
    taken_over_from: Holder | None = None


class PilotControl:
    def __init__(self, state: LiveState, journal: Journal, clock: Callable[[], datetime]) -> None:
        self.state = state
        self.journal = journal
        self.clock = clock
        #: The flight layer (the fleet service registers itself); None: commands get 409.
        self.flight: PilotFlight | None = None
        self._tokens: dict[str, ControlToken] = {}

    # --- reads ------------------------------------------------------------------------------------

    def authorize(self, drone_id: str, who: Principal) -> None:
        drone = self.state.drones.get(drone_id)
        if drone is None:
            raise NotFound("drone", drone_id)
        if who.role is Role.PILOT and who.station_id != drone.station_id:
            raise Forbidden(f"pilot of station {who.station_id} may not fly station {drone.station_id}'s drones")
        if who.role not in COMMANDERS | {Role.PILOT}:
            raise Forbidden(f"role {who.role.value} may not fly drones")

    def mission_in_flight(self, drone_id: str) -> Mission | None:
        drone = self.state.drones[drone_id]
        m = self.state.mission_of(drone)
        return m if m is not None and m.state in IN_FLIGHT else None

    def token(self, drone_id: str) -> ControlToken | None:
        """The drone's token, or None when it has no mission in flight."""
        m = self.mission_in_flight(drone_id)
        if m is None:
            return None
        tok = self._tokens.get(drone_id)
        if tok is None or tok.mission_id != m.id:
            tok = ControlToken(drone_id, m.id, Holder.from_actor(m.decided_by), m.decided_at)
        return tok

    def _flying(self, drone_id: str) -> tuple[Mission, ControlToken]:
        m = self.mission_in_flight(drone_id)
        tok = self.token(drone_id)
        if m is None or tok is None:
            raise Conflict(f"drone {drone_id} has no mission in flight")
        return m, tok

    # --- take and release ---------------------------------------------------------------------------

    async def take(self, drone_id: str, who: Principal) -> ControlToken:
        self.authorize(drone_id, who)
        m, tok = self._flying(drone_id)
        if tok.holder is not None and tok.holder.is_(who):
            return tok
        if who.role is Role.PILOT and tok.holder is not None:
            raise Conflict(f"control of {drone_id} is held by {tok.holder}; it comes back to you when they release it")
        taken_from = tok.holder if who.role in COMMANDERS and tok.holder is not None and tok.holder.role == "pilot" else tok.taken_over_from
        reason = f"taken over by {Holder.of(who)}" if tok.holder is not None else f"taken by {Holder.of(who)}"
        return await self._change(m, tok, Holder.of(who), taken_from, reason)

    async def release(self, drone_id: str, who: Principal) -> ControlToken:
        self.authorize(drone_id, who)
        m, tok = self._flying(drone_id)
        if tok.holder is None or not tok.holder.is_(who):
            held = f"{tok.holder} holds it" if tok.holder is not None else "nobody holds it"
            raise Conflict(f"you do not hold control of {drone_id}: {held}")
        if who.role in COMMANDERS:
            back = tok.taken_over_from or Holder.from_actor(m.decided_by)
            reason = f"released by {Holder.of(who)}" + (f": back to {back}" if back else "")
            return await self._change(m, tok, back, None, reason)
        return await self._change(m, tok, None, None, f"released by {Holder.of(who)}")

    async def _change(self, m: Mission, tok: ControlToken, holder: Holder | None, taken_from: Holder | None, reason: str) -> ControlToken:
        now = self.clock()
        new = ControlToken(tok.drone_id, m.id, holder, now, taken_from)
        self._tokens[tok.drone_id] = new
        cs = Changeset()
        self._step(cs, m, now, "control", reason, True)
        self._event(cs, "control.changed", m, now, {
            "drone_id": m.drone_id, "mission_id": m.id,
            "holder": holder.json() if holder else None,
            "previous": tok.holder.json() if tok.holder else None,
            "reason": reason,
        })
        await self.journal.commit(cs)
        log.info("%s (%s): control %s", m.drone_id, m.id, reason)
        return new

    # --- commands ----------------------------------------------------------------------------------

    async def command(self, drone_id: str, cmd: PilotCommand, who: Principal) -> tuple[Mission, CommandResult]:
        """Send the holder's command; every outcome (sent, refused, not acknowledged) is recorded with who."""
        self.authorize(drone_id, who)
        m, tok = self._flying(drone_id)
        try:
            if tok.holder is None or not tok.holder.is_(who):
                held = f"{tok.holder} holds it" if tok.holder is not None else "nobody holds it: take it first"
                raise CommandRefused(409, f"you do not hold control of {drone_id}: {held}")
            if self.flight is None:
                raise CommandRefused(409, "no flight layer runs in this controller: nothing can be sent")
            result = await self.flight.pilot_command(drone_id, cmd, f"{who.role.value} {who.name}")
        except CommandRefused as refused:
            await self._record(m, cmd, who, False, refused.detail)
            raise
        await self._record(m, cmd, who, True, result.detail)
        return m, result

    async def _record(self, m: Mission, cmd: PilotCommand, who: Principal, ok: bool, detail: str) -> None:
        now = self.clock()
        cs = Changeset()
        text = f"{cmd.describe()} (by {who.name})" + ("" if ok else f": refused: {detail}")
        self._step(cs, m, now, STEP_NAMES[cmd.kind], text, ok)
        self._event(cs, "control.command", m, now, {
            "drone_id": m.drone_id, "mission_id": m.id, "kind": cmd.kind, "by": Holder.of(who).json(), "ok": ok,
            "detail": detail, "command": cmd.describe(),
        })
        await self.journal.commit(cs)

    def _step(self, cs: Changeset, m: Mission, now: datetime, step: str, detail: str, ok: bool) -> None:
        cs.insert((schema.mission_steps, {"mission_id": m.id, "at": now, "step": step[:40], "ok": int(ok), "detail": detail[:500]}))
        self._event(cs, "mission.step", m, now, {"mission_id": m.id, "drone_id": m.drone_id, "step": step, "ok": ok, "detail": detail})

    def _event(self, cs: Changeset, type: str, m: Mission, now: datetime, data: dict[str, Any]) -> None:
        inc = self.state.incident_any(m.incident_id)
        self.journal.event(
            cs, type, data, now, incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id, mission_id=m.id,
            category=inc.category if inc is not None else None,
        )
