"""Case-system connectors behind one small interface, and the file sink (the embedded default).

A :class:`Connector` turns one outbox message into a case (``deliver``), finds a case it may
already have created (``find_existing``, asked before resending a message whose earlier try
may have reached the server), reports the status of known cases (``poll``) and checks its
configuration against the case system (``check``). Errors follow one rule the sender relies
on: :class:`~xunjian.errors.CaseRefusedError` (a 4xx answer) is permanent for that message —
except 401/403, which refuse the whole connector — and any other
:class:`~xunjian.errors.CaseSystemError` (5xx, timeout, dropped or refused connection) is
transient.

Three connectors: :class:`FileSink` here; ``cases.open311.Open311Connector``;
``cases.webhook.WebhookConnector``. :func:`build_connector` makes the configured one.

The file sink appends one JSON document per message (the webhook body, docs/cases.md) to a
JSON-lines file. It is idempotent by key: under an exclusive ``flock`` it reads what other
writers appended since it last looked, skips a message whose key is already in the file, and
otherwise appends and ``fsync``s — so a crash after the append is never a second line.

May import: httpx, the standard library, ``xunjian.core``, ``xunjian.errors``,
``xunjian.settings``, ``xunjian.storage`` and ``cases``.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import httpx

from xunjian.cases.mapping import CaseMapping
from xunjian.cases.messages import (
    CaseRef,
    Delivery,
    OutboxMessage,
    SendContext,
    StatusReport,
    case_document,
)
from xunjian.errors import CaseSystemError, ConfigurationError
from xunjian.settings import Settings


class Connector(Protocol):
    """What the sender and the poller need from a case system."""

    name: str
    mapping: CaseMapping
    polls: bool
    """True when statuses are pulled with ``poll``; False when they arrive by callback."""

    def check(self) -> list[str]:
        """Validate the configuration against the case system; notes on what was checked."""
        ...

    def deliver(self, message: OutboxMessage, ctx: SendContext) -> Delivery: ...

    def find_existing(self, message: OutboxMessage) -> Delivery | None: ...

    def poll(self, cases: Sequence[CaseRef]) -> list[StatusReport]: ...

    def close(self) -> None: ...


class FileSink:
    """Cases as JSON lines in one file; the case id is the issue id."""

    name = "file"
    polls = False

    def __init__(self, path: Path, mapping: CaseMapping) -> None:
        self.path = Path(path)
        self.mapping = mapping
        self._keys: set[str] = set()
        self._read_to = 0

    def __repr__(self) -> str:
        return f"FileSink({str(self.path)!r})"

    def check(self) -> list[str]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise CaseSystemError(f"case file {self.path}: cannot write: {exc}") from None
        return [f"file sink {self.path} is writable", f"mapping {self.mapping.source} is valid"]

    def _catch_up(self, handle: int) -> None:
        """Read the keys other writers appended since the last look (under the lock)."""
        size = os.fstat(handle).st_size
        if size < self._read_to:  # the file was replaced: start over
            self._keys.clear()
            self._read_to = 0
        if size == self._read_to:
            return
        os.lseek(handle, self._read_to, os.SEEK_SET)
        chunk = b""
        while len(chunk) < size - self._read_to:
            part = os.read(handle, size - self._read_to - len(chunk))
            if not part:
                break
            chunk += part
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a torn last line is not a delivery
        for line in complete.splitlines():
            try:
                key = json.loads(line).get("idempotency_key")
            except (ValueError, AttributeError):
                continue
            if isinstance(key, str):
                self._keys.add(key)
        self._read_to += len(complete)

    def deliver(self, message: OutboxMessage, ctx: SendContext) -> Delivery:
        codes = self.mapping.codes(message.payload["class"])
        doc = case_document(message, codes, ctx)
        case_id = ctx.case_id if message.kind == "update" else message.issue_id
        doc["case_id"] = case_id
        line = (json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise CaseSystemError(f"case file {self.path}: cannot open: {exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._catch_up(handle)
            if message.idempotency_key in self._keys:
                return Delivery(case_id, found_existing=True)
            size = os.fstat(handle).st_size
            if size > self._read_to:  # a torn line from a crash: end it so ours stays whole
                os.write(handle, b"\n")
            os.write(handle, line)
            os.fsync(handle)
            self._read_to = os.fstat(handle).st_size
            self._keys.add(message.idempotency_key)
        except OSError as exc:
            raise CaseSystemError(f"case file {self.path}: cannot append: {exc}") from None
        finally:
            os.close(handle)
        return Delivery(case_id)

    def find_existing(self, message: OutboxMessage) -> Delivery | None:
        if not self.path.exists():
            return None
        try:
            handle = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise CaseSystemError(f"case file {self.path}: cannot read: {exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_SH)
            self._catch_up(handle)
        finally:
            os.close(handle)
        if message.idempotency_key not in self._keys:
            return None
        return Delivery(message.issue_id if message.kind != "update" else None, found_existing=True)

    def poll(self, cases: Sequence[CaseRef]) -> list[StatusReport]:
        return []  # a file answers nothing; statuses come from an operator or the service

    def close(self) -> None:
        pass


def build_connector(
    settings: Settings,
    mapping: CaseMapping,
    *,
    kind: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Connector:
    """The connector ``settings.case_system`` (or ``kind``) names, configured from settings.

    ``transport`` replaces the network (tests inject ``httpx.MockTransport``).
    """
    kind = kind or settings.case_system
    if kind == "file":
        return FileSink(settings.case_file or settings.data_dir / "cases.jsonl", mapping)
    if kind == "open311":
        from xunjian.cases.open311 import Open311Connector

        if not settings.open311_endpoint:
            raise ConfigurationError(
                "case_system is open311 but XUNJIAN_OPEN311_ENDPOINT is not set; "
                "expected the GeoReport v2 base URL"
            )
        return Open311Connector(
            settings.open311_endpoint,
            mapping,
            api_key=settings.open311_api_key.get_secret_value(),
            jurisdiction_id=settings.open311_jurisdiction_id,
            updates=settings.open311_updates,
            lookup_margin=timedelta(seconds=settings.open311_clock_skew_s),
            timeout_s=settings.case_http_timeout_s,
            transport=transport,
        )
    if kind == "webhook":
        from xunjian.cases.webhook import WebhookConnector

        secret = settings.webhook_secret.get_secret_value()
        if not settings.webhook_url or not secret:
            raise ConfigurationError(
                "case_system is webhook: expected XUNJIAN_WEBHOOK_URL and XUNJIAN_WEBHOOK_SECRET, "
                f"got url={settings.webhook_url!r} and {'a' if secret else 'no'} secret"
            )
        return WebhookConnector(
            settings.webhook_url,
            secret.encode("utf-8"),
            mapping,
            timeout_s=settings.case_http_timeout_s,
            transport=transport,
        )
    raise ConfigurationError(f"expected case_system file, open311 or webhook, got {kind!r}")
