"""The case-loop tables: the transactional outbox and the case each issue became.

Declared on the one ``Base`` of ``storage.tables`` and created by the Alembic revision
``0003``. Importing this module registers the tables on ``Base.metadata``.

* ``outbox``: one message to the case system per row, written in the same transaction as the
  issue change that caused it. ``idempotency_key`` is unique, so enqueuing the same message
  twice is a no-op; ``state`` moves pending → delivered, or → dead after too many tries (an
  operator can replay it); ``next_attempt_at`` holds the backoff.
* ``cases``: one row per issue that reached the case system — its connector, the case id
  (or the Open311 token until the id is known), the case system's own status words, and the
  issue it replaced when it was opened for a recurrence.

This module may import SQLAlchemy, ``storage.tables`` and ``xunjian.core`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from xunjian.storage.tables import Base, JSONDocument, UTCDateTime

OUTBOX_STATES: tuple[str, ...] = ("pending", "delivered", "dead")
OUTBOX_KINDS: tuple[str, ...] = ("create", "update", "recur")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class OutboxRow(Base):
    """One message for the case system, delivered exactly once."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("state", OUTBOX_STATES), name="state"),
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        Index(None, "state", "next_attempt_at"),
        Index(None, "issue_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    issue_id: Mapped[str] = mapped_column(String(64), ForeignKey("issues.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CaseRow(Base):
    """The case an issue became in the case system."""

    __tablename__ = "cases"
    __table_args__ = (Index(None, "connector", "case_id"), Index(None, "external_status"))

    issue_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    connector: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[str | None] = mapped_column(String(128))
    token: Mapped[str | None] = mapped_column(String(128))
    external_status: Mapped[str | None] = mapped_column(String(64))
    status_notes: Mapped[str | None] = mapped_column(Text)
    agency: Mapped[str | None] = mapped_column(String(256))
    external_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replaces_issue_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


OUTBOX = cast(Table, OutboxRow.__table__)
CASES = cast(Table, CaseRow.__table__)
