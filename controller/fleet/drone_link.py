"""One MAVLink 2 link to one drone: connection, liveness, telemetry, and confirmed requests.

Every request has a timeout and retries, and is confirmed the way ArduCopter
confirms it: COMMAND_LONG/INT by COMMAND_ACK, SET_MODE by the mode in the next
HEARTBEAT (there is no ACK), PARAM_SET by the PARAM_VALUE echo (an unknown name
gets no answer at all), a mission upload by MISSION_ACK (the transfer itself is
mission_upload.py's state machine; this link only feeds it and sends what it
says). Position targets get no answer and are confirmed by the vehicle's own
progress.

The link never blocks the event loop: bytes are parsed as they arrive, and the
fleet service drives heartbeats and liveness checks for all links from one
ticker instead of two timers per drone.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from controller.fleet.copter import ACK_RESULTS, CUSTOM_MODE_ENABLED, STREAM_RATES_HZ, CopterMode
from controller.fleet.mission_upload import (
    ITEM_TIMEOUT_S,
    FailureKind,
    MissionItem,
    MissionUpload,
    UploadFailure,
    e7,
    mission_result_text,
)
from controller.fleet.telemetry import Telemetry
from controller.fleet.transport import Endpoint, Transport, open_transport

__all__ = [
    "CommandRejected", "CommandTimeout", "Connect", "DroneLink", "LinkConfig", "LinkDown", "LinkError", "LinkListener",
    "MissionItem", "MissionProtocolError", "MissionRejected", "MissionTimeout", "e7",
]

log = logging.getLogger(__name__)

GCS_SYSID = 255
GCS_COMPID = 190
#: MAV_COMP_ID_GIMBAL and MAV_COMP_ID_GIMBAL2..6: a MAVLink gimbal reports its attitude from one of these.
GIMBAL_COMPONENTS = frozenset({154, 171, 172, 173, 174, 175})
#: No message for this long and the link counts as lost (checked 4 times a second: detected within 3 s).
LINK_TIMEOUT_S = 2.5
#: Lost this long with the socket still open: drop it and reconnect.
RECONNECT_AFTER_S = 10.0
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


class LinkError(Exception):
    """A request to the vehicle did not succeed."""


class CommandTimeout(LinkError):
    pass


class CommandRejected(LinkError):
    def __init__(self, what: str, result: int, texts: Sequence[str]) -> None:
        reason = ACK_RESULTS.get(result, f"result {result}")
        detail = f" ({'; '.join(texts)})" if texts else ""
        super().__init__(f"{what} {reason}{detail}")
        self.result = result
        self.texts = list(texts)


class LinkDown(LinkError):
    pass


class MissionRejected(CommandRejected):
    """A MISSION_ACK error ended an upload; `result` is a MAV_MISSION_RESULT (named as such, not as a MAV_RESULT)."""

    def __init__(self, message: str, result: int, item: int | None = None) -> None:
        LinkError.__init__(self, message)
        self.result = result
        self.texts = [f"MISSION_ACK {mission_result_text(result)}"]
        self.item = item


class MissionTimeout(CommandTimeout):
    """The vehicle stopped answering a mission upload (or never started it)."""


class MissionProtocolError(LinkError):
    """The vehicle asked for something the upload does not have, or accepted it too early."""


#: MISSION_* messages a running upload is fed.
_UPLOAD_REPLIES = frozenset({"MISSION_REQUEST", "MISSION_REQUEST_INT", "MISSION_ACK"})


@dataclass(frozen=True)
class LinkConfig:
    drone_id: str
    endpoint: Endpoint
    sysid: int
    compid: int = 1
    signing_key: bytes | None = None


class LinkListener(Protocol):
    def link_state_changed(self, link: DroneLink, up: bool) -> None: ...

    def telemetry_received(self, link: DroneLink, kind: str) -> None: ...


class _Writer:
    """File-like adaptor so pymavlink's `send` packs, signs and numbers messages for us."""

    def __init__(self) -> None:
        self.transport: Transport | None = None

    def write(self, data: bytes) -> None:
        if self.transport is None:
            raise LinkDown("not connected")
        self.transport.write(data)


