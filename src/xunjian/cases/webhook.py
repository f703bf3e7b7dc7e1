"""The signed JSON webhook: cases out to a platform without Open311, status callbacks back in.

Out: :class:`WebhookConnector` POSTs the case document (``messages.case_document``, schema in
docs/cases.md) as JSON with ``Idempotency-Key: <outbox key>`` — the receiver answers a key it
has seen with the same case (2xx, or 409) instead of opening a second — and the signature
header :data:`SIGNATURE_HEADER` = ``sha256=<hex HMAC-SHA256(secret, body)>``. The answer may
carry ``{"case_id": "…"}``.

In: the platform POSTs status changes to the service, signed the same way; the service calls
:func:`verify_signature` then :func:`apply_callback` with the raw body::

    {"issue_id": "iss_…" | "case_id": "…",  "status": "派遣",
     "notes": "…", "agency": "…", "updated_at": "2026-11-24T10:00:00+08:00"}

``status`` is a 数字城管 word (立案/派遣 → dispatched, 处置 → in_progress, 核查结案/结案 →
closed, 作废 → rejected as a false positive) or its English name (dispatched, in_progress,
closed, rejected). Moves go forward only, so a replayed or late callback changes nothing.

May import: httpx, the standard library, ``xunjian.core``, ``xunjian.errors``,
``xunjian.storage`` and ``cases``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx

from xunjian.cases.casebook import apply_case_status, issue_of_case, record_case, writing
from xunjian.cases.mapping import CaseMapping
from xunjian.cases.messages import (
    CaseRef,
    Delivery,
    OutboxMessage,
    SendContext,
    StatusReport,
    case_document,
)
from xunjian.core.issues import Issue, IssueStatus
from xunjian.errors import CaseRefusedError, CaseSystemError, InputError, SignatureError
from xunjian.storage.issues import IssueStore

SIGNATURE_HEADER = "X-Xunjian-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_PREFIX = "sha256="
CALLBACK_STATUSES: dict[str, IssueStatus] = {
    "立案": IssueStatus.DISPATCHED,
    "派遣": IssueStatus.DISPATCHED,
    "处置": IssueStatus.IN_PROGRESS,
    "核查结案": IssueStatus.CLOSED,
    "结案": IssueStatus.CLOSED,
    "作废": IssueStatus.REJECTED,
    "dispatched": IssueStatus.DISPATCHED,
    "in_progress": IssueStatus.IN_PROGRESS,
    "closed": IssueStatus.CLOSED,
    "rejected": IssueStatus.REJECTED,
}
"""The status words of the callback schema (documented; not configuration)."""
CONNECTOR = "webhook"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Raise :class:`SignatureError` unless ``header`` is the signature of ``body``.

    Compares in constant time. An empty secret verifies nothing: it is refused.
    """
    if not secret:
        raise SignatureError("no webhook secret is configured; expected XUNJIAN_WEBHOOK_SECRET")
    if not header:
        raise SignatureError(f"expected a {SIGNATURE_HEADER} header, got none")
    value = header.strip()
    if not value.lower().startswith(_PREFIX) or len(value) != len(_PREFIX) + 64:
        raise SignatureError(
            f"expected {SIGNATURE_HEADER}: sha256=<64 hex digits>, got {value[:16]!r}…"
        )
    if not hmac.compare_digest(sign(secret, body), _PREFIX + value[len(_PREFIX) :].lower()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def parse_callback(body: bytes) -> dict[str, Any]:
    """The callback JSON, checked against the schema; InputError naming the field if not."""
    source = "case status callback"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        message = f"expected a JSON object, got unparseable text ({exc})"
        raise InputError(message, source=source) from None
    if not isinstance(doc, dict):
        raise InputError(f"expected a JSON object, got {type(doc).__name__}", source=source)
    for name in ("issue_id", "case_id", "notes", "agency", "updated_at", "status"):
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise InputError(f"expected {name} as a string, got {value!r}", source=source)
    if not doc.get("issue_id") and not doc.get("case_id"):
        raise InputError("expected issue_id or case_id, got neither", source=source)
    status = (doc.get("status") or "").strip()
    if status.lower() not in CALLBACK_STATUSES and status not in CALLBACK_STATUSES:
        raise InputError(
            f"expected status one of {', '.join(CALLBACK_STATUSES)}, got {status!r}", source=source
        )
    if doc.get("updated_at"):
        try:
            doc["updated_at"] = datetime.fromisoformat(doc["updated_at"])
        except ValueError:
            raise InputError(
                f"expected updated_at in ISO 8601, got {doc['updated_at']!r}", source=source
            ) from None
    return doc


def apply_callback(issues: IssueStore, body: bytes) -> Issue:
    """Apply the platform's status callback (schema above) to its issue; returns the issue.

    The signature must be checked first (:func:`verify_signature`). Unknown status, issue or
    case → :class:`InputError`.
    """
    doc = parse_callback(body)
    case_id = doc.get("case_id") or None
    now = issues.now()
    with writing(issues.engine, "matching a case callback") as conn:
        issue_id = doc.get("issue_id") or None
        if issue_id is None:
            issue_id = issue_of_case(conn, str(case_id))
            if issue_id is None:
                raise InputError(f"no case {case_id!r} is known", source="case status callback")
        # The platform may call back before the sender has recorded its answer: the case
        # row is then made here, and the sender's own record later only completes it.
        known = issues.issue(issue_id, with_observations=False) is not None
        if not known:
            raise InputError(f"no such issue: {issue_id!r}", source="case status callback")
        record_case(
            conn, issue_id=issue_id, connector=CONNECTOR, case_id=case_id, token=None, at=now
        )
    report = StatusReport(
        issue_id,
        case_id,
        doc["status"].strip(),
        doc.get("notes") or "",
        doc.get("agency"),
        doc.get("updated_at"),
    )
    return apply_case_status(issues, CALLBACK_STATUSES, report, source="case_platform")


class WebhookConnector:
    """Cases POSTed as signed JSON to one URL; statuses come back by callback, not polling."""

    name = CONNECTOR
    polls = False

    def __init__(
        self,
        url: str,
        secret: bytes,
        mapping: CaseMapping,
        *,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise CaseSystemError("webhook: expected a secret to sign with, got none")
        self.url = url
        self.mapping = mapping
        self._secret = secret
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:
        return f"WebhookConnector({self.url!r})"

    def check(self) -> list[str]:
        if not self.url.startswith(("http://", "https://")):
            raise CaseSystemError(f"webhook url: expected http(s)://…, got {self.url!r}")
        return [f"webhook {self.url}: signed with HMAC-SHA256", f"mapping {self.mapping.source}"]

    def deliver(self, message: OutboxMessage, ctx: SendContext) -> Delivery:
        doc = case_document(message, self.mapping.codes(message.payload["class"]), ctx)
        body = json.dumps(doc, ensure_ascii=False, sort_keys=True).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CaseSystemError(f"webhook {self.url}: {type(exc).__name__}: {exc}") from None
        answer = _json_or_none(response)
        case_id = answer.get("case_id") if isinstance(answer, dict) else None
        if response.status_code == 409 or response.is_success:
            if message.kind == "update":
                case_id = ctx.case_id
            return Delivery(
                str(case_id) if case_id else None, found_existing=response.status_code == 409
            )
        reason = f"webhook {self.url}: HTTP {response.status_code}: {response.text[:300]}"
        if 400 <= response.status_code < 500:
            raise CaseRefusedError(reason, status=response.status_code)
        raise CaseSystemError(reason)

    def find_existing(self, message: OutboxMessage) -> Delivery | None:
        return None  # the receiver deduplicates by Idempotency-Key: resending is safe

    def poll(self, cases: Sequence[CaseRef]) -> list[StatusReport]:
        return []  # statuses arrive by signed callback (apply_callback)

    def close(self) -> None:
        self._client.close()


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
