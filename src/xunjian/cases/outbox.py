"""The transactional outbox: issue changes become case messages in the same transaction.

:func:`install_outbox` adds a listener to an :class:`~xunjian.storage.issues.IssueStore`;
the store calls it inside the write transaction of every issue change, so the change and the
message it causes commit together or not at all. What it enqueues (``PublishPolicy``):

* ``create`` — a candidate issue, new or seen again, whose confidence reaches its class's
  publish threshold (mapping file), or that a reviewer confirmed, or that an operator
  published by hand. Idempotency key: the issue id, so one issue is one case, ever. The
  issue moves to ``published`` when the connector acknowledges the case (the sender does it,
  ``source`` = the connector): ``published`` means "the case exists" (specs/cases.md).
* ``recur`` — the same, for a new issue found where a closed one recurred in a batch that
  saw the new one (same class, within the cross-batch gate): the new case is linked to the
  old one (``replaces_issue_id``). If the new issue was enqueued as a plain ``create`` that
  no one has tried to send yet, it is turned into a ``recur``.
* ``update`` — a verification that moved an issue with a case to ``verified_fixed`` or
  ``recurred``, or a reviewer's rejection of an issue whose case may exist; key
  ``<issue id>:<status>``. A rejection before any send attempt withdraws the ``create``
  instead: a false positive never reaches the case system.

Status changes that come from the case system itself (``source`` = the connector or the
case platform) are never echoed back. Spoil-truck events are published once and never
verified (``core.verify`` says ``not_applicable``), so they only ever get a ``create``.

:class:`Outbox` reads the table for the CLI and operators: list, counts, replay dead
letters.

May import: SQLAlchemy, ``xunjian.core``, ``xunjian.errors``, ``xunjian.storage`` and ``cases``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from xunjian.cases.casebook import writing
from xunjian.cases.mapping import CaseMapping
from xunjian.cases.messages import OutboxMessage, create_payload, update_payload
from xunjian.core.feedback import EventKind, FeedbackSource
from xunjian.core.fusion import FusionParams, cross_batch_gate
from xunjian.core.geo import latlon_to_en
from xunjian.core.issues import OPEN_STATUSES, Issue, IssueStatus
from xunjian.core.taxonomy import class_info
from xunjian.core.verify import Outcome
from xunjian.errors import DatabaseError, InputError
from xunjian.storage import db
from xunjian.storage.case_tables import CASES, OUTBOX, OUTBOX_STATES
from xunjian.storage.issue_tables import ISSUE_FEEDBACK, ISSUE_VERIFICATIONS, ISSUES
from xunjian.storage.issues import IssueChange, IssueStore

_NEAR_DEG = 0.001  # ≈ 100 m: wider than any cross-batch gate, narrows the SQL search
_GATE_SLACK = 1.5  # a fused place moves a little from the observations verification matched
CASE_SOURCES = {FeedbackSource.CASE_PLATFORM.value}


@dataclass(frozen=True)
class PublishPolicy:
    """When a candidate issue becomes a case: its confidence reaches the class's threshold."""

    thresholds: dict[str, float]
    default: float = 0.5

    @classmethod
    def from_mapping(cls, mapping: CaseMapping) -> PublishPolicy:
        return cls({name: c.publish_threshold for name, c in mapping.classes.items()})

    def qualifies(self, issue: Issue) -> bool:
        return issue.confidence >= self.thresholds.get(issue.class_name, self.default)


def update_key(issue_id: str, status: IssueStatus) -> str:
    return f"{issue_id}:{status.value}"


def install_outbox(issues: IssueStore, policy: PublishPolicy, connector_name: str) -> None:
    """Enqueue case messages for ``connector_name`` with every qualifying issue change."""
    sources = CASE_SOURCES | {connector_name}

    def listener(conn: Connection, change: IssueChange) -> None:
        issue, now = change.issue, issues.now()
        status = IssueStatus(issue.status)
        if change.cause in (EventKind.CREATED, EventKind.OBSERVED):
            if status is IssueStatus.CANDIDATE and policy.qualifies(issue):
                _enqueue_case(conn, issue, connector_name, now)
        elif change.cause is EventKind.FEEDBACK:
            if status is IssueStatus.CANDIDATE and _last_feedback(conn, issue.id) == "confirm":
                _enqueue_case(conn, issue, connector_name, now)
            elif (
                status is IssueStatus.REJECTED
                and change.before is not IssueStatus.REJECTED
                and change.source not in sources
            ):
                _withdraw_or_update(conn, issue, connector_name, now)
        elif change.cause is EventKind.VERIFICATION:
            if status in (IssueStatus.VERIFIED_FIXED, IssueStatus.RECURRED):
                _enqueue_update(conn, issue, status, connector_name, now, change.batch_id)
            if status is IssueStatus.RECURRED and change.batch_id:
                _link_replacement(conn, issue, change.batch_id)
        elif (
            change.cause is EventKind.STATUS
            and change.source not in sources
            and status is IssueStatus.PUBLISHED
        ):
            _enqueue_case(conn, issue, connector_name, now)  # published by hand: a case follows

    issues.add_listener(listener)


