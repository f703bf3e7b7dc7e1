"""The closed loop: issue history and feedback, the case outbox and cases, API keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Written out in full rather than importing the table modules: a revision describes the schema
as it was when it was written, whatever the models say later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_EVENT_KINDS = ("created", "observed", "status", "feedback", "verification", "case")
_FEEDBACK_KINDS = ("confirm", "false_positive", "wrong_class", "wrong_place")
_FEEDBACK_SOURCES = ("reviewer", "case_platform")
_OUTBOX_STATES = ("pending", "delivered", "dead")
_OUTBOX_KINDS = ("create", "update", "recur")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _issue_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["issue_id"], ["issues.id"], name=f"fk_{table}_issue_id_issues", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "issue_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_issue_events"),
        _issue_fk("issue_events"),
        sa.CheckConstraint(_in("kind", _EVENT_KINDS), name="ck_issue_events_kind"),
    )
    op.create_index("ix_issue_events_issue_id_id", "issue_events", ["issue_id", "id"])
    op.create_index("ix_issue_events_at", "issue_events", ["at"])

    op.create_table(
        "issue_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("class_name", sa.String(64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_issue_feedback"),
        _issue_fk("issue_feedback"),
        sa.CheckConstraint(_in("kind", _FEEDBACK_KINDS), name="ck_issue_feedback_kind"),
        sa.CheckConstraint(_in("source", _FEEDBACK_SOURCES), name="ck_issue_feedback_source"),
    )
    op.create_index("ix_issue_feedback_issue_id", "issue_feedback", ["issue_id"])
    op.create_index("ix_issue_feedback_kind", "issue_feedback", ["kind"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        _issue_fk("outbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.CheckConstraint(_in("state", _OUTBOX_STATES), name="ck_outbox_state"),
        sa.CheckConstraint(_in("kind", _OUTBOX_KINDS), name="ck_outbox_kind"),
    )
    op.create_index("ix_outbox_state_next_attempt_at", "outbox", ["state", "next_attempt_at"])
    op.create_index("ix_outbox_issue_id", "outbox", ["issue_id"])

    op.create_table(
        "cases",
        sa.Column("issue_id", sa.String(64), nullable=False),
        sa.Column("connector", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(128), nullable=True),
        sa.Column("token", sa.String(128), nullable=True),
        sa.Column("external_status", sa.String(64), nullable=True),
        sa.Column("status_notes", sa.Text(), nullable=True),
        sa.Column("agency", sa.String(256), nullable=True),
        sa.Column("external_updated_at", _utc(), nullable=True),
        sa.Column("replaces_issue_id", sa.String(64), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.Column("polled_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("issue_id", name="pk_cases"),
        _issue_fk("cases"),
    )
    op.create_index("ix_cases_connector_case_id", "cases", ["connector", "case_id"])
    op.create_index("ix_cases_external_status", "cases", ["external_status"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("revoked_at", _utc(), nullable=True),
        sa.Column("last_used_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
        sa.CheckConstraint(
            "role IN ('uploader', 'case_platform', 'ml_engineer', 'admin')",
            name="ck_api_keys_role",
        ),
    )
    op.create_index("ix_api_keys_prefix", "api_keys", ["prefix"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_prefix", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_cases_external_status", table_name="cases")
    op.drop_index("ix_cases_connector_case_id", table_name="cases")
    op.drop_table("cases")
    op.drop_index("ix_outbox_issue_id", table_name="outbox")
    op.drop_index("ix_outbox_state_next_attempt_at", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_issue_feedback_kind", table_name="issue_feedback")
    op.drop_index("ix_issue_feedback_issue_id", table_name="issue_feedback")
    op.drop_table("issue_feedback")
    op.drop_index("ix_issue_events_at", table_name="issue_events")
    op.drop_index("ix_issue_events_issue_id_id", table_name="issue_events")
    op.drop_table("issue_events")
