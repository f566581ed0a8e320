"""Domain objects and a database for the store tests (plans are left None: their shape is not the store's business)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from controller.domain.entities import CallerReport, Drone, Incident, Mission
from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.events import Event

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def incident_id(n: int) -> str:
    return f"INC-{n:06d}"


def mission_id(n: int) -> str:
    return f"MSN-{n:06d}"


def incident(
    n: int,
    minute: float = 0.0,
    status: IncidentStatus = IncidentStatus.QUEUED,
    grade: int = 2,
    category: str = "burglary",
    **kw: Any,
) -> Incident:
    kw.setdefault("lat", 32.06 + n / 1000)
    kw.setdefault("lon", 118.79 + n / 1000)
    kw.setdefault("created_by", "dispatcher-1")
    return Incident.new(incident_id(n), at=at(minute), status=status, grade=grade, category=category, **kw)


def drone(name: str, minute: float = 0.0, state: DroneState = DroneState.STANDBY, **kw: Any) -> Drone:
    kw.setdefault("station_id", "st-north")
    kw.setdefault("model", "X500")
    kw.setdefault("battery_pct", 97.5)
    kw.setdefault("lat", 32.0603)
    kw.setdefault("lon", 118.7969)
    return Drone.new(name, at=at(minute), state=state, **kw)


def mission(
    n: int,
    inc: int,
    minute: float = 0.0,
    state: MissionState = MissionState.OFFERED,
    drone_id: str = "drone-a",
    station_id: str = "st-north",
    **kw: Any,
) -> Mission:
    kw.setdefault("expires_at", at(minute + 1))
    kw.setdefault("eta_s", 95.0)
    kw.setdefault("distance_m", 1234.5)
    kw.setdefault("drone_prior_state", DroneState.STANDBY)
    return Mission.new(
        mission_id(n), at=at(minute), state=state, incident_id=incident_id(inc), drone_id=drone_id, station_id=station_id, **kw
    )


def report(minute: float, text: str, caller: str | None = "+86 25 0000", lat: float = 32.07, lon: float = 118.8) -> CallerReport:
    return CallerReport(received_at=at(minute), lat=lat, lon=lon, caller=caller, text=text)


def event(seq: int | None, kind: str = "incident.created", minute: float = 0.0, **ids: Any) -> Event:
    return Event(seq, at(minute), kind, {"seq": seq, "kind": kind}, **ids)
