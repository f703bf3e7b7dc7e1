"""Outgoing case messages: what the outbox holds and what every connector sends.

A message is written to the outbox with a *payload*: a JSON snapshot of the issue at the
moment of the change (class, place, confidence, times, batches) plus, for an ``update``, the
new status and why, and for a ``recur``, the issue it replaces. What depends on the moment of
sending — the case-system codes (from the mapping), the evidence link (presigned URLs
expire), the old case's id — is added by the connector when it sends.

Descriptions are generated in zh-CN (the default language of the platforms) and en; every
create carries the line ``xunjian: <issue id>`` so that a case can be found again on a server
without idempotency keys (Open311), see ``cases.open311``.

May import: the standard library, ``xunjian.core``, ``xunjian.errors``, ``xunjian.storage``
and (lazily) ``xunjian.inspect.evidence.evidence_key``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xunjian.cases.mapping import ClassCodes
from xunjian.core.issues import Issue, IssueStatus
from xunjian.core.taxonomy import class_info
from xunjian.storage.objectstore import ObjectStore

SCHEMA = "xunjian.case/1"
ISSUE_MARK = "xunjian: "
"""Prefix of the line that names the issue in every case description."""
EVIDENCE_URL_LIFETIME = timedelta(days=7)  # the longest S3 allows for a presigned URL


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One outbox row as the sender and connectors see it."""

    id: int
    idempotency_key: str
    issue_id: str
    connector: str
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SendContext:
    """What the sender looks up when it sends: the evidence link, the case an ``update`` is
    about, and the old case a ``recur`` replaces."""

    media_url: str | None = None
    case_id: str | None = None
    replaces_case_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the case system answered: the case id (or an Open311 token until it has one)."""

    case_id: str | None
    token: str | None = None
    external_status: str | None = None
    note: str = ""
    found_existing: bool = False


@dataclass(frozen=True, slots=True)
class CaseRef:
    """A known case: the row of the ``cases`` table a connector needs to poll or update."""

    issue_id: str
    case_id: str | None
    token: str | None
    external_status: str | None
    external_updated_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The case system's current word on one case."""

    issue_id: str
    case_id: str | None
    status: str
    notes: str = ""
    agency: str | None = None
    updated_at: datetime | None = None
    token_resolved: bool = False


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def issue_snapshot(issue: Issue) -> dict[str, Any]:
    """The issue fields every message carries."""
    info = class_info(issue.class_name)
    return {
        "schema": SCHEMA,
        "issue_id": issue.id,
        "class": issue.class_name,
        "class_zh": info.zh,
        "class_en": info.en,
        "detector": issue.detector,
        "is_event": issue.is_event,
        "lat": round(issue.lat, 7),
        "lon": round(issue.lon, 7),
        "sigma_m": round(issue.sigma_m, 2),
        "confidence": round(issue.confidence, 4),
        "observation_count": issue.observation_count,
        "first_seen": _iso(issue.first_seen),
        "last_seen": _iso(issue.last_seen),
        "batch_ids": list(issue.batch_ids),
        "model_version": issue.evidence.detection.model_version,
    }


def create_payload(issue: Issue, *, replaces_issue_id: str | None = None) -> dict[str, Any]:
    """A ``create`` (or, with ``replaces_issue_id``, a ``recur``) message for ``issue``."""
    payload = issue_snapshot(issue)
    payload["replaces_issue_id"] = replaces_issue_id
    return payload


def update_payload(
    issue: Issue, status: IssueStatus, *, batch_id: str | None, at: datetime, note: str = ""
) -> dict[str, Any]:
    """An ``update`` message: the issue moved to ``status`` (verified_fixed, recurred, …)."""
    payload = issue_snapshot(issue)
    payload.update(status=status.value, batch_id=batch_id, at=at.isoformat(), note=note)
    return payload


