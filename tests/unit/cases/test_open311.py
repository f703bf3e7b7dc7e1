"""The Open311 connector against the project's strict GeoReport v2 server on loopback."""

from __future__ import annotations

import copy
import dataclasses
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fixtures.cases import Clock, grid_flight
from xunjian.cases.mapping import DEFAULT_MAPPING, load_mapping, parse_mapping
from xunjian.cases.messages import (
    CaseRef,
    OutboxMessage,
    SendContext,
    create_payload,
    update_payload,
)
from xunjian.cases.open311 import Open311Connector
from xunjian.cases.testserver import Faults, Open311TestServer
from xunjian.core.issues import Issue, IssueStatus
from xunjian.errors import CaseRefusedError, CaseSystemError, ConfigurationError
from xunjian.storage.issues import IssueStore

pytestmark = pytest.mark.integration


@pytest.fixture
def issues(tmp_path: Path) -> Iterator[list[Issue]]:
    with IssueStore(f"sqlite:///{tmp_path / 'x.db'}", clock=Clock()) as store:
        store.record_batch("B1", grid_flight("B1", 3))
        yield store.issues()


def message(issue: Issue, kind: str = "create", key: str | None = None) -> OutboxMessage:
    now = datetime.now(UTC)
    payload = create_payload(issue)
    if kind == "update":
        payload = update_payload(issue, IssueStatus.VERIFIED_FIXED, batch_id="B2", at=now)
    return OutboxMessage(
        1, key or issue.id, issue.id, "open311", kind, payload, "pending", 0, now, None, now, now
    )


def connector(server: Open311TestServer, **kw: object) -> Open311Connector:
    return Open311Connector(server.url, load_mapping(), api_key="test-key", timeout_s=2, **kw)  # type: ignore[arg-type]


def test_check_validates_the_mapping_against_the_services(
    open311_server: Open311TestServer,
) -> None:
    notes = connector(open311_server).check()
    assert "mapped codes" in notes[0] and "xunjian_issue_id" in notes[1]
    document = yaml.safe_load(DEFAULT_MAPPING.read_text(encoding="utf-8"))
    bad = copy.deepcopy(document)
    bad["classes"]["pothole"]["service_code"] = "potholes-typo"
    mapping = parse_mapping(bad, "city.yaml")
    with pytest.raises(ConfigurationError, match="potholes-typo do not exist") as caught:
        Open311Connector(open311_server.url, mapping).check()
    assert "expected among illegal-dumping, pothole" in str(caught.value)


def test_a_required_attribute_xunjian_cannot_fill_is_refused_at_check() -> None:
    attrs = [{"code": "ward", "datatype": "string", "required": True}]
    with (
        Open311TestServer(attributes=attrs) as server,
        pytest.raises(ConfigurationError, match="requires attribute 'ward'"),
    ):
        connector(server).check()


def test_a_case_carries_place_text_evidence_and_attributes(
    open311_server: Open311TestServer, issues: list[Issue]
) -> None:
    c = connector(open311_server)
    issue = issues[0]
    delivery = c.deliver(message(issue), SendContext(media_url="https://x.example/e.jpg"))
    [stored] = open311_server.requests()
    assert delivery.case_id == stored["service_request_id"] and delivery.token is None
    assert stored["service_code"] == "pothole"
    assert abs(stored["lat"] - issue.lat) < 1e-6 and abs(stored["long"] - issue.lon) < 1e-6
    assert stored["description"].endswith(f"xunjian: {issue.id}")
    assert "坑槽" in stored["description"] and "pothole" in stored["description"]
    assert stored["media_url"] == "https://x.example/e.jpg"
    assert stored["attributes"]["xunjian_issue_id"] == issue.id
    assert stored["attributes"]["category"] == "pothole"
    assert float(stored["attributes"]["confidence"]) == pytest.approx(issue.confidence, abs=1e-3)


def test_tokens_are_resolved_when_polling(issues: list[Issue]) -> None:
    with Open311TestServer(token_mode=True) as server:
        c = connector(server)
        delivery = c.deliver(message(issues[0]), SendContext())
        assert delivery.case_id is None and delivery.token
        ref = CaseRef(issues[0].id, None, delivery.token, "open", None, datetime.now(UTC))
        [report] = c.poll([ref])
        assert (
            report.token_resolved and report.case_id == server.requests()[0]["service_request_id"]
        )


def test_a_case_stored_behind_an_error_is_found_not_sent_again(issues: list[Issue]) -> None:
    faults = Faults(rate=1.0, kinds=("stored_500",), methods=("POST",))
    with Open311TestServer(faults=faults) as server:
        c = connector(server)
        c.check()
        with pytest.raises(CaseSystemError, match="HTTP 500"):
            c.deliver(message(issues[0]), SendContext())
        found = c.find_existing(message(issues[0]))
        assert found is not None and found.found_existing
        assert found.case_id == server.requests()[0]["service_request_id"]
        assert c.find_existing(message(issues[1])) is None


def test_the_lookup_splits_a_window_the_page_limit_would_cut(issues: list[Issue]) -> None:
    with Open311TestServer(page_limit=4) as server:
        c = connector(server, page_limit=4)
        target = issues[0]
        c.deliver(message(target), SendContext())
        for i in range(9):  # later requests of the same service fill the first page
            fake = message(issues[1], key=f"other-{i}")
            c.deliver(fake, SendContext())
        found = c.find_existing(message(target))
        assert found is not None and found.case_id == server.requests()[0]["service_request_id"]


