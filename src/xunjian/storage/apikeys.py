"""API keys of the service: created once, stored hashed, checked on every request.

A key reads ``xj_<prefix>_<secret>``: ``prefix`` is 8 random hex digits shown to operators
(``xunjian keys list``) and ``secret`` 32 random bytes in URL-safe base64. Only the SHA-256
of the whole key is stored (a slow hash adds nothing for a secret with 256 bits of entropy),
so a key is shown once, when it is made, and never again. A revoked key stays in the table
(its name stays taken) and no longer authenticates.

Each key has one role (``storage.access_tables.ROLES``): ``uploader`` (inspection teams),
``case_platform``, ``ml_engineer``, ``admin``; the service decides what each role may do.

This module may import SQLAlchemy, ``xunjian.errors`` and ``storage``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, exc, insert, select, update

from xunjian.errors import InputError
from xunjian.storage import db
from xunjian.storage.access_tables import API_KEYS, ROLES

__all__ = ["ROLES", "ApiKey", "KeyStore", "hash_key"]

KEY_PATTERN = re.compile(r"^xj_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per key: no write on every request."""


def hash_key(key: str) -> str:
    """The stored form of a key: hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key as operators see it (never the secret)."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ApiKey:
        return cls(
            row.id,
            row.name,
            row.role,
            row.prefix,
            row.created_at,
            row.revoked_at,
            row.last_used_at,
        )


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            "expected 1-128 characters of A-Z a-z 0-9 . _ @ - starting with a letter or digit,"
            f" got {name!r}",
            source="key name",
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"expected one of {', '.join(ROLES)}, got {role!r}", source="role")
    return role


class KeyStore(db.Repository):
    """The ``api_keys`` table."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
        engine: Engine | None = None,
    ) -> None:
        super().__init__(url, migrate=migrate, clock=clock, engine=engine)

    def __repr__(self) -> str:
        return f"KeyStore({db.mask_url(self.url)!r})"

    def create(self, name: str, role: str) -> tuple[ApiKey, str]:
        """A new key named ``name`` with ``role``; returns the record and the key itself,
        which is not stored and cannot be shown again. InputError when the name is taken."""
        _check_name(name)
        check_role(role)
        prefix = secrets.token_hex(4)
        key = f"xj_{prefix}_{secrets.token_urlsafe(32)}"
        now = self._clock()
        values: dict[str, object] = {
            "name": name,
            "role": role,
            "prefix": prefix,
            "key_hash": hash_key(key),
            "created_at": now,
        }
        try:
            with db.database_errors(self.url, f"creating key {name!r}"), self.engine.begin() as c:
                if c.execute(select(API_KEYS.c.id).where(API_KEYS.c.name == name)).first():
                    raise InputError(f"a key named {name!r} exists already", source="key name")
                new_id = c.execute(insert(API_KEYS).values(values).returning(API_KEYS.c.id))
                record = ApiKey(int(new_id.scalar_one()), name, role, prefix, now)
        except exc.IntegrityError:  # a concurrent create of the same name
            raise InputError(f"a key named {name!r} exists already", source="key name") from None
        return record, key

    def authenticate(self, key: str | None) -> ApiKey | None:
        """The active key record for ``key``, or None (unknown, malformed or revoked)."""
        if not key or not KEY_PATTERN.match(key):
            return None
        query = select(API_KEYS).where(API_KEYS.c.key_hash == hash_key(key))
        with db.database_errors(self.url, "checking an API key"), self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.revoked_at is not None:
            return None
        record = ApiKey.from_row(row)
        now = self._clock()
        if record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION:
            stamp = update(API_KEYS).where(API_KEYS.c.id == record.id).values(last_used_at=now)
            with db.database_errors(self.url, "stamping an API key"), self.engine.begin() as c:
                c.execute(stamp)
        return record

    def revoke(self, name: str) -> bool:
        """Revokes the key named ``name``; False when there is no such active key."""
        _check_name(name)
        stmt = (
            update(API_KEYS)
            .where(API_KEYS.c.name == name, API_KEYS.c.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )
        with db.database_errors(self.url, f"revoking key {name!r}"), self.engine.begin() as c:
            return c.execute(stmt).rowcount > 0

    def get(self, name: str) -> ApiKey | None:
        query = select(API_KEYS).where(API_KEYS.c.name == name)
        with db.database_errors(self.url, f"reading key {name!r}"), self.engine.connect() as c:
            row = c.execute(query).first()
        return None if row is None else ApiKey.from_row(row)

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        query = select(API_KEYS).order_by(API_KEYS.c.id)
        with db.database_errors(self.url, "listing keys"), self.engine.connect() as c:
            return [ApiKey.from_row(row) for row in c.execute(query)]
