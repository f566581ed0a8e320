"""The reconciliation rule, case by case: what a drone and its mission must be, given what the vehicle reports."""

from __future__ import annotations

import pytest

from controller.center.reconcile import Fix, contradiction, decide, on_the_ground
from controller.domain.states import DroneState as D
from controller.domain.states import MissionState as M
from controller.fleet.copter import CopterMode
from controller.fleet.reports import VehicleReport


def flying(mode: CopterMode = CopterMode.GUIDED, alt: float = 60.0) -> VehicleReport:
    return VehicleReport(armed=True, alt_rel_m=alt, mode=int(mode), lat=32.0, lon=118.8, battery_pct=70.0)


def landed(battery: float = 80.0) -> VehicleReport:
    return VehicleReport(armed=False, alt_rel_m=0.1, mode=int(CopterMode.GUIDED), lat=32.0, lon=118.8, battery_pct=battery)


def armed_on_ground(mode: CopterMode = CopterMode.GUIDED) -> VehicleReport:
    return VehicleReport(armed=True, alt_rel_m=0.3, mode=int(mode), lat=32.0, lon=118.8, battery_pct=90.0)


def verdict(drone: D, mission: M | None, vehicle: VehicleReport | None, *, open_: bool = True, search: bool = False, station: bool = True):
    return decide(drone, mission, incident_open=open_, searching=search, vehicle=vehicle, at_station=station)


# --- the cases of the restart the issue describes ----------------------------------------------------


def test_on_scene_mission_whose_drone_landed_meanwhile_is_aborted_and_the_drone_is_available() -> None:
    v = verdict(D.ON_SCENE, M.ON_SCENE, landed())
    assert (v.fix, v.mission, v.drone) == (Fix.NOTHING, M.ABORTED, D.STANDBY)
    assert "landed while nobody supervised it" in v.reason


def test_returning_drone_found_landed_completes_its_mission() -> None:
    v = verdict(D.RETURNING, M.RETURNING, landed(battery=30.0))
    assert (v.mission, v.drone) == (M.COMPLETED, D.CHARGING)  # low battery: it charges before the next call


def test_no_link_is_lost_link_not_returning() -> None:
    v = verdict(D.RETURNING, M.RETURNING, None)
    assert (v.fix, v.drone, v.mission) == (Fix.LOST, D.LOST_LINK, None)
    assert verdict(D.LOST_LINK, M.ON_SCENE, None).drone is None  # already lost: nothing moves


def test_a_drone_on_the_ground_away_from_any_station_is_not_offered_again() -> None:
    v = verdict(D.ENROUTE, M.LAUNCHED, landed(), station=False)
    assert (v.mission, v.drone) == (M.ABORTED, D.MAINTENANCE)


# --- flights that go on --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drone", "mission", "search", "want_drone", "want_mission"),
    [
        (D.ON_SCENE, M.ON_SCENE, False, D.ON_SCENE, M.ON_SCENE),
        (D.SEARCHING, M.ON_SCENE, True, D.SEARCHING, M.ON_SCENE),
        (D.ENROUTE, M.LAUNCHED, False, D.ENROUTE, M.LAUNCHED),
        (D.PREFLIGHT, M.ACCEPTED, False, D.ENROUTE, M.LAUNCHED),  # taking off when the controller died
        (D.LOST_LINK, M.ON_SCENE, False, D.ON_SCENE, M.ON_SCENE),  # link back, still over the scene
    ],
)
def test_a_vehicle_flying_the_mission_is_resumed(drone: D, mission: M, search: bool, want_drone: D, want_mission: M) -> None:
    v = verdict(drone, mission, flying(CopterMode.AUTO if search else CopterMode.GUIDED), search=search)
    assert (v.fix, v.drone, v.mission) == (Fix.RESUME, want_drone, want_mission)


@pytest.mark.parametrize("mode", [CopterMode.RTL, CopterMode.LAND])
def test_a_vehicle_its_failsafe_took_home_makes_the_mission_return(mode: CopterMode) -> None:
    v = verdict(D.ON_SCENE, M.ON_SCENE, flying(mode))
    assert (v.fix, v.drone, v.mission) == (Fix.HOME, D.RETURNING, M.RETURNING)
    assert mode.name in v.reason


