"""Authentication and role checks as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller.auth import Principal, Role
from controller.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="Bearer token (see README: development tokens)")


def runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    who = request.app.state.runtime.tokens.authenticate(creds.credentials if creds else None)
    if who is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or unknown bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return who


def require(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = frozenset(roles)

    def check(who: Principal = Depends(principal)) -> Principal:
        if who.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {who.role.value} may not do this (allowed: {', '.join(sorted(r.value for r in allowed))})",
            )
        return who

    return check


#: People: every role but a drone's own credential, which may only publish that drone's video
#: (POST /api/v1/video/publish/{its id}) and read nothing.
PEOPLE = (Role.COMMANDER, Role.ADMIN, Role.PILOT, Role.SEARCH_TEAM)
#: Kept for callers of the old name: "any role" never included drones in intent; now it says so.
ANY_ROLE = PEOPLE
COMMAND = (Role.COMMANDER, Role.ADMIN)