#: Opens the byte transport to a vehicle; tests pass an in-memory one.
Connect = Callable[[Endpoint], Awaitable[Transport]]


class DroneLink:
    def __init__(
        self,
        config: LinkConfig,
        listener: LinkListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        connect: Connect = open_transport,
    ):
        self.config = config
        self.listener = listener
        self.clock = clock
        self._connect = connect
        self.telemetry = Telemetry()
        self._writer = _Writer()
        self._mav = _MAVLink(self._writer, srcSystem=GCS_SYSID, srcComponent=GCS_COMPID)
        self._mav.robust_parsing = True
        if config.signing_key is not None:
            self._mav.signing.secret_key = config.signing_key
            self._mav.signing.link_id = 1
            self._mav.signing.sign_outgoing = True
            self._mav.signing.timestamp = int((time.time() - 1420070400) * 100000)
            self._mav.signing.allow_unsigned_callback = lambda _mav, _msg_id: False
        self.up = False
        self.connected = False
        self.last_rx = 0.0
        self.rx_messages = 0
        self.rx_bad = 0
        self.reconnects = 0
        self._waiters: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._transport: Transport | None = None
        self._upload_lock = asyncio.Lock()  # one mission transfer per link at a time
        self._upload_inbox: _Inbox | None = None  # the running upload's MISSION_* messages
        #: Other components of this vehicle heard from: component id -> (MAV_TYPE of its HEARTBEAT, last heard).
        #: Cameras (MAV_TYPE_CAMERA, as mavlink-camera-manager announces them) are asked for their video streams.
        self.components: dict[int, tuple[int, float]] = {}

    @property
    def drone_id(self) -> str:
        return self.config.drone_id

    @property
    def rejected_unsigned(self) -> int:
        """Messages dropped because they were unsigned or badly signed on a signed link."""
        return self._mav.signing.reject_count

    # --- life cycle -----------------------------------------------------------

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run(), name=f"link-{self.drone_id}")

    async def stop(self) -> None:
        self._stopping = True
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        await self._drop()
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(LinkDown("link stopped"))
        self._waiters.clear()
        if self._upload_inbox is not None:
            self._upload_inbox.abort(LinkDown(f"{self.drone_id}: link stopped during a mission upload"))

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                self._transport = await self._connect(self.config.endpoint)
            except (OSError, asyncio.TimeoutError) as exc:
                delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
                if attempt == 0 or attempt % 10 == 0:
                    log.info("%s: cannot reach %s (%s); retrying in %.1f s", self.drone_id, self.config.endpoint, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._writer.transport = self._transport
            self.connected = True
            self.last_rx = self.clock()
            self.request_streams()
            try:
                await self._read_loop(self._transport)
            except (ConnectionError, OSError) as exc:
                log.warning("%s: connection lost: %s", self.drone_id, exc)
            finally:
                await self._drop()
            if not self._stopping:
                self.reconnects += 1
                await asyncio.sleep(BACKOFF_S[0])

    async def _drop(self) -> None:
        self.connected = False
        self._writer.transport = None
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.close()

    async def _read_loop(self, transport: Transport) -> None:
        while True:
            data = await transport.read()
            now = self.clock()
            try:
                messages = self._mav.parse_buffer(data)
            except mavlink2.MAVError:
                self.rx_bad += 1
                continue
            for msg in messages or ():
                self._on_message(msg, now)

    def _on_message(self, msg: Any, now: float) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA":
            self.rx_bad += 1
            return
        if msg.get_srcSystem() != self.config.sysid:
            return  # another vehicle or a GCS on a shared link
        self.rx_messages += 1
        if msg.get_srcComponent() != self.config.compid:
            # A camera or another companion component routed through the autopilot: not the vehicle's telemetry
            # (a camera's HEARTBEAT carries no flight mode), but its answers may be awaited.
            if kind == "HEARTBEAT":
                self.components[msg.get_srcComponent()] = (msg.type, now)
            elif kind == "GIMBAL_DEVICE_ATTITUDE_STATUS" and msg.get_srcComponent() in GIMBAL_COMPONENTS:
                self.telemetry.apply(msg, now)  # a MAVLink gimbal reporting its own attitude: the camera's pitch
            self._resolve_waiters(msg)
            return
        self.last_rx = now
        if not self.up:
            self.up = True
            if self.listener:
                self.listener.link_state_changed(self, True)
        self.telemetry.apply(msg, now)
        if self._upload_inbox is not None and kind in _UPLOAD_REPLIES:
            self._upload_inbox.put(msg)
        self._resolve_waiters(msg)
        if self.listener:
            self.listener.telemetry_received(self, kind)

    def _resolve_waiters(self, msg: Any) -> None:
        if self._waiters:
            for pred, fut in list(self._waiters):
                if not fut.done() and pred(msg):
                    fut.set_result(msg)
            self._waiters = [(p, f) for p, f in self._waiters if not f.done()]

    # --- driven by the fleet ticker ----------------------------------------------

    def heartbeat(self) -> None:
        """The ground station's 1 Hz HEARTBEAT (the vehicle's GCS failsafe watches for it)."""
        if self.connected:
            self._send(
                self._mav.heartbeat_encode(
                    mavlink2.MAV_TYPE_GCS, mavlink2.MAV_AUTOPILOT_INVALID, 0, 0, mavlink2.MAV_STATE_ACTIVE
                )
            )

    def check_liveness(self, now: float) -> None:
        if self.up and now - self.last_rx > LINK_TIMEOUT_S:
            self.up = False
            log.warning("%s: link lost (no message for %.1f s)", self.drone_id, now - self.last_rx)
            if self.listener:
                self.listener.link_state_changed(self, False)
        if self.connected and now - self.last_rx > RECONNECT_AFTER_S and self._transport is not None:
            log.warning("%s: silent for %.0f s; reconnecting", self.drone_id, now - self.last_rx)
            transport, self._transport = self._transport, None
            asyncio.get_running_loop().create_task(transport.close())

    def request_streams(self) -> None:
        for stream, rate in STREAM_RATES_HZ.items():
            self._send(self._mav.request_data_stream_encode(self.config.sysid, self.config.compid, stream, rate, 1))

    # --- sending ----------------------------------------------------------------

    def _send(self, msg: Any) -> None:
        try:
            self._mav.send(msg)
        except (LinkDown, ConnectionError, OSError) as exc:
            raise LinkDown(f"{self.drone_id}: cannot send {msg.get_type()}: {exc}") from None

    def _expect(self, pred: Callable[[Any], bool]) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return fut

    def _forget(self, fut: asyncio.Future[Any]) -> None:
        if not fut.done():
            fut.cancel()
        self._waiters = [(p, f) for p, f in self._waiters if f is not fut]

    async def _request(self, send: Callable[[int], None], pred: Callable[[Any], bool], what: str, timeout: float, retries: int) -> Any:
        """Send, wait for the confirming message, resend on silence; raise CommandTimeout after the retries."""
        for attempt in range(retries):
            fut = self._expect(pred)
            try:
                send(attempt)
                return await asyncio.wait_for(asyncio.shield(fut), timeout)
            except asyncio.TimeoutError:
                log.info("%s: no answer to %s (attempt %d/%d)", self.drone_id, what, attempt + 1, retries)
            finally:
                self._forget(fut)
        raise CommandTimeout(f"{self.drone_id}: {what}: no answer after {retries} attempts of {timeout:g} s")

    async def command_long(
        self, command: int, params: Sequence[float] = (), *, what: str = "", timeout: float = 1.5, retries: int = 3
    ) -> None:
        """COMMAND_LONG confirmed by COMMAND_ACK; raises CommandRejected with the vehicle's STATUSTEXTs."""
        p = list(params) + [0.0] * (7 - len(params))
        sys_, comp = self.config.sysid, self.config.compid
        texts_before = self.telemetry.texts_received

        def send(attempt: int) -> None:
            self._send(self._mav.command_long_encode(sys_, comp, command, attempt, *p))

        ack = await self._request(
            send, lambda m: _ack_of(m, command, comp), what or f"command {command}", timeout, retries
        )
        if ack.result != mavlink2.MAV_RESULT_ACCEPTED:
            # Refusal reasons come as warnings or worse; informational texts that happen to arrive are not reasons.
            raise CommandRejected(what or f"command {command}", ack.result, await self._refusal_texts(texts_before))

    async def command_int(
        self,
        command: int,
        params: Sequence[float],
        lat: float,
        lon: float,
        alt: float,
        *,
        frame: int = mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        what: str = "",
        timeout: float = 1.5,
        retries: int = 3,
    ) -> None:
        """COMMAND_INT confirmed by COMMAND_ACK; raises CommandRejected with the vehicle's STATUSTEXTs."""
        p = list(params) + [0.0] * (4 - len(params))
        sys_, comp = self.config.sysid, self.config.compid
        texts_before = self.telemetry.texts_received

        def send(_attempt: int) -> None:
            self._send(
                self._mav.command_int_encode(sys_, comp, frame, command, 0, 0, *p, e7(lat), e7(lon), alt)
            )

        ack = await self._request(
            send, lambda m: _ack_of(m, command, comp), what or f"command {command}", timeout, retries
        )
        if ack.result != mavlink2.MAV_RESULT_ACCEPTED:
            raise CommandRejected(what or f"command {command}", ack.result, await self._refusal_texts(texts_before))

    async def request_message(
        self,
        msgid: int,
        params: Sequence[float] = (),
        *,
        component: int | None = None,
        timeout: float = 1.5,
        retries: int = 3,
        settle: float = 0.3,
    ) -> list[Any]:
        """MAV_CMD_REQUEST_MESSAGE to one component (default: the autopilot); the messages it sent in answer.

        The ACK must be ACCEPTED (CommandRejected otherwise, CommandTimeout without one). The requested
        message may come before or after the ACK; several may come (e.g. VIDEO_STREAM_INFORMATION for
        every stream): they are collected until `settle` s pass without another, or `timeout` s at most.
        """
        comp = self.config.compid if component is None else component
        sys_ = self.config.sysid
        p = [float(msgid), *params] + [0.0] * (6 - len(params))
        got: list[Any] = []
        arrived = asyncio.Event()

        def answer(m: Any) -> bool:
            if m.get_msgId() == msgid and m.get_srcComponent() == comp:
                got.append(m)
                arrived.set()
            return False  # keep listening: more may come

        listener = self._expect(answer)
        try:

            def send(attempt: int) -> None:
                self._send(self._mav.command_long_encode(sys_, comp, mavlink2.MAV_CMD_REQUEST_MESSAGE, attempt, *p))

            what = f"request message {msgid} from component {comp}"
            ack = await self._request(send, lambda m: _ack_of(m, mavlink2.MAV_CMD_REQUEST_MESSAGE, comp), what, timeout, retries)
            if ack.result != mavlink2.MAV_RESULT_ACCEPTED:
                raise CommandRejected(what, ack.result, [])
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                arrived.clear()
                try:
                    await asyncio.wait_for(arrived.wait(), min(left, settle) if got else left)
                except asyncio.TimeoutError:
                    if got:
                        break
            if not got:
                raise CommandTimeout(f"{self.drone_id}: {what}: accepted, but the message never came")
            return got
        finally:
            self._forget(listener)

    async def _refusal_texts(self, texts_before: int) -> list[str]:
        """Warnings (or worse) the vehicle sent since `texts_before`: the reasons for a refusal just acknowledged."""
        await asyncio.sleep(0.05)  # the STATUSTEXT explaining a refusal follows the ACK closely
        new = self.telemetry.texts_received - texts_before
        recent = self.telemetry.texts[-new:] if new else []
        return [t for sev, t in recent if sev <= mavlink2.MAV_SEVERITY_WARNING]

    async def set_mode(self, mode: CopterMode, *, timeout: float = 1.0, retries: int = 5) -> None:
        """SET_MODE gets no ACK on ArduCopter: confirm by the HEARTBEAT, re-sending (boot can overwrite it)."""
        if self.telemetry.mode == mode:
            return
        sys_ = self.config.sysid

        def send(_attempt: int) -> None:
            self._send(self._mav.set_mode_encode(sys_, CUSTOM_MODE_ENABLED, int(mode)))

        await self._request(
            send, lambda m: m.get_type() == "HEARTBEAT" and m.custom_mode == mode, f"mode {mode.name}", timeout, retries
        )

    async def set_param(self, name: str, value: float, *, timeout: float = 1.0, retries: int = 3) -> float:
        """PARAM_SET confirmed by the PARAM_VALUE echo; an unknown name never answers (CommandTimeout)."""
        sys_, comp = self.config.sysid, self.config.compid
        key = name.encode()

        def send(_attempt: int) -> None:
            self._send(self._mav.param_set_encode(sys_, comp, key, float(value), mavlink2.MAV_PARAM_TYPE_REAL32))

        echo = await self._request(
            send, lambda m: m.get_type() == "PARAM_VALUE" and _param_name(m) == name, f"set {name}={value:g}", timeout, retries
        )
        if abs(echo.param_value - value) > 1e-3 * max(1.0, abs(value)):
            raise CommandRejected(f"set {name}={value:g}", mavlink2.MAV_RESULT_DENIED, [f"vehicle kept {echo.param_value:g}"])
        return float(echo.param_value)

    async def read_param(self, name: str, *, timeout: float = 1.0, retries: int = 3) -> float:
        sys_, comp = self.config.sysid, self.config.compid
        key = name.encode()

        def send(_attempt: int) -> None:
            self._send(self._mav.param_request_read_encode(sys_, comp, key, -1))

        echo = await self._request(
            send, lambda m: m.get_type() == "PARAM_VALUE" and _param_name(m) == name, f"read {name}", timeout, retries
        )
        return float(echo.param_value)

    def send_position_target(self, lat: float, lon: float, alt_rel: float) -> None:
        """Fly to a point in GUIDED (no ACK; POSITION_TARGET_GLOBAL_INT echoes it and the vehicle moves)."""
        mask = 0b0000111111111000  # position only
        self._send(
            self._mav.set_position_target_global_int_encode(
                0, self.config.sysid, self.config.compid, mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, mask,
                e7(lat), e7(lon), alt_rel, 0, 0, 0, 0, 0, 0, 0, 0,
            )
        )

    async def wait_for(self, pred: Callable[[Telemetry], bool], timeout: float, what: str) -> None:
        """Wait until the telemetry satisfies `pred` (checked on every message)."""
        if pred(self.telemetry):
            return
        fut = self._expect(lambda _m: pred(self.telemetry))
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise CommandTimeout(f"{self.drone_id}: {what}: not within {timeout:g} s") from None
        finally:
            self._forget(fut)

    async def upload_mission(
        self,
        items: Sequence[MissionItem],
        *,
        timeout: float = 1.5,
        retries: int = 4,
        item_timeout: float = ITEM_TIMEOUT_S,
        deadline: float | None = None,
        transfers: int = 2,
    ) -> None:
        """Upload a mission: MISSION_COUNT, then the vehicle asks for each item, then MISSION_ACK accepted.

        Item 0 is home (ArduCopter keeps its own). Each transfer is mission_upload.MissionUpload:
        MISSION_COUNT is re-sent every `timeout` s until the first request (`retries` times in
        all); every request is answered, repeats too; INVALID_SEQUENCE acks (the vehicle got an
        item twice) are ignored; a transfer fails if the vehicle stops asking for `item_timeout`
        s or is not done by `deadline` s (default: from the count).

        A transfer that stalled (our timeout, or the vehicle's: MISSION_ACK OPERATION_CANCELLED
        after 8 simulated seconds without an item, under a second of wall time at a high SITL
        speed-up) is started over with a new MISSION_COUNT, which ArduPilot takes from the same
        station as a clean restart, up to `transfers` transfers in all. Then: MissionTimeout, or
        MissionRejected (a CommandRejected) for a MISSION_ACK error, named as MAV_MISSION_RESULT
        (a refused item or count is never retried); MissionProtocolError if the vehicle asks
        for items the upload does not have. One upload per link at a time (a second call
        waits); links upload independently of each other.
        """
        async with self._upload_lock:
            for attempt in range(1, max(1, transfers) + 1):
                failure = await self._upload_once(items, timeout, retries, item_timeout, deadline)
                if failure is None:
                    return
                stalled = failure.kind is FailureKind.TIMEOUT or failure.result == mavlink2.MAV_MISSION_OPERATION_CANCELLED
                if not stalled or attempt >= transfers:
                    raise self._upload_error(failure)
                log.warning("%s: mission upload stalled (%s); starting it over (transfer %d of %d)", self.drone_id, failure.message, attempt + 1, transfers)

    async def _upload_once(
        self, items: Sequence[MissionItem], timeout: float, retries: int, item_timeout: float, deadline: float | None
    ) -> UploadFailure | None:
        """One transfer, start to end; returns why it failed, or None once accepted."""
        loop = asyncio.get_running_loop()
        up = MissionUpload(
            items, target_system=self.config.sysid, target_component=self.config.compid,
            gcs_system=GCS_SYSID, gcs_component=GCS_COMPID,
            count_timeout=timeout, count_attempts=retries, item_timeout=item_timeout, deadline=deadline,
        )
        inbox = self._upload_inbox = _Inbox()
        try:
            self._send_all(up.start(loop.time()))
            while not up.finished:
                msg = inbox.get()
                if msg is None:
                    await inbox.wait(up.next_tick - loop.time())
                    self._send_all(up.tick(loop.time()))
                    continue
                self._send_all(up.receive(msg, loop.time()))
        finally:
            self._upload_inbox = None
        st = up.stats
        if up.failure is not None:
            log.warning("%s: mission upload failed: %s (%s)", self.drone_id, up.failure.message, st)
            return up.failure
        log.info(
            "%s: mission of %d items accepted (%d COUNTs, %d items sent, %d repeated requests, %d INVALID_SEQUENCE acks ignored)",
            self.drone_id, up.count, st.count_sent, st.items_sent, st.repeated_requests, st.invalid_sequence_acks,
        )
        return None

    def _send_all(self, msgs: Sequence[Any]) -> None:
        for m in msgs:
            self._send(m)

    def _upload_error(self, f: UploadFailure) -> LinkError:
        message = f"{self.drone_id}: mission upload: {f.message}"
        if f.kind is FailureKind.REJECTED and f.result is not None:
            return MissionRejected(message, f.result, f.item)
        if f.kind is FailureKind.TIMEOUT:
            return MissionTimeout(message)
        return MissionProtocolError(message)


class _Inbox:
    """Messages for the running upload, in arrival order: nothing is lost between two waits."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._event = asyncio.Event()
        self._error: BaseException | None = None

    def put(self, msg: Any) -> None:
        self._items.append(msg)
        self._event.set()

    def abort(self, exc: BaseException) -> None:
        self._error = exc
        self._event.set()

    def get(self) -> Any | None:
        if self._error is not None:
            raise self._error
        return self._items.popleft() if self._items else None

    async def wait(self, timeout: float) -> None:
        """Until something arrives or `timeout` s pass (the caller re-checks either way)."""
        self._event.clear()
        if self._items or self._error is not None:
            return
        try:
            await asyncio.wait_for(self._event.wait(), max(0.0, timeout) if math.isfinite(timeout) else None)
        except asyncio.TimeoutError:
            pass


class _MAVLink(mavlink2.MAVLink):
    """pymavlink's MAVLink with the signature checked before the stream timestamp is recorded.

    pymavlink 2.4.50 records an incoming stream's timestamp before it checks the
    HMAC, so one forged frame carrying a future timestamp makes every genuine
    frame after it look replayed: an attacker could cut a signed link with one
    packet. Here a frame must be authentic before its timestamp counts.
    """

    def check_signature(self, msgbuf: bytearray, srcSystem: int, srcComponent: int) -> bool:  # noqa: N803
        h = hashlib.new("sha256")
        h.update(self.signing.secret_key)
        h.update(msgbuf[:-6])
        if h.digest()[:6] != msgbuf[-6:]:
            return False
        return super().check_signature(msgbuf, srcSystem, srcComponent)


def _ack_of(msg: Any, command: int, component: int) -> bool:
    """The COMMAND_ACK for `command` from the component it was sent to (a camera's ACK is not the autopilot's)."""
    return msg.get_type() == "COMMAND_ACK" and msg.command == command and msg.get_srcComponent() == component


def _param_name(msg: Any) -> str:
    raw = msg.param_id
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return raw.rstrip("\x00")
