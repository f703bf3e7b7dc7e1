"""The catalog: which batches exist, their frames, and which images failed and why.

Every write is idempotent on its natural key — a batch id, or (batch id, object key) for a
frame or a failure — through the dialect's ``INSERT … ON CONFLICT DO UPDATE``, so a re-run or
two workers racing on the same image never duplicate a row. ``frame_count`` counts the frames
whose status is ``ok`` and ``failed_count`` the keys with a recorded failure; both are
recomputed from the rows by :meth:`Catalog.upsert_batch` and :meth:`Catalog.set_batch_status`.

This module may import SQLAlchemy, ``xunjian.core``, ``xunjian.errors``, ``xunjian.settings``
(for :meth:`Catalog.from_settings`) and ``storage.db`` / ``storage.tables``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row, Update, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from xunjian.core.records import Frame, Platform
from xunjian.errors import InputError
from xunjian.storage import db
from xunjian.storage.tables import (
    BATCH_STATUSES,
    BATCHES,
    FRAME_FAILURES,
    FRAME_STATUSES,
    FRAMES,
    frame_from_row,
    frame_to_row,
)

if TYPE_CHECKING:
    from xunjian.settings import Settings

PLATFORMS = tuple(p.value for p in Platform)
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_KEY_LENGTH = 1024


def validate_batch_id(batch_id: str) -> str:
    """``batch_id`` if it is 1–128 of ``A-Z a-z 0-9 . _ -`` starting with a letter or digit."""
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise InputError(
            "expected 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit, "
            f"got {batch_id!r}",
            source="batch id",
        )
    return batch_id


def _validate_key(key: str) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise InputError(
            f"expected a non-empty key of at most {MAX_KEY_LENGTH} characters without NUL, "
            f"got {key[:100]!r}{'…' if len(key) > 100 else ''}",
            source="frame key",
        )
    return key


@dataclass(frozen=True)
class BatchInfo:
    """One batch as the catalog knows it."""

    batch_id: str
    platform: str
    status: str
    manifest_key: str | None
    created_at: datetime
    completed_at: datetime | None
    frame_count: int
    failed_count: int
    meta: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> BatchInfo:
        return cls(
            batch_id=row.id,
            platform=row.platform,
            status=row.status,
            manifest_key=row.manifest_key,
            created_at=row.created_at,
            completed_at=row.completed_at,
            frame_count=row.frame_count,
            failed_count=row.failed_count,
            meta=dict(row.meta),
        )


@dataclass(frozen=True)
class FrameFailure:
    """An image of a batch that could not be used, and why."""

    batch_id: str
    key: str
    reason: str
    recorded_at: datetime


class Catalog(db.Repository):
    """Batches, frames and failures in a SQLite or PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
        engine: Engine | None = None,
    ) -> None:
        super().__init__(url, migrate=migrate, clock=clock, engine=engine)
        self._insert = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        """The catalog at ``settings.db_url`` (default: SQLite file in the data directory)."""
        return cls(settings.db_url)

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[Connection]:
        with db.database_errors(self.url, doing), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _connection(self, doing: str) -> Iterator[Connection]:
        with db.database_errors(self.url, doing), self.engine.connect() as conn:
            yield conn

    def __repr__(self) -> str:
        return f"Catalog({db.mask_url(self.url)!r})"

    # -- batches -------------------------------------------------------------------------

    def upsert_batch(
        self,
        batch_id: str,
        platform: str,
        *,
        manifest_key: str | None = None,
        status: str = "uploaded",
        meta: Mapping[str, Any] | None = None,
    ) -> BatchInfo:
        """Create the batch or update it; ``None`` for manifest_key or meta keeps the stored one."""
        validate_batch_id(batch_id)
        platform = _one_of(str(platform), PLATFORMS, "platform")
        _one_of(status, BATCH_STATUSES, "batch status")
        now = self._clock()
        values = {
            "id": batch_id,
            "platform": platform,
            "status": status,
            "manifest_key": manifest_key,
            "created_at": now,
            "completed_at": now if status == "processed" else None,
            "frame_count": 0,
            "failed_count": 0,
            "meta": dict(meta or {}),
        }
        stmt = self._insert(BATCHES).values(values)
        changes: dict[str, Any] = {
            "platform": stmt.excluded.platform,
            "status": stmt.excluded.status,
            "completed_at": stmt.excluded.completed_at,
        }
        if manifest_key is not None:
            changes["manifest_key"] = stmt.excluded.manifest_key
        if meta is not None:
            changes["meta"] = stmt.excluded.meta
        stmt = stmt.on_conflict_do_update(index_elements=[BATCHES.c.id], set_=changes)
        with self._transaction(f"saving batch {batch_id!r}") as conn:
            conn.execute(stmt)
            conn.execute(self._recount(batch_id))
            row = conn.execute(select(BATCHES).where(BATCHES.c.id == batch_id)).one()
            return BatchInfo.from_row(row)

    def set_batch_status(self, batch_id: str, status: str) -> None:
        """Move the batch to ``status``; ``processed`` stamps ``completed_at``, others clear it.

        Also recomputes ``frame_count`` and ``failed_count`` from the frame and failure rows.
        """
        validate_batch_id(batch_id)
        _one_of(status, BATCH_STATUSES, "batch status")
        completed_at = self._clock() if status == "processed" else None
        stmt = self._recount(batch_id).values(status=status, completed_at=completed_at)
        with self._transaction(f"setting the status of batch {batch_id!r}") as conn:
            if conn.execute(stmt).rowcount == 0:
                raise InputError(f"no such batch: {batch_id!r}", source="batch id")

    def batch(self, batch_id: str) -> BatchInfo | None:
        """The batch, or None if the catalog does not know it."""
        validate_batch_id(batch_id)
        with self._connection(f"reading batch {batch_id!r}") as conn:
            row = conn.execute(select(BATCHES).where(BATCHES.c.id == batch_id)).first()
            return None if row is None else BatchInfo.from_row(row)

    def batches(self) -> list[BatchInfo]:
        """Every batch, oldest first."""
        query = select(BATCHES).order_by(BATCHES.c.created_at, BATCHES.c.id)
        with self._connection("listing batches") as conn:
            return [BatchInfo.from_row(row) for row in conn.execute(query)]

    def delete_batch(self, batch_id: str) -> bool:
        """Delete the batch with its frames and failures; False if it did not exist."""
        validate_batch_id(batch_id)
        with self._transaction(f"deleting batch {batch_id!r}") as conn:
            return conn.execute(delete(BATCHES).where(BATCHES.c.id == batch_id)).rowcount > 0

    # -- frames and failures -------------------------------------------------------------

    def upsert_frame(self, frame: Frame) -> None:
        """Store ``frame``; a re-run of the same (batch, key) updates it and clears a failure."""
        validate_batch_id(frame.batch_id)
        _validate_key(frame.key)
        if frame.captured_at is not None and frame.captured_at.utcoffset() is None:
            raise InputError(
                f"expected a timezone-aware captured_at, got {frame.captured_at.isoformat()}",
                source=frame.key,
            )
        values = frame_to_row(frame)
        values.update(status="ok", failure_reason=None, updated_at=self._clock())
        stmt = self._insert(FRAMES).values(values)
        changes = {name: stmt.excluded[name] for name in values if name not in ("batch_id", "key")}
        stmt = stmt.on_conflict_do_update(
            index_elements=[FRAMES.c.batch_id, FRAMES.c.key], set_=changes
        )
        clear = delete(FRAME_FAILURES).where(
            FRAME_FAILURES.c.batch_id == frame.batch_id, FRAME_FAILURES.c.key == frame.key
        )
        with self._transaction(f"saving frame {frame.key!r} of {frame.batch_id!r}") as conn:
            conn.execute(stmt)
            conn.execute(clear)

    def record_failure(self, batch_id: str, key: str, reason: str) -> None:
        """Record that ``key`` failed and why; the frame row for that key, if any, is failed."""
        validate_batch_id(batch_id)
        _validate_key(key)
        values = {"batch_id": batch_id, "key": key, "reason": reason, "recorded_at": self._clock()}
        stmt = self._insert(FRAME_FAILURES).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[FRAME_FAILURES.c.batch_id, FRAME_FAILURES.c.key],
            set_={"reason": stmt.excluded.reason, "recorded_at": stmt.excluded.recorded_at},
        )
        mark = (
            update(FRAMES)
            .where(FRAMES.c.batch_id == batch_id, FRAMES.c.key == key)
            .values(status="failed", failure_reason=reason, updated_at=values["recorded_at"])
        )
        with self._transaction(f"recording the failure of {key!r} in {batch_id!r}") as conn:
            conn.execute(stmt)
            conn.execute(mark)

    def frames(self, batch_id: str, *, status: str | None = None) -> list[Frame]:
        """The frames of the batch ordered by key; ``status`` (``ok``/``failed``) filters."""
        validate_batch_id(batch_id)
        query = select(FRAMES).where(FRAMES.c.batch_id == batch_id).order_by(FRAMES.c.key)
        if status is not None:
            _one_of(status, FRAME_STATUSES, "frame status")
            query = query.where(FRAMES.c.status == status)
        with self._connection(f"reading frames of {batch_id!r}") as conn:
            return [frame_from_row(row) for row in conn.execute(query)]

    def failures(self, batch_id: str) -> list[FrameFailure]:
        """The failed keys of the batch with their reasons, ordered by key."""
        validate_batch_id(batch_id)
        query = (
            select(FRAME_FAILURES)
            .where(FRAME_FAILURES.c.batch_id == batch_id)
            .order_by(FRAME_FAILURES.c.key)
        )
        with self._connection(f"reading failures of {batch_id!r}") as conn:
            return [
                FrameFailure(row.batch_id, row.key, row.reason, row.recorded_at)
                for row in conn.execute(query)
            ]

    def _recount(self, batch_id: str) -> Update:
        ok_frames = (
            select(func.count())
            .select_from(FRAMES)
            .where(FRAMES.c.batch_id == batch_id, FRAMES.c.status == "ok")
            .scalar_subquery()
        )
        failed = (
            select(func.count())
            .select_from(FRAME_FAILURES)
            .where(FRAME_FAILURES.c.batch_id == batch_id)
            .scalar_subquery()
        )
        return (
            update(BATCHES)
            .where(BATCHES.c.id == batch_id)
            .values(frame_count=ok_frames, failed_count=failed)
        )


def _one_of(value: str, allowed: tuple[str, ...], source: str) -> str:
    if value not in allowed:
        raise InputError(f"expected one of {', '.join(allowed)}, got {value!r}", source=source)
    return value
