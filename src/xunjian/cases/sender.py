"""The outbox sender: delivers due messages with retries, backoff and dead letters.

One round (:meth:`Sender.deliver_due`) claims due messages in small batches and sends each:

* **Claim.** In one transaction: pending messages of this connector whose ``next_attempt_at``
  has come, in id order, skipping any message behind an undelivered (pending or dead)
  earlier message of the same issue — an update never overtakes its case. PostgreSQL locks
  them ``FOR UPDATE SKIP LOCKED`` so senders in several processes never share a message;
  SQLite has one writer (``BEGIN IMMEDIATE``). The claim counts the attempt *before*
  sending and leases the message (``next_attempt_at = now + lease``): a sender killed after
  sending frees it when the lease ends, and the counted attempt tells the next one to look.
* **Look before resending.** A message whose earlier try may have reached the case system
  (``attempts > 0``, or a ``last_error`` kept through a replay) is first looked up
  (``Connector.find_existing``): found → recorded as delivered, not sent again.
* **Acknowledge.** The issue moves to ``published`` (``IssueStore.set_status``, source = the
  connector), then one transaction records the case (``cases``), marks the message
  delivered and writes a ``case`` event in the issue's history. A crash between the two
  leaves the message pending with its attempt counted: the next round finds the case.
* **Fail.** A transient error (5xx, timeout, dropped or refused connection) waits
  ``min(cap, base·2^(attempts−1))·U(0.5, 1)`` (injected RNG) and tries again, up to
  ``max_attempts``; then the message is dead with its ``last_error``. A refusal of the
  message (4xx) is dead at once. A refusal of the connector (401/403), or a batch whose first
  tries all fail (the case system is down), ends the round: the messages not yet tried go
  back untouched.

Nothing is lost: every message is delivered, pending or dead (``xunjian cases replay``).

May import: SQLAlchemy, ``xunjian.core``, ``xunjian.errors``, ``xunjian.storage`` and ``cases``.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update

from xunjian.cases.casebook import case_of, record_case, writing
from xunjian.cases.connectors import Connector
from xunjian.cases.messages import Delivery, EvidenceLink, OutboxMessage, SendContext
from xunjian.cases.outbox import message_from_row
from xunjian.core.feedback import EventKind, IssueEvent
from xunjian.core.issues import IssueStatus
from xunjian.errors import (
    CaseRefusedError,
    CaseSystemError,
    ConfigurationError,
    IssueTransitionError,
)
from xunjian.storage.case_tables import OUTBOX
from xunjian.storage.issues import IssueStore, write_event

log = logging.getLogger(__name__)
CONNECTOR_REFUSALS = (401, 403)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_s: float = 2.0
    cap_s: float = 600.0
    lease_s: float = 120.0

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """Backoff after the ``attempts``-th failed try: exponential, capped, jittered."""
        exponential = self.base_s * 2.0 ** max(0, attempts - 1)
        return float(min(self.cap_s, exponential) * rng.uniform(0.5, 1.0))


@dataclass
class SendReport:
    """What one round did."""

    delivered: int = 0
    found_existing: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)
    stopped: str | None = None

    def merge(self, other: SendReport) -> None:
        self.delivered += other.delivered
        self.found_existing += other.found_existing
        self.retrying += other.retrying
        self.dead += other.dead
        self.errors += other.errors
        self.stopped = other.stopped or self.stopped


class _StopRoundError(Exception):
    """End the round; the messages not yet tried go back untouched."""


class Sender:
    """Delivers the outbox of one connector."""

    def __init__(
        self,
        issues: IssueStore,
        connector: Connector,
        *,
        retry: RetryPolicy = RetryPolicy(),
        evidence: EvidenceLink | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        batch_size: int = 50,
        stop_after_connection_errors: int = 3,
    ) -> None:
        self.issues = issues
        self.connector = connector
        self.retry = retry
        self.evidence = evidence or (lambda _issue_id: None)
        self.rng = rng or random.Random()
        self.clock = clock or issues.now
        self.batch_size = batch_size
        self.stop_after = stop_after_connection_errors

    def deliver_due(
        self, *, limit: int | None = None, should_stop: Callable[[], bool] | None = None
    ) -> SendReport:
        """Deliver every message due now (at most ``limit``); see the module docstring.

        ``should_stop`` is asked before each message: when it says so, the round ends and
        the messages claimed but not tried go back untouched.
        """
        report = SendReport()
        handled = 0
        while limit is None or handled < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - handled)
            claimed = self._claim(size)
            if not claimed:
                break
            handled += len(claimed)
            failures_in_row, any_success = 0, False
            for index, message in enumerate(claimed):
                if should_stop is not None and should_stop():
                    report.stopped = "asked to stop"
                    self._release(claimed[index:], "asked to stop")
                    return report
                try:
                    failed = self._send_one(message, report)
                except _StopRoundError as stop:
                    report.stopped = str(stop)
                    self._release(claimed[index + 1 :], str(stop))
                    return report
                failures_in_row = failures_in_row + 1 if failed else 0
                any_success = any_success or not failed
                if failures_in_row >= self.stop_after and not any_success:
                    last = report.errors[-1]
                    reason = f"stopped after {failures_in_row} failed tries in a row: {last}"
                    report.stopped = reason
                    self._release(claimed[index + 1 :], reason)
                    return report
        return report

    # -- claiming --------------------------------------------------------------------------

    def _claim(self, size: int) -> list[OutboxMessage]:
        now = self.clock()
        earlier = OUTBOX.alias("earlier")
        blocked = exists().where(
            earlier.c.issue_id == OUTBOX.c.issue_id,
            earlier.c.id < OUTBOX.c.id,
            earlier.c.state != "delivered",
        )
        query = (
            select(OUTBOX)
            .where(
                OUTBOX.c.state == "pending",
                OUTBOX.c.connector == self.connector.name,
                OUTBOX.c.next_attempt_at <= now,
                ~blocked,
            )
            .order_by(OUTBOX.c.id)
            .limit(size)
        )
        engine = self.issues.engine
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OUTBOX)
        with writing(engine, "claiming outbox messages") as conn:
            rows = [message_from_row(r) for r in conn.execute(query)]
            if rows:
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_([r.id for r in rows]))
                    .values(
                        attempts=OUTBOX.c.attempts + 1,
                        next_attempt_at=now + timedelta(seconds=self.retry.lease_s),
                        updated_at=now,
                    )
                )
        return rows

    def _release(self, messages: list[OutboxMessage], reason: str) -> None:
        """Give claimed, untried messages back as they were (their attempt not counted)."""
        if not messages:
            return
        now = self.clock()
        with writing(self.issues.engine, "releasing outbox messages") as conn:
            for m in messages:
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == m.id, OUTBOX.c.state == "pending")
                    .values(attempts=m.attempts, next_attempt_at=now, updated_at=now)
                )
        log.warning("case sender stopped, %d message(s) left pending: %s", len(messages), reason)

    # -- sending ---------------------------------------------------------------------------

    def _context(self, message: OutboxMessage) -> SendContext:
        with self.issues.engine.connect() as conn:
            case = case_of(conn, message.issue_id)
            old_id = message.payload.get("replaces_issue_id")
            old = case_of(conn, old_id) if old_id else None
        if message.kind == "update":
            if case is None or not (case.case_id or case.token):
                raise ConfigurationError(
                    f"update {message.idempotency_key}: expected a known case for issue "
                    f"{message.issue_id}, got none"
                )
            return SendContext(case_id=case.case_id or case.token)
        return SendContext(
            media_url=self.evidence(message.issue_id),
            replaces_case_id=(old.case_id or old.token) if old else None,
        )

    def _send_one(self, message: OutboxMessage, report: SendReport) -> bool:
        """Try one claimed message; True when it failed for a transient reason."""
        try:
            delivery = None
            if message.attempts > 0 or message.last_error is not None:
                delivery = self.connector.find_existing(message)
            if delivery is None:
                delivery = self.connector.deliver(message, self._context(message))
        except CaseRefusedError as exc:
            if exc.status in CONNECTOR_REFUSALS:
                self._fail(message, str(exc), report, dead=False)
                raise _StopRoundError(str(exc)) from None
            self._fail(message, str(exc), report, dead=True)
            return False
        except ConfigurationError as exc:
            self._fail(message, str(exc), report, dead=True)
            return False
        except CaseSystemError as exc:
            dead = message.attempts + 1 >= self.retry.max_attempts
            self._fail(message, str(exc), report, dead=dead)
            return True
        self._acknowledge(message, delivery)
        if delivery.found_existing:
            report.found_existing += 1
        else:
            report.delivered += 1
        return False

    def _fail(self, message: OutboxMessage, error: str, report: SendReport, *, dead: bool) -> None:
        now = self.clock()
        attempts = message.attempts + 1
        wait = timedelta(seconds=self.retry.delay_s(attempts, self.rng))
        with writing(self.issues.engine, "recording a failed delivery") as conn:
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == message.id)
                .values(
                    state="dead" if dead else "pending",
                    next_attempt_at=now if dead else now + wait,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
        report.errors.append(f"{message.idempotency_key}: {error}")
        if dead:
            report.dead += 1
            log.error("case message %s is dead: %s", message.idempotency_key, error)
        else:
            report.retrying += 1

    def _acknowledge(self, message: OutboxMessage, delivery: Delivery) -> None:
        source = self.connector.name
        data = {"case_id": delivery.case_id, "token": delivery.token, "kind": message.kind}
        if message.kind in ("create", "recur"):
            issue = self.issues.issue(message.issue_id, with_observations=False)
            if issue is not None and issue.status is IssueStatus.CANDIDATE:
                # moved meanwhile (e.g. rejected by a reviewer): it keeps its status
                with contextlib.suppress(IssueTransitionError):
                    self.issues.set_status(
                        message.issue_id, IssueStatus.PUBLISHED, source=source, data=data
                    )
        now = self.clock()
        with writing(self.issues.engine, "recording a delivered case") as conn:
            if message.kind in ("create", "recur"):
                record_case(
                    conn,
                    issue_id=message.issue_id,
                    connector=source,
                    case_id=delivery.case_id,
                    token=delivery.token,
                    at=now,
                    replaces_issue_id=message.payload.get("replaces_issue_id"),
                    external_status=delivery.external_status,
                )
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == message.id)
                .values(state="delivered", delivered_at=now, updated_at=now, last_error=None)
            )
            what = "found on the case system" if delivery.found_existing else "sent"
            said = f" ({delivery.note})" if delivery.note else ""
            write_event(
                conn,
                IssueEvent(
                    message.issue_id,
                    EventKind.CASE,
                    now,
                    source,
                    note=f"{message.kind} {what}: case {delivery.case_id or delivery.token}{said}",
                    data={**data, "found_existing": delivery.found_existing},
                ),
            )
