"""States and the legal transitions between them.

The tables are the single source of truth for what may follow what: the API
refuses anything else with 409 and leaves the state as it was. Keep them small
and readable; tests walk every edge.
"""

from __future__ import annotations

from enum import StrEnum


class DroneState(StrEnum):
    STANDBY = "standby"
    CHARGING = "charging"
    OFFERED = "offered"
    PREFLIGHT = "preflight"
    ENROUTE = "enroute"
    ON_SCENE = "on_scene"
    SEARCHING = "searching"
    RETURNING = "returning"
    LANDED = "landed"
    MAINTENANCE = "maintenance"
    LOST_LINK = "lost_link"


class IncidentStatus(StrEnum):
    QUEUED = "queued"          # waiting for a feasible drone
    OFFERED = "offered"        # a pilot has the mission in front of them
    DISPATCHED = "dispatched"  # a pilot accepted; the drone is preparing or flying out
    ON_SCENE = "on_scene"      # a drone is over the scene
    RESOLVED = "resolved"      # closed by command after the drone's work
    CANCELLED = "cancelled"    # closed by command before or instead of that


class MissionState(StrEnum):
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    LAUNCHED = "launched"
    ON_SCENE = "on_scene"
    RETURNING = "returning"
    COMPLETED = "completed"
    ABORTED = "aborted"


D, I, M = DroneState, IncidentStatus, MissionState

AIRBORNE = frozenset({D.ENROUTE, D.ON_SCENE, D.SEARCHING, D.RETURNING})

DRONE_TRANSITIONS: dict[DroneState, frozenset[DroneState]] = {
    D.STANDBY: frozenset({D.OFFERED, D.CHARGING, D.MAINTENANCE, D.LOST_LINK, D.PREFLIGHT}),
    D.CHARGING: frozenset({D.STANDBY, D.OFFERED, D.MAINTENANCE, D.LOST_LINK}),
    D.OFFERED: frozenset({D.STANDBY, D.CHARGING, D.LANDED, D.PREFLIGHT, D.LOST_LINK}),
    D.PREFLIGHT: frozenset({D.ENROUTE, D.STANDBY, D.LANDED, D.LOST_LINK, D.MAINTENANCE}),
    D.ENROUTE: frozenset({D.ON_SCENE, D.SEARCHING, D.RETURNING, D.LANDED, D.LOST_LINK}),
    D.ON_SCENE: frozenset({D.SEARCHING, D.RETURNING, D.ENROUTE, D.LANDED, D.LOST_LINK}),
    D.SEARCHING: frozenset({D.ON_SCENE, D.RETURNING, D.ENROUTE, D.LANDED, D.LOST_LINK}),
    D.RETURNING: frozenset({D.LANDED, D.ENROUTE, D.LOST_LINK}),
    D.LANDED: frozenset({D.STANDBY, D.CHARGING, D.MAINTENANCE, D.OFFERED, D.PREFLIGHT, D.LOST_LINK}),
    D.MAINTENANCE: frozenset({D.STANDBY, D.LOST_LINK}),
    # A recovered link resumes whatever the telemetry shows.
    D.LOST_LINK: frozenset(set(D) - {D.LOST_LINK, D.OFFERED}),
}

INCIDENT_TRANSITIONS: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    I.QUEUED: frozenset({I.OFFERED, I.CANCELLED, I.RESOLVED}),
    I.OFFERED: frozenset({I.QUEUED, I.DISPATCHED, I.CANCELLED, I.RESOLVED}),
    # Back to offered: the only serving drone left (battery, preempted) and a replacement is offered.
    I.DISPATCHED: frozenset({I.ON_SCENE, I.QUEUED, I.OFFERED, I.CANCELLED, I.RESOLVED}),
    I.ON_SCENE: frozenset({I.DISPATCHED, I.QUEUED, I.OFFERED, I.CANCELLED, I.RESOLVED}),
    I.RESOLVED: frozenset(),
    I.CANCELLED: frozenset(),
}

MISSION_TRANSITIONS: dict[MissionState, frozenset[MissionState]] = {
    M.OFFERED: frozenset({M.ACCEPTED, M.DECLINED, M.EXPIRED, M.ABORTED}),
    M.ACCEPTED: frozenset({M.LAUNCHED, M.ABORTED}),
    M.LAUNCHED: frozenset({M.ON_SCENE, M.RETURNING, M.ABORTED}),
    M.ON_SCENE: frozenset({M.RETURNING, M.ABORTED}),
    M.RETURNING: frozenset({M.COMPLETED, M.ABORTED}),
    M.DECLINED: frozenset(),
    M.EXPIRED: frozenset(),
    M.COMPLETED: frozenset(),
    M.ABORTED: frozenset(),
}

# --- state groups: each rule that needs "which states" names one of these, defined only here -------------

#: Drones sitting at a station out of any mission (their video feeds end here).
ON_GROUND = frozenset({D.LANDED, D.STANDBY, D.CHARGING, D.MAINTENANCE})

OPEN_INCIDENT = frozenset({I.QUEUED, I.OFFERED, I.DISPATCHED, I.ON_SCENE})

#: Missions with a claim on their drone (offered, or anything after acceptance until it lands).
ACTIVE_MISSION = frozenset({M.OFFERED, M.ACCEPTED, M.LAUNCHED, M.ON_SCENE, M.RETURNING})
#: Missions that hold their drone for the incident (an offered drone is reserved, not yet committed);
#: the flight layer flies exactly these.
COMMITTED_MISSION = frozenset({M.ACCEPTED, M.LAUNCHED, M.ON_SCENE, M.RETURNING})
#: Missions that count towards the drones an incident asked for (a returning drone no longer serves it).
SERVING_MISSION = frozenset({M.OFFERED, M.ACCEPTED, M.LAUNCHED, M.ON_SCENE})
#: Accepted and not yet heading home: the mission holds its share of a search area.
WORKING_MISSION = frozenset({M.ACCEPTED, M.LAUNCHED, M.ON_SCENE})
#: In the air working for its incident: its camera looks at the scene or the search area.
AIRBORNE_MISSION = frozenset({M.LAUNCHED, M.ON_SCENE})
#: Did its work and is going or gone home.
FINISHED_MISSION = frozenset({M.RETURNING, M.COMPLETED})
#: Ended without flying for the incident, or stopped: the drone is not offered for that incident again.
RELEASED_MISSION = frozenset({M.DECLINED, M.EXPIRED, M.ABORTED})
