"""Database: the start-up snapshot and the read queries behind the REST API, on a temporary SQLite file."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from controller.domain.states import DroneState, IncidentStatus, MissionState
from controller.events import Event
from controller.store import rows, schema
from controller.store.database import Database
from controller.store.writer import Changeset, Statements, apply
from tests.store.builders import at, drone, event, incident, incident_id, mission, mission_id, report

I, M = IncidentStatus, MissionState
CST = timezone(timedelta(hours=8))  # where the drones fly: filters given in local time must work


def write(db: Database, *changes: Changeset) -> None:
    statements = Statements(db.engine.dialect.name)
    with db.engine.begin() as conn:
        for cs in changes:
            apply(conn, cs, statements)


def change(*upserts: tuple, inserts: tuple = (), events: tuple = ()) -> Changeset:
    cs = Changeset()
    for u in upserts:
        cs.upsert(u)
    for i in inserts:
        cs.insert(i)
    cs.events.extend(events)
    return cs


@pytest.fixture
def city(db: Database) -> Database:
    """Ten incidents over an hour, missions from two stations, a few drones, events 1..12."""
    incidents = [
        incident(1, minute=0, status=I.RESOLVED, grade=1, category="assault", closed_at=at(30), close_reason="arrest"),
        incident(2, minute=5, status=I.QUEUED, grade=2, category="burglary"),
        incident(3, minute=10, status=I.DISPATCHED, grade=1, category="missing_person", search_area={"radius_m": 400}),
        incident(4, minute=15, status=I.CANCELLED, grade=3, category="noise", close_reason="duplicate"),
        incident(5, minute=20, status=I.OFFERED, grade=2, category="burglary"),
        incident(6, minute=25, status=I.ON_SCENE, grade=1, category="assault"),
        incident(7, minute=30, status=I.RESOLVED, grade=2, category="burglary"),
        incident(8, minute=35, status=I.QUEUED, grade=3, category="traffic", blocked_reason="inside no-fly zone"),
        incident(9, minute=40, status=I.QUEUED, grade=1, category="assault"),
        incident(10, minute=40, status=I.DISPATCHED, grade=2, category="fire"),  # same minute as 9: id breaks the tie
    ]
    missions = [
        mission(1, inc=1, minute=1, state=M.COMPLETED, drone_id="drone-a", station_id="st-north"),
        mission(2, inc=3, minute=11, state=M.DECLINED, drone_id="drone-b", station_id="st-south"),
        mission(3, inc=3, minute=12, state=M.LAUNCHED, drone_id="drone-c", station_id="st-south"),
        mission(4, inc=5, minute=21, state=M.OFFERED, drone_id="drone-a", station_id="st-north"),
        mission(5, inc=6, minute=26, state=M.ON_SCENE, drone_id="drone-d", station_id="st-north"),
        mission(6, inc=7, minute=31, state=M.COMPLETED, drone_id="drone-d", station_id="st-north"),
        # an incident closed under a mission still flying home: the mission is still active
        mission(7, inc=4, minute=16, state=M.RETURNING, drone_id="drone-b", station_id="st-south"),
        mission(8, inc=10, minute=41, state=M.ACCEPTED, drone_id="drone-e", station_id="st-east"),
    ]
    drones = [
        drone("drone-a", state=DroneState.OFFERED),
        drone("drone-b", state=DroneState.RETURNING, station_id="st-south", battery_pct=41.0, alt_m=60.0),
        drone("drone-c", state=DroneState.ENROUTE, station_id="st-south", mission_id=mission_id(3)),
        drone("drone-d", state=DroneState.ON_SCENE, mission_id=mission_id(5)),
        drone("drone-e", state=DroneState.PREFLIGHT, station_id="st-east", model="M30T"),
    ]
    events = [event(s, minute=s, incident_id=incident_id(min(s, 10))) for s in range(1, 13)]
    write(
        db,
        change(*map(rows.incident_row, incidents)),
        change(*map(rows.mission_row, missions), *map(rows.drone_row, drones), events=tuple(events)),
    )
    return db


def ids(items: list) -> list[str]:
    return [x.id for x in items]


# --- the snapshot ---------------------------------------------------------------------------------------


def test_snapshot_of_an_empty_database(db: Database) -> None:
    snap = db.load_snapshot()
    assert (snap.drones, snap.incidents, snap.missions) == ([], [], [])
    assert (snap.last_event_seq, snap.last_incident_no, snap.last_mission_no) == (0, 0, 0)


def test_snapshot_has_drones_open_incidents_and_their_or_active_missions_and_the_incidents_of_those(city: Database) -> None:
    snap = city.load_snapshot()
    assert sorted(ids(snap.drones)) == ["drone-a", "drone-b", "drone-c", "drone-d", "drone-e"]
    # open incidents, and closed ones a drone still flies for (4: closed under mission 7, still returning)
    assert sorted(ids(snap.incidents)) == [incident_id(n) for n in (2, 3, 4, 5, 6, 8, 9, 10)]
    assert [i.is_open for i in snap.incidents if i.id == incident_id(4)] == [False]
    # missions of open incidents (even declined ones) and active missions (even of closed incidents)
    assert sorted(ids(snap.missions)) == [mission_id(n) for n in (2, 3, 4, 5, 7, 8)]
    assert snap.last_event_seq == 12
    assert snap.last_incident_no == 10 and snap.last_mission_no == 8


def test_snapshot_objects_carry_what_was_written(city: Database) -> None:
    snap = city.load_snapshot()
    inc3 = next(i for i in snap.incidents if i.id == incident_id(3))
    assert inc3.status == I.DISPATCHED and inc3.is_open
    assert inc3.search_area == {"radius_m": 400} and inc3.category == "missing_person" and inc3.grade == 1
    assert inc3.created_at == at(10) and inc3.created_at.tzinfo is not None
    assert inc3.machine.since == inc3.updated_at == at(10)
    inc8 = next(i for i in snap.incidents if i.id == incident_id(8))
    assert inc8.blocked_reason == "inside no-fly zone"

    m3 = next(m for m in snap.missions if m.id == mission_id(3))
    assert (m3.state, m3.incident_id, m3.drone_id, m3.station_id) == (M.LAUNCHED, incident_id(3), "drone-c", "st-south")
    assert (m3.offered_at, m3.expires_at, m3.eta_s, m3.distance_m) == (at(12), at(13), 95.0, 1234.5)
    assert m3.drone_prior_state == DroneState.STANDBY and m3.plan is None

    b = next(d for d in snap.drones if d.id == "drone-b")
    assert (b.state, b.station_id, b.battery_pct, b.alt_m, b.mission_id) == (DroneState.RETURNING, "st-south", 41.0, 60.0, None)
    c = next(d for d in snap.drones if d.id == "drone-c")
    assert c.mission_id == mission_id(3) and c.updated_at == at(0)


# --- incidents ------------------------------------------------------------------------------------------


def q(db: Database, **kw: object) -> list[str]:
    with db.engine.connect() as conn:
        return ids(Database.query_incidents(conn, **kw))  # type: ignore[arg-type]


def test_incidents_newest_first_with_id_breaking_ties(city: Database) -> None:
    assert q(city) == [incident_id(n) for n in (10, 9, 8, 7, 6, 5, 4, 3, 2, 1)]


@pytest.mark.parametrize(
    ("filters", "want"),
    [
        (dict(statuses=["queued"]), [9, 8, 2]),
        (dict(statuses=["resolved", "cancelled"]), [7, 4, 1]),
        (dict(grades=[1]), [9, 6, 3, 1]),
        (dict(grades=[1], statuses=["queued", "dispatched"]), [9, 3]),
        (dict(categories=["burglary", "fire"]), [10, 7, 5, 2]),
        (dict(ids=[incident_id(3), incident_id(7), "INC-999999"]), [7, 3]),
        (dict(ids=[]), []),
        (dict(station_id="st-south"), [4, 3]),  # through its missions
        (dict(station_id="st-east"), [10]),
        (dict(station_id="st-nowhere"), []),
        (dict(limit=3), [10, 9, 8]),
        (dict(limit=3, offset=8), [2, 1]),
    ],
)
def test_incident_filters(city: Database, filters: dict, want: list[int]) -> None:
    assert q(city, **filters) == [incident_id(n) for n in want]


def test_incident_time_window_is_half_open_and_time_zone_aware(city: Database) -> None:
    after, before = at(10), at(30)
    assert q(city, created_after=after, created_before=before) == [incident_id(n) for n in (6, 5, 4, 3)]
    # the same instants written in China Standard Time
    assert q(city, created_after=after.astimezone(CST), created_before=before.astimezone(CST)) == [
        incident_id(n) for n in (6, 5, 4, 3)
    ]
    assert q(city, created_after=at(40)) == [incident_id(10), incident_id(9)]


def test_get_incident(city: Database) -> None:
    with city.engine.connect() as conn:
        inc = Database.get_incident(conn, incident_id(1))
        assert Database.get_incident(conn, "INC-999999") is None
    assert inc is not None
    assert (inc.status, inc.closed_at, inc.close_reason) == (I.RESOLVED, at(30), "arrest")


async def test_reads_run_through_the_pool(city: Database) -> None:
    got = await city.read(lambda c: Database.query_incidents(c, statuses=["on_scene"]))
    assert ids(got) == [incident_id(6)]


def test_incident_reports_in_arrival_order_for_that_incident_only(db: Database) -> None:
    write(
        db,
        change(
            rows.incident_row(incident(1)),
            rows.incident_row(incident(2)),
            inserts=(
                rows.report_row(incident_id(1), report(0, "someone is climbing the fence")),
                rows.report_row(incident_id(2), report(1, "other incident")),
                rows.report_row(incident_id(1), report(3, "now two of them", caller=None, lat=32.071, lon=118.801)),
            ),
        ),
    )
    with db.engine.connect() as conn:
        got = Database.incident_reports(conn, incident_id(1))
        assert Database.incident_reports(conn, "INC-999999") == []
    assert got == [
        {"received_at": at(0), "caller": "+86 25 0000", "text": "someone is climbing the fence", "lat": 32.07, "lon": 118.8},
        {"received_at": at(3), "caller": None, "text": "now two of them", "lat": 32.071, "lon": 118.801},
    ]


# --- missions -------------------------------------------------------------------------------------------


def qm(db: Database, **kw: object) -> list[str]:
    with db.engine.connect() as conn:
        return ids(Database.query_missions(conn, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "want"),
    [
        (dict(), [8, 6, 5, 4, 7, 3, 2, 1]),  # newest offer first
        (dict(states=["completed"]), [6, 1]),
        (dict(states=["offered", "accepted", "launched"]), [8, 4, 3]),
        (dict(station_id="st-south"), [7, 3, 2]),
        (dict(incident_id=incident_id(3)), [3, 2]),
        (dict(drone_id="drone-d"), [6, 5]),
        (dict(incident_category="burglary"), [6, 4]),
        (dict(incident_category="burglary", states=["offered"]), [4]),
        (dict(station_id="st-north", limit=2, offset=1), [5, 4]),
    ],
)
def test_mission_filters(city: Database, filters: dict, want: list[int]) -> None:
    assert qm(city, **filters) == [mission_id(n) for n in want]


def test_get_mission(city: Database) -> None:
    with city.engine.connect() as conn:
        m = Database.get_mission(conn, mission_id(7))
        assert Database.get_mission(conn, "MSN-999999") is None
    assert m is not None and (m.state, m.incident_id, m.drone_id) == (M.RETURNING, incident_id(4), "drone-b")


def test_mission_steps(db: Database) -> None:
    steps = [
        {"mission_id": mission_id(1), "at": at(1), "step": "preflight", "ok": 1, "detail": "ekf ok, 10 satellites"},
        {"mission_id": mission_id(2), "at": at(1.5), "step": "arm", "ok": 1, "detail": ""},
        {"mission_id": mission_id(1), "at": at(2), "step": "arm", "ok": 0, "detail": "Arm: Need Position Estimate"},
        {"mission_id": mission_id(1), "at": at(3), "step": "arm", "ok": 1, "detail": ""},
    ]
    write(db, change(inserts=tuple((schema.mission_steps, s) for s in steps)))
    with db.engine.connect() as conn:
        got = Database.mission_steps(conn, mission_id(1))
    assert got == [
        {"at": at(1), "step": "preflight", "ok": True, "detail": "ekf ok, 10 satellites"},
        {"at": at(2), "step": "arm", "ok": False, "detail": "Arm: Need Position Estimate"},
        {"at": at(3), "step": "arm", "ok": True, "detail": ""},
    ]


# --- timeline and events --------------------------------------------------------------------------------


def test_timeline_of_one_entity_in_order(db: Database) -> None:
    inc = incident(1)
    m = mission(1, inc=1)
    d = drone(incident_id(1))  # a drone that happens to share the incident's id: another entity
    transitions = [
        inc.machine.advance(I.OFFERED, at(1), "drone-a offered", "dispatch"),
        m.machine.advance(M.ACCEPTED, at(2), "", "pilot-7"),
        d.machine.advance(DroneState.OFFERED, at(2), "offer", "dispatch"),
        inc.machine.advance(I.DISPATCHED, at(2), "pilot accepted", "pilot-7"),
        inc.machine.advance(I.ON_SCENE, at(5), "x" * 600, "y" * 80),  # stored truncated
    ]
    write(db, change(inserts=tuple(rows.transition_row(t) for t in transitions)))
    with db.engine.connect() as conn:
        got = Database.timeline(conn, "incident", incident_id(1))
        assert [s["to"] for s in Database.timeline(conn, "mission", mission_id(1))] == ["accepted"]
        assert [s["to"] for s in Database.timeline(conn, "drone", incident_id(1))] == ["offered"]
        assert Database.timeline(conn, "incident", incident_id(2)) == []
    assert [(s["from"], s["to"], s["at"], s["actor"]) for s in got] == [
        ("queued", "offered", at(1), "dispatch"),
        ("offered", "dispatched", at(2), "pilot-7"),
        ("dispatched", "on_scene", at(5), "y" * 64),
    ]
    assert got[0]["reason"] == "drone-a offered" and got[2]["reason"] == "x" * 500


def test_events_after_a_sequence_number(city: Database) -> None:
    with city.engine.connect() as conn:
        after9 = Database.events_after(conn, 9)
        assert [e.seq for e in Database.events_after(conn, 0, limit=4)] == [1, 2, 3, 4]
        assert Database.events_after(conn, 12) == []
    assert [e.seq for e in after9] == [10, 11, 12]
    assert after9[0] == Event(10, at(10), "incident.created", {"seq": 10, "kind": "incident.created"}, incident_id=incident_id(10))


def test_event_columns_round_trip(db: Database) -> None:
    e = Event(
        5, at(2), "mission.launched", {"eta_s": 95.5, "path": [[32.06, 118.79]], "note": "夜间"},
        incident_id=incident_id(3), station_id="st-south", drone_id="drone-c", mission_id=mission_id(3), category="missing_person",
    )
    write(db, change(events=(e, event(None, "drone.telemetry"))))
    with db.engine.connect() as conn:
        assert Database.events_after(conn, 0) == [e]  # the telemetry event has no number and is not stored
    assert db.load_snapshot().last_event_seq == 5


def _count(conn: Connection, table: schema.Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


def test_fixture_wrote_what_it_says(city: Database) -> None:
    with city.engine.connect() as conn:
        assert [_count(conn, t) for t in (schema.incidents, schema.missions, schema.drones, schema.events)] == [10, 8, 5, 12]
