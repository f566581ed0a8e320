"""A fake DroneLink playing a simple ArduCopter, and a recording FlightReports: MissionRunner tests without sockets.

`FakeVehicle` duck-types the parts of `controller.fleet.drone_link.DroneLink`
the mission runner uses. Its telemetry is a real `Telemetry`, updated by a
small physics loop (every `TICK_S` of wall time):

* arming is refused while `arm_refusals` lists refusals (each a list of
  STATUSTEXTs, raised as `CommandRejected` with those texts); accepted after;
  arming sets home to where the vehicle stands;
* NAV_TAKEOFF (armed, GUIDED) climbs to its altitude;
* a position target in GUIDED moves the vehicle there at `speed_ms` along
  the straight line (fast: the city's kilometres take fractions of a second),
  using `drain_pct_per_m` of battery per metre;
* RTL flies home then descends; LAND descends; on the ground both disarm;
* commands can be slow to answer, as over a real link: `accept_delay_s` passes
  before a command takes effect (the vehicle keeps its old mode meanwhile),
  `ack_delay_s` between taking effect (the telemetry, like the next heartbeat,
  shows the new mode at once) and the answer reaching the caller; other tasks
  (the runner's watcher) run in both windows;
* an uploaded mission started in AUTO advances `mission_seq` every
  `auto_step_s`, placing the vehicle on each waypoint, and at the
  NAV_RETURN_TO_LAUNCH item flies home and lands (staying in AUTO, as
  ArduCopter does).

Everything the runner sends is recorded (`commands`, `modes`, `targets`,
`missions`) for the tests to check.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller import geo
from controller.fleet.copter import EKF_READY_FLAGS, CopterMode
from controller.fleet.drone_link import CommandRejected, CommandTimeout, MissionItem
from controller.fleet.telemetry import Telemetry
from controller.search.plan import SearchPlan

TICK_S = 0.01
ARM = mavlink2.MAV_CMD_COMPONENT_ARM_DISARM
TAKEOFF = mavlink2.MAV_CMD_NAV_TAKEOFF
MISSION_START = mavlink2.MAV_CMD_MISSION_START


@dataclass(frozen=True, slots=True)
class SentTarget:
    """A position target, and where the vehicle was when it was sent."""

    origin: tuple[float, float]
    target: tuple[float, float]
    alt: float
    mode: int | None


class FakeVehicle:
    def __init__(
        self,
        drone_id: str,
        lat: float,
        lon: float,
        *,
        alt_rel_m: float = 0.0,
        armed: bool = False,
        mode: CopterMode = CopterMode.STABILIZE,
        battery_pct: float = 100.0,
        home: tuple[float, float] | None = None,
        arm_refusals: Iterable[Sequence[str]] = (),
        ready_after_s: float = 0.0,
        speed_ms: float = 20_000.0,
        climb_ms: float = 1_000.0,
        descent_ms: float = 1_000.0,
        auto_step_s: float = 0.15,
        drain_pct_per_m: float = 0.0,
    ) -> None:
        self.drone_id = drone_id
        self.up = True
        self.telemetry = Telemetry(
            lat=lat, lon=lon, alt_rel_m=alt_rel_m, armed=armed, mode=int(mode), battery_pct=battery_pct,
        )
        if home is not None:
            self.telemetry.home = (home[0], home[1], 0.0)
        self.arm_refusals = [list(r) for r in arm_refusals]
        self.ready_after_s = ready_after_s
        self.speed_ms = speed_ms
        self.climb_ms = climb_ms
        self.descent_ms = descent_ms
        self.auto_step_s = auto_step_s
        #: Battery used per metre flown horizontally (0: the battery changes only when a test sets it).
        self.drain_pct_per_m = drain_pct_per_m
        #: Seconds a command_long/command_int waits before it takes effect, and after that before it is answered.
        self.accept_delay_s = 0.0
        self.ack_delay_s = 0.0
        #: Commands (MAV_CMD ids) the vehicle answers DENIED, changing nothing.
        self.refuse: set[int] = set()
        #: (command, params) of every command_long/command_int received, accepted or not.
        self.commands: list[tuple[int, tuple[float, ...]]] = []
        self.modes: list[CopterMode] = []
        self.targets: list[SentTarget] = []
        self.missions: list[list[MissionItem]] = []
        #: Parameters set (PARAM_SET), last value by name.
        self.params: dict[str, float] = {}
        #: Every position the vehicle took, in order (lat, lon, alt_rel).
        self.track: list[tuple[float, float, float]] = [(lat, lon, alt_rel_m)]
        self._target: tuple[float, float, float] | None = None
        self._takeoff_alt: float | None = None
        self._mission: list[MissionItem] | None = None
        self._auto_clock = 0.0
        self._auto_home = False
        self._elapsed = 0.0
        self._task: asyncio.Task[None] | None = None
        if ready_after_s <= 0:
            self._become_ready()

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeVehicle:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"fake-{self.drone_id}")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            self.step(now - last)
            last = now

    # --- what the runner calls --------------------------------------------------------

    async def set_mode(self, mode: CopterMode, *, timeout: float = 1.0, retries: int = 5) -> None:
        self.modes.append(CopterMode(mode))
        self.telemetry.mode = int(mode)
        if mode != CopterMode.GUIDED:
            self._target = None
        if mode == CopterMode.AUTO:
            self._auto_clock = 0.0

    async def command_long(
        self, command: int, params: Sequence[float] = (), *, what: str = "", timeout: float = 1.5, retries: int = 3
    ) -> None:
        if self.accept_delay_s > 0:
            await asyncio.sleep(self.accept_delay_s)
        self._command_long(command, params, what)
        if self.ack_delay_s > 0:
            await asyncio.sleep(self.ack_delay_s)

    def _command_long(self, command: int, params: Sequence[float], what: str) -> None:
        p = tuple(float(v) for v in params)
        self.commands.append((command, p))
        if command in self.refuse:
            raise CommandRejected(what or str(command), mavlink2.MAV_RESULT_DENIED, [])
        t = self.telemetry
        if command == ARM:
            if p and p[0] == 1:
                if self.arm_refusals:
                    raise CommandRejected(what or "arm", mavlink2.MAV_RESULT_FAILED, self.arm_refusals.pop(0))
                if not t.ekf_ok:
                    raise CommandRejected(what or "arm", mavlink2.MAV_RESULT_FAILED, ["PreArm: Need Position Estimate"])
                t.armed = True
                if t.home is None:
                    t.home = (t.lat, t.lon, 0.0)
            else:
                t.armed = False
            return
        if command == mavlink2.MAV_CMD_DO_SET_MODE:  # ArduCopter: acknowledged once the mode is set
            t.mode = int(p[1])
            return
        if command == TAKEOFF:
            if not t.armed or t.mode != CopterMode.GUIDED:
                raise CommandRejected(what or "takeoff", mavlink2.MAV_RESULT_FAILED, [])
            self._takeoff_alt = p[6] if len(p) > 6 else 10.0
            return
        if command == MISSION_START:
            if t.mode != CopterMode.AUTO or not self._mission:
                raise CommandRejected(what or "mission start", mavlink2.MAV_RESULT_FAILED, ["Missing mission"])
            t.mission_seq = 1
            self._auto_clock = 0.0
            return

    async def command_int(
        self,
        command: int,
        params: Sequence[float],
        lat: float,
        lon: float,
        alt: float,
        *,
        frame: int = 0,
        what: str = "",
        timeout: float = 1.5,
        retries: int = 3,
    ) -> None:
        if self.accept_delay_s > 0:
            await asyncio.sleep(self.accept_delay_s)
        self.commands.append((command, (*(float(v) for v in params), lat, lon, alt)))
        if command in self.refuse:
            raise CommandRejected(what or str(command), mavlink2.MAV_RESULT_DENIED, [])
        t = self.telemetry
        if command == mavlink2.MAV_CMD_DO_REPOSITION:  # as ArduCopter: GUIDED (with the CHANGE_MODE flag) and fly there
            if t.mode != CopterMode.GUIDED and not int(params[1]) & mavlink2.MAV_DO_REPOSITION_FLAGS_CHANGE_MODE:
                raise CommandRejected(what or "reposition", mavlink2.MAV_RESULT_DENIED, [])
            t.mode = int(CopterMode.GUIDED)
            self._target = (lat, lon, alt)
            self._takeoff_alt = None
        if self.ack_delay_s > 0:
            await asyncio.sleep(self.ack_delay_s)

    async def set_param(self, name: str, value: float, *, timeout: float = 1.0, retries: int = 3) -> float:
        self.params[name] = float(value)
        return float(value)

    def send_position_target(self, lat: float, lon: float, alt_rel: float) -> None:
        t = self.telemetry
        self.targets.append(SentTarget((t.lat, t.lon), (lat, lon), alt_rel, t.mode))  # type: ignore[arg-type]
        if t.mode == CopterMode.GUIDED and t.armed:  # ArduCopter ignores targets outside GUIDED
            self._target = (lat, lon, alt_rel)
            self._takeoff_alt = None

    async def wait_for(self, pred: Callable[[Telemetry], bool], timeout: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred(self.telemetry):
            if loop.time() >= deadline:
                raise CommandTimeout(f"{self.drone_id}: {what}: not within {timeout:g} s")
            await asyncio.sleep(TICK_S / 2)

    async def upload_mission(self, items: Sequence[MissionItem], *, timeout: float = 1.5, retries: int = 4) -> None:
        self.missions.append(list(items))
        self._mission = list(items)
        self.telemetry.mission_seq = 0

    # --- test controls ----------------------------------------------------------------

    def _become_ready(self) -> None:
        self.telemetry.ekf_flags = EKF_READY_FLAGS
        self.telemetry.gps_fix = 3
        self.telemetry.satellites = 12

    @property
    def position(self) -> tuple[float, float]:
        return self.telemetry.lat, self.telemetry.lon  # type: ignore[return-value]

    @property
    def on_ground(self) -> bool:
        return not self.telemetry.armed and (self.telemetry.alt_rel_m or 0.0) < 2.0

    def sent(self, command: int) -> list[tuple[float, ...]]:
        return [p for c, p in self.commands if c == command]

    # --- physics ----------------------------------------------------------------------

    def step(self, dt: float) -> None:
        t = self.telemetry
        self._elapsed += dt
        if self.ready_after_s > 0 and self._elapsed >= self.ready_after_s and not t.ekf_ok:
            self._become_ready()
        if not t.armed:
            return
        mode = t.mode
        if mode == CopterMode.GUIDED:
            if self._takeoff_alt is not None:
                self._climb_to(self._takeoff_alt, dt)
            if self._target is not None:
                lat, lon, alt = self._target
                self._move_to(lat, lon, dt)
                self._climb_to(alt, dt)
        elif mode == CopterMode.RTL:
            self._go_home_and_land(dt)
        elif mode == CopterMode.LAND:
            self._descend(dt)
        elif mode == CopterMode.AUTO and self._mission and t.mission_seq:
            self._auto(dt)
        self.track.append((t.lat, t.lon, t.alt_rel_m))  # type: ignore[arg-type]

    def _auto(self, dt: float) -> None:
        t = self.telemetry
        assert self._mission is not None and t.mission_seq is not None
        item = self._mission[min(t.mission_seq, len(self._mission) - 1)]
        if item.command == mavlink2.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._go_home_and_land(dt)
            return
        self._auto_clock += dt
        if self._auto_clock < self.auto_step_s:
            return
        self._auto_clock = 0.0
        t.mission_seq += 1
        nxt = self._mission[min(t.mission_seq, len(self._mission) - 1)]
        if nxt.command == mavlink2.MAV_CMD_NAV_WAYPOINT:
            t.lat, t.lon = nxt.lat, nxt.lon
            t.alt_rel_m = nxt.alt
        elif nxt.command == mavlink2.MAV_CMD_NAV_TAKEOFF:
            t.alt_rel_m = max(t.alt_rel_m or 0.0, nxt.alt)

    def _move_to(self, lat: float, lon: float, dt: float) -> bool:
        t = self.telemetry
        assert t.lat is not None and t.lon is not None
        dist = geo.equirectangular_m(t.lat, t.lon, lat, lon)
        step = self.speed_ms * dt
        if dist <= step or dist < 0.01:
            t.lat, t.lon = lat, lon
            self._drain(dist)
            return True
        f = step / dist
        t.lat += (lat - t.lat) * f
        t.lon += (lon - t.lon) * f
        self._drain(step)
        return False

    def _drain(self, metres: float) -> None:
        t = self.telemetry
        if self.drain_pct_per_m and t.battery_pct is not None:
            t.battery_pct = max(0.0, t.battery_pct - metres * self.drain_pct_per_m)

    def _climb_to(self, alt: float, dt: float) -> None:
        t = self.telemetry
        cur = t.alt_rel_m or 0.0
        rate = self.climb_ms if alt > cur else self.descent_ms
        delta = alt - cur
        t.alt_rel_m = alt if abs(delta) <= rate * dt else cur + math.copysign(rate * dt, delta)

    def _descend(self, dt: float) -> None:
        t = self.telemetry
        t.alt_rel_m = max(0.0, (t.alt_rel_m or 0.0) - self.descent_ms * dt)
        if t.alt_rel_m <= 0.0:
            t.armed = False

    def _go_home_and_land(self, dt: float) -> None:
        t = self.telemetry
        home = t.home or (t.lat, t.lon, 0.0)
        if self._move_to(home[0], home[1], dt):
            self._descend(dt)


class RecordingReports:
    """A FlightReports that records every call in order; `search_plan` hands out the plans it is given."""

    def __init__(self, plans: Sequence[SearchPlan] = ()) -> None:
        self.calls: list[tuple[Any, ...]] = []
        #: (mission id, alert kind) of each return that alerts people (battery reserve, failsafe).
        self.alerts: list[tuple[str, Any]] = []
        self.plans = list(plans)
        self._changed = asyncio.Event()

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        self._changed.set()

    async def flight_step(self, mission_id: str, step: str, detail: str = "", ok: bool = True) -> None:
        self._record("flight_step", mission_id, step, detail, ok)

    async def flight_launched(self, mission_id: str) -> None:
        self._record("flight_launched", mission_id)

    async def flight_on_scene(self, mission_id: str, searching: bool = False) -> None:
        self._record("flight_on_scene", mission_id, searching)

    async def flight_returning(self, mission_id: str, reason: str, *, alert: object = None) -> None:
        if alert is not None:
            self.alerts.append((mission_id, alert))
        self._record("flight_returning", mission_id, reason)

    async def flight_landed(self, drone_id: str, reason: str = "landed", *, deliberate: bool = False) -> None:
        self._record("flight_landed", drone_id, reason)

    async def flight_failed(self, mission_id: str, reason: str, *, to_maintenance: bool) -> None:
        self._record("flight_failed", mission_id, reason, to_maintenance)

    async def block_incident(self, incident_id: str, reason: str) -> None:
        self._record("block_incident", incident_id, reason)

    async def search_plan(self, mission_id: str) -> SearchPlan:
        self._record("search_plan", mission_id)
        return self.plans.pop(0)

    async def search_progress(self, mission_id: str, done: int) -> None:
        self._record("search_progress", mission_id, done)

    async def link_state(self, drone_id: str, up: bool) -> None:
        self._record("link_state", drone_id, up)

    def telemetry(self, drone_id: str, lat: float, lon: float, alt_m: float, battery_pct: float | None) -> None:
        pass

    def live_telemetry(self, drone_id: str, data: dict[str, Any]) -> None:
        pass

    # --- reading the record ------------------------------------------------------------

    def timeline(self) -> list[str]:
        """Calls in order, flight steps as 'step:<name>' and the rest by their method name."""
        return [f"step:{c[2]}" if c[0] == "flight_step" else c[0] for c in self.calls]

    def steps(self) -> dict[str, tuple[str, bool]]:
        """Flight step name -> (detail, ok) of its last report."""
        return {c[2]: (c[3], c[4]) for c in self.calls if c[0] == "flight_step"}

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]

    async def wait_until(self, pred: Callable[[RecordingReports], bool], timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not pred(self):
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)
