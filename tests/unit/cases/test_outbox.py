"""The outbox listener: which issue changes become which messages, in the same transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, update

from tests.fixtures.cases import Clock, grid_flight, observe
from xunjian.cases.mapping import load_mapping
from xunjian.cases.outbox import Outbox, PublishPolicy, enqueue_missing, install_outbox
from xunjian.core.feedback import Feedback, FeedbackKind, FeedbackSource
from xunjian.core.issues import IssueStatus
from xunjian.core.verify import Outcome, VerificationDecision
from xunjian.errors import InputError
from xunjian.storage.case_tables import OUTBOX
from xunjian.storage.issues import IssueChange, IssueStore


@pytest.fixture
def store(database_url: str) -> Iterator[IssueStore]:
    with IssueStore(database_url, clock=Clock()) as opened:
        install_outbox(opened, PublishPolicy.from_mapping(load_mapping()), "file")
        yield opened


def kinds(store: IssueStore) -> list[tuple[str, str]]:
    return [(m.kind, m.idempotency_key) for m in Outbox(store).messages()]


def close(store: IssueStore, issue_id: str) -> None:
    store.set_status(issue_id, IssueStatus.PUBLISHED, source="file")
    store.set_status(issue_id, IssueStatus.CLOSED, source="case_platform")


def test_confident_new_issues_are_enqueued_once(store: IssueStore) -> None:
    fused = store.record_batch("B1", grid_flight("B1", 3))
    assert sorted(kinds(store)) == sorted(("create", i) for i in fused.new)
    store.record_batch("B2", grid_flight("B2", 3))  # seen again: same issues, no new message
    assert len(kinds(store)) == 3
    [m] = Outbox(store).messages(issue_id=fused.new[0])
    assert m.state == "pending" and m.attempts == 0 and m.connector == "file"
    assert m.payload["issue_id"] == fused.new[0] and m.payload["class"] == "pothole"


def test_weak_issues_wait_until_confirmed_or_seen_more(store: IssueStore) -> None:
    weak = [observe(0, 0, frame="B1-F0", batch="B1", confidence=0.3)]
    [issue_id] = store.record_batch("B1", weak).new
    assert kinds(store) == []
    store.add_feedback(Feedback(issue_id, FeedbackKind.CONFIRM, FeedbackSource.REVIEWER))
    assert kinds(store) == [("create", issue_id)]


def test_a_change_that_rolls_back_leaves_no_message(store: IssueStore) -> None:
    def refuse(_conn: Connection, _change: IssueChange) -> None:
        raise RuntimeError("the database went away mid-transaction")

    store.add_listener(refuse)
    with pytest.raises(RuntimeError):
        store.record_batch("B1", grid_flight("B1", 2))
    assert store.issues() == [] and kinds(store) == []


def test_verification_sends_updates_and_a_linked_recurrence(store: IssueStore) -> None:
    fixed_id, back_id = store.record_batch("B1", grid_flight("B1", 2, spacing_m=80)).new
    for issue_id in (fixed_id, back_id):
        close(store, issue_id)
    store.record_verifications(
        [
            VerificationDecision(fixed_id, "B2", Outcome.VERIFIED_FIXED, 3, 3),
            VerificationDecision(back_id, "B2", Outcome.RECURRED, 3, 3),
        ]
    )
    # the pipeline's order: verification first, then fusion opens the new issue
    back = store.issue(back_id)
    assert back is not None
    new = store.record_batch(
        "B2",
        [
            observe(0.2, 0, frame="B2-F0", batch="B2", lat0=back.lat, lon0=back.lon),
            observe(0.25, 0, frame="B2-F1", batch="B2", lat0=back.lat, lon0=back.lon),
        ],
    ).new
    assert len(new) == 1
    messages = {m.idempotency_key: m for m in Outbox(store).messages()}
    assert messages[f"{fixed_id}:verified_fixed"].kind == "update"
    assert messages[f"{back_id}:recurred"].kind == "update"
    recur = messages[new[0]]
    assert recur.kind == "recur" and recur.payload["replaces_issue_id"] == back_id


def test_a_recurrence_fused_before_the_verification_is_linked_too(store: IssueStore) -> None:
    [old_id] = store.record_batch("B1", grid_flight("B1", 1)).new
    close(store, old_id)
    old = store.issue(old_id)
    assert old is not None
    [new_id] = store.record_batch(
        "B2",
        [
            observe(0.1, 0, frame="B2-F0", batch="B2", lat0=old.lat, lon0=old.lon),
            observe(0.15, 0, frame="B2-F1", batch="B2", lat0=old.lat, lon0=old.lon),
        ],
    ).new
    store.record_verifications([VerificationDecision(old_id, "B2", Outcome.RECURRED, 2, 2)])
    [recur] = Outbox(store).messages(issue_id=new_id)
    assert recur.kind == "recur" and recur.payload["replaces_issue_id"] == old_id


def test_issues_without_a_case_get_no_update(store: IssueStore) -> None:
    weak = [observe(0, 0, frame="B1-F0", batch="B1", confidence=0.3)]
    [issue_id] = store.record_batch("B1", weak).new
    with IssueStore(store.url, migrate=False) as plain:  # closed where no outbox listens
        close(plain, issue_id)
    store.record_verifications([VerificationDecision(issue_id, "B2", Outcome.VERIFIED_FIXED, 2, 2)])
    assert kinds(store) == []
    store.set_status(issue_id, IssueStatus.RECURRED, source="operator")
    assert kinds(store) == []


def test_a_reviewer_rejection_withdraws_an_untried_case(store: IssueStore) -> None:
    first, second = store.record_batch("B1", grid_flight("B1", 2)).new
    store.add_feedback(Feedback(first, FeedbackKind.FALSE_POSITIVE, FeedbackSource.REVIEWER))
    assert [k for _, k in kinds(store)] == [second]
    with store.engine.begin() as conn:  # a try that may have reached the case system
        conn.execute(update(OUTBOX).where(OUTBOX.c.issue_id == second).values(attempts=1))
    store.add_feedback(Feedback(second, FeedbackKind.FALSE_POSITIVE, FeedbackSource.REVIEWER))
    assert kinds(store) == [("create", second), ("update", f"{second}:rejected")]


def test_spoil_trucks_are_published_once(store: IssueStore) -> None:
    obs = [
        observe(0, 0, frame="B1-F0", batch="B1", cls="spoil_truck"),
        observe(0.5, 0, frame="B1-F1", batch="B1", cls="spoil_truck"),
    ]
    [truck] = store.record_batch("B1", obs).new
    assert kinds(store) == [("create", truck)]


def test_missing_messages_are_enqueued_by_the_sync(database_url: str) -> None:
    with IssueStore(database_url, clock=Clock()) as plain:  # a process without the outbox
        fused = plain.record_batch("B1", grid_flight("B1", 2))
        policy = PublishPolicy.from_mapping(load_mapping())
        assert enqueue_missing(plain, policy, "file") == 2
        assert enqueue_missing(plain, policy, "file") == 0
        assert sorted(k for _, k in kinds(plain)) == sorted(fused.new)


def test_operators_list_count_and_replay(store: IssueStore) -> None:
    store.record_batch("B1", grid_flight("B1", 2))
    outbox = Outbox(store)
    assert outbox.counts() == {"pending": 2, "delivered": 0, "dead": 0}
    with pytest.raises(InputError, match="expected a state among"):
        outbox.messages(state="lost")
    with pytest.raises(InputError, match="no dead message"):
        outbox.replay(message_id=outbox.messages()[0].id)
    with pytest.raises(InputError, match="not both or neither"):
        outbox.replay()
