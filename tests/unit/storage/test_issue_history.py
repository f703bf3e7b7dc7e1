"""Issue history, feedback and change listeners of the issue store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from xunjian.core.feedback import EventKind, Feedback, FeedbackKind, FeedbackSource
from xunjian.core.issues import IssueStatus
from xunjian.core.verify import Outcome, VerificationDecision
from xunjian.errors import InputError, IssueTransitionError
from xunjian.storage.issues import IssueChange, IssueStore, apply_status

from .test_issues_store import NOW, flight


@pytest.fixture
def store(database_url: str) -> Iterator[IssueStore]:
    with IssueStore(database_url, clock=lambda: NOW) as opened:
        yield opened


def test_history_records_creation_sightings_status_and_verification(store: IssueStore) -> None:
    first = store.record_batch("B1", flight("B1"))
    pothole = store.issues(class_name="pothole")[0].id
    store.record_batch("B2", flight("B2"))
    store.set_status(pothole, "published", source="open311", note="case 17")
    store.set_status(pothole, "published")  # no move, no line
    store.set_status(pothole, "closed", source="open311")
    store.record_verifications(
        [VerificationDecision(pothole, "B3", Outcome.VERIFIED_FIXED, 3, 3, (), ("clear",))]
    )
    events = store.history(pothole)
    assert [e.kind for e in events] == [
        EventKind.CREATED,
        EventKind.OBSERVED,
        EventKind.STATUS,
        EventKind.STATUS,
        EventKind.VERIFICATION,
    ]
    assert events[0].data["batch_id"] == "B1" and events[1].data == {
        "batch_id": "B2",
        "observations": 3,
    }
    assert (events[2].from_status, events[2].to_status, events[2].note) == (
        "candidate",
        "published",
        "case 17",
    )
    assert events[4].to_status == "verified_fixed" and events[4].data["outcome"] == "verified_fixed"
    assert all(e.at == NOW for e in events) and len(first.new) == 2
    assert store.history("iss_missing") == []


def test_false_positive_feedback_rejects_and_is_kept(store: IssueStore) -> None:
    store.record_batch("B1", flight("B1"))
    pile = store.issues(class_name="garbage_pile")[0]
    fb, after = store.add_feedback(
        Feedback(pile.id, FeedbackKind.FALSE_POSITIVE, FeedbackSource.CASE_PLATFORM, note="shadow")
    )
    assert after.status is IssueStatus.REJECTED and fb.id is not None
    assert [f.kind for f in store.feedback(kind="false_positive")] == [FeedbackKind.FALSE_POSITIVE]
    assert store.feedback(since_id=fb.id) == []
    kinds = [e.kind for e in store.history(pile.id)]
    assert kinds == [EventKind.CREATED, EventKind.FEEDBACK, EventKind.STATUS]
    # A second false positive on a final issue is still kept; the status stays.
    _fb2, again = store.add_feedback(Feedback(pile.id, FeedbackKind.FALSE_POSITIVE))
    assert again.status is IssueStatus.REJECTED and len(store.feedback(issue_id=pile.id)) == 2


def test_corrections_move_class_and_place_and_bad_feedback_is_refused(store: IssueStore) -> None:
    store.record_batch("B1", flight("B1"))
    pile = store.issues(class_name="garbage_pile")[0]
    _, moved = store.add_feedback(
        Feedback(pile.id, FeedbackKind.WRONG_CLASS, class_name="construction_waste")
    )
    assert moved.class_name == "construction_waste"
    _, placed = store.add_feedback(Feedback(pile.id, FeedbackKind.WRONG_PLACE, lat=29.5, lon=106.5))
    assert (placed.lat, placed.lon) == (29.5, 106.5)
    with pytest.raises(InputError, match="right class"):
        store.add_feedback(Feedback(pile.id, FeedbackKind.WRONG_CLASS))
    with pytest.raises(InputError, match="lat and lon"):
        store.add_feedback(Feedback(pile.id, FeedbackKind.WRONG_PLACE, lat=1.0))
    with pytest.raises(InputError, match="no such issue"):
        store.add_feedback(Feedback("iss_missing", FeedbackKind.CONFIRM))
    assert len(store.feedback()) == 2


def test_listeners_run_inside_the_transaction(store: IssueStore) -> None:
    seen: list[IssueChange] = []

    def publish_big(conn: Connection, change: IssueChange) -> None:
        seen.append(change)
        if change.before is None and change.issue.class_name == "pothole":
            apply_status(conn, change.issue, "published", at=NOW, source="test")

    store.add_listener(publish_big)
    store.record_batch("B1", flight("B1"))
    assert [(c.cause, c.before, c.batch_id) for c in seen] == [
        (EventKind.CREATED, None, "B1"),
        (EventKind.CREATED, None, "B1"),
    ]
    assert store.issues(class_name="pothole")[0].status is IssueStatus.PUBLISHED

    def refuse(conn: Connection, change: IssueChange) -> None:
        raise RuntimeError("outbox full")

    store.add_listener(refuse)
    pile = store.issues(class_name="garbage_pile")[0].id
    with pytest.raises(RuntimeError, match="outbox full"):
        store.set_status(pile, "published")
    unchanged = store.issue(pile)
    assert unchanged is not None and unchanged.status is IssueStatus.CANDIDATE
    assert [e.kind for e in store.history(pile)] == [EventKind.CREATED]
    with pytest.raises(IssueTransitionError):
        store.set_status(pile, "verified_fixed")