def descriptions(
    kind: str, payload: dict[str, Any], replaces_case: str | None = None
) -> dict[str, str]:
    """The message's text in zh-CN and en (the issue line is added by :func:`case_text`)."""
    p = payload
    where = f"{p['lat']:.6f}, {p['lon']:.6f}"
    first = (p.get("first_seen") or "")[:19].replace("T", " ")
    if kind == "update":
        status, batch = p["status"], p.get("batch_id") or "—"
        zh, en = {
            "verified_fixed": (
                f"核查：后续巡检（批次 {batch}）覆盖该位置，未再发现{p['class_zh']}，确认已修复。",
                f"Verified: a later survey (batch {batch}) covered the place and found no "
                f"{p['class_en']}; fixed.",
            ),
            "recurred": (
                f"复发：后续巡检（批次 {batch}）在该位置再次发现{p['class_zh']}，将另立新案。",
                f"Recurred: a later survey (batch {batch}) found the {p['class_en']} again; "
                "a new linked case follows.",
            ),
            "rejected": (
                f"误报：审核认定该{p['class_zh']}为误报。",
                f"Rejected: a reviewer marked this {p['class_en']} a false positive.",
            ),
        }.get(status, (f"状态：{status}", f"Status: {status}"))
        if p.get("note"):
            zh, en = f"{zh}（{p['note']}）", f"{en} ({p['note']})"
        return {"zh-CN": zh, "en": en}
    zh = (
        f"AI 巡检发现{p['class_zh']}，置信度 {p['confidence']:.0%}，位置 {where}"
        f"（±{p['sigma_m']:.1f} 米），首次发现 {first}，共 {p['observation_count']} 次观测。"
    )
    en = (
        f"AI inspection: {p['class_en']} ({p['confidence']:.0%} confidence) at {where} "
        f"(±{p['sigma_m']:.1f} m), first seen {first}, {p['observation_count']} observation(s)."
    )
    if p.get("replaces_issue_id"):
        old = replaces_case or p["replaces_issue_id"]
        zh = f"复发：原案件 {old} 结案后在同一位置再次发现。" + zh
        en = f"Recurrence: found again at the place of closed case {old}. " + en
    return {"zh-CN": zh, "en": en}


def case_text(issue_id: str, texts: dict[str, str], limit: int = 4000) -> str:
    """One description: zh-CN, en, and the issue line last (always kept within ``limit``)."""
    mark = f"\n{ISSUE_MARK}{issue_id}"
    body = f"{texts['zh-CN']}\n{texts['en']}"
    return body[: max(0, limit - len(mark))] + mark


def issue_in_text(issue_id: str, text: str | None) -> bool:
    """True when a case description carries the issue line of ``issue_id``."""
    return bool(text) and f"{ISSUE_MARK}{issue_id}" in (text or "")


EvidenceLink = Callable[[str], str | None]
"""issue id → the URL of its evidence image, or None when there is none."""


def evidence_linker(store: ObjectStore | None, public_url: str | None) -> EvidenceLink:
    """Evidence links: ``{public_url}/api/v1/issues/{id}/evidence`` (stable, served by the
    service) when ``public_url`` is set, else a presigned URL of the stored crop (S3: a real
    presigned URL valid 7 days; the local store: a signed link to the service)."""

    def link(issue_id: str) -> str | None:
        if public_url:
            return f"{public_url.rstrip('/')}/api/v1/issues/{issue_id}/evidence"
        if store is None:
            return None
        from xunjian.inspect.evidence import evidence_key  # lazily: it imports OpenCV

        key = evidence_key(issue_id)
        if not store.exists(key):
            return None
        return store.presigned_get_url(key, EVIDENCE_URL_LIFETIME)

    return link


def case_document(message: OutboxMessage, codes: ClassCodes, ctx: SendContext) -> dict[str, Any]:
    """The JSON document of the webhook body and the file sink's lines (docs/cases.md)."""
    p = message.payload
    texts = descriptions(message.kind, p, ctx.replaces_case_id)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "event": f"case.{message.kind}",
        "idempotency_key": message.idempotency_key,
        "issue_id": message.issue_id,
        "case_id": ctx.case_id,
        "category": {
            "class": p["class"],
            "zh": p["class_zh"],
            "en": p["class_en"],
            "service_code": codes.service_code,
            "szcg": codes.szcg.as_dict(),
        },
        "is_event": p["is_event"],
        "lat": p["lat"],
        "lon": p["lon"],
        "sigma_m": p["sigma_m"],
        "address": None,
        "description": texts,
        "evidence_url": ctx.media_url,
        "confidence": p["confidence"],
        "observation_count": p["observation_count"],
        "first_seen": p["first_seen"],
        "last_seen": p["last_seen"],
        "batch_ids": p["batch_ids"],
        "model_version": p["model_version"],
    }
    if message.kind == "update":
        doc["status"] = p["status"]
        doc["status_batch_id"] = p.get("batch_id")
        doc["status_at"] = p.get("at")
    if p.get("replaces_issue_id"):
        doc["replaces"] = {"issue_id": p["replaces_issue_id"], "case_id": ctx.replaces_case_id}
    return doc
