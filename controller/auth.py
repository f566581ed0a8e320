"""Who is calling: roles and bearer tokens.

Tokens are opaque random strings mapped to a role (and, for pilots, one
station). They come from a JSON file (DRONEFLEET_TOKENS_FILE) or the
DRONEFLEET_TOKENS environment variable; `dronefleet serve --dev` generates
development tokens when none are configured. Only SHA-256 digests are kept in
memory and compared.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Role(StrEnum):
    COMMANDER = "commander"
    PILOT = "pilot"
    SEARCH_TEAM = "search_team"
    ADMIN = "admin"
    #: A drone's own credential: it may only publish its video.
    DRONE = "drone"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    name: str
    station_id: str | None = None
    drone_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.name}"[:64]


class TokenGrant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    role: Role
    name: str = Field(min_length=1, max_length=48)
    station_id: str | None = None
    drone_id: str | None = None

    @model_validator(mode="after")
    def _bindings(self) -> TokenGrant:
        if (self.role is Role.PILOT) != bool(self.station_id):
            raise ValueError("pilot tokens, and only they, are bound to a station_id")
        if (self.role is Role.DRONE) != bool(self.drone_id):
            raise ValueError("drone tokens, and only they, are bound to a drone_id")
        return self


class TokenFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    tokens: dict[str, TokenGrant]

    @model_validator(mode="after")
    def _strong(self) -> TokenFile:
        for token in self.tokens:
            if len(token) < 16:
                raise ValueError(f"token for {self.tokens[token].name!r} is shorter than 16 characters")
        return self


class TokenError(Exception):
    pass


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenRegistry:
    def __init__(self, grants: dict[str, TokenGrant], known_stations: set[str] | None = None) -> None:
        if known_stations is not None:
            for grant in grants.values():
                if grant.station_id and grant.station_id not in known_stations:
                    raise TokenError(f"token {grant.name!r} names unknown station {grant.station_id!r}")
        self._by_digest = {
            _digest(token): Principal(g.role, g.name, g.station_id, g.drone_id) for token, g in grants.items()
        }

    def __len__(self) -> int:
        return len(self._by_digest)

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > 512:
            return None
        return self._by_digest.get(_digest(token))

    @classmethod
    def from_document(cls, doc: Any, source: str, known_stations: set[str] | None = None) -> TokenRegistry:
        try:
            parsed = TokenFile.model_validate(doc)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise TokenError(f"{source}: {where}: {first['msg']}") from None
        return cls(dict(parsed.tokens), known_stations)

    @classmethod
    def from_environment(cls, known_stations: set[str] | None = None) -> TokenRegistry | None:
        """DRONEFLEET_TOKENS (JSON) or DRONEFLEET_TOKENS_FILE (path to JSON); None when neither is set."""
        inline = os.environ.get("DRONEFLEET_TOKENS")
        if inline:
            try:
                doc = json.loads(inline)
            except json.JSONDecodeError as exc:
                raise TokenError(f"DRONEFLEET_TOKENS is not JSON: {exc}") from None
            return cls.from_document(doc, "DRONEFLEET_TOKENS", known_stations)
        path = os.environ.get("DRONEFLEET_TOKENS_FILE")
        if path:
            return cls.load(Path(path), known_stations)
        return None

    @classmethod
    def load(cls, path: Path, known_stations: set[str] | None = None) -> TokenRegistry:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise TokenError(f"{path}: {exc}") from None
        return cls.from_document(doc, str(path), known_stations)


def generate_dev_tokens(station_ids: list[str], drone_ids: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """A token document with one commander, admin and search team, one pilot per station, one per drone."""
    tokens: dict[str, Any] = {
        f"cmd-{secrets.token_urlsafe(18)}": {"role": "commander", "name": "duty-commander"},
        f"adm-{secrets.token_urlsafe(18)}": {"role": "admin", "name": "admin"},
        f"srch-{secrets.token_urlsafe(18)}": {"role": "search_team", "name": "search-team-1"},
    }
    for sid in station_ids:
        tokens[f"plt-{secrets.token_urlsafe(18)}"] = {"role": "pilot", "name": f"pilot-{sid}", "station_id": sid}
    for did in drone_ids:
        tokens[f"drn-{secrets.token_urlsafe(18)}"] = {"role": "drone", "name": f"drone-{did}", "drone_id": did}
    return {"tokens": tokens}
