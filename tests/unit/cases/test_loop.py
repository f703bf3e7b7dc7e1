"""The case loop as a process uses it: wiring from settings, sync, run, and the CLI."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.fixtures.cases import grid_flight
from xunjian.cases.connectors import build_connector
from xunjian.cases.loop import open_case_loop
from xunjian.cases.mapping import load_mapping
from xunjian.cases.webhook import SIGNATURE_HEADER, sign, verify_signature
from xunjian.cli.app import app
from xunjian.core.issues import IssueStatus
from xunjian.errors import ConfigurationError
from xunjian.inspect.pipeline import Services
from xunjian.settings import Settings, get_settings

runner = CliRunner()


def test_the_file_sink_loop_delivers_and_the_cli_reports(settings: Settings) -> None:
    services = Services.open(settings)
    try:
        loop = open_case_loop(services)
        fused = services.issues.record_batch("B1", grid_flight("B1", 3))
        report = loop.sync()
        assert report.sent.delivered == 3 and report.outbox["delivered"] == 3
        assert report.polled == 0  # a file answers nothing
        lines = (settings.data_dir / "cases.jsonl").read_text(encoding="utf-8").splitlines()
        assert sorted(json.loads(x)["issue_id"] for x in lines) == sorted(fused.new)
        stop = threading.Event()
        stop.set()
        assert loop.run(0.01, stop) == 0
        loop.close()
    finally:
        services.close()

    listed = runner.invoke(app, ["cases", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [m["state"] for m in json.loads(listed.stdout)] == ["delivered"] * 3
    stats = runner.invoke(app, ["cases", "stats", "--json", "--days", "3"])
    assert stats.exit_code == 0 and json.loads(stats.stdout)["overall"]["published"] == 3
    assert runner.invoke(app, ["cases", "stats"]).exit_code == 0
    later = runner.invoke(app, ["cases", "stats", "--json", "--since", "2099-01-01"])
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout)["overall"]["found"] == 0
    synced = runner.invoke(app, ["cases", "sync", "--json"])
    assert synced.exit_code == 0 and json.loads(synced.stdout)["delivered"] == 0
    assert runner.invoke(app, ["cases", "check"]).exit_code == 0
    replay = runner.invoke(app, ["cases", "replay", "--all-dead"])
    assert replay.exit_code == 0 and "0 message(s)" in replay.output
    issues = runner.invoke(app, ["issues", "list", "--json", "--status", "published"])
    assert len(json.loads(issues.stdout)["features"]) == 3
    assert runner.invoke(app, ["issues", "list", "--class", "pothole"]).exit_code == 0
    out = settings.data_dir / "export" / "issues.geojson"
    assert runner.invoke(app, ["issues", "export", str(out)]).exit_code == 0
    assert len(json.loads(out.read_text(encoding="utf-8"))["features"]) == 3
    bad = runner.invoke(app, ["issues", "list", "--bbox", "1,2,3"])
    assert bad.exit_code == 2 and "min_lon,min_lat,max_lon,max_lat" in bad.output


def test_the_webhook_loop_signs_and_callbacks_close(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XUNJIAN_CASE_SYSTEM", "webhook")
    monkeypatch.setenv("XUNJIAN_WEBHOOK_URL", "https://gateway.example/cases")
    monkeypatch.setenv("XUNJIAN_WEBHOOK_SECRET", "k3y")
    get_settings.cache_clear()
    configured = get_settings()
    received: dict[str, bytes] = {}

    def gateway(request: httpx.Request) -> httpx.Response:
        verify_signature(b"k3y", request.content, request.headers[SIGNATURE_HEADER])
        key = request.headers["Idempotency-Key"]
        received.setdefault(key, request.content)  # the receiver deduplicates by key
        return httpx.Response(200, json={"case_id": f"SZCG-{list(received).index(key)}"})

    services = Services.open(configured)
    try:
        loop = open_case_loop(services, transport=httpx.MockTransport(gateway))
        [issue_id] = services.issues.record_batch("B1", grid_flight("B1", 1)).new
        assert loop.sync().sent.delivered == 1
        from xunjian.cases.webhook import apply_callback

        body = json.dumps({"case_id": "SZCG-0", "status": "核查结案"}).encode()
        assert sign(b"k3y", body).startswith("sha256=")
        assert apply_callback(services.issues, body).status is IssueStatus.CLOSED
        issue = services.issues.issue(issue_id, with_observations=False)
        assert issue is not None and issue.status is IssueStatus.CLOSED
        loop.close()
    finally:
        services.close()


def test_connector_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    mapping = load_mapping()
    with pytest.raises(ConfigurationError, match="XUNJIAN_OPEN311_ENDPOINT"):
        build_connector(Settings(data_dir=tmp_path, case_system="open311"), mapping)
    with pytest.raises(ConfigurationError, match="XUNJIAN_WEBHOOK_SECRET"):
        build_connector(
            Settings(data_dir=tmp_path, case_system="webhook", webhook_url="https://x"), mapping
        )
    assert build_connector(Settings(data_dir=tmp_path), mapping).name == "file"


def test_a_bad_mapping_stops_the_cli_before_anything_is_sent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "city.yaml"
    bad.write_text("classes: {}\n", encoding="utf-8")
    monkeypatch.setenv("XUNJIAN_CASE_MAPPING", str(bad))
    get_settings.cache_clear()
    result = runner.invoke(app, ["cases", "sync"])
    assert result.exit_code == 2 and "city.yaml" in result.output