def enqueue_missing(issues: IssueStore, policy: PublishPolicy, connector_name: str) -> int:
    """Enqueue a case for qualifying candidates that have no message yet; returns how many.

    The listener enqueues in the issue's own transaction; this catches issues changed by a
    process that ran without the outbox installed (the pipeline alone, an old version).
    """
    query = (
        select(ISSUES)
        .where(ISSUES.c.status == IssueStatus.CANDIDATE.value)
        .where(~ISSUES.c.id.in_(select(OUTBOX.c.issue_id)))
        .where(~ISSUES.c.id.in_(select(CASES.c.issue_id)))
        .order_by(ISSUES.c.created_at, ISSUES.c.id)
    )
    engine = issues.engine
    with db.database_errors(engine.url, "looking for issues without a case"), engine.connect() as c:
        rows = list(c.execute(query))
    added = 0
    for row in rows:
        if row.confidence < policy.thresholds.get(row.class_name, policy.default):
            continue
        found = issues.issue(row.id, with_observations=False)
        if found is None:
            continue
        try:
            with writing(engine, f"enqueuing the case of issue {row.id!r}") as conn:
                _enqueue_case(conn, found, connector_name, issues.now())
        except DatabaseError:  # enqueued meanwhile by a listener: the key says it is there
            continue
        added += 1
    return added


def _insert(
    conn: Connection,
    key: str,
    issue_id: str,
    connector: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    if conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.idempotency_key == key)).first():
        return  # enqueued before: the key makes enqueuing idempotent
    conn.execute(
        insert(OUTBOX).values(
            idempotency_key=key,
            issue_id=issue_id,
            connector=connector,
            kind=kind,
            payload=payload,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            created_at=now,
            updated_at=now,
        )
    )


def _has_case(conn: Connection, issue_id: str) -> bool:
    if conn.execute(select(CASES.c.issue_id).where(CASES.c.issue_id == issue_id)).first():
        return True
    return (
        conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.idempotency_key == issue_id)).first()
        is not None
    )


def _enqueue_case(conn: Connection, issue: Issue, connector: str, now: datetime) -> None:
    if _has_case(conn, issue.id):
        return
    replaces = None if issue.is_event else find_replaced(conn, issue)
    kind = "recur" if replaces else "create"
    payload = create_payload(issue, replaces_issue_id=replaces)
    _insert(conn, issue.id, issue.id, connector, kind, payload, now)


def _enqueue_update(
    conn: Connection,
    issue: Issue,
    status: IssueStatus,
    connector: str,
    now: datetime,
    batch_id: str | None,
    note: str = "",
) -> None:
    if not _has_case(conn, issue.id):
        return  # never became a case: nothing to tell
    payload = update_payload(issue, status, batch_id=batch_id, at=now, note=note)
    _insert(conn, update_key(issue.id, status), issue.id, connector, "update", payload, now)


def _withdraw_or_update(conn: Connection, issue: Issue, connector: str, now: datetime) -> None:
    withdrawn = conn.execute(
        delete(OUTBOX).where(
            OUTBOX.c.idempotency_key == issue.id,
            OUTBOX.c.state == "pending",
            OUTBOX.c.attempts == 0,
        )
    ).rowcount
    if not withdrawn:
        _enqueue_update(conn, issue, IssueStatus.REJECTED, connector, now, None)


