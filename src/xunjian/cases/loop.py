"""The case loop of one process: outbox listener, configured connector, sender and poller.

:func:`open_case_loop` wires it from the pipeline's ``Services`` (settings, object store,
issue store): it loads and validates the mapping, builds the configured connector, installs
the outbox listener on the issue store (so the caller's later issue changes enqueue their
messages) and returns a :class:`CaseLoop`. The pipeline itself never imports ``cases``; the
CLI, the demo and the service call this around it.

:meth:`CaseLoop.sync` checks the connector once (mapping against the server: a bad code
stops here, before anything is sent), enqueues qualifying issues that a process without the
outbox left behind, delivers every due message and polls the status of open cases.
:meth:`CaseLoop.run` repeats it every ``interval_s`` until its stop event is set (the CLI
sets it on SIGINT/SIGTERM); the round in progress finishes its current message.

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.settings``, ``xunjian.storage``,
``cases`` — and, for typing only, ``xunjian.inspect.pipeline.Services``.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from xunjian.cases.casebook import apply_case_status, case_refs, note_polled
from xunjian.cases.connectors import Connector, build_connector
from xunjian.cases.mapping import load_mapping
from xunjian.cases.messages import evidence_linker
from xunjian.cases.outbox import Outbox, PublishPolicy, enqueue_missing, install_outbox
from xunjian.cases.sender import RetryPolicy, Sender, SendReport
from xunjian.errors import CaseSystemError, InputError
from xunjian.storage.issues import IssueStore

if TYPE_CHECKING:
    from xunjian.inspect.pipeline import Services

log = logging.getLogger(__name__)
POLL_BATCH = 500


@dataclass
class SyncReport:
    """What one :meth:`CaseLoop.sync` did."""

    sent: SendReport
    polled: int = 0
    status_changes: int = 0
    status_errors: list[str] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.sent.delivered,
            "found_existing": self.sent.found_existing,
            "retrying": self.sent.retrying,
            "dead": self.sent.dead,
            "stopped": self.sent.stopped,
            "errors": self.sent.errors[-20:],
            "polled": self.polled,
            "status_changes": self.status_changes,
            "status_errors": self.status_errors[-20:],
            "outbox": self.outbox,
        }


class CaseLoop:
    """Deliver the outbox and pull statuses back, once or on a timer."""

    def __init__(
        self,
        issues: IssueStore,
        connector: Connector,
        sender: Sender,
        policy: PublishPolicy | None = None,
    ) -> None:
        self.issues = issues
        self.connector = connector
        self.sender = sender
        self.policy = policy or PublishPolicy.from_mapping(connector.mapping)
        self.outbox = Outbox(issues)
        self._checked: list[str] | None = None

    def check(self) -> list[str]:
        """Validate the connector against the case system (once; raises on a problem)."""
        if self._checked is None:
            self._checked = self.connector.check()
        return self._checked

    def poll(self) -> tuple[int, int, list[str]]:
        """Ask the case system about open cases; (cases polled, changes applied, errors)."""
        if not self.connector.polls:
            return 0, 0, []
        refs = case_refs(self.issues.engine, self.connector.name, limit=POLL_BATCH)
        if not refs:
            return 0, 0, []
        reports = self.connector.poll(refs)
        changes, errors = 0, []
        for report in reports:
            try:
                apply_case_status(
                    self.issues, self.connector.mapping.statuses, report, source=self.connector.name
                )
                changes += 1
            except InputError as exc:
                errors.append(str(exc))
                log.warning("case status not applied: %s", exc)
        note_polled(self.issues.engine, [r.issue_id for r in refs], self.issues.now())
        return len(refs), changes, errors

    def sync(self, *, should_stop: Callable[[], bool] | None = None) -> SyncReport:
        """Check (first time), deliver what is due, poll statuses."""
        self.check()
        enqueue_missing(self.issues, self.policy, self.connector.name)
        report = SyncReport(self.sender.deliver_due(should_stop=should_stop))
        if not (should_stop and should_stop()):
            try:
                report.polled, report.status_changes, report.status_errors = self.poll()
            except CaseSystemError as exc:
                report.status_errors.append(f"polling: {exc}")
        report.outbox = self.outbox.counts()
        return report

    def run(
        self,
        interval_s: float,
        stop: threading.Event,
        *,
        on_round: Callable[[SyncReport], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> int:
        """:meth:`sync` every ``interval_s`` until ``stop`` is set; returns rounds done.

        A case system that cannot be reached is retried next round; a configuration error
        (bad mapping) ends the loop by raising.
        """
        rounds = 0
        while not stop.is_set():
            try:
                report = self.sync(should_stop=stop.is_set)
            except CaseSystemError as exc:
                self._checked = None  # check again when it is back
                log.warning("case system: %s", exc)
                if on_error:
                    on_error(exc)
            else:
                rounds += 1
                if on_round:
                    on_round(report)
            stop.wait(interval_s)
        return rounds

    def close(self) -> None:
        self.connector.close()


def open_case_loop(
    services: Services,
    *,
    case_system: str | None = None,
    transport: httpx.BaseTransport | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], datetime] | None = None,
) -> CaseLoop:
    """The configured case loop, its outbox listener installed on ``services.issues``.

    ``case_system`` overrides the setting (the demo always uses the file sink);
    ``transport`` replaces the network in tests.
    """
    settings = services.settings
    mapping = load_mapping(settings.case_mapping)
    connector = build_connector(settings, mapping, kind=case_system, transport=transport)
    policy = PublishPolicy.from_mapping(mapping)
    install_outbox(services.issues, policy, connector.name)
    retry = RetryPolicy(
        max_attempts=settings.case_max_attempts,
        base_s=settings.case_backoff_base_s,
        cap_s=settings.case_backoff_cap_s,
        lease_s=settings.case_claim_lease_s,
    )
    sender = Sender(
        services.issues,
        connector,
        retry=retry,
        evidence=evidence_linker(services.store, settings.public_url),
        rng=rng,
        clock=clock,
    )
    return CaseLoop(services.issues, connector, sender, policy)
