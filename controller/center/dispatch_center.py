"""The dispatch centre: intake, duplicate merge, offers to pilots, accept/decline/expiry, aborts, flight reports.

Assembled from parts with one job each (see the package docstring); this class
owns their life cycle and is the one object the rest of the controller talks
to: commands (`create_incident`, `accept`, ...), `reports` for the flight
layer (`controller.fleet.reports.FlightReports`), and a read-only `view` of
live state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table

from controller.auth import Principal
from controller.center.alerts import AlertDesk, stamp_alert
from controller.center.changes import Changes, Dirty
from controller.center.commands import Commands, NewIncident
from controller.center.control import PilotControl
from controller.center.dispatch_pass import DispatchPass
from controller.center.flight_reports import FlightReportHandler
from controller.center.journal import Journal, ServiceUnavailable
from controller.center.offers import OfferTimers
from controller.center.reconciler import Reconciler
from controller.center.state import LiveState
from controller.center.tracks import TrackLog
from controller.center.view import LiveView
from controller.config import FleetConfig
from controller.dispatch import Dispatcher
from controller.domain.alerts import Alert, NewAlert
from controller.domain.entities import Drone, Incident, Mission
from controller.domain.state_machine import Transition
from controller.domain.states import ACTIVE_MISSION, RELEASED_MISSION, DroneState, IncidentStatus, MissionState
from controller.events import EventBus
from controller.fleet.reports import MissionObserver
from controller.store import rows
from controller.store.database import Database
from controller.store.writer import Changeset

log = logging.getLogger(__name__)

D, I, M = DroneState, IncidentStatus, MissionState
#: How often waiting incidents are re-evaluated even when no command freed a drone.
SWEEP_INTERVAL_S = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class DispatchCenter:
    def __init__(
        self,
        config: FleetConfig,
        db: Database,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.dispatcher = dispatcher
        self.clock = clock
        #: Told when a mission must start flying or stop (the fleet service registers itself).
        self.observers: list[MissionObserver] = []
        self.state = LiveState()
        self.view = LiveView(self.state, config, clock)
        self.journal = Journal(db, clock, on_fatal)
        dirty = Dirty()
        self.timers = OfferTimers(clock, self._expire, self._warn)
        changes = Changes(self.state, self.journal, self.timers, self.observers, dirty)
        self.passes = DispatchPass(config, dispatcher, self.state, self.view, changes, self.timers, dirty)
        self.commands = Commands(config, self.state, self.journal, changes, self.passes, self.observers, clock)
        self.reconciler = Reconciler(config, self.state, self.journal, changes, self.passes, self.observers, clock)
        #: Recent positions of every drone (in memory), for the maps' tracks.
        self.tracks = TrackLog(clock)
        self.reports = FlightReportHandler(
            config, self.state, self.journal, changes, self.passes, self.reconciler, clock, self.tracks,
        )
        #: Control tokens and pilots' commands in flight (the fleet service registers as its flight layer).
        self.control = PilotControl(self.state, self.journal, clock)
        #: Acknowledging alerts (raising them is part of the change that caused them).
        self.alerts = AlertDesk(self.journal, clock)
        self._changes = changes
        self._sweeper: asyncio.Task[None] | None = None
        self.started = False

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        snap = await self.journal.open()
        self.state.incident_no = snap.last_incident_no
        self.state.mission_no = snap.last_mission_no
        now = self.clock()
        cs = Changeset()
        self._adopt_drones(snap.drones, now, cs)
        for inc in snap.incidents:
            if inc.is_open:
                self.state.incidents[inc.id] = inc
            else:  # closed while one of its drones still flew for it: kept until that drone is down
                self.state.closed[inc.id] = inc
        for m in snap.missions:
            self.state.add_mission(m)
            inc = self.state.incidents.get(m.incident_id)
            if inc is not None and m.state in RELEASED_MISSION:
                inc.excluded_drones.add(m.drone_id)
        offered = [m for m in self.state.missions.values() if m.state is M.OFFERED]
        for m in offered:
            self.timers.arm(m, warn=m.id not in snap.warned_offers)
        for inc in self.state.incidents.values():
            inc.queue_announced = inc.status is I.QUEUED  # announced before the restart
        self.passes.run(now, cs, full=True)
        if cs:
            await self.journal.commit(cs)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever(), name="dispatch-sweep")
        self.started = True
        log.info(
            "dispatch centre ready: %d drones, %d open incidents, %d pending offers, %d missions in progress",
            len(self.state.drones),
            len(self.state.incidents),
            len(offered),
            sum(1 for m in self.state.missions.values() if m.state in ACTIVE_MISSION and m.state is not M.OFFERED),
        )

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.timers.close()
        await self.journal.close()
        self.started = False

    def _adopt_drones(self, stored: list[Drone], now: datetime, cs: Changeset) -> None:
        """Drones come from the roster; the database remembers their state across restarts."""
        known = {d.id: d for d in stored}
        drones = self.state.drones
        for station in self.config.stations:
            for sd in station.drones:
                drone = known.get(sd.id)
                if drone is None:
                    drone = Drone.new(
                        sd.id, at=now, station_id=station.id, model=sd.model, battery_pct=100.0, lat=station.lat, lon=station.lon,
                    )
                    cs.upsert(rows.drone_row(drone))
                    cs.insert(
                        rows.transition_row(Transition("drone", drone.id, None, D.STANDBY.value, now, "commissioned", "system"))
                    )
                elif drone.station_id != station.id or drone.model != sd.model:
                    drone.station_id, drone.model = station.id, sd.model
                    cs.upsert(rows.drone_row(drone))
                drones[drone.id] = drone
        for drone_id in set(known) - set(drones):
            log.warning("drone %s is in the database but not in the roster; ignoring it", drone_id)

    # --- the periodic sweep ----------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        """Re-run dispatch for the queue every few seconds, for changes that raise no command."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep()
            except ServiceUnavailable:
                return
            except Exception:  # noqa: BLE001 - a failed sweep must not stop the next one
                log.exception("queue sweep failed")

    async def sweep(self) -> None:
        await self.reports.flush_positions()
        if not self.passes.waiting():
            return
        cs = Changeset()
        self.passes.run(self.clock(), cs, sweep=True)
        if cs:
            await self.journal.commit(cs)

    def touch(self, drone_id: str) -> None:
        """A drone changed outside any command (its battery was set by hand, say): the next pass rebuilds it."""
        self.passes.touch(drone_id)

    async def _expire(self, mission_ids: list[str]) -> None:
        await self.commands.expire_offers(mission_ids)

    async def _warn(self, mission_ids: list[str]) -> None:
        await self.commands.warn_offers(mission_ids)

    # --- reads -------------------------------------------------------------------------------------

    @property
    def bus(self) -> EventBus:
        return self.journal.bus

    @property
    def drones(self) -> Mapping[str, Drone]:
        return self.view.drones

    @property
    def incidents(self) -> Mapping[str, Incident]:
        """Open incidents."""
        return self.view.incidents

    @property
    def missions(self) -> Mapping[str, Mission]:
        return self.view.missions

    def incident_missions(self, incident_id: str) -> list[Mission]:
        return self.state.incident_missions(incident_id)

    def pilot_on_duty(self, station_id: str, now: datetime) -> str | None:
        return self.view.pilot_on_duty(station_id, now)

    # --- commands ---------------------------------------------------------------------------------

    async def create_incident(self, spec: NewIncident, who: Principal) -> tuple[Incident, bool]:
        return await self.commands.create_incident(spec, who)

    async def close_incident(self, incident_id: str, who: Principal, *, resolved: bool, reason: str) -> Incident:
        return await self.commands.close_incident(incident_id, who, resolved=resolved, reason=reason)

    async def add_search_drones(self, incident_id: str, count: int, who: Principal) -> Incident:
        return await self.commands.add_search_drones(incident_id, count, who)

    async def accept(self, mission_id: str, who: Principal) -> Mission:
        return await self.commands.accept(mission_id, who)

    async def decline(self, mission_id: str, who: Principal, reason: str = "") -> Mission:
        return await self.commands.decline(mission_id, who, reason)

    async def abort(self, mission_id: str, who: Principal, reason: str) -> Mission:
        return await self.commands.abort(mission_id, who, reason)

    async def set_maintenance(self, drone_id: str, on: bool, who: Principal, reason: str = "") -> Drone:
        return await self.commands.set_maintenance(drone_id, on, who, reason)

    async def acknowledge_alert(self, alert_id: int, who: Principal) -> Alert:
        return await self.alerts.acknowledge(alert_id, who)

    async def record(
        self, type: str, data: dict[str, Any], upserts: list[tuple[Table, dict[str, Any]]], *,
        alert: NewAlert | None = None, **ids: str | None,
    ) -> None:
        """Commit a service's rows (hotspots) with one numbered event (and an alert, if it raises one), in order
        with the centre's own changes."""
        if alert is None:
            await self.journal.record(type, data, upserts, **ids)
            return
        now = self.clock()
        cs = Changeset()
        for item in upserts:
            cs.upsert(item)
        self.journal.event(cs, type, data, now, **ids)
        stamp_alert(self.journal, cs, now, alert)
        await self.journal.commit(cs)
