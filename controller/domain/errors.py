"""Errors the domain raises; the API maps them to 404, 403 and 409 with the reason."""

from __future__ import annotations

from controller.domain.state_machine import IllegalTransition


class NotFound(Exception):
    def __init__(self, entity: str, entity_id: str) -> None:
        super().__init__(f"{entity} {entity_id!r} not found")
        self.entity = entity
        self.entity_id = entity_id


class Forbidden(Exception):
    """The caller is authenticated but may not act on this object."""


class Conflict(Exception):
    """The request is valid but contradicts the current state (the API answers 409)."""


__all__ = ["Conflict", "Forbidden", "IllegalTransition", "NotFound"]
