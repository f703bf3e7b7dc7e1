"""Issue queries, one issue, evidence and feedback through the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fixtures.service import RunningService
from xunjian.bench.service import CENTER, seed_issues
from xunjian.core.taxonomy import BY_NAME, classes_of
from xunjian.service.schemas import Category, ClassName
from xunjian.storage.issues import IssueStore

N = 120


@pytest.fixture
def seeded(service: RunningService) -> RunningService:
    seed_issues(service.services.catalog.engine, N, seed=1, spread_deg=0.01, batches=4)
    return service


def all_issues(service: RunningService, **params: Any) -> list[dict]:
    response = service.client.get("/api/v1/issues", params={"limit": 5000, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    return response.json()["features"]


def test_the_schema_literals_are_the_taxonomy() -> None:
    assert set(ClassName.__args__) == set(BY_NAME)
    assert {classes_of(c) for c in map(str, Category.__args__)}  # every category is a detector


def test_filters_select_what_they_say(seeded: RunningService) -> None:
    everything = all_issues(seeded)
    assert len(everything) == N
    lat, lon = CENTER
    box = (lon - 0.005, lat - 0.005, lon + 0.003, lat + 0.002)
    inside = all_issues(seeded, bbox=",".join(map(str, box)))
    assert 0 < len(inside) < N
    for f in inside:
        x, y = f["geometry"]["coordinates"]
        assert box[0] <= x <= box[2] and box[1] <= y <= box[3]
    assert len(inside) == sum(
        1
        for f in everything
        if box[0] <= f["geometry"]["coordinates"][0] <= box[2]
        and box[1] <= f["geometry"]["coordinates"][1] <= box[3]
    )

    dumping = all_issues(seeded, category="illegal_dumping")
    assert dumping and {f["properties"]["category"] for f in dumping} == {"illegal_dumping"}
    potholes = all_issues(seeded, **{"class": ["pothole", "garbage_pile"]})
    assert {f["properties"]["class"] for f in potholes} == {"pothole", "garbage_pile"}
    both = all_issues(seeded, category="road_damage", **{"class": ["pothole", "garbage_pile"]})
    assert {f["properties"]["class"] for f in both} == {"pothole"}
    none = all_issues(seeded, category="spoil_truck", **{"class": "pothole"})
    assert none == []

    open_ = all_issues(seeded, status=["candidate", "published"])
    assert {f["properties"]["status"] for f in open_} == {"candidate", "published"}
    sure = all_issues(seeded, min_confidence=0.8)
    assert sure and all(f["properties"]["confidence"] >= 0.8 for f in sure)
    assert len(sure) == sum(1 for f in everything if f["properties"]["confidence"] >= 0.8)

    batch = all_issues(seeded, batch="bench-002")
    assert batch and all("bench-002" in f["properties"]["batch_ids"] for f in batch)

    cut = datetime(2026, 6, 1, tzinfo=UTC)
    recent = all_issues(seeded, since="2026-06-01T08:00:00+08:00")
    assert recent and all(
        datetime.fromisoformat(f["properties"]["last_seen"]) >= cut for f in recent
    )
    early = all_issues(seeded, until="2026-06-01T00:00:00")  # no zone: UTC
    assert early and all(
        datetime.fromisoformat(f["properties"]["first_seen"]) <= cut for f in early
    )


def test_pages_cover_every_issue_once_newest_first(seeded: RunningService) -> None:
    seen: list[str] = []
    last_seen: list[str] = []
    url = "/api/v1/issues?limit=50"
    pages = 0
    while url:
        body = seeded.client.get(url).json()
        pages += 1
        assert body["numberReturned"] == len(body["features"]) <= 50
        seen += [f["id"] for f in body["features"]]
        last_seen += [f["properties"]["last_seen"] for f in body["features"]]
        url = body["next"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == N
    assert last_seen == sorted(last_seen, reverse=True)
    with_filter = seeded.client.get("/api/v1/issues?limit=10&min_confidence=0.5").json()
    assert "min_confidence=0.5" in with_filter["next"] and "offset=10" in with_filter["next"]


@pytest.mark.parametrize(
    "params",
    [
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "10,10,5,5"},
        {"bbox": "0,0,200,1"},
        {"bbox": "nan,0,1,1"},
        {"class": "unicorn"},
        {"category": "roads"},
        {"status": "lost"},
        {"min_confidence": "2"},
        {"limit": "0"},
        {"since": "yesterday"},
    ],
)
def test_bad_filters_are_422_naming_the_parameter(seeded: RunningService, params: dict) -> None:
    response = seeded.client.get("/api/v1/issues", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in str(response.json()["detail"])


def test_one_issue_with_observations_history_and_evidence(seeded: RunningService) -> None:
    issue_id = all_issues(seeded, limit=1)[0]["id"]
    issues: IssueStore = seeded.services.issues
    issues.set_status(issue_id, "published", source="operator", note="looks real")
    body = seeded.client.get(f"/api/v1/issues/{issue_id}").json()
    props = body["properties"]
    assert body["id"] == issue_id and props["status"] == "published"
    assert len(props["observations"]) == 1
    assert props["observations"][0]["frame_key"].startswith("raw/bench-")
    assert [e["to_status"] for e in props["history"]] == ["published"]
    assert props["history"][0]["note"] == "looks real"
    assert props["evidence_url"] == f"/api/v1/issues/{issue_id}/evidence"
    assert props["evidence_presigned_url"] is None  # no crop stored for a seeded issue
    assert seeded.client.get(props["evidence_url"]).status_code == 404

    seeded.services.store.put_bytes(f"evidence/{issue_id}.jpg", b"\xff\xd8fake")
    image = seeded.client.get(props["evidence_url"])
    assert image.status_code == 200 and image.content == b"\xff\xd8fake"
    again = seeded.client.get(f"/api/v1/issues/{issue_id}").json()["properties"]
    assert "/api/v1/objects/evidence/" in again["evidence_presigned_url"]

    assert seeded.client.get("/api/v1/issues/iss_nothing").status_code == 404
    assert seeded.client.get("/api/v1/issues/iss_nothing/evidence").status_code == 404


def test_feedback_confirms_rejects_and_corrects(seeded: RunningService) -> None:
    ids = [f["id"] for f in all_issues(seeded, status="candidate", limit=3)]
    reviewer = seeded.as_role("ml_engineer")
    platform = seeded.as_role("case_platform")

    ok = reviewer.post(
        f"/api/v1/issues/{ids[0]}/feedback", json={"kind": "confirm", "note": "seen"}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["source"] == "reviewer" and ok.json()["author"] == "test-ml_engineer"

    fp = platform.post(f"/api/v1/issues/{ids[1]}/feedback", json={"kind": "false_positive"})
    assert fp.json()["issue_status"] == "rejected" and fp.json()["source"] == "case_platform"

    cls = reviewer.post(
        f"/api/v1/issues/{ids[2]}/feedback", json={"kind": "wrong_class", "class_name": "pothole"}
    )
    assert cls.status_code == 201
    moved = reviewer.post(
        f"/api/v1/issues/{ids[2]}/feedback",
        json={"kind": "wrong_place", "lat": CENTER[0], "lon": CENTER[1]},
    )
    assert moved.status_code == 201
    detail = seeded.client.get(f"/api/v1/issues/{ids[2]}").json()
    assert detail["properties"]["class"] == "pothole"
    assert detail["geometry"]["coordinates"] == [CENTER[1], CENTER[0]]
    assert [f["kind"] for f in detail["properties"]["feedback"]] == ["wrong_class", "wrong_place"]
    assert [e["kind"] for e in detail["properties"]["history"]][-2:] == ["feedback", "feedback"]

    missing = reviewer.post(f"/api/v1/issues/{ids[2]}/feedback", json={"kind": "wrong_place"})
    assert missing.status_code == 422 and "lat and lon" in missing.json()["detail"]
    unknown = reviewer.post("/api/v1/issues/iss_none/feedback", json={"kind": "confirm"})
    assert unknown.status_code == 404
    bad_class = reviewer.post(
        f"/api/v1/issues/{ids[0]}/feedback", json={"kind": "wrong_class", "class_name": "cat"}
    )
    assert bad_class.status_code == 422


@pytest.mark.parametrize(
    ("error", "status"),
    [
        ("ObjectNotFoundError", 404),
        ("IssueTransitionError", 409),
        ("InputError", 422),
        ("StorageError", 503),
        ("DatabaseError", 503),
    ],
)
def test_xunjian_errors_answer_with_their_status(error: str, status: int) -> None:
    from types import SimpleNamespace

    import anyio

    import xunjian
    from xunjian.service.app import _xunjian_error

    request = SimpleNamespace(method="GET", url=SimpleNamespace(path="/x"))
    response = anyio.run(_xunjian_error, request, getattr(xunjian, error)("what went wrong"))
    assert response.status_code == status
    assert b'"detail":"what went wrong"' in response.body
