"""The detect-stage ledger: which frame each detector version has run on, and what it found.

Declared on the one ``Base`` of ``storage.tables`` and created by the Alembic revision
``0004``. Importing this module registers the tables on ``Base.metadata``.

* ``frame_detections``: one row per (batch, frame, detector, model version) that ran — also
  when it found nothing, which is what lets a re-run (or a restarted worker) skip the frame.
* ``detections``: the boxes found, in the frame's original pixels.

The ledger row and its detections are written in one transaction, so a crash never leaves a
frame marked done without its boxes.

This module may import SQLAlchemy and ``storage.tables`` only.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Float, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xunjian.storage.tables import Base, UTCDateTime


class FrameDetectionRow(Base):
    """One detector version that ran on one frame of one batch."""

    __tablename__ = "frame_detections"
    __table_args__ = (
        UniqueConstraint(
            "batch_id",
            "frame_key",
            "detector",
            "model_version",
            name="uq_frame_detections_key",
        ),
        Index(None, "batch_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128))
    frame_key: Mapped[str] = mapped_column(Text)
    detector: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    detection_count: Mapped[int] = mapped_column(Integer)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DetectionRow(Base):
    """One box a detector version found in a frame (original pixels)."""

    __tablename__ = "detections"
    __table_args__ = (Index(None, "batch_id", "frame_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(128))
    frame_key: Mapped[str] = mapped_column(Text)
    detector: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(128))
    class_name: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)


FRAME_DETECTIONS = cast(Table, FrameDetectionRow.__table__)
DETECTIONS = cast(Table, DetectionRow.__table__)
