"""The relational schema of xunjian: one SQLAlchemy 2 declarative ``Base`` and its tables.

Every table of the project is declared here on ``Base.metadata``, and every change to it goes
through a new Alembic revision in ``storage/migrations/versions/`` (a test compares the
migrated database with this metadata, so the two cannot drift). Later stages add their tables
(detections, issues, outbox) the same way: a class below and a revision that creates it.

Conventions that hold for every table:
- datetimes are :class:`UTCDateTime`: stored as UTC, returned timezone-aware (UTC) on SQLite
  and PostgreSQL alike; a naive datetime is refused.
- JSON columns are :data:`JSONDocument`: JSON on SQLite, JSONB on PostgreSQL.
- constraint and index names follow :data:`NAMING_CONVENTION`, so migrations can name them.

:func:`frame_to_row` and :func:`frame_from_row` map ``core.records.Frame`` to and from the
``frames`` columns. The module-level ``BATCHES``, ``FRAMES`` and ``FRAME_FAILURES`` are the
Core tables that the catalog queries.

This module may import SQLAlchemy and ``xunjian.core`` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Platform

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BATCH_STATUSES: tuple[str, ...] = ("uploading", "uploaded", "processing", "processed", "failed")
FRAME_STATUSES: tuple[str, ...] = ("ok", "failed")

#: JSON on SQLite, JSONB on PostgreSQL (indexable, compact); migrations use the same type.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; naive datetimes are refused.

    SQLite has no time zones: the value is stored as naive UTC text and UTC is attached on
    the way back. PostgreSQL stores ``timestamptz``; results are converted to UTC so both
    backends return the same ``tzinfo``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"expected a timezone-aware datetime, got naive {value.isoformat()}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """The one declarative base; ``Base.metadata`` is what Alembic migrates to."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class BatchRow(Base):
    """One uploaded flight or drive: the unit of upload, processing and progress."""

    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
        CheckConstraint(_in("platform", ("drone", "vehicle")), name="platform"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    manifest_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    frame_count: Mapped[int] = mapped_column(Integer)
    failed_count: Mapped[int] = mapped_column(Integer)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class FrameRow(Base):
    """One image of a batch with its camera, pose and time (a ``core.records.Frame``).

    Intrinsics and pose columns are all NULL when the metadata could not give them;
    ``problems`` then says why. ``status`` is ``failed`` while a failure is recorded for the
    same key (see :class:`FrameFailureRow`).
    """

    __tablename__ = "frames"
    __table_args__ = (
        UniqueConstraint("batch_id", "key"),
        Index(None, "lat", "lon"),
        Index(None, "batch_id"),
        CheckConstraint(_in("status", FRAME_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128), ForeignKey("batches.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    platform: Mapped[str] = mapped_column(String(16))
    captured_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    camera_make: Mapped[str | None] = mapped_column(Text)
    camera_model: Mapped[str | None] = mapped_column(Text)

    fx: Mapped[float | None] = mapped_column(Float)
    fy: Mapped[float | None] = mapped_column(Float)
    cx: Mapped[float | None] = mapped_column(Float)
    cy: Mapped[float | None] = mapped_column(Float)
    intrinsics_width: Mapped[int | None] = mapped_column(Integer)
    intrinsics_height: Mapped[int | None] = mapped_column(Integer)
    intrinsics_source: Mapped[str | None] = mapped_column(Text)

    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    height_m: Mapped[float | None] = mapped_column(Float)
    yaw_deg: Mapped[float | None] = mapped_column(Float)
    pitch_deg: Mapped[float | None] = mapped_column(Float)
    roll_deg: Mapped[float | None] = mapped_column(Float)
    abs_alt_m: Mapped[float | None] = mapped_column(Float)
    sigma_xy_m: Mapped[float | None] = mapped_column(Float)
    sigma_h_m: Mapped[float | None] = mapped_column(Float)
    sigma_yaw_deg: Mapped[float | None] = mapped_column(Float)
    pose_source: Mapped[str | None] = mapped_column(Text)

    problems: Mapped[list[str]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FrameFailureRow(Base):
    """An image of a batch that could not be used, with the reason; one row per key.

    A key may fail before it ever has a frame row (a corrupt JPEG), so failures live in their
    own table; a later successful run of the same key deletes the row.
    """

    __tablename__ = "frame_failures"
    __table_args__ = (UniqueConstraint("batch_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128), ForeignKey("batches.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


BATCHES = cast(Table, BatchRow.__table__)
FRAMES = cast(Table, FrameRow.__table__)
FRAME_FAILURES = cast(Table, FrameFailureRow.__table__)


def frame_to_row(frame: Frame) -> dict[str, Any]:
    """The ``frames`` column values of ``frame`` (without id, status and timestamps)."""
    k, p = frame.intrinsics, frame.pose
    return {
        "batch_id": frame.batch_id,
        "key": frame.key,
        "sha256": frame.sha256,
        "width": frame.width,
        "height": frame.height,
        "platform": Platform(frame.platform).value,
        "captured_at": frame.captured_at,
        "camera_make": frame.camera_make,
        "camera_model": frame.camera_model,
        "fx": k.fx if k else None,
        "fy": k.fy if k else None,
        "cx": k.cx if k else None,
        "cy": k.cy if k else None,
        "intrinsics_width": k.width if k else None,
        "intrinsics_height": k.height if k else None,
        "intrinsics_source": k.source if k else None,
        "lat": p.lat if p else None,
        "lon": p.lon if p else None,
        "height_m": p.height_m if p else None,
        "yaw_deg": p.yaw_deg if p else None,
        "pitch_deg": p.pitch_deg if p else None,
        "roll_deg": p.roll_deg if p else None,
        "abs_alt_m": p.abs_alt_m if p else None,
        "sigma_xy_m": p.sigma_xy_m if p else None,
        "sigma_h_m": p.sigma_h_m if p else None,
        "sigma_yaw_deg": p.sigma_yaw_deg if p else None,
        "pose_source": p.source if p else None,
        "problems": list(frame.problems),
    }


def frame_from_row(row: Row[Any]) -> Frame:
    """The ``Frame`` stored in a ``frames`` row (a pose or intrinsics with NULLs is None)."""
    intrinsics = None
    if row.fx is not None:
        intrinsics = CameraIntrinsics(
            width=row.intrinsics_width,
            height=row.intrinsics_height,
            fx=row.fx,
            fy=row.fy,
            cx=row.cx,
            cy=row.cy,
            source=row.intrinsics_source,
        )
    pose = None
    if row.lat is not None:
        pose = CameraPose(
            lat=row.lat,
            lon=row.lon,
            height_m=row.height_m,
            yaw_deg=row.yaw_deg,
            pitch_deg=row.pitch_deg,
            roll_deg=row.roll_deg,
            abs_alt_m=row.abs_alt_m,
            sigma_xy_m=row.sigma_xy_m,
            sigma_h_m=row.sigma_h_m,
            sigma_yaw_deg=row.sigma_yaw_deg,
            source=row.pose_source,
        )
    return Frame(
        batch_id=row.batch_id,
        key=row.key,
        sha256=row.sha256,
        width=row.width,
        height=row.height,
        platform=Platform(row.platform),
        captured_at=row.captured_at,
        camera_make=row.camera_make,
        camera_model=row.camera_model,
        intrinsics=intrinsics,
        pose=pose,
        problems=tuple(row.problems),
    )


# Registers the issue tables on Base, so Base.metadata always describes the whole schema.
from xunjian.storage import access_tables as access_tables  # noqa: E402
from xunjian.storage import case_tables as case_tables  # noqa: E402
from xunjian.storage import detection_tables as detection_tables  # noqa: E402
from xunjian.storage import issue_tables as issue_tables  # noqa: E402
