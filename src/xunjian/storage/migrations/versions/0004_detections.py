"""The detect-stage ledger: frame_detections and detections.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Written out in full rather than importing ``storage.detection_tables``: a revision describes
the schema as it was when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "frame_detections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("frame_key", sa.Text(), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("detection_count", sa.Integer(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_frame_detections"),
        sa.UniqueConstraint(
            "batch_id", "frame_key", "detector", "model_version", name="uq_frame_detections_key"
        ),
    )
    op.create_index("ix_frame_detections_batch_id", "frame_detections", ["batch_id"])
    op.create_table(
        "detections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("frame_key", sa.Text(), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_detections"),
    )
    op.create_index("ix_detections_batch_id_frame_key", "detections", ["batch_id", "frame_key"])


def downgrade() -> None:
    op.drop_index("ix_detections_batch_id_frame_key", table_name="detections")
    op.drop_table("detections")
    op.drop_index("ix_frame_detections_batch_id", table_name="frame_detections")
    op.drop_table("frame_detections")
