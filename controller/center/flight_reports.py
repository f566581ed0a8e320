"""What the flight layer reports: steps, take-off, arrival, return, landing, failure, search progress, links.

The centre's side of `controller.fleet.reports.FlightReports`. Each report
changes live state like a command does (transitions checked, one commit,
events after it), with "flight" as the actor, and may free drones for the
queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from controller.center.changes import Changes
from controller.center.dispatch_pass import DispatchPass
from controller.center.journal import Journal
from controller.center.reconcile import AT_STATION_M, on_the_ground
from controller.center.reconciler import Reconciler
from controller.center.state import LiveState
from controller.center.tracks import TrackLog
from controller.config import FleetConfig
from controller.domain.alerts import AlertKind, Severity
from controller.domain.entities import Mission
from controller.domain.states import ACTIVE_MISSION, AIRBORNE, DroneState, IncidentStatus, MissionState
from controller.fleet.reports import Reconciled, VehicleReport
from controller.geo import equirectangular_m
from controller.search.plan import SearchPlan
from controller.search.planner import SearchPlanner
from controller.store import rows, schema
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

D, I, M = DroneState, IncidentStatus, MissionState


class FlightReportHandler:
    def __init__(
        self,
        config: FleetConfig,
        state: LiveState,
        journal: Journal,
        changes: Changes,
        passes: DispatchPass,
        reconciler: Reconciler,
        clock: Callable[[], datetime],
        tracks: TrackLog,
    ) -> None:
        self.config = config
        self.tracks = tracks
        self.reconciler = reconciler
        self.state = state
        self.journal = journal
        self.ch = changes
        self.passes = passes
        self.clock = clock
        self.planner = SearchPlanner(config)
        self._stations = [(s.lat, s.lon) for s in config.stations]
        self._unsaved_positions: set[str] = set()

    def _mission(self, mission_id: str) -> Mission | None:
        m = self.state.missions.get(mission_id)
        if m is None:
            log.warning("flight report for unknown mission %s ignored", mission_id)
        return m

    def _category_of(self, m: Mission) -> str | None:
        inc = self.state.incident_any(m.incident_id)
        return inc.category if inc else None

    # --- steps and transitions --------------------------------------------------------------------

    async def flight_step(self, mission_id: str, step: str, detail: str = "", ok: bool = True) -> None:
        m = self._mission(mission_id)
        if m is None:
            return
        now = self.clock()
        cs = Changeset()
        cs.insert((schema.mission_steps, {"mission_id": m.id, "at": now, "step": step, "ok": int(ok), "detail": detail[:500]}))
        self.journal.event(
            cs, "mission.step", {"mission_id": m.id, "drone_id": m.drone_id, "step": step, "ok": ok, "detail": detail},
            now, incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id, mission_id=m.id,
            category=self._category_of(m),
        )
        await self.journal.commit(cs)
        (log.info if ok else log.warning)("%s %s: %s%s", m.id, m.drone_id, step, f" ({detail})" if detail else "")

    async def flight_launched(self, mission_id: str) -> None:
        await self._transition(mission_id, M.LAUNCHED, D.ENROUTE, "airborne")

    async def flight_on_scene(self, mission_id: str, searching: bool = False) -> None:
        await self._transition(mission_id, M.ON_SCENE, D.SEARCHING if searching else D.ON_SCENE, "over the scene")

    async def flight_returning(self, mission_id: str, reason: str, *, alert: AlertKind | None = None) -> None:
        await self._transition(mission_id, M.RETURNING, D.RETURNING, reason, alert=alert)

    async def _transition(
        self, mission_id: str, ms: MissionState, ds: DroneState, reason: str, *, alert: AlertKind | None = None
    ) -> None:
        m = self._mission(mission_id)
        if m is None or m.state is ms:
            return
        drone = self.state.drones[m.drone_id]
        now = self.clock()
        cs = Changeset()
        if m.machine.can(ms):
            self.ch.move(m.machine, ms, now, cs, reason, "flight")
            m.updated_at = now
            self.ch.mission_event(cs, "mission.updated", m, now)
        if drone.state is not ds and drone.machine.can(ds):
            self.ch.move(drone.machine, ds, now, cs, reason, "flight")
            self.ch.drone_event(cs, drone, now)
        inc = self.state.incidents.get(m.incident_id)
        if inc is not None:
            if ms is M.RETURNING:
                inc.excluded_drones.add(m.drone_id)
            self.ch.sync_status(inc, now, cs, f"{m.id} {ms.value}", "flight")
        if alert is not None:
            self.ch.alert(cs, now, alert, f"{drone.id} ({m.id}) returning: {reason}", drone=drone, mission=m, incident=inc)
        self.passes.run(now, cs)
        if cs:
            await self.journal.commit(cs)

    async def flight_landed(self, drone_id: str, reason: str = "landed", *, deliberate: bool = False) -> None:
        drone = self.state.drones[drone_id]
        if drone.state not in AIRBORNE | {D.PREFLIGHT, D.LOST_LINK}:
            return  # already stood down (a failed flight put it in maintenance, say): nothing to land
        now = self.clock()
        cs = Changeset()
        m = self.state.mission_of(drone)
        if m is not None and m.state is M.OFFERED:  # a redirect offered in flight; too late to take it
            self.ch.release_mission(m, now, cs, "the drone landed before its pilot accepted", "flight", resolved=False)
            inc = self.state.incidents.get(m.incident_id)
            if inc is not None:
                self.ch.sync_status(inc, now, cs, f"{m.id}: its drone landed", "flight")
            m = None
        at_station = any(equirectangular_m(drone.lat, drone.lon, la, lo) <= AT_STATION_M for la, lo in self._stations)
        if m is not None and m.state is M.RETURNING:
            # home (or at another station) it completes; anywhere else it ended in a forced landing
            outcome = M.COMPLETED if at_station else M.ABORTED
            away = f"at {drone.lat:.5f}, {drone.lon:.5f}"
            why = reason if at_station else f"{reason} {away}" if deliberate else f"landed away from any station {away}"
            self.ch.move(m.machine, outcome, now, cs, why, "flight")
            m.updated_at = now
            if outcome is M.ABORTED:
                m.reason = why
            self.ch.mission_event(cs, "mission.updated", m, now)
        if not at_station and deliberate:  # a pilot's landing: explained, but someone must still fetch the drone
            self.ch.alert(cs, now, AlertKind.RECOVERY_NEEDED, f"{drone.id} {reason} at {drone.lat:.5f}, {drone.lon:.5f}: "
                          "recover it", severity=Severity.WARNING, drone=drone, mission=m)
        elif not at_station:
            self.ch.alert(cs, now, AlertKind.RECOVERY_NEEDED, f"{drone.id} landed away from any station at {drone.lat:.5f}, "
                          f"{drone.lon:.5f}: recover it", drone=drone, mission=m)
        if drone.state is not D.LANDED and drone.machine.can(D.LANDED):
            self.ch.move(drone.machine, D.LANDED, now, cs, reason, "flight")
        drone.mission_id = None
        ready = on_the_ground(drone.battery_pct, at_station)
        if drone.machine.can(ready):
            self.ch.move(drone.machine, ready, now, cs, "back at a station" if at_station else "landed away from any station: recover it", "flight")
        self.ch.drone_event(cs, drone, now)
        self.state.forget_closed()
        self.passes.run(now, cs)
        await self.journal.commit(cs)
        log.info("%s landed (%s); now %s", drone_id, reason, drone.state.value)

    async def flight_failed(self, mission_id: str, reason: str, *, to_maintenance: bool) -> None:
        m = self._mission(mission_id)
        if m is None or m.state not in ACTIVE_MISSION:
            return
        drone = self.state.drones[m.drone_id]
        now = self.clock()
        cs = Changeset()
        self.ch.move(m.machine, M.ABORTED, now, cs, reason, "flight")
        m.reason, m.updated_at = reason, now
        self.ch.mission_event(cs, "mission.updated", m, now)
        if drone.state in AIRBORNE:
            if drone.state is not D.RETURNING:
                self.ch.move(drone.machine, D.RETURNING, now, cs, reason, "flight")
        else:
            drone.mission_id = None
            target = D.MAINTENANCE if to_maintenance else D.STANDBY
            if drone.state is not target and drone.machine.can(target):
                self.ch.move(drone.machine, target, now, cs, reason, "flight")
        self.ch.drone_event(cs, drone, now)
        self.ch.alert(cs, now, AlertKind.MISSION_FAILED, f"{m.id} on {drone.id} failed: {reason}", drone=drone, mission=m)
        inc = self.state.incidents.get(m.incident_id)
        if inc is not None:
            inc.excluded_drones.add(drone.id)
            self.ch.sync_status(inc, now, cs, f"{m.id} failed", "flight")
        self.passes.run(now, cs)
        await self.journal.commit(cs)

    async def block_incident(self, incident_id: str, reason: str) -> None:
        """No drone can serve this incident (e.g. it lies in a no-fly zone): keep it open but stop offering it."""
        inc = self.state.incidents.get(incident_id)
        if inc is None or inc.blocked_reason:
            return
        now = self.clock()
        cs = Changeset()
        inc.blocked_reason = reason
        inc.updated_at = now
        for m in self.state.incident_missions(inc.id):
            if m.state is M.OFFERED:
                self.ch.release_mission(m, now, cs, f"withdrawn: {reason}", "flight", resolved=False)
        self.ch.sync_status(inc, now, cs, "blocked", "flight")
        self.ch.incident_event(cs, "incident.blocked", inc, now, reason=reason)
        self.ch.alert(cs, now, AlertKind.INCIDENT_BLOCKED, f"{inc.id} cannot be flown: {reason}", incident=inc)
        await self.journal.commit(cs)

    # --- searches --------------------------------------------------------------------------------

    async def search_plan(self, mission_id: str) -> SearchPlan:
        """Give a search mission its share of the area (resuming a departed drone's strip first) and keep it."""
        m = self.state.missions[mission_id]
        inc = self.state.incident_any(m.incident_id)
        assert inc is not None
        drone = self.state.drones[m.drone_id]
        share = self.planner.plan(
            inc, self.state.incident_missions(inc.id), m, self.passes.xy(drone.id, drone.lat, drone.lon),
            self.config.drone_models[drone.model],
        )
        now = self.clock()
        cs = Changeset()
        if share.donor_stops is not None:  # the joiner takes the far half of this mission's remaining sweep
            donor_id, end = share.donor_stops
            donor = self.state.missions[donor_id]
            assert donor.plan is not None
            donor.plan, donor.updated_at = donor.plan.handed_over_at(end), now
            self.ch.mission_event(cs, "mission.plan", donor, now)
        m.plan, m.updated_at = share.plan, now
        self.ch.mission_event(cs, "mission.plan", m, now)
        await self.journal.commit(cs)
        return share.plan

    async def search_progress(self, mission_id: str, done: int) -> None:
        """How many of its waypoints a search mission has flown (a replacement resumes from there)."""
        m = self.state.missions.get(mission_id)
        if m is None or m.plan is None or m.plan.done == done:
            return
        now = self.clock()
        cs = Changeset()
        m.plan = m.plan.flown(done)
        m.updated_at = now
        cs.upsert(rows.mission_row(m))
        # every console draws the sweep's progress live (the strip's waypoints came with `mission.plan`)
        self.journal.event(
            cs, "mission.progress",
            {"mission_id": m.id, "drone_id": m.drone_id, "incident_id": m.incident_id, "done": m.plan.done,
             "waypoints": len(m.plan.waypoints), "stop_at": m.plan.stop_at, "strip": m.plan.strip, "strips": m.plan.strips},
            now, incident_id=m.incident_id, station_id=m.station_id, drone_id=m.drone_id, mission_id=m.id,
            category=self._category_of(m),
        )
        await self.journal.commit(cs)

    # --- links and telemetry ----------------------------------------------------------------------

    async def link_state(self, drone_id: str, up: bool) -> None:
        """Link lost: the drone shows lost_link and commanders are alerted; a pending offer is withdrawn.

        A link coming back is not taken on trust: the flight layer reconciles the drone with what its
        vehicle reports (`Reconciler`), since it may have landed or run its failsafe meanwhile.
        """
        drone = self.state.drones.get(drone_id)
        if drone is None or up:
            return
        now = self.clock()
        cs = Changeset()
        if not up and drone.state is not D.LOST_LINK:
            m = self.state.mission_of(drone)
            if m is not None and m.state is M.OFFERED:
                self.ch.release_mission(m, now, cs, "drone link lost", "flight", resolved=False)
                inc = self.state.incidents.get(m.incident_id)
                if inc is not None:
                    inc.excluded_drones.add(drone.id)
                    self.ch.sync_status(inc, now, cs, "offered drone lost its link", "flight")
            self.ch.move(drone.machine, D.LOST_LINK, now, cs, "no MAVLink message for 3 s", "flight")
            self.ch.drone_event(cs, drone, now)
            self.ch.alert(cs, now, AlertKind.LINK_LOST, f"link lost with {drone.id} ({drone.station_id})", drone=drone,
                          mission=self.state.mission_of(drone))
        else:
            return
        self.passes.run(now, cs)
        await self.journal.commit(cs)

    def telemetry(self, drone_id: str, lat: float, lon: float, alt_m: float, battery_pct: float | None) -> None:
        """Fold a telemetry sample into the drone (in memory; positions are written by the periodic flush)."""
        drone = self.state.drones[drone_id]
        moved = equirectangular_m(lat, lon, drone.lat, drone.lon) > 25 or abs(alt_m - drone.alt_m) > 5
        charged = battery_pct is not None and abs(battery_pct - drone.battery_pct) >= 1.0
        drone.lat, drone.lon, drone.alt_m = lat, lon, alt_m
        self.tracks.add(drone_id, lat, lon, alt_m)
        if battery_pct is not None:
            drone.battery_pct = battery_pct
        if moved or charged:
            self.passes.touch(drone_id)
            self._unsaved_positions.add(drone_id)

    async def reconcile(self, vehicles: Mapping[str, VehicleReport | None], *, why: str) -> Reconciled:
        return await self.reconciler.reconcile(vehicles, why=why)

    def check_vehicle(self, drone_id: str, vehicle: VehicleReport) -> str | None:
        return self.reconciler.check(drone_id, vehicle)

    def live_telemetry(self, drone_id: str, data: dict[str, Any]) -> None:
        drone = self.state.drones[drone_id]
        self.journal.publish_now(
            "drone.telemetry", {"drone_id": drone.id, "state": drone.state.value, **data},
            station_id=drone.station_id, drone_id=drone.id,
        )

    async def flush_positions(self) -> None:
        """Write moved drones' positions and batteries (so a restart starts from where they were)."""
        if not self._unsaved_positions:
            return
        ids, self._unsaved_positions = self._unsaved_positions, set()
        cs = Changeset()
        for drone_id in ids:
            cs.upsert(rows.drone_row(self.state.drones[drone_id]))
        await self.journal.commit(cs)

