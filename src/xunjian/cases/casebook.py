"""The ``cases`` table — which case each issue became — and applying case-system statuses.

:func:`record_case` writes (or completes) the case row of an issue when a connector
acknowledges it; :func:`case_refs` lists the cases a connector still has to poll.
:func:`apply_case_status` is the one place where the case system's word moves an issue:
forward only through the lifecycle (dispatched → in progress → closed; a late "open" never
reopens a closed issue), and a rejection is stored as false-positive feedback from the case
platform (``IssueStore.add_feedback``), which keeps it as training data and rejects the issue.

May import: SQLAlchemy, ``xunjian.core``, ``xunjian.errors``, ``xunjian.storage`` and ``cases``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update

from xunjian.cases.messages import CaseRef, StatusReport
from xunjian.core.feedback import Feedback, FeedbackKind, FeedbackSource
from xunjian.core.issues import Issue, IssueStatus, can_transition
from xunjian.errors import InputError
from xunjian.storage import db
from xunjian.storage.case_tables import CASES
from xunjian.storage.issue_tables import ISSUES
from xunjian.storage.issues import IssueStore

_SQLITE_BEGIN_OPTION = "xunjian_sqlite_begin"  # the option storage.db's "begin" hook reads
_RANK = {
    IssueStatus.CANDIDATE: 0,
    IssueStatus.PUBLISHED: 1,
    IssueStatus.DISPATCHED: 2,
    IssueStatus.IN_PROGRESS: 3,
    IssueStatus.CLOSED: 4,
}
WAITING = (
    IssueStatus.CANDIDATE,
    IssueStatus.PUBLISHED,
    IssueStatus.DISPATCHED,
    IssueStatus.IN_PROGRESS,
)
"""Issue statuses whose case is still worth polling."""


@contextmanager
def writing(engine: Engine, doing: str) -> Iterator[Connection]:
    """One write transaction (SQLite: ``BEGIN IMMEDIATE``, so it never fails half-way)."""
    with db.database_errors(engine.url, doing), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        with conn.begin():
            yield conn


def record_case(
    conn: Connection,
    *,
    issue_id: str,
    connector: str,
    case_id: str | None,
    token: str | None,
    at: datetime,
    replaces_issue_id: str | None = None,
    external_status: str | None = None,
) -> None:
    """Insert the issue's case row, or complete it (a token that became a case id)."""
    row = conn.execute(select(CASES).where(CASES.c.issue_id == issue_id)).first()
    if row is None:
        conn.execute(
            insert(CASES).values(
                issue_id=issue_id,
                connector=connector,
                case_id=case_id,
                token=token,
                external_status=external_status,
                replaces_issue_id=replaces_issue_id,
                created_at=at,
                updated_at=at,
            )
        )
        return
    changes: dict[str, Any] = {"updated_at": at}
    if case_id and not row.case_id:
        changes["case_id"] = case_id
    if token and not row.token:
        changes["token"] = token
    if replaces_issue_id and not row.replaces_issue_id:
        changes["replaces_issue_id"] = replaces_issue_id
    conn.execute(update(CASES).where(CASES.c.issue_id == issue_id).values(**changes))


def case_of(conn: Connection, issue_id: str) -> CaseRef | None:
    row = conn.execute(select(CASES).where(CASES.c.issue_id == issue_id)).first()
    return None if row is None else _ref(row)


def issue_of_case(conn: Connection, case_id: str, connector: str | None = None) -> str | None:
    query = select(CASES.c.issue_id).where(CASES.c.case_id == case_id)
    if connector is not None:
        query = query.where(CASES.c.connector == connector)
    row = conn.execute(query.limit(1)).first()
    return None if row is None else str(row.issue_id)


def case_refs(engine: Engine, connector: str, *, limit: int | None = None) -> list[CaseRef]:
    """Cases of ``connector`` worth polling: the issue still open, or no case id yet."""
    query = (
        select(CASES)
        .join(ISSUES, ISSUES.c.id == CASES.c.issue_id)
        .where(CASES.c.connector == connector)
        .where(or_(ISSUES.c.status.in_([s.value for s in WAITING]), CASES.c.case_id.is_(None)))
        .order_by(CASES.c.polled_at.is_not(None), CASES.c.polled_at, CASES.c.issue_id)
    )
    if limit is not None:
        query = query.limit(limit)
    with db.database_errors(engine.url, "listing cases to poll"), engine.connect() as conn:
        return [_ref(r) for r in conn.execute(query)]


def _ref(row: Any) -> CaseRef:
    return CaseRef(
        row.issue_id,
        row.case_id,
        row.token,
        row.external_status,
        row.external_updated_at,
        row.created_at,
    )


def note_polled(engine: Engine, issue_ids: list[str], at: datetime) -> None:
    if not issue_ids:
        return
    with writing(engine, "noting polled cases") as conn:
        conn.execute(update(CASES).where(CASES.c.issue_id.in_(issue_ids)).values(polled_at=at))


def apply_case_status(
    issues: IssueStore, statuses: Mapping[str, IssueStatus], report: StatusReport, *, source: str
) -> Issue:
    """Store the case system's word on a case and move the issue accordingly.

    ``statuses`` maps lower-case status words to issue statuses (``CaseMapping.statuses``).
    Raises :class:`InputError` for a word it does not know (the case row still records it)
    or an issue without a case.
    """
    now = issues.now()
    with writing(issues.engine, f"recording the case status of issue {report.issue_id!r}") as conn:
        row = conn.execute(select(CASES).where(CASES.c.issue_id == report.issue_id)).first()
        if row is None:
            raise InputError(f"no case for issue {report.issue_id!r}", source=source)
        changes: dict[str, Any] = {
            "external_status": report.status[:64],
            "status_notes": report.notes,
            "updated_at": now,
            "polled_at": now,
        }
        if report.agency is not None:
            changes["agency"] = report.agency[:256]
        if report.updated_at is not None:
            changes["external_updated_at"] = report.updated_at
        if report.case_id and not row.case_id:
            changes["case_id"] = report.case_id
        conn.execute(update(CASES).where(CASES.c.issue_id == report.issue_id).values(**changes))
    target = statuses.get(report.status.strip().lower())
    if target is None:
        known = ", ".join(sorted(statuses))
        raise InputError(
            f"expected a case status word the mapping knows ({known}), got {report.status!r}",
            source=f"case status of issue {report.issue_id}",
        )
    issue = issues.issue(report.issue_id, with_observations=False)
    if issue is None:
        raise InputError(f"no such issue: {report.issue_id!r}", source=source)
    data = {"case_id": report.case_id or row.case_id, "external_status": report.status}
    if target is IssueStatus.REJECTED:
        if issue.status is not IssueStatus.REJECTED and can_transition(issue.status, target):
            note = report.notes or f"case {data['case_id']}: {report.status}"
            _, issue = issues.add_feedback(
                Feedback(
                    issue.id,
                    FeedbackKind.FALSE_POSITIVE,
                    FeedbackSource.CASE_PLATFORM,
                    author=source,
                    note=note,
                )
            )
        return issue
    current = _RANK.get(IssueStatus(issue.status))
    if current is None or _RANK[target] <= current:
        return issue  # closed, verified, recurred, rejected — or no news: a late word moves nothing
    if issue.status is IssueStatus.CANDIDATE:
        issue = issues.set_status(issue.id, IssueStatus.PUBLISHED, source=source, data=data)
        if target is IssueStatus.PUBLISHED:
            return issue
    return issues.set_status(issue.id, target, source=source, note=report.notes, data=data)
