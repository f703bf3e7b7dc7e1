"""The signed JSON webhook: signatures, the connector's requests, status callbacks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.cases import Clock, grid_flight
from xunjian.cases.casebook import record_case, writing
from xunjian.cases.mapping import load_mapping
from xunjian.cases.messages import OutboxMessage, SendContext, create_payload
from xunjian.cases.webhook import (
    SIGNATURE_HEADER,
    WebhookConnector,
    apply_callback,
    sign,
    verify_signature,
)
from xunjian.core.feedback import FeedbackKind, FeedbackSource
from xunjian.core.issues import IssueStatus
from xunjian.errors import CaseRefusedError, CaseSystemError, InputError, SignatureError
from xunjian.storage.issues import IssueStore

SECRET = b"s3cret"


def test_signatures_verify_and_refuse_clearly() -> None:
    body = b'{"status": "closed"}'
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    verify_signature(SECRET, body, header)
    verify_signature(SECRET, body, header.upper().replace("SHA256=", "sha256="))
    for bad, message in [
        (None, "expected a X-Xunjian-Signature header"),
        ("", "expected a X-Xunjian-Signature header"),
        ("md5=abc", "sha256=<64 hex digits>"),
        (sign(b"other", body), "does not match"),
        (sign(SECRET, body + b" "), "does not match"),
    ]:
        with pytest.raises(SignatureError, match=message):
            verify_signature(SECRET, body, bad)
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_signature(b"", body, header)
    assert issubclass(SignatureError, CaseSystemError)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[IssueStore]:
    with IssueStore(f"sqlite:///{tmp_path / 'x.db'}", clock=Clock()) as opened:
        opened.record_batch("B1", grid_flight("B1", 2))
        yield opened


def published_with_case(store: IssueStore, case_id: str) -> str:
    issue = store.issues()[0]
    store.set_status(issue.id, IssueStatus.PUBLISHED, source="webhook")
    with writing(store.engine, "test") as conn:
        record_case(
            conn,
            issue_id=issue.id,
            connector="webhook",
            case_id=case_id,
            token=None,
            at=store.now(),
        )
    return issue.id


def callback(**fields: object) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode("utf-8")


def test_callbacks_move_the_issue_forward_in_szcg_words(store: IssueStore) -> None:
    issue_id = published_with_case(store, "SZCG-1")
    assert apply_callback(store, callback(case_id="SZCG-1", status="派遣")).status == "dispatched"
    moved = apply_callback(store, callback(issue_id=issue_id, status="处置", notes="施工中"))
    assert moved.status is IssueStatus.IN_PROGRESS
    closed = apply_callback(
        store, callback(case_id="SZCG-1", status="结案", updated_at="2026-05-13T10:00:00+08:00")
    )
    assert closed.status is IssueStatus.CLOSED
    # a late or replayed callback never moves an issue back
    assert apply_callback(store, callback(case_id="SZCG-1", status="dispatched")).status == "closed"
    history = [(e.source, e.to_status) for e in store.history(issue_id) if e.to_status]
    assert ("case_platform", "in_progress") in history


def test_a_rejection_is_kept_as_false_positive_feedback(store: IssueStore) -> None:
    issue_id = published_with_case(store, "SZCG-2")
    rejected = apply_callback(store, callback(case_id="SZCG-2", status="作废", notes="非坑槽"))
    assert rejected.status is IssueStatus.REJECTED
    [feedback] = store.feedback(issue_id=issue_id)
    assert feedback.kind is FeedbackKind.FALSE_POSITIVE
    assert feedback.source is FeedbackSource.CASE_PLATFORM
    assert feedback.note == "非坑槽"
    apply_callback(store, callback(case_id="SZCG-2", status="rejected"))  # no second feedback
    assert len(store.feedback(issue_id=issue_id)) == 1


def test_a_callback_before_the_senders_record_makes_the_case(store: IssueStore) -> None:
    issue = store.issues()[0]
    store.set_status(issue.id, IssueStatus.PUBLISHED, source="webhook")
    moved = apply_callback(store, callback(issue_id=issue.id, case_id="SZCG-9", status="立案"))
    assert moved.status is IssueStatus.DISPATCHED


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "expected a JSON object"),
        (b"[1, 2]", "expected a JSON object"),
        (callback(status="closed"), "expected issue_id or case_id"),
        (callback(case_id="SZCG-1", status="done"), "expected status one of"),
        (callback(case_id="SZCG-1", status=3), "expected status as a string"),
        (callback(case_id="nope", status="closed"), "no case 'nope'"),
        (callback(issue_id="iss_unknown", status="closed"), "no such issue"),
        (callback(case_id="SZCG-1", status="closed", updated_at="yesterday"), "ISO 8601"),
    ],
)
def test_bad_callbacks_are_input_errors(store: IssueStore, body: bytes, message: str) -> None:
    published_with_case(store, "SZCG-1")
    with pytest.raises(InputError, match=message):
        apply_callback(store, body)


def message(store: IssueStore, kind: str = "create") -> OutboxMessage:
    issue = store.issues()[0]
    now = store.now()
    return OutboxMessage(
        1,
        issue.id,
        issue.id,
        "webhook",
        kind,
        create_payload(issue),
        "pending",
        0,
        now,
        None,
        now,
        now,
    )


def test_the_connector_posts_signed_json_with_the_idempotency_key(store: IssueStore) -> None:
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"case_id": "SZCG-77"})

    connector = WebhookConnector(
        "https://gateway.example/cases",
        SECRET,
        load_mapping(),
        transport=httpx.MockTransport(receiver),
    )
    m = message(store)
    delivery = connector.deliver(m, SendContext(media_url="https://x.example/e.jpg"))
    assert delivery.case_id == "SZCG-77" and not delivery.found_existing
    [request] = seen
    assert request.headers["Idempotency-Key"] == m.issue_id
    verify_signature(SECRET, request.content, request.headers[SIGNATURE_HEADER])
    doc = json.loads(request.content)
    assert doc["issue_id"] == m.issue_id and doc["event"] == "case.create"
    assert doc["category"]["szcg"]["minor"] == "道路坑槽"
    assert doc["category"]["service_code"] == "pothole"
    assert set(doc["description"]) == {"zh-CN", "en"}
    assert "坑槽" in doc["description"]["zh-CN"] and "pothole" in doc["description"]["en"]
    assert doc["evidence_url"] == "https://x.example/e.jpg"
    assert connector.find_existing(m) is None and connector.poll([]) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, CaseRefusedError), (403, CaseRefusedError), (500, CaseSystemError), (503, None)],
)
def test_answers_map_to_permanent_and_transient_errors(
    store: IssueStore, status: int, error: type[Exception] | None
) -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(status, text="nope"))
    connector = WebhookConnector(
        "https://gw.example/c", SECRET, load_mapping(), transport=transport
    )
    with pytest.raises(error or CaseSystemError, match=f"HTTP {status}") as caught:
        connector.deliver(message(store), SendContext())
    if status < 500:
        assert isinstance(caught.value, CaseRefusedError) and caught.value.status == status
    else:
        assert not isinstance(caught.value, CaseRefusedError)


def test_a_duplicate_answer_and_an_unreachable_receiver(store: IssueStore) -> None:
    dup = httpx.MockTransport(lambda _r: httpx.Response(409, json={"case_id": "SZCG-5"}))
    connector = WebhookConnector("https://gw.example/c", SECRET, load_mapping(), transport=dup)
    delivery = connector.deliver(message(store), SendContext())
    assert delivery.found_existing and delivery.case_id == "SZCG-5"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    connector = WebhookConnector(
        "https://gw.example/c", SECRET, load_mapping(), transport=httpx.MockTransport(down)
    )
    with pytest.raises(CaseSystemError, match=r"webhook https://gw.example/c: ConnectError"):
        connector.deliver(message(store), SendContext())
