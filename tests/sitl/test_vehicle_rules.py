"""Arming rules, refusals and mission storage of the simulated copter, driven directly in simulated time."""

from __future__ import annotations

from pymavlink.dialects.v20 import ardupilotmega as m2

from sitl.kinematics import Home
from sitl.mission_store import Item, MissionStore
from sitl.vehicle import AUTO, GUIDED, RTL, SimCopter

GCS = m2.MAVLink(None, srcSystem=255, srcComponent=190)


def copter(warm: bool = True) -> SimCopter:
    return SimCopter(1, Home(32.06, 118.79, 10.0), warm=warm)


def run(v: SimCopter, seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        v.step(0.05)
        v.telemetry()


def command(v: SimCopter, cmd: int, *params: float) -> list:
    v.outbox.clear()
    p = list(params) + [0.0] * (7 - len(params))
    v.handle(GCS.command_long_encode(1, 1, cmd, 0, *p))
    return list(v.outbox)


def ack_of(out: list) -> int:
    return next(m.result for m in out if m.get_type() == "COMMAND_ACK")


def texts(out: list) -> list[str]:
    return [m.text for m in out if m.get_type() == "STATUSTEXT"]


def test_cold_boot_refuses_then_arms() -> None:
    v = copter(warm=False)
    run(v, 5)
    out = command(v, 400, 1)
    assert ack_of(out) == 4 and texts(out) == ["Arm: Accels inconsistent", "Arm: AHRS: waiting for home"]
    run(v, 25)
    out = command(v, 400, 1)
    assert ack_of(out) == 4 and texts(out) == ["Arm: Need Position Estimate"]
    run(v, 15)
    out = command(v, 400, 1)
    assert ack_of(out) == 0 and texts(out) == ["Arming motors"]


def test_forced_prearm_failure_and_gcs_failsafe_block_arming() -> None:
    v = copter()
    v.faults.prearm_failure = "PreArm: Compass not calibrated"
    out = command(v, 400, 1)
    assert ack_of(out) == 4 and texts(out) == ["Arm: PreArm: Compass not calibrated"]
    v.faults.prearm_failure = None
    v.params.set("FS_GCS_ENABLE", 1)
    v.handle(GCS.heartbeat_encode(m2.MAV_TYPE_GCS, 0, 0, 0, 0))
    run(v, 6)
    assert v.gcs_failsafe
    out = command(v, 400, 1)
    assert ack_of(out) == 4 and texts(out) == ["Arm: GCS failsafe on"]


def test_ignored_command_gets_no_ack() -> None:
    v = copter()
    v.faults.ignore_commands.add(400)
    assert command(v, 400, 1) == []


def test_takeoff_rules_and_auto_disarm() -> None:
    v = copter()
    assert ack_of(command(v, 22, 0, 0, 0, 0, 0, 0, 20)) == 4  # disarmed
    command(v, 400, 1)
    assert ack_of(command(v, 22, 0, 0, 0, 0, 0, 0, 20)) == 4  # armed but STABILIZE
    v.change_mode(GUIDED)
    assert ack_of(command(v, 22, 0, 0, 0, 0, 0, 0, 0)) == 4  # altitude 0
    v.outbox.clear()
    run(v, 11)  # armed on the ground, no take-off: ArduCopter disarms by itself after 10 s
    assert not v.armed and "Disarming motors" in texts(v.outbox)


def test_unknown_mode() -> None:
    v = copter()
    v.outbox.clear()
    v.handle(GCS.set_mode_encode(1, 1, 99))
    assert texts(v.outbox) == ["No such mode 99"] and v.mode == 0
    assert ack_of(command(v, 176, 1, 99)) == 4


def test_battery_failsafe_returns_home() -> None:
    v = copter()
    v.params.set("BATT_CAPACITY", 500)
    v.params.set("BATT_LOW_MAH", 300)
    v.params.set("BATT_FS_LOW_ACT", 2)
    v.change_mode(GUIDED)
    command(v, 400, 1)
    command(v, 22, 0, 0, 0, 0, 0, 0, 20)
    v.outbox.clear()
    run(v, 40)
    assert v.battery_failsafe and v.mode == RTL
    assert any(t.startswith("Battery 1 is low 12.60V used ") for t in texts(v.outbox))


def test_mission_store_protocol() -> None:
    store = MissionStore()
    store.set_home(32.06, 118.79, 10.1)
    assert store.begin_upload(3, 0.0) == 0
    items = [
        Item(0, 6, 16, (0, 0, 0, 0), 0, 0, 0.0),
        Item(1, 6, 22, (0, 0, 0, 0), 0, 0, 40.0),
        Item(2, 6, 20, (0, 0, 0, 0), 0, 0, 0.0),
    ]
    assert store.receive(items[0], 0.1) == ("request", 1)
    assert store.receive(items[0], 0.2) == ("request", 1)  # a repeated item: ask again for the next
    assert store.receive(items[1], 0.3) == ("request", 2)
    assert store.receive(items[2], 0.4) == ("ack", m2.MAV_MISSION_ACCEPTED)
    assert store.total == 3
    assert store.get(0).z == 10.1 and store.get(0).frame == 0  # home, whatever was uploaded
    assert store.get(1).frame == 3  # stored in the non-INT frame
    assert store.get(2).frame == 0  # RTL has no location
    assert store.receive(Item(7, 6, 16, (0, 0, 0, 0), 0, 0, 0.0), 1.0) == ("ack", m2.MAV_MISSION_ERROR)


def test_mission_upload_gives_up_when_the_station_goes_quiet() -> None:
    store = MissionStore()
    store.begin_upload(5, 0.0)
    assert store.upload_tick(1.6) == ("request", 0)
    assert store.upload_tick(9.0) == ("ack", m2.MAV_MISSION_OPERATION_CANCELLED)
    assert not store.uploading


def test_auto_without_mission_is_reported_before_arming() -> None:
    v = copter()
    v.mission.clear()
    v.change_mode(AUTO)
    out = command(v, 400, 1)
    assert ack_of(out) == 4 and texts(out) == ["Arm: Mode requires mission"]
