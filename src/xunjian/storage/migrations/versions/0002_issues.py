"""Issues, their observations and verification decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-24

Written out in full rather than importing ``storage.issue_tables``: a revision describes the
schema as it was when it was written, whatever the models say later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_STATUSES = (
    "candidate",
    "published",
    "dispatched",
    "in_progress",
    "closed",
    "verified_fixed",
    "recurred",
    "rejected",
)
_OUTCOMES = (
    "verified_fixed",
    "recurred",
    "not_reobserved",
    "reobserved",
    "undecided",
    "not_applicable",
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("is_event", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("sigma_m", sa.Float(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("observation_count", sa.Integer(), nullable=False),
        sa.Column("not_reobserved", sa.Integer(), nullable=False),
        sa.Column("first_seen", _utc(), nullable=True),
        sa.Column("last_seen", _utc(), nullable=True),
        sa.Column("batch_ids", _JSON, nullable=False),
        sa.Column("evidence_observation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_issues"),
        sa.CheckConstraint(_in("status", _STATUSES), name="ck_issues_status"),
    )
    op.create_index("ix_issues_lat_lon", "issues", ["lat", "lon"])
    op.create_index("ix_issues_class_name", "issues", ["class_name"])
    op.create_index("ix_issues_status", "issues", ["status"])

    op.create_table(
        "issue_observations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("frame_key", sa.Text(), nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("box_key", sa.String(128), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("sigma_m", sa.Float(), nullable=False),
        sa.Column("range_m", sa.Float(), nullable=False),
        sa.Column("gsd_m", sa.Float(), nullable=False),
        sa.Column("captured_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_issue_observations"),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name="fk_issue_observations_issue_id_issues",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "batch_id",
            "frame_key",
            "detector",
            "model_version",
            "class_name",
            "box_key",
            name="uq_issue_observations_key",
        ),
    )
    op.create_index("ix_issue_observations_issue_id", "issue_observations", ["issue_id"])
    op.create_index("ix_issue_observations_batch_id", "issue_observations", ["batch_id"])

    op.create_table(
        "issue_verifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("good_views", sa.Integer(), nullable=False),
        sa.Column("views_checked", sa.Integer(), nullable=False),
        sa.Column("matched_frames", _JSON, nullable=False),
        sa.Column("reasons", _JSON, nullable=False),
        sa.Column("decided_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_issue_verifications"),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name="fk_issue_verifications_issue_id_issues",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "issue_id", "batch_id", name="uq_issue_verifications_issue_id_batch_id"
        ),
        sa.CheckConstraint(_in("outcome", _OUTCOMES), name="ck_issue_verifications_outcome"),
    )
    op.create_index("ix_issue_verifications_batch_id", "issue_verifications", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_issue_verifications_batch_id", table_name="issue_verifications")
    op.drop_table("issue_verifications")
    op.drop_index("ix_issue_observations_batch_id", table_name="issue_observations")
    op.drop_index("ix_issue_observations_issue_id", table_name="issue_observations")
    op.drop_table("issue_observations")
    op.drop_index("ix_issues_status", table_name="issues")
    op.drop_index("ix_issues_class_name", table_name="issues")
    op.drop_index("ix_issues_lat_lon", table_name="issues")
    op.drop_table("issues")
