"""The case loop on the API: the signed status callback, 评价 statistics, the outbox."""

from __future__ import annotations

import json

from pydantic import SecretStr

from tests.fixtures.service import RunningService
from xunjian.bench.service import seed_issues
from xunjian.cases.webhook import SIGNATURE_HEADER, sign

SECRET = b"shared-secret"


def signed_service(make_service, settings) -> RunningService:
    service = make_service(
        settings.model_copy(update={"webhook_secret": SecretStr("shared-secret")})
    )
    seed_issues(service.services.catalog.engine, 5, seed=3, spread_deg=0.001)
    return service


def first_issue(service: RunningService, status: str) -> str:
    """An issue moved (in the table, as seeded data) to ``status``."""
    from sqlalchemy import update

    from xunjian.storage.issue_tables import ISSUES

    issue_id = service.client.get("/api/v1/issues").json()["features"][0]["id"]
    with service.services.catalog.engine.begin() as conn:
        conn.execute(update(ISSUES).where(ISSUES.c.id == issue_id).values(status=status))
    return issue_id


def test_a_signed_callback_moves_the_issue(make_service, settings) -> None:
    service = signed_service(make_service, settings)
    issue_id = first_issue(service, "published")
    body = json.dumps({"issue_id": issue_id, "case_id": "C-1", "status": "处置"}).encode()
    platform = service.as_role("case_platform")
    response = platform.post(
        "/api/v1/cases/callback", content=body, headers={SIGNATURE_HEADER: sign(SECRET, body)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["status"] == "in_progress"
    history = service.client.get(f"/api/v1/issues/{issue_id}").json()["properties"]["history"]
    assert history[-1]["to_status"] == "in_progress"


def test_unsigned_or_forged_callbacks_are_refused(make_service, settings) -> None:
    service = signed_service(make_service, settings)
    issue_id = first_issue(service, "published")
    body = json.dumps({"issue_id": issue_id, "status": "closed"}).encode()
    platform = service.as_role("case_platform")
    for headers in ({}, {SIGNATURE_HEADER: sign(b"other", body)}, {SIGNATURE_HEADER: "sha256=zz"}):
        response = platform.post("/api/v1/cases/callback", content=body, headers=headers)
        assert response.status_code == 403, headers
        assert SIGNATURE_HEADER in response.json()["detail"]
    status = service.client.get(f"/api/v1/issues/{issue_id}").json()["properties"]["status"]
    assert status == "published"
    bad = b'{"issue_id": "iss_unknown", "status": "closed"}'
    response = platform.post(
        "/api/v1/cases/callback", content=bad, headers={SIGNATURE_HEADER: sign(SECRET, bad)}
    )
    assert response.status_code == 422 and "iss_unknown" in response.json()["detail"]


def test_without_a_secret_callbacks_are_refused(service: RunningService) -> None:
    body = b'{"issue_id": "x", "status": "closed"}'
    response = service.as_role("case_platform").post(
        "/api/v1/cases/callback", content=body, headers={SIGNATURE_HEADER: sign(b"", body)}
    )
    assert response.status_code == 403
    assert "XUNJIAN_WEBHOOK_SECRET" in response.json()["detail"]


def test_evaluation_statistics(service: RunningService) -> None:
    seed_issues(service.services.catalog.engine, 30, seed=2, spread_deg=0.01)
    stats = service.as_role("ml_engineer").get("/api/v1/stats", params={"within_days": 14})
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["within_days"] == 14
    assert body["overall"]["found"] == 30
    boxed = service.client.get("/api/v1/stats", params={"bbox": "0,0,1,1"}).json()
    assert boxed["overall"]["found"] == 0
    assert service.client.get("/api/v1/stats", params={"bbox": "1,1"}).status_code == 422


def test_feedback_through_the_api_enqueues_a_case_message(service: RunningService) -> None:
    seed_issues(service.services.catalog.engine, 3, seed=4, spread_deg=0.001)
    issue_id = first_issue(service, "candidate")
    depth_before = _outbox_rows(service)
    response = service.as_role("ml_engineer").post(
        f"/api/v1/issues/{issue_id}/feedback", json={"kind": "confirm"}
    )
    assert response.status_code == 201
    assert _outbox_rows(service) == depth_before + 1  # a confirmed candidate becomes a case


def _outbox_rows(service: RunningService) -> int:
    from sqlalchemy import func, select

    from xunjian.storage.case_tables import OUTBOX

    with service.services.catalog.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one())
