"""Batches, frames and frame failures.

Revision ID: 0001
Revises:
Create Date: 2025-11-24

Written out in full rather than importing ``storage.tables``: a revision describes the schema
as it was when it was written, whatever the models say later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("manifest_key", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("completed_at", _utc(), nullable=True),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("meta", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        sa.CheckConstraint(
            "status IN ('uploading', 'uploaded', 'processing', 'processed', 'failed')",
            name="ck_batches_status",
        ),
        sa.CheckConstraint("platform IN ('drone', 'vehicle')", name="ck_batches_platform"),
    )

    op.create_table(
        "frames",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("captured_at", _utc(), nullable=True),
        sa.Column("camera_make", sa.Text(), nullable=True),
        sa.Column("camera_model", sa.Text(), nullable=True),
        sa.Column("fx", sa.Float(), nullable=True),
        sa.Column("fy", sa.Float(), nullable=True),
        sa.Column("cx", sa.Float(), nullable=True),
        sa.Column("cy", sa.Float(), nullable=True),
        sa.Column("intrinsics_width", sa.Integer(), nullable=True),
        sa.Column("intrinsics_height", sa.Integer(), nullable=True),
        sa.Column("intrinsics_source", sa.Text(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("height_m", sa.Float(), nullable=True),
        sa.Column("yaw_deg", sa.Float(), nullable=True),
        sa.Column("pitch_deg", sa.Float(), nullable=True),
        sa.Column("roll_deg", sa.Float(), nullable=True),
        sa.Column("abs_alt_m", sa.Float(), nullable=True),
        sa.Column("sigma_xy_m", sa.Float(), nullable=True),
        sa.Column("sigma_h_m", sa.Float(), nullable=True),
        sa.Column("sigma_yaw_deg", sa.Float(), nullable=True),
        sa.Column("pose_source", sa.Text(), nullable=True),
        sa.Column("problems", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_frames"),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name="fk_frames_batch_id_batches", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("batch_id", "key", name="uq_frames_batch_id_key"),
        sa.CheckConstraint("status IN ('ok', 'failed')", name="ck_frames_status"),
    )
    op.create_index("ix_frames_lat_lon", "frames", ["lat", "lon"])
    op.create_index("ix_frames_batch_id", "frames", ["batch_id"])

    op.create_table(
        "frame_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_frame_failures"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name="fk_frame_failures_batch_id_batches",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("batch_id", "key", name="uq_frame_failures_batch_id_key"),
    )


def downgrade() -> None:
    op.drop_table("frame_failures")
    op.drop_index("ix_frames_batch_id", table_name="frames")
    op.drop_index("ix_frames_lat_lon", table_name="frames")
    op.drop_table("frames")
    op.drop_table("batches")
