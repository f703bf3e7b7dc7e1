"""API-key authentication and role checks.

A request carries its key as ``Authorization: Bearer xj_…`` or ``X-API-Key: xj_…``. Every
route but the public ones (health, the map page's static files, the OpenAPI documents, and
object URLs that carry their own signature) depends on a :class:`RoleGuard` naming the roles
allowed; ``admin`` is always allowed. No key, or a key that is unknown or revoked: 401. A
valid key of another role: 403. The guard is a dependency object with a ``roles`` attribute,
so tests can walk ``app.routes`` and check every route has one.

Roles (``storage.access_tables.ROLES``):

- ``uploader``: inspection teams — create and upload batches, follow their progress, read
  issues and footprints.
- ``case_platform``: the case system — read issues, give feedback, send case-status callbacks.
- ``ml_engineer``: read everything, give feedback, models, 评价 statistics, metrics.
- ``admin``: everything.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from xunjian.storage.apikeys import ROLES, ApiKey

UPLOADER = "uploader"
CASE_PLATFORM = "case_platform"
ML_ENGINEER = "ml_engineer"
ADMIN = "admin"
ALL_ROLES: tuple[str, ...] = ROLES

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer xj_…`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: xj_…`")


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"}
    )


class RoleGuard:
    """A dependency that returns the request's key when its role is one of ``roles``."""

    def __init__(self, *roles: str) -> None:
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise ValueError(f"expected roles among {', '.join(ROLES)}, got {unknown}")
        self.roles = frozenset({*roles, ADMIN})

    def __repr__(self) -> str:
        return f"RoleGuard({', '.join(sorted(self.roles))})"

    def __call__(
        self,
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header_key: Annotated[str | None, Depends(_header)],
    ) -> ApiKey:
        key = header_key or (bearer.credentials if bearer is not None else None)
        if not key:
            raise _unauthorized(
                "expected an API key in 'Authorization: Bearer <key>' or 'X-API-Key', got none"
            )
        record: ApiKey | None = request.app.state.xunjian.keys.authenticate(key.strip())
        if record is None:
            raise _unauthorized("API key not recognised (unknown, malformed or revoked)")
        request.state.api_key = record
        if record.role not in self.roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"key {record.name!r} has role {record.role}; this needs one of "
                f"{', '.join(sorted(self.roles))}",
            )
        return record


def guard_of(dependency: object) -> RoleGuard | None:
    return dependency if isinstance(dependency, RoleGuard) else None
