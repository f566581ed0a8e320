"""Every edge of every state table: legal moves are recorded, illegal ones refused with nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.domain.state_machine import IllegalTransition, StateMachine
from controller.domain.states import (
    DRONE_TRANSITIONS,
    INCIDENT_TRANSITIONS,
    MISSION_TRANSITIONS,
    DroneState,
    IncidentStatus,
    MissionState,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TABLES = [
    ("drone", DroneState, DRONE_TRANSITIONS),
    ("incident", IncidentStatus, INCIDENT_TRANSITIONS),
    ("mission", MissionState, MISSION_TRANSITIONS),
]


@pytest.mark.parametrize(("entity", "enum", "table"), TABLES)
def test_every_pair(entity, enum, table) -> None:
    assert set(table) == set(enum), "every state has a row"
    for src in enum:
        for dst in enum:
            sm = StateMachine(entity, "x1", src, table, T0)
            at = T0 + timedelta(seconds=5)
            if dst in table[src]:
                t = sm.advance(dst, at, reason="r", actor="tester")
                assert (sm.state, sm.since) == (dst, at)
                assert (t.from_state, t.to_state, t.at, t.actor, t.entity) == (src.value, dst.value, at, "tester", entity)
            else:
                with pytest.raises(IllegalTransition) as err:
                    sm.advance(dst, at)
                assert (sm.state, sm.since) == (src, T0), "a refused move leaves the state as it was"
                assert f"from {src.value} to {dst.value}" in str(err.value)


def test_mission_lifecycle_matches_the_specification() -> None:
    M = MissionState
    assert MISSION_TRANSITIONS[M.OFFERED] >= {M.ACCEPTED, M.DECLINED, M.EXPIRED}
    assert M.LAUNCHED in MISSION_TRANSITIONS[M.ACCEPTED]
    assert M.ON_SCENE in MISSION_TRANSITIONS[M.LAUNCHED]
    assert M.RETURNING in MISSION_TRANSITIONS[M.ON_SCENE]
    assert MISSION_TRANSITIONS[M.RETURNING] == {M.COMPLETED, M.ABORTED}
    for terminal in (M.DECLINED, M.EXPIRED, M.COMPLETED, M.ABORTED):
        assert not MISSION_TRANSITIONS[terminal]


def test_terminal_incident_states() -> None:
    assert not INCIDENT_TRANSITIONS[IncidentStatus.RESOLVED]
    assert not INCIDENT_TRANSITIONS[IncidentStatus.CANCELLED]


def test_a_drone_in_maintenance_cannot_be_offered() -> None:
    assert DroneState.OFFERED not in DRONE_TRANSITIONS[DroneState.MAINTENANCE]
    assert DroneState.OFFERED not in DRONE_TRANSITIONS[DroneState.LOST_LINK]
