"""Alerts: messages for people, each with a kind the consoles can sort, filter and acknowledge by.

The kinds are declared here once; the centre raises them where the events
happen, the store keeps them (with who acknowledged them, and when), and the
API and event stream show them with the same names. Each kind has its default
severity here too, so one place says how urgent a failsafe is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

#: An alert's text is cut to this many characters (the column's width).
TEXT_MAX = 500
#: An offer with this many seconds left raises `offer_expiring` (once per offer).
OFFER_EXPIRING_S = 10.0


class AlertKind(StrEnum):
    OFFER_EXPIRING = "offer_expiring"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    #: A call waits in the queue: no drone could serve it (the text says why).
    QUEUED_NO_DRONE = "queued_no_drone"
    LINK_LOST = "link_lost"
    #: The battery rule turned a drone home (the reserve for the way home was reached).
    BATTERY_LOW = "battery_low"
    #: The vehicle took itself over (RTL, LAND, an EKF failsafe ...).
    FAILSAFE = "failsafe"
    HOTSPOT_NEW = "hotspot_new"
    #: The continuous check found a drone whose state contradicts its telemetry, and repaired it.
    CONTRADICTION = "contradiction"
    #: A start-up or link-back reconciliation had to change a state.
    RECONCILED = "reconciled"
    MISSION_FAILED = "mission_failed"
    MISSION_PREEMPTED = "mission_preempted"
    #: A drone is down away from any station: someone must fetch it.
    RECOVERY_NEEDED = "recovery_needed"
    #: No drone can serve the incident (e.g. it lies in a no-fly zone).
    INCIDENT_BLOCKED = "incident_blocked"
    #: Evidence recording failed to write (disk full, I/O error): the live video goes on, the recording has a gap.
    RECORDING_ERROR = "recording_error"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


#: How urgent each kind is unless the place raising it knows better (a pilot's deliberate landing away from a
#: station needs recovering too, but is less alarming than a forced one).
SEVERITY: dict[AlertKind, Severity] = {
    AlertKind.OFFER_EXPIRING: Severity.WARNING,
    AlertKind.OFFER_DECLINED: Severity.INFO,
    AlertKind.OFFER_EXPIRED: Severity.WARNING,
    AlertKind.QUEUED_NO_DRONE: Severity.WARNING,
    AlertKind.LINK_LOST: Severity.CRITICAL,
    AlertKind.BATTERY_LOW: Severity.WARNING,
    AlertKind.FAILSAFE: Severity.CRITICAL,
    AlertKind.HOTSPOT_NEW: Severity.WARNING,
    AlertKind.CONTRADICTION: Severity.WARNING,
    AlertKind.RECONCILED: Severity.INFO,
    AlertKind.MISSION_FAILED: Severity.WARNING,
    AlertKind.MISSION_PREEMPTED: Severity.WARNING,
    AlertKind.RECOVERY_NEEDED: Severity.CRITICAL,
    AlertKind.INCIDENT_BLOCKED: Severity.CRITICAL,
    AlertKind.RECORDING_ERROR: Severity.WARNING,
}
assert set(SEVERITY) == set(AlertKind)


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert to raise: what happened and what it concerns (the centre gives it its id and time)."""

    kind: AlertKind
    text: str
    #: None: the kind's default (SEVERITY).
    severity: Severity | None = None
    drone_id: str | None = None
    mission_id: str | None = None
    incident_id: str | None = None
    station_id: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    """Who acknowledged an alert, and when."""

    name: str
    role: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as stored: `id` is the sequence number of its `alert` event."""

    id: int
    at: datetime
    kind: AlertKind
    severity: Severity
    text: str
    drone_id: str | None = None
    mission_id: str | None = None
    incident_id: str | None = None
    station_id: str | None = None
    #: The incident's category (search teams see missing-person alerts).
    category: str | None = None
    ack: Ack | None = None

    def acknowledged(self, ack: Ack) -> Alert:
        return replace(self, ack=ack)
