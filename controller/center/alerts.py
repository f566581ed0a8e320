"""Alerts: raised inside a command's changeset (a stamped `alert` event and its row), acknowledged by people.

Raising belongs to whatever change caused the alert (an offer ending, a link
lost, a hotspot raised), so it is a function on the caller's changeset, not a
command of its own: the alert is durable exactly when its cause is. The alert's
id is its event's sequence number, so the event and the row name the same
alert. Acknowledging is a command: who and when are stored, `alert.acknowledged`
is published, and a second acknowledgement is refused naming the first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from controller.auth import Principal, Role
from controller.center.journal import Journal
from controller.domain.alerts import SEVERITY, TEXT_MAX, Ack, Alert, NewAlert
from controller.domain.categories import SEARCH_CATEGORY
from controller.domain.errors import Conflict, Forbidden, NotFound
from controller.store import rows
from controller.store.writer import Changeset
from controller.views import alert_view, holder_view, iso


def stamp_alert(journal: Journal, cs: Changeset, now: datetime, new: NewAlert) -> Alert:
    """Put an `alert` event and its row into the changeset; both become visible when it commits."""
    data: dict[str, Any] = {}
    event = journal.bus.stamp(
        "alert", data, now, station_id=new.station_id, drone_id=new.drone_id, mission_id=new.mission_id,
        incident_id=new.incident_id, category=new.category,
    )
    assert event.seq is not None
    alert = Alert(
        id=event.seq, at=now, kind=new.kind, severity=new.severity or SEVERITY[new.kind], text=new.text[:TEXT_MAX],
        drone_id=new.drone_id, mission_id=new.mission_id, incident_id=new.incident_id, station_id=new.station_id,
        category=new.category,
    )
    data.update(alert_view(alert))  # the same shape as GET /alerts gives (filled before anything is published)
    cs.events.append(event)
    cs.insert(rows.alert_row(alert))
    return alert


def check_alert_visible(who: Principal, alert: Alert) -> None:
    """Alerts are scoped as the event stream is: pilots their station's, search teams missing-person searches."""
    if who.role is Role.PILOT and alert.station_id != who.station_id:
        raise Forbidden(f"pilots see only their own station's alerts; alert {alert.id} is not station {who.station_id}'s")
    if who.role is Role.SEARCH_TEAM and alert.category != SEARCH_CATEGORY:
        raise Forbidden("search teams see only alerts about missing-person searches")


class AlertDesk:
    def __init__(self, journal: Journal, clock: Callable[[], datetime]) -> None:
        self.journal = journal
        self.clock = clock
        #: Acknowledged since start: a second acknowledgement racing the first's commit is refused too.
        self._acked: dict[int, Ack] = {}

    async def acknowledge(self, alert_id: int, who: Principal) -> Alert:
        db = self.journal.db
        stored = await db.read(lambda c: db.get_alert(c, alert_id))
        if stored is None:
            raise NotFound("alert", str(alert_id))
        check_alert_visible(who, stored)
        first = stored.ack or self._acked.get(alert_id)
        if first is not None:
            raise Conflict(f"alert {alert_id} was already acknowledged by {first.name} ({first.role}) at {iso(first.at)}")
        now = self.clock()
        ack = Ack(who.name, who.role.value, now)
        self._acked[alert_id] = ack
        alert = stored.acknowledged(ack)
        cs = Changeset()
        cs.upsert(rows.alert_row(alert))
        self.journal.event(
            cs, "alert.acknowledged",
            {"id": alert.id, "kind": alert.kind.value, "by": holder_view(ack.name, ack.role), "at": iso(now),
             "alert": alert_view(alert)},
            now, station_id=alert.station_id, drone_id=alert.drone_id, mission_id=alert.mission_id,
            incident_id=alert.incident_id, category=alert.category,
        )
        try:
            await self.journal.commit(cs)
        except BaseException:
            self._acked.pop(alert_id, None)
            raise
        return alert
