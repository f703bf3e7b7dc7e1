"""The API-key table of the service.

Declared on the one ``Base`` of ``storage.tables`` and created by the Alembic revision
``0003``. Keys are stored hashed (SHA-256 of a random 32-byte secret: a slow hash adds
nothing for secrets with that much entropy); ``prefix`` is the key's first characters, shown
to operators and used to find the row; ``revoked_at`` set means the key no longer works.

This module may import SQLAlchemy and ``storage.tables`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CheckConstraint, Index, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from xunjian.storage.tables import Base, UTCDateTime

ROLES: tuple[str, ...] = ("uploader", "case_platform", "ml_engineer", "admin")


class ApiKeyRow(Base):
    """One API key: a name, a role, the hash of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('uploader', 'case_platform', 'ml_engineer', 'admin')", name="role"
        ),
        Index(None, "prefix"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


API_KEYS = cast(Table, ApiKeyRow.__table__)
