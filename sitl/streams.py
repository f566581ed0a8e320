"""Which requested telemetry is due when: the one owner of stream rates and due times.

A ground station asks for telemetry in two ways: REQUEST_DATA_STREAM sets a
rate for a whole group (ArduCopter's MAV_DATA_STREAM_*), SET_MESSAGE_INTERVAL
sets (or stops) one message, which then leaves its group's schedule. This class
alone keeps both tables and the next due time of each entry, and answers "what
is due now" with message ids, in the order ArduCopter sends them: the groups in
the order they were asked for (each group's messages in table order, less
those with an interval of their own), then the single-message intervals.

It builds nothing and knows no vehicle (telemetry.py turns the ids into
messages), so it can be tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pymavlink.dialects.v20 import ardupilotmega as mav

#: REQUEST_DATA_STREAM's "every group".
STREAM_ALL = mav.MAV_DATA_STREAM_ALL
#: ArduCopter caps a requested stream rate at 50 Hz.
MAX_STREAM_HZ = 50.0
#: SET_MESSAGE_INTERVAL: nothing faster than 50 Hz.
MIN_INTERVAL_S = 0.02
#: Due times are compared with this slack, so a rate that divides the step size is not late by rounding.
_SLACK_S = 1e-9


class StreamScheduler:
    """Rates and due times of the requested streams (simulated seconds); `due(now)` advances them."""

    def __init__(self, groups: Mapping[int, Sequence[int]]) -> None:
        """`groups`: stream group id -> the message ids it carries, in sending order (the table's order is ALL's)."""
        self._groups: dict[int, tuple[int, ...]] = {g: tuple(ids) for g, ids in groups.items()}
        self._rates: dict[int, float] = {}  # group -> Hz, in the order first asked for
        self._group_due: dict[int, float] = {}
        self._intervals: dict[int, float] = {}  # msgid -> seconds between sends (inf: never)
        self._interval_due: dict[int, float] = {}

    # --- requests ---------------------------------------------------------------------------------

    def request_data_stream(self, stream_id: int, rate_hz: float, start: int | bool, now: float) -> None:
        """REQUEST_DATA_STREAM: start (at `rate_hz`, due at once if new) or stop a group, or every group."""
        groups = tuple(self._groups) if stream_id == STREAM_ALL else (stream_id,)
        for g in groups:
            if g not in self._groups:
                continue  # a group ArduCopter has but the simulator does not send
            if start and rate_hz > 0:
                self._rates[g] = min(float(rate_hz), MAX_STREAM_HZ)
                self._group_due.setdefault(g, now)  # a running group keeps its phase
            else:
                self._rates.pop(g, None)
                self._group_due.pop(g, None)

    def set_message_interval(self, msgid: int, interval_us: float, now: float) -> None:
        """SET_MESSAGE_INTERVAL: 0 = back to its group's rate, negative = never, else every `interval_us` from now."""
        if interval_us == 0:
            self._intervals.pop(msgid, None)
            self._interval_due.pop(msgid, None)
        elif interval_us < 0:
            self._intervals[msgid] = math.inf
            self._interval_due.pop(msgid, None)
        else:
            self._intervals[msgid] = max(interval_us / 1e6, MIN_INTERVAL_S)
            self._interval_due[msgid] = now

    # --- questions --------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Anything requested at all (else there is nothing to build)."""
        return bool(self._rates or self._intervals)

    def streaming(self, group: int) -> bool:
        return group in self._rates

    def rate(self, group: int) -> float | None:
        """The group's rate in Hz, or None when it is not streamed."""
        return self._rates.get(group)

    def interval(self, msgid: int) -> float | None:
        """The message's own interval in seconds (inf: stopped), or None when it follows its group."""
        return self._intervals.get(msgid)

    # --- the schedule -----------------------------------------------------------------------------

    def due(self, now: float) -> list[int]:
        """The message ids due at `now`, in sending order; each due entry's next time is advanced.

        A schedule that fell behind (nobody asked for a while) restarts from `now`
        instead of sending a burst to catch up.
        """
        out: list[int] = []
        limit = now + _SLACK_S
        intervals = self._intervals
        if self._rates:
            group_due = self._group_due
            for group, hz in self._rates.items():
                when = group_due[group]
                if limit < when:
                    continue
                period = 1.0 / hz
                group_due[group] = when + period if when + period > now else now + period
                ids = self._groups[group]
                out.extend([msgid for msgid in ids if msgid not in intervals] if intervals else ids)
        if intervals:
            interval_due = self._interval_due
            for msgid, interval in intervals.items():
                if interval == math.inf:
                    continue
                when = interval_due[msgid]
                if limit < when:
                    continue
                interval_due[msgid] = when + interval if when + interval > now else now + interval
                out.append(msgid)
        return out