def test_a_flying_drone_of_a_closed_incident_comes_home() -> None:
    v = verdict(D.ON_SCENE, M.ON_SCENE, flying(), open_=False)
    assert (v.fix, v.drone, v.mission) == (Fix.HOME, D.RETURNING, M.RETURNING)


def test_a_drone_flying_for_no_mission_is_brought_home() -> None:
    v = verdict(D.STANDBY, None, flying())
    assert (v.fix, v.drone, v.mission) == (Fix.HOME, D.RETURNING, None)


def test_an_accepted_mission_on_the_ground_goes_on_with_its_preflight() -> None:
    assert verdict(D.PREFLIGHT, M.ACCEPTED, landed()).fix is Fix.RESUME
    assert verdict(D.PREFLIGHT, M.ACCEPTED, armed_on_ground()).fix is Fix.RESUME


def test_armed_on_the_ground_after_the_mission_is_landing() -> None:
    v = verdict(D.RETURNING, M.RETURNING, armed_on_ground(CopterMode.LAND))
    assert (v.fix, v.drone) == (Fix.HOME, D.RETURNING)


def test_consistent_drones_on_the_ground_change_nothing() -> None:
    for state in (D.STANDBY, D.CHARGING, D.MAINTENANCE, D.LANDED):
        v = verdict(state, None, landed())
        assert (v.fix, v.drone, v.mission) == (Fix.NOTHING, None, None)
    v = verdict(D.OFFERED, M.OFFERED, landed())
    assert (v.fix, v.drone, v.mission) == (Fix.NOTHING, None, None)


def test_ground_state_by_battery_and_place() -> None:
    assert on_the_ground(60.0, True) is D.STANDBY
    assert on_the_ground(59.9, True) is D.CHARGING
    assert on_the_ground(100.0, False) is D.MAINTENANCE


# --- the invariant ---------------------------------------------------------------------------------------


def test_contradictions() -> None:
    assert contradiction(D.RETURNING, M.RETURNING, landed()) is not None  # the ghost of the issue
    assert contradiction(D.ON_SCENE, M.ON_SCENE, landed()) is not None
    assert contradiction(D.STANDBY, None, flying()) is not None
    assert contradiction(D.STANDBY, M.ON_SCENE, flying()) is not None  # mission on scene, drone "standby"
    assert contradiction(D.LOST_LINK, M.ON_SCENE, flying()) is not None  # reporting, yet shown lost
    assert contradiction(D.ON_SCENE, M.ON_SCENE, flying(CopterMode.RTL)) is not None  # its failsafe took it home
    # and what is not one
    assert contradiction(D.ON_SCENE, M.ON_SCENE, flying()) is None
    assert contradiction(D.STANDBY, None, landed()) is None
    assert contradiction(D.PREFLIGHT, M.ACCEPTED, armed_on_ground()) is None
    assert contradiction(D.RETURNING, None, flying(CopterMode.RTL)) is None  # being brought home


# --- repairs across several steps (found by the chaos benchmark) --------------------------------------


def test_repair_paths_go_through_the_states_that_were_missed() -> None:
    from datetime import UTC, datetime

    from controller.domain.entities import Drone, Mission

    at = datetime(2026, 12, 6, tzinfo=UTC)
    drone = Drone.new("X", at=at, state=D.PREFLIGHT, station_id="S", model="m", battery_pct=90.0, lat=0.0, lon=0.0)
    assert drone.machine.path_to(D.RETURNING) == [D.ENROUTE, D.RETURNING]
    assert drone.machine.path_to(D.PREFLIGHT) == []
    m = Mission.new("M", at=at, state=M.ACCEPTED, incident_id="I", drone_id="X", station_id="S", expires_at=at,
                    eta_s=1.0, distance_m=1.0, drone_prior_state=D.STANDBY)
    assert m.machine.path_to(M.RETURNING) == [M.LAUNCHED, M.RETURNING]
    done = Mission.new("N", at=at, state=M.COMPLETED, incident_id="I", drone_id="X", station_id="S", expires_at=at,
                       eta_s=1.0, distance_m=1.0, drone_prior_state=D.STANDBY)
    assert done.machine.path_to(M.RETURNING) is None
