"""The issue store (storage.issues) on SQLite and PostgreSQL, and its migration 0002."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select

from xunjian.core.geo import en_to_latlon
from xunjian.core.issues import IssueStatus, IssueTransitionError
from xunjian.core.records import Detection, Observation
from xunjian.core.taxonomy import class_info
from xunjian.core.verify import Outcome, VerificationDecision
from xunjian.errors import InputError
from xunjian.storage.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
)
from xunjian.storage.issue_tables import ISSUE_OBSERVATIONS, ISSUES
from xunjian.storage.issues import IssueStore
from xunjian.storage.tables import Base

LAT0, LON0 = 29.563, 106.5516
T0 = datetime(2025, 5, 12, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ISSUE_TABLES = {"issues", "issue_observations", "issue_verifications"}


def obs(
    e: float,
    n: float,
    *,
    frame: str,
    batch: str = "B1",
    cls: str = "pothole",
    at: datetime = T0,
    sigma: float = 0.3,
) -> Observation:
    lat, lon = en_to_latlon(e, n, LAT0, LON0)
    box = (100.0 + 50 * e, 100.0, 130.0 + 50 * e, 130.0)
    det = Detection(str(class_info(cls).detector), cls, 0.8, box, "m@1", frame)
    return Observation(det, batch, frame, float(lat), float(lon), sigma, 12.0, 0.04, at)


def flight(batch: str, at: datetime = T0) -> list[Observation]:
    """Three frames over a pothole at (0, 0) and a garbage pile at (40, 0)."""
    out = []
    for i in range(3):
        out.append(obs(0.05 * i, 0.0, frame=f"{batch}-F{i}", batch=batch, at=at))
        out.append(
            obs(40.0, 0.1 * i, frame=f"{batch}-F{i}", batch=batch, cls="garbage_pile", at=at)
        )
    return out


@pytest.fixture
def store(database_url: str) -> Iterator[IssueStore]:
    with IssueStore(database_url, clock=lambda: NOW) as opened:
        yield opened


def count(store: IssueStore, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_batch_becomes_issues_and_a_rerun_changes_nothing(store: IssueStore) -> None:
    first = store.record_batch("B1", flight("B1"))
    assert len(first.new) == 2 and first.updated == ()
    assert (first.observations_added, first.observations_skipped) == (6, 0)
    again = store.record_batch("B1", flight("B1"))
    assert (again.new, again.updated, again.observations_added) == ((), (), 0)
    assert again.observations_skipped == 6
    assert count(store, ISSUES) == 2 and count(store, ISSUE_OBSERVATIONS) == 6
    pothole = store.issues(class_name="pothole", with_observations=True)[0]
    assert pothole.observation_count == 3 and len(pothole.observations) == 3
    assert pothole.status is IssueStatus.CANDIDATE and pothole.batch_ids == ("B1",)
    assert pothole.first_seen == T0 and pothole.evidence.batch_id == "B1"
    loaded = store.issue(pothole.id)
    assert loaded is not None and loaded.observations == pothole.observations
    assert store.issue("iss_missing") is None


def test_a_later_batch_updates_open_issues(store: IssueStore) -> None:
    first = store.record_batch("B1", flight("B1"))
    later = T0 + timedelta(days=7)
    second = store.record_batch("B2", flight("B2", later))
    assert second.new == () and sorted(second.updated) == sorted(first.new)
    assert count(store, ISSUES) == 2 and count(store, ISSUE_OBSERVATIONS) == 12
    issue = store.issue(first.new[0])
    assert issue is not None
    assert issue.observation_count == 6 and issue.batch_ids == ("B1", "B2")
    assert issue.last_seen == later and issue.evidence.batch_id == "B2"
    # A part of B2 seen again with one new frame: only the new frame is added.
    extra = [*flight("B2", later), obs(0.1, 0.0, frame="B2-F9", batch="B2", at=later)]
    third = store.record_batch("B2", extra)
    assert third.new == () and third.observations_added == 1
    assert third.observations_skipped == 6


def test_closed_issues_are_not_reopened_by_fusion(store: IssueStore) -> None:
    first = store.record_batch("B1", flight("B1"))
    pothole = store.issues(class_name="pothole")[0]
    store.set_status(pothole.id, "published")
    store.set_status(pothole.id, IssueStatus.CLOSED)
    second = store.record_batch("B2", flight("B2", T0 + timedelta(days=7)))
    assert len(second.new) == 1 and len(second.updated) == 1
    assert second.new[0] not in first.new
    with pytest.raises(IssueTransitionError):
        store.set_status(pothole.id, "candidate")
    with pytest.raises(InputError, match="no such issue"):
        store.set_status("iss_missing", "published")


def test_query_helpers(store: IssueStore) -> None:
    store.record_batch("B1", flight("B1"))
    store.record_batch("B2", [obs(300.0, 0.0, frame="X", batch="B2")])
    assert len(store.issues()) == 3
    lat, lon = en_to_latlon(0.0, 0.0, LAT0, LON0)
    box = (float(lon) - 1e-4, float(lat) - 1e-4, float(lon) + 1e-4, float(lat) + 1e-4)
    (near,) = store.issues(bbox=box)
    assert near.class_name == "pothole"
    assert len(store.issues(class_name=["pothole", "garbage_pile"])) == 3
    assert [i.class_name for i in store.issues(class_name="garbage_pile")] == ["garbage_pile"]
    assert len(store.issues(batch_id="B2")) == 1 and len(store.issues(batch_id="B1")) == 2
    assert len(store.issues(status="candidate")) == 3
    assert store.issues(status=["closed", "rejected"]) == []
    assert len(store.issues(seen_since=T0 + timedelta(hours=1))) == 0
    assert len(store.issues(limit=2)) == 2
    with pytest.raises(InputError, match="bbox"):
        store.issues(bbox=(1.0, 1.0, 0.0, 0.0))
    with pytest.raises(KeyError, match="unknown class"):
        store.issues(class_name="unicorn")
    with pytest.raises(InputError, match="expected observations of batch 'B3'"):
        store.record_batch("B3", flight("B1"))


def test_geojson_export(store: IssueStore) -> None:
    store.record_batch("B1", flight("B1"))
    doc = json.loads(json.dumps(store.issues_geojson(class_name="pothole")))
    assert doc["type"] == "FeatureCollection"
    (feature,) = doc["features"]
    lon, lat = feature["geometry"]["coordinates"]
    assert feature["geometry"]["type"] == "Point"
    assert abs(lat - LAT0) < 1e-5 and abs(lon - LON0) < 1e-5
    props = feature["properties"]
    assert props["class"] == "pothole" and props["class_zh"] == "坑槽"
    assert props["status"] == "candidate" and props["observation_count"] == 3
    assert props["evidence"]["frame_key"].startswith("B1-F")
    assert props["first_seen"] == T0.isoformat()
    assert len(store.issues_geojson()["features"]) == 2


def test_verification_decisions_are_stored_and_applied_once(store: IssueStore) -> None:
    first = store.record_batch("B1", flight("B1"))
    closed_id, open_id = sorted(first.new)
    store.set_status(closed_id, "published")
    store.set_status(closed_id, "closed")
    decisions = [
        VerificationDecision(closed_id, "B2", Outcome.VERIFIED_FIXED, 3, 4, (), ("covered",)),
        VerificationDecision(open_id, "B2", Outcome.NOT_REOBSERVED, 3, 4, (), ("not seen",)),
    ]
    changed = store.record_verifications(decisions)
    assert {i.id for i in changed} == {closed_id, open_id}
    assert store.record_verifications(decisions) == []  # idempotent per (issue, batch)
    fixed, still_open = store.issue(closed_id), store.issue(open_id)
    assert fixed is not None and fixed.status is IssueStatus.VERIFIED_FIXED
    assert still_open is not None and still_open.not_reobserved == 1
    stored = store.verifications(issue_id=closed_id)
    assert stored == [decisions[0]]
    assert len(store.verifications(batch_id="B2")) == 2
    assert store.issues(status="verified_fixed")[0].id == closed_id


def test_migration_0002_upgrades_from_0001(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
        assert current_revision(engine) == "0001"
        assert not ISSUE_TABLES & set(inspect(engine).get_table_names())
        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= ISSUE_TABLES
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert list(compare_metadata(context, Base.metadata)) == []
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0001")
        assert not ISSUE_TABLES & set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
