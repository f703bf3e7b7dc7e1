"""Health, readiness, metrics, request ids and JSON logs; the map page and its files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.fixtures.service import RunningService
from xunjian.bench.service import seed_issues
from xunjian.service.logs import JsonFormatter


def test_health_and_readiness_need_no_key(service: RunningService) -> None:
    assert service.client.get("/healthz", key="").json() == {"status": "ok"}
    ready = service.client.get("/readyz", key="")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "object_store": "ok"}


def test_readiness_fails_when_the_store_does_not_answer(service: RunningService) -> None:
    from xunjian.errors import StorageError

    class Down:
        bucket = "down"

        def exists(self, key: str) -> bool:
            raise StorageError("s3://down: cannot reach S3 endpoint 127.0.0.1:1")

    service.state.services.store = Down()
    ready = service.client.get("/readyz", key="")
    assert ready.status_code == 503
    assert "cannot reach" in ready.json()["checks"]["object_store"]


def test_metrics_count_requests_issues_and_the_outbox(service: RunningService) -> None:
    seed_issues(service.services.catalog.engine, 7, seed=5)
    service.client.get("/api/v1/issues")
    service.client.get("/api/v1/issues/iss_none")
    text = service.as_role("ml_engineer").get("/metrics").text
    assert (
        'xunjian_http_requests_total{method="GET",route="/api/v1/issues",status="200"} 1.0' in text
    )
    assert 'route="/api/v1/issues/{issue_id}",status="404"' in text
    counts = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("xunjian_issues{")
    ]
    assert sum(counts) == 7
    assert "xunjian_outbox_depth " in text
    for name in ("frames_processed_total", "detections_total", "stage_seconds", "batches_total"):
        assert f"xunjian_{name}" in text


def test_every_response_has_a_request_id_and_a_json_log_line(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="xunjian.service.access"):
        given = service.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        made = service.client.get("/api/v1/issues", key="")
        keyed = service.client.get("/api/v1/issues")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    records = [r for r in caplog.records if r.name == "xunjian.service.access"]
    assert len(records) == 3
    line = json.loads(JsonFormatter().format(records[1]))
    assert line["status"] == 401 and line["method"] == "GET"
    assert line["path"] == "/api/v1/issues" and line["request_id"] == made.headers["x-request-id"]
    assert line["duration_ms"] >= 0 and line["level"] == "info"
    assert keyed.status_code == 200
    assert records[2].key == "test-admin"


def test_the_map_page_and_its_files(make_service, settings) -> None:
    tiles = "https://tiles.example/{z}/{x}/{y}.png"
    service = make_service(
        settings.model_copy(update={"tile_url": tiles, "tile_attribution": "</script><b>x"})
    )
    page = service.client.get("/", key="")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "风险一张图" in page.text
    config_text = page.text.split('id="xj-config" type="application/json">')[1].split("</script>")[
        0
    ]
    config = json.loads(config_text)
    assert config == {"api": "/api/v1", "tile_url": tiles, "tile_attribution": "</script><b>x"}
    script = service.client.get("/static/map.js", key="")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-issue-id" in script.text or "issueId" in script.text
    assert service.client.get("/static/map.css", key="").status_code == 200
    assert service.client.get("/static/../app.py", key="").status_code == 404
    assert service.client.get("/static/secret.py", key="").status_code == 404


def test_the_page_uses_nothing_from_the_network() -> None:
    web = Path(__file__).resolve().parents[3] / "src" / "xunjian" / "service" / "web"
    for name in ("index.html", "map.js", "map.css"):
        text = (web / name).read_text(encoding="utf-8")
        for marker in ("http://", "https://", "//cdn", "@import", "fonts.g"):
            found = [line for line in text.splitlines() if marker in line and "w3.org" not in line]
            assert not found, (name, found)


def test_openapi_lists_the_api_and_its_security(service: RunningService) -> None:
    schema = service.client.get("/openapi.json", key="").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/batches",
        "/api/v1/batches/{batch_id}/uploads",
        "/api/v1/batches/{batch_id}/complete",
        "/api/v1/batches/{batch_id}/events",
        "/api/v1/store-events",
        "/api/v1/issues",
        "/api/v1/issues/{issue_id}",
        "/api/v1/issues/{issue_id}/feedback",
        "/api/v1/cases/callback",
        "/api/v1/stats",
        "/api/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schema["components"]["securitySchemes"])
    assert "security" in paths["/api/v1/issues"]["get"]
    assert "security" not in paths["/healthz"]["get"]
    assert service.client.get("/docs", key="").status_code == 200