def test_refusals_and_an_unreachable_server_are_clear(
    open311_server: Open311TestServer, issues: list[Issue]
) -> None:
    c = Open311Connector(open311_server.url, load_mapping(), api_key="wrong")
    c.check()
    with pytest.raises(CaseRefusedError, match=r"HTTP 403: \[403\] api_key") as caught:
        c.deliver(message(issues[0]), SendContext())
    assert caught.value.status == 403 and caught.value.errors[0]["code"] == "403"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = Open311Connector(f"http://127.0.0.1:{port}", load_mapping(), timeout_s=1)
    with pytest.raises(CaseSystemError, match=f"127.0.0.1:{port}/services.json: ConnectError"):
        down.check()


def test_polling_reads_statuses_and_the_finer_update_feed(
    open311_server: Open311TestServer, issues: list[Issue]
) -> None:
    c = connector(open311_server)
    ids = [c.deliver(message(i), SendContext()).case_id for i in issues[:3]]
    now = datetime.now(UTC)
    refs = [
        CaseRef(i.id, cid, None, "open", None, now) for i, cid in zip(issues, ids, strict=False)
    ]
    assert {r.status for r in c.poll(refs)} <= {"open"}
    open311_server.set_status(str(ids[0]), "closed", notes="filled", agency="市政")
    open311_server.set_status(str(ids[1]), "investigating")
    open311_server.set_status(str(ids[2]), "rejected", notes="not a pothole")
    by_id = {r.case_id: r for r in c.poll(refs)}
    assert by_id[ids[0]].status == "closed" and by_id[ids[0]].agency == "市政"
    assert by_id[ids[1]].status == "investigating"
    assert by_id[ids[2]].status == "rejected" and by_id[ids[2]].notes == "not a pothole"
    plain = connector(open311_server, updates=False)
    assert {r.case_id: r.status for r in plain.poll(refs)}[ids[1]] == "open"


def test_updates_use_the_extension_once(
    open311_server: Open311TestServer, issues: list[Issue]
) -> None:
    c = connector(open311_server)
    case_id = c.deliver(message(issues[0]), SendContext()).case_id
    update = message(issues[0], "update", key=f"{issues[0].id}:verified_fixed")
    for _ in range(2):
        assert c.deliver(update, SendContext(case_id=case_id)).case_id == case_id
    [sent] = open311_server.updates()
    assert sent["update_id"] == update.idempotency_key and sent["status"] == "closed"
    assert "确认已修复" in sent["description"]
    off = connector(open311_server, updates=False).deliver(update, SendContext(case_id=case_id))
    assert "not sent" in off.note and len(open311_server.updates()) == 1


def form(**fields: str) -> dict[str, str]:
    return {
        "api_key": "test-key",
        "service_code": "pothole",
        "lat": "29.5",
        "long": "106.5",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "status", "says"),
    [
        (form(lat="", long=""), 400, "lat/long must be numbers"),
        ({"api_key": "test-key", "service_code": "pothole"}, 400, "a location is required"),
        (form(lat="95"), 400, "out of range"),
        (form(service_code="nope"), 404, "service_code 'nope' not found"),
        (form(service_code=""), 400, "service_code is required"),
        (form(description="x" * 4001), 400, "at most 4000"),
        (form(media_url="ftp://x"), 400, "http(s) URL"),
        (form(**{"attribute[ward]": "3"}), 400, "'ward' is not defined"),
        (form(**{"attribute[confidence]": "high"}), 400, "must be a number"),
        (form(api_key=""), 403, "api_key"),
    ],
)
def test_the_server_is_strict_about_requests(
    open311_server: Open311TestServer, fields: dict[str, str], status: int, says: str
) -> None:
    answer = httpx.post(f"{open311_server.url}/requests.json", data=fields)
    assert answer.status_code == status
    [error] = answer.json()
    assert error["code"] == status and says in error["description"]


def test_the_server_searches_and_refuses_like_georeport(open311_server: Open311TestServer) -> None:
    url = open311_server.url
    assert httpx.post(f"{url}/requests.json", json=form()).status_code == 400  # not a form
    ids = [httpx.post(f"{url}/requests.json", data=form()).json()[0]["service_request_id"]]
    ids += [
        httpx.post(f"{url}/requests.json", data=form(service_code="spoil-truck")).json()[0][
            "service_request_id"
        ]
    ]
    open311_server.set_status(ids[0], "closed")
    get = lambda **q: httpx.get(f"{url}/requests.json", params=q)  # noqa: E731
    assert [r["service_request_id"] for r in get(service_code="spoil-truck").json()] == [ids[1]]
    assert [r["service_request_id"] for r in get(status="closed").json()] == [ids[0]]
    assert len(get(service_request_id=",".join(ids)).json()) == 2
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert get(start_date=later).status_code == 400  # ends before it starts
    assert (
        get(start_date="2020-01-01T00:00:00Z", end_date="2021-01-01T00:00:00Z").status_code == 400
    )
    assert get(start_date="yesterday").status_code == 400
    assert httpx.get(f"{url}/tokens/nope.json").status_code == 404
    assert httpx.get(f"{url}/requests/{ids[1]}.json").json()[0]["service_code"] == "spoil-truck"
    assert httpx.get(f"{url}/services/nope.json").status_code == 404
    with pytest.raises(ValueError, match="expected fault kinds"):
        Faults(kinds=("gremlins",))


def test_an_old_message_is_looked_up_in_ninety_day_parts(
    open311_server: Open311TestServer, issues: list[Issue]
) -> None:
    c = connector(open311_server)
    c.deliver(message(issues[0]), SendContext())
    fresh = message(issues[0])
    old = dataclasses.replace(fresh, created_at=fresh.created_at - timedelta(days=200))
    found = c.find_existing(old)
    assert found is not None and found.found_existing
    assert open311_server.calls["GET /requests.json"] == 3
