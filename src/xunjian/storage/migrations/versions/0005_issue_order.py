"""An index for the order every issue listing uses: newest sighting first, then id (both
descending, so PostgreSQL reads the plain index backwards).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Without it PostgreSQL sorts every matching issue for each page (27 ms → 4 ms for the newest
page of 100k issues; docs/service.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_issues_last_seen_id", "issues", ["last_seen", "id"])


def downgrade() -> None:
    op.drop_index("ix_issues_last_seen_id", table_name="issues")