def _last_feedback(conn: Connection, issue_id: str) -> str | None:
    row = conn.execute(
        select(ISSUE_FEEDBACK.c.kind)
        .where(ISSUE_FEEDBACK.c.issue_id == issue_id)
        .order_by(ISSUE_FEEDBACK.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.kind)


def _near(conn: Connection, issue: Issue, statuses: Sequence[IssueStatus]) -> list[Any]:
    """Issues of ``issue``'s class and ``statuses`` within the (slack) cross-batch gate."""
    rows = conn.execute(
        select(ISSUES).where(
            ISSUES.c.class_name == issue.class_name,
            ISSUES.c.status.in_([s.value for s in statuses]),
            ISSUES.c.id != issue.id,
            ISSUES.c.lat.between(issue.lat - _NEAR_DEG, issue.lat + _NEAR_DEG),
            ISSUES.c.lon.between(issue.lon - _NEAR_DEG, issue.lon + _NEAR_DEG),
        )
    ).all()
    radius = class_info(issue.class_name).fuse_radius_m
    found = []
    for row in rows:
        e, n = latlon_to_en(row.lat, row.lon, issue.lat, issue.lon)
        distance = math.hypot(float(e), float(n))
        gate = cross_batch_gate(radius, row.sigma_m, issue.sigma_m, FusionParams())
        if distance <= gate * _GATE_SLACK:
            found.append((distance, row))
    return [row for _, row in sorted(found, key=lambda pair: (pair[0], pair[1].id))]


def find_replaced(conn: Connection, issue: Issue) -> str | None:
    """The closed issue that ``issue`` is the recurrence of, if any.

    A recurred issue of the same class near it, found recurred by one of the batches that
    saw ``issue``, and not yet replaced by another case.
    """
    for row in _near(conn, issue, [IssueStatus.RECURRED]):
        recurred_in = {
            r.batch_id
            for r in conn.execute(
                select(ISSUE_VERIFICATIONS.c.batch_id).where(
                    ISSUE_VERIFICATIONS.c.issue_id == row.id,
                    ISSUE_VERIFICATIONS.c.outcome == Outcome.RECURRED.value,
                )
            )
        }
        if recurred_in & set(issue.batch_ids) and not _replaced(conn, row.id, issue):
            return str(row.id)
    return None


def _replaced(conn: Connection, old_id: str, issue: Issue) -> bool:
    linked = select(CASES.c.issue_id).where(CASES.c.replaces_issue_id == old_id)
    if conn.execute(linked).first():
        return True
    nearby = [r.id for r in _near(conn, issue, sorted(OPEN_STATUSES))]
    for row in conn.execute(
        select(OUTBOX.c.payload).where(OUTBOX.c.kind == "recur", OUTBOX.c.issue_id.in_(nearby))
    ):
        if row.payload.get("replaces_issue_id") == old_id:
            return True
    return False


def _link_replacement(conn: Connection, old: Issue, batch_id: str) -> None:
    """``old`` recurred in ``batch_id``: if the new issue was already enqueued as a plain
    create that no one has tried yet, make it the linked recurrence."""
    for row in _near(conn, old, sorted(OPEN_STATUSES)):
        if batch_id not in row.batch_ids:
            continue
        message = conn.execute(
            select(OUTBOX).where(OUTBOX.c.idempotency_key == row.id, OUTBOX.c.kind == "create")
        ).first()
        if message is None:
            continue
        payload = dict(message.payload, replaces_issue_id=old.id)
        changed = conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == message.id, OUTBOX.c.state == "pending", OUTBOX.c.attempts == 0)
            .values(kind="recur", payload=payload)
        ).rowcount
        if changed:
            return


def message_from_row(row: Any) -> OutboxMessage:
    return OutboxMessage(
        row.id,
        row.idempotency_key,
        row.issue_id,
        row.connector,
        row.kind,
        dict(row.payload),
        row.state,
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        row.created_at,
        row.updated_at,
        row.delivered_at,
    )


class Outbox:
    """The outbox table of one database, for listing and for operators."""

    def __init__(self, issues: IssueStore) -> None:
        self.issues = issues
        self.engine = issues.engine

    def messages(
        self,
        *,
        state: str | None = None,
        issue_id: str | None = None,
        limit: int | None = None,
    ) -> list[OutboxMessage]:
        """Messages, oldest first, optionally of one state and/or issue."""
        query = select(OUTBOX).order_by(OUTBOX.c.id)
        if state is not None:
            if state not in OUTBOX_STATES:
                raise InputError(
                    f"expected a state among {', '.join(OUTBOX_STATES)}, got {state!r}",
                    source="outbox state",
                )
            query = query.where(OUTBOX.c.state == state)
        if issue_id is not None:
            query = query.where(OUTBOX.c.issue_id == issue_id)
        if limit is not None:
            query = query.limit(limit)
        with db.database_errors(self.engine.url, "listing the outbox"), self.engine.connect() as c:
            return [message_from_row(r) for r in c.execute(query)]

    def counts(self) -> dict[str, int]:
        """Messages per state (every state present, zero when none)."""
        query = select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)
        with db.database_errors(self.engine.url, "counting the outbox"), self.engine.connect() as c:
            found = {str(state): int(n) for state, n in c.execute(query)}
        return {state: found.get(state, 0) for state in OUTBOX_STATES}

    def replay(self, *, message_id: int | None = None, all_dead: bool = False) -> int:
        """Dead letters back to pending with attempts reset; returns how many moved.

        ``last_error`` is kept: it tells the sender an earlier try may have reached the case
        system, so it looks the case up before sending again (exactly once still holds).
        """
        if (message_id is None) == (not all_dead):
            raise InputError(
                "expected a message id or all_dead, not both or neither", source="replay"
            )
        now = self.issues.now()
        query = update(OUTBOX).where(OUTBOX.c.state == "dead")
        if message_id is not None:
            query = query.where(OUTBOX.c.id == message_id)
        with writing(self.engine, "replaying dead letters") as conn:
            moved = conn.execute(
                query.values(state="pending", attempts=0, next_attempt_at=now, updated_at=now)
            ).rowcount
        if message_id is not None and not moved:
            raise InputError(f"no dead message with id {message_id}", source="replay")
        return int(moved)
