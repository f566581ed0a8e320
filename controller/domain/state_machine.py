"""A tiny generic state machine that refuses illegal moves and keeps a timestamped history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


class IllegalTransition(Exception):
    """Raised when a transition is not in the table; the API answers 409 and nothing changes."""

    def __init__(self, entity: str, entity_id: str, current: StrEnum, wanted: StrEnum) -> None:
        super().__init__(f"{entity} {entity_id} cannot go from {current.value} to {wanted.value}")
        self.entity = entity
        self.entity_id = entity_id
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class Transition:
    entity: str
    entity_id: str
    from_state: str | None
    to_state: str
    at: datetime
    reason: str
    actor: str


class StateMachine(Generic[S]):
    """Holds one entity's state; `advance` checks the table and records the transition."""

    __slots__ = ("entity", "entity_id", "_state", "_table", "since")

    def __init__(self, entity: str, entity_id: str, state: S, table: dict[S, frozenset[S]], since: datetime) -> None:
        self.entity = entity
        self.entity_id = entity_id
        self._state = state
        self._table = table
        self.since = since

    @property
    def state(self) -> S:
        return self._state

    def can(self, wanted: S) -> bool:
        return wanted in self._table[self._state]

    def check(self, wanted: S) -> None:
        if not self.can(wanted):
            raise IllegalTransition(self.entity, self.entity_id, self._state, wanted)

    def path_to(self, wanted: S) -> list[S] | None:
        """The shortest legal sequence of states leading to `wanted` (empty if already there), or None.

        For repairs, where the state the entity must reach is known but its way there was missed (a drone
        found flying home that the controller still thought was in preflight goes through `enroute`).
        """
        if wanted == self._state:
            return []
        previous: dict[S, S | None] = {self._state: None}
        frontier = [self._state]
        while frontier:
            nxt: list[S] = []
            for s in frontier:
                for t in sorted(self._table[s], key=lambda v: v.value):
                    if t not in previous:
                        previous[t] = s
                        if t == wanted:
                            out = [t]
                            while (p := previous[out[-1]]) is not None and p != self._state:
                                out.append(p)
                            return out[::-1]
                        nxt.append(t)
            frontier = nxt
        return None

    def advance(self, wanted: S, at: datetime, reason: str = "", actor: str = "system") -> Transition:
        self.check(wanted)
        previous = self._state
        self._state = wanted
        self.since = at
        return Transition(self.entity, self.entity_id, previous.value, wanted.value, at, reason, actor)
