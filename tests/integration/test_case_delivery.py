"""Exactly-once delivery to a real (loopback) Open311 server, and the whole closed loop.

* Hundreds of issues, ~30 % injected faults (500s, timeouts, dropped connections, slow
  answers — before and *after* the server stored the request), and the sender — a
  ``xunjian cases run`` subprocess — SIGKILLed midway and started again: every issue arrives
  exactly once.
* Flight 1 → cases → the city closes, dispatches and rejects some → flight 2 over a changed
  world → ``verified_fixed`` and ``recurred`` reach the server (an update, and a new case
  linked to the old one).
* A bad service code, a 403 and an unreachable server: a clear error, and every issue stays
  in the outbox.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.cases import grid_flight, observe
from xunjian.cases.casebook import case_of
from xunjian.cases.loop import open_case_loop
from xunjian.cases.mapping import load_mapping
from xunjian.cases.outbox import Outbox, PublishPolicy, install_outbox
from xunjian.cases.stats import evaluation_stats
from xunjian.cases.testserver import Faults, Open311TestServer
from xunjian.cli.app import app
from xunjian.core.geo import en_to_latlon
from xunjian.core.issues import IssueStatus
from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Observation
from xunjian.core.verify import Outcome, verify_batch
from xunjian.inspect.pipeline import Services
from xunjian.settings import get_settings
from xunjian.storage.issues import IssueStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_ISSUES = 200
ISSUE_LINE = re.compile(r"xunjian: (iss_[0-9a-f]+)")
FAST_RETRY = {
    "XUNJIAN_CASE_HTTP_TIMEOUT_S": "0.15",
    "XUNJIAN_CASE_BACKOFF_BASE_S": "0.02",
    "XUNJIAN_CASE_BACKOFF_CAP_S": "0.2",
    "XUNJIAN_CASE_MAX_ATTEMPTS": "60",
    "XUNJIAN_CASE_CLAIM_LEASE_S": "0.5",
}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def issue_counts(server: Open311TestServer) -> Counter[str]:
    return Counter(
        m.group(1) for r in server.requests() if (m := ISSUE_LINE.search(r["description"]))
    )


def sender_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    code = "import sys; from xunjian.cli import main; sys.argv[0] = 'xunjian'; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "cases", "run", "--interval", "0.05"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def faulty_server() -> Iterator[Open311TestServer]:
    faults = Faults(rate=0.3, seed=11, hang_s=0.25, slow_s=0.02)
    with Open311TestServer(faults=faults) as server:
        yield server


def test_every_issue_arrives_once_through_faults_and_a_killed_sender(
    database_url: str, faulty_server: Open311TestServer, tmp_path: Path
) -> None:
    with IssueStore(database_url) as store:
        install_outbox(store, PublishPolicy.from_mapping(load_mapping()), "open311")
        fused = store.record_batch("B1", grid_flight("B1", N_ISSUES))
        assert len(fused.new) == N_ISSUES
        assert Outbox(store).counts()["pending"] == N_ISSUES

    env = {k: v for k, v in os.environ.items() if not k.startswith("XUNJIAN_")}
    env.update(
        FAST_RETRY,
        XUNJIAN_DATA_DIR=str(tmp_path / "data"),
        XUNJIAN_DATABASE_URL=database_url,
        XUNJIAN_CASE_SYSTEM="open311",
        XUNJIAN_OPEN311_ENDPOINT=faulty_server.url,
        XUNJIAN_OPEN311_API_KEY="test-key",
        XUNJIAN_PUBLIC_URL="http://xunjian.example",
    )
    log = tmp_path / "sender.log"
    first = sender_process(env, log)
    try:
        wait_for(
            lambda: len(faulty_server.requests()) >= N_ISSUES // 3 or first.poll() is not None,
            60,
            "a third of the cases",
        )
        assert first.poll() is None, log.read_text()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert first.returncode == -signal.SIGKILL
    arrived = len(faulty_server.requests())
    assert arrived < N_ISSUES, "killed too late to test anything"

    second = sender_process(env, log)
    try:
        with IssueStore(database_url, migrate=False) as store:
            outbox = Outbox(store)
            wait_for(
                lambda: outbox.counts()["delivered"] == N_ISSUES or second.poll() is not None,
                90,
                "every case delivered",
            )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    output = log.read_text()
    assert second.returncode == 0, output
    assert "SIGTERM: stopping" in output and "stopped after" in output

    counts = issue_counts(faulty_server)
    assert set(counts) == set(fused.new), "lost cases"
    assert max(counts.values()) == 1, f"duplicated: {[k for k, v in counts.items() if v > 1]}"
    assert len(faulty_server.requests()) == N_ISSUES
    injected = faulty_server.faults.counts
    assert injected.get("stored_500", 0) + injected.get("stored_timeout", 0) > 0
    by_id = {r["service_request_id"]: r for r in faulty_server.requests()}
    with IssueStore(database_url, migrate=False) as store:
        assert Outbox(store).counts() == {"pending": 0, "delivered": N_ISSUES, "dead": 0}
        found_again = 0
        with store.engine.connect() as conn:
            for issue_id in fused.new:
                case = case_of(conn, issue_id)
                assert case is not None and case.case_id in by_id
                assert issue_id in by_id[case.case_id]["description"]
        for issue in store.issues():
            assert issue.status is IssueStatus.PUBLISHED
            events = [e for e in store.history(issue.id) if e.kind == "case"]
            found_again += any(e.data.get("found_existing") for e in events)
        assert found_again > 0, "no lookup found a case stored behind a fault"
    media = {r["media_url"] for r in by_id.values()}
    assert all(m.startswith("http://xunjian.example/api/v1/issues/iss_") for m in media)


K = CameraIntrinsics(1024, 768, 727.5, 727.5, 512.0, 384.0)
PLACES = {"A": (0.0, 0.0), "B": (40.0, 0.0), "C": (0.0, 40.0), "D": (40.0, 40.0)}


def frames_over(batch: str, places: list[tuple[float, float]]) -> list[Frame]:
    """Two nadir frames 30 m above each place: good views for verification."""
    out = []
    origin = observe(0, 0, frame="x", batch=batch)
    for i, (e, n) in enumerate(places):
        for j, de in enumerate((-1.0, 1.0)):
            lat, lon = en_to_latlon(e + de, n, origin.lat, origin.lon)
            pose = CameraPose(float(lat), float(lon), 30.0, 0.0, -90.0)
            at = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
            out.append(
                Frame(
                    batch,
                    f"{batch}/F{i}{j}.jpg",
                    "",
                    1024,
                    768,
                    captured_at=at,
                    intrinsics=K,
                    pose=pose,
                )
            )
    return out


def seen_at(batch: str, place: tuple[float, float], cls: str = "pothole") -> list[Observation]:
    e, n = place
    return [
        observe(e + 0.1 * f, n, frame=f"{batch}/F{f}.jpg", batch=batch, cls=cls) for f in range(2)
    ]


def test_the_whole_loop_reaches_the_server(
    database_url: str,
    open311_server: Open311TestServer,
    settings: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "XUNJIAN_DATABASE_URL": database_url,
        "XUNJIAN_CASE_SYSTEM": "open311",
        "XUNJIAN_OPEN311_ENDPOINT": open311_server.url,
        "XUNJIAN_OPEN311_API_KEY": "test-key",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    services = Services.open(get_settings())
    loop = open_case_loop(services)
    issues = services.issues
    try:
        # flight 1: four potholes and a spoil truck
        flight1 = grid_flight("B1", 4, spacing_m=40.0)
        flight1 += seen_at("B1", (80.0, 80.0), cls="spoil_truck")
        fused = issues.record_batch("B1", flight1)
        by_place = {name: _issue_at(issues, PLACES[name]) for name in PLACES}
        assert loop.sync().sent.delivered == 5
        case = {name: _case_id(issues, by_place[name]) for name in PLACES}
        assert len(open311_server.requests()) == 5

        # the city works the cases
        open311_server.set_status(case["A"], "closed", notes="修补完成")
        open311_server.set_status(case["B"], "fixed")
        open311_server.set_status(case["C"], "investigating", agency="市政")
        open311_server.set_status(case["D"], "rejected", notes="阴影，非坑槽")
        report = loop.sync()
        assert report.status_changes == 4, report.as_dict()
        status = {n: _status(issues, by_place[n]) for n in PLACES}
        assert status == {
            "A": IssueStatus.CLOSED,
            "B": IssueStatus.CLOSED,
            "C": IssueStatus.DISPATCHED,
            "D": IssueStatus.REJECTED,
        }
        [feedback] = issues.feedback(issue_id=by_place["D"])
        assert feedback.kind == "false_positive" and feedback.source == "case_platform"

        # flight 2 over a changed world: A repaired, B back, C still there (pipeline order)
        frames = frames_over("B2", [PLACES["A"], PLACES["B"], PLACES["C"]])
        seen = seen_at("B2", PLACES["B"]) + seen_at("B2", PLACES["C"])
        earlier = issues.issues()
        decisions = verify_batch(earlier, "B2", frames, seen)
        outcome = {d.issue_id: d.outcome for d in decisions}
        assert outcome[by_place["A"]] is Outcome.VERIFIED_FIXED
        assert outcome[by_place["B"]] is Outcome.RECURRED
        assert outcome[by_place["C"]] is Outcome.REOBSERVED
        issues.record_verifications(decisions)
        fused2 = issues.record_batch("B2", seen)
        [new_b] = fused2.new
        assert by_place["C"] in fused2.updated
        report = loop.sync()
        assert report.sent.delivered == 3, report.as_dict()

        updates = {u["update_id"]: u for u in open311_server.updates() if "update_id" in u}
        fixed = updates[f"{by_place['A']}:verified_fixed"]
        assert fixed["service_request_id"] == case["A"] and "确认已修复" in fixed["description"]
        recurred = updates[f"{by_place['B']}:recurred"]
        assert recurred["service_request_id"] == case["B"]
        requests = open311_server.requests()
        assert len(requests) == 6
        linked = requests[-1]
        assert f"xunjian: {new_b}" in linked["description"]
        assert f"原案件 {case['B']}" in linked["description"]
        assert linked["attributes"]["replaces_case"] == case["B"]
        with issues.engine.connect() as conn:
            row = case_of(conn, new_b)
        assert row is not None and row.case_id == linked["service_request_id"]
        assert _status(issues, new_b) is IssueStatus.PUBLISHED
        assert _status(issues, by_place["A"]) is IssueStatus.VERIFIED_FIXED
        assert _status(issues, by_place["B"]) is IssueStatus.RECURRED
        assert loop.sync().sent.delivered == 0  # nothing twice

        stats = evaluation_stats(issues)["overall"]
        assert (stats["found"], stats["published"], stats["verified_fixed"]) == (6, 6, 1)
        assert (stats["recurred"], stats["rejected"]) == (1, 1)
        assert stats["share_verified_within_days"] == 0.5
        assert len(fused.new) == 5
    finally:
        loop.close()
        services.close()


def _issue_at(issues: IssueStore, place: tuple[float, float]) -> str:
    origin = observe(0, 0, frame="x", batch="B1")
    lat, lon = en_to_latlon(place[0], place[1], origin.lat, origin.lon)
    near = [i for i in issues.issues() if abs(i.lat - lat) < 2e-5 and abs(i.lon - lon) < 2e-5]
    [found] = [i for i in near if i.class_name == "pothole"]
    return found.id


def _case_id(issues: IssueStore, issue_id: str) -> str:
    with issues.engine.connect() as conn:
        case = case_of(conn, issue_id)
    assert case is not None and case.case_id
    return case.case_id


def _status(issues: IssueStore, issue_id: str) -> IssueStatus:
    issue = issues.issue(issue_id, with_observations=False)
    assert issue is not None
    return IssueStatus(issue.status)


runner = CliRunner()


@pytest.mark.parametrize("problem", ["bad service code", "403", "unreachable"])
def test_a_broken_case_system_keeps_every_issue_in_the_outbox(
    problem: str,
    open311_server: Open311TestServer,
    settings: object,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, key = open311_server.url, "test-key"
    if problem == "bad service code":
        text = load_mapping().source
        mapping = tmp_path / "city.yaml"
        body = Path(text).read_text(encoding="utf-8")
        mapping.write_text(body.replace("service_code: pothole", "service_code: potholes"))
        monkeypatch.setenv("XUNJIAN_CASE_MAPPING", str(mapping))
    elif problem == "403":
        key = "stolen-key"
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            endpoint = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("XUNJIAN_CASE_SYSTEM", "open311")
    monkeypatch.setenv("XUNJIAN_OPEN311_ENDPOINT", endpoint)
    monkeypatch.setenv("XUNJIAN_OPEN311_API_KEY", key)
    monkeypatch.setenv("XUNJIAN_CASE_HTTP_TIMEOUT_S", "1")
    get_settings.cache_clear()
    configured = get_settings()
    with IssueStore(configured.db_url) as store:
        install_outbox(store, PublishPolicy.from_mapping(load_mapping()), "open311")
        store.record_batch("B1", grid_flight("B1", 5))

    result = runner.invoke(app, ["cases", "sync"])
    expected = {
        "bad service code": (2, "potholes do not exist"),
        "403": (1, "HTTP 403"),
        "unreachable": (1, f"{endpoint}/services.json: ConnectError"),
    }[problem]
    assert result.exit_code == expected[0], result.output
    assert expected[1] in " ".join(result.output.split()), result.output
    with IssueStore(configured.db_url, migrate=False) as store:
        messages = Outbox(store).messages()
        assert len(messages) == 5 and all(m.state == "pending" for m in messages)
        assert all(i.status is IssueStatus.CANDIDATE for i in store.issues())
    assert open311_server.requests() == []
