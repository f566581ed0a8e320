"""Applies reconciliation verdicts to live state: at start-up, when a link comes back, and when the check finds a ghost.

One code path for all three, so a state repaired by the continuous check is
repaired exactly as a restart would repair it. Every decision goes into the
mission's steps and the incident's timeline; a repair (a state that had to
change) also raises an alert and is counted for /metrics.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from controller.center.changes import Changes
from controller.center.dispatch_pass import DispatchPass
from controller.center.journal import Journal
from controller.center.reconcile import AT_STATION_M, GRACE_S, Fix, Verdict, contradiction, decide
from controller.center.state import LiveState
from controller.config import FleetConfig
from controller.domain.alerts import AlertKind, Severity
from controller.domain.categories import is_search
from controller.domain.entities import Drone, Incident, Mission
from controller.domain.state_machine import Transition
from controller.domain.states import COMMITTED_MISSION, DroneState, MissionState
from controller.fleet.reports import MissionObserver, Reconciled, VehicleReport
from controller.geo import equirectangular_m
from controller.store import rows, schema
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

D, M = DroneState, MissionState


class Reconciler:
    def __init__(
        self,
        config: FleetConfig,
        state: LiveState,
        journal: Journal,
        changes: Changes,
        passes: DispatchPass,
        observers: list[MissionObserver],
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.state = state
        self.journal = journal
        self.ch = changes
        self.passes = passes
        self.observers = observers
        self.clock = clock
        self.monotonic = monotonic
        self._stations = [(s.id, s.lat, s.lon) for s in config.stations]
        #: drone id -> (monotonic time the contradiction was first seen, its text)
        self._suspect: dict[str, tuple[float, str]] = {}
        self.runs = 0
        self.decisions: Counter[str] = Counter()
        self.repairs = 0
        self.violations = 0
        self.last_duration_s = 0.0

    def stats(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "decisions": dict(self.decisions),
            "repairs": self.repairs,
            "invariant_violations": self.violations,
            "suspect_now": len(self._suspect),
            "last_duration_s": round(self.last_duration_s, 4),
        }

    def at_station(self, lat: float, lon: float) -> bool:
        return any(equirectangular_m(lat, lon, slat, slon) <= AT_STATION_M for _, slat, slon in self._stations)

    # --- the continuous check -----------------------------------------------------------------

    def check(self, drone_id: str, vehicle: VehicleReport) -> str | None:
        """Is the drone's state contradicting its vehicle for longer than the grace? Returns the contradiction then."""
        drone = self.state.drones.get(drone_id)
        if drone is None:
            return None
        m = self.state.mission_of(drone)
        why = contradiction(drone.state, m.state if m is not None else None, vehicle)
        if why is None:
            self._suspect.pop(drone_id, None)
            return None
        now = self.monotonic()
        since, _ = self._suspect.setdefault(drone_id, (now, why))
        return why if now - since >= GRACE_S else None

    # --- reconciliation --------------------------------------------------------------------------

    async def reconcile(self, vehicles: Mapping[str, VehicleReport | None], *, why: str) -> Reconciled:
        started = time.perf_counter()
        now = self.clock()
        cs = Changeset()
        resume: list[tuple[Mission, Incident]] = []
        home: list[str] = []
        notes: list[str] = []
        invariant = why.startswith("invariant")
        for drone_id, vehicle in vehicles.items():
            drone = self.state.drones.get(drone_id)
            if drone is None:
                continue
            self._orphans(drone, now, cs)
            m = self.state.mission_of(drone)
            if m is not None and m.state not in COMMITTED_MISSION | {M.OFFERED}:
                m = None  # a finished mission the drone still points at
            inc = self.state.incident_any(m.incident_id) if m is not None else None
            where = vehicle is not None and self.at_station(vehicle.lat, vehicle.lon)
            verdict = decide(
                drone.state, m.state if m is not None else None,
                incident_open=inc is not None and inc.is_open, searching=inc is not None and is_search(inc.category),
                vehicle=vehicle, at_station=where,
            )
            self.decisions[verdict.fix.value] += 1
            changed = self._apply(drone, m, inc, verdict, why, now, cs)
            if invariant:
                self.violations += 1
            if changed:
                self.repairs += 1
                text = f"{drone.id} reconciled ({why}): {verdict.reason}"
                severity = Severity.WARNING if invariant or verdict.mission in (M.ABORTED,) else Severity.INFO
                kind = AlertKind.CONTRADICTION if invariant else AlertKind.RECONCILED
                self.ch.alert(cs, now, kind, text, severity=severity, drone=drone, mission=m)
                notes.append(text)
            self._suspect.pop(drone_id, None)
            if verdict.fix is Fix.RESUME and m is not None and inc is not None:
                resume.append((m, inc))
            elif verdict.fix is Fix.HOME:
                if m is None or m.state not in COMMITTED_MISSION:
                    home.append(drone.id)
                elif inc is not None:
                    resume.append((m, inc))  # its runner follows (or brings) the vehicle down
        self.passes.run(now, cs)
        if cs:
            await self.journal.commit(cs)
        self.runs += 1
        self.last_duration_s = time.perf_counter() - started
        for text in notes:
            (log.warning if invariant else log.info)("%s", text)
        return Reconciled(tuple(resume), tuple(home), tuple(notes))

    def _orphans(self, drone: Drone, now: datetime, cs: Changeset) -> None:
        """Missions that still claim this drone although it serves another: closed (an older controller's leftovers)."""
        for m in list(self.state.missions.values()):
            if m.drone_id == drone.id and m.state in COMMITTED_MISSION and drone.mission_id != m.id:
                reason = f"reconciled: {drone.id} serves {drone.mission_id or 'no mission'}, not this one"
                self.ch.move(m.machine, M.ABORTED, now, cs, reason, "reconcile")
                m.reason, m.updated_at = reason, now
                self.ch.mission_event(cs, "mission.updated", m, now)
                inc = self.state.incidents.get(m.incident_id)
                if inc is not None:
                    self.ch.sync_status(inc, now, cs, reason, "reconcile")
                self.repairs += 1

    def _apply(
        self, drone: Drone, m: Mission | None, inc: Incident | None, verdict: Verdict, why: str, now: datetime, cs: Changeset
    ) -> bool:
        """Move the drone and its mission where the verdict says; record the decision. True if a state changed."""
        reason = f"reconciled ({why}): {verdict.reason}"
        changed = False
        if m is not None:
            cs.insert((schema.mission_steps, {
                "mission_id": m.id, "at": now, "step": "reconciled", "ok": 1, "detail": f"{why}: {verdict.reason}"[:500],
            }))
            if inc is not None and inc.is_open:  # the decision in the incident's timeline, whether or not it moves
                cs.insert(rows.transition_row(Transition("incident", inc.id, inc.status.value, inc.status.value, now,
                                                          f"{m.id}: {reason}", "reconcile")))
            target = verdict.mission
            steps = m.machine.path_to(target) if target is not None else None
            if target is not None and steps is None:
                log.error("%s: no way from %s to %s (%s)", m.id, m.state.value, target.value, reason)
            if steps:  # e.g. accepted -> launched -> returning: it did take off while nobody watched
                for step in steps:
                    self.ch.move(m.machine, step, now, cs, reason, "reconcile")
                m.reason, m.updated_at = (reason if target is M.ABORTED else m.reason), now
                self.ch.mission_event(cs, "mission.updated", m, now)
                changed = True
                if target in (M.ABORTED, M.COMPLETED):
                    self.ch.timers.disarm(m.id)
                    if drone.mission_id == m.id:
                        drone.mission_id = None
                    for observer in self.observers:
                        observer.mission_recalled(m, reason)
            if inc is not None and inc.is_open:
                self.ch.sync_status(inc, now, cs, reason, "reconcile")
        if verdict.drone is not None and verdict.drone is not drone.state:
            steps = drone.machine.path_to(verdict.drone)  # e.g. enroute -> landed -> standby
            if steps:
                for step in steps:
                    self.ch.move(drone.machine, step, now, cs, reason, "reconcile")
                changed = True
            else:
                log.error("%s: no way from %s to %s (%s)", drone.id, drone.state.value, verdict.drone.value, reason)
            if verdict.drone in (D.STANDBY, D.CHARGING, D.MAINTENANCE):
                drone.mission_id = None
        if changed:
            self.ch.drone_event(cs, drone, now)
        self.state.forget_closed()
        return changed
