"""The issue record and its lifecycle state machine (core.issues)."""

from __future__ import annotations

import pytest

from xunjian.core.issues import (
    OPEN_STATUSES,
    TRANSITIONS,
    Issue,
    IssueStatus,
    IssueTransitionError,
    can_transition,
    check_transition,
    issue_id_for,
    observation_key,
)
from xunjian.core.records import Detection, Observation
from xunjian.errors import XunjianError

S = IssueStatus


def _obs(box: tuple[float, float, float, float] = (10.0, 10.0, 20.0, 20.0)) -> Observation:
    det = Detection("road_damage", "pothole", 0.8, box, "rd@1", "F1")
    return Observation(det, "B1", "F1", 29.563, 106.5516, 0.3, 10.0, 0.04)


def _issue(status: IssueStatus = S.CANDIDATE) -> Issue:
    o = _obs()
    return Issue("iss_1", "pothole", "road_damage", o.lat, o.lon, 0.3, 0.8, o, (o,), 1, status)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.CANDIDATE, S.PUBLISHED),
        (S.PUBLISHED, S.DISPATCHED),
        (S.DISPATCHED, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.CLOSED),
        (S.PUBLISHED, S.CLOSED),
        (S.CLOSED, S.VERIFIED_FIXED),
        (S.CLOSED, S.RECURRED),
        (S.VERIFIED_FIXED, S.RECURRED),
        (S.CANDIDATE, S.REJECTED),
        (S.IN_PROGRESS, S.REJECTED),
        (S.CLOSED, S.CLOSED),
    ],
)
def test_allowed_moves(a: IssueStatus, b: IssueStatus) -> None:
    assert can_transition(a, b)
    assert check_transition(a.value, b.value) is b


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.CANDIDATE, S.CLOSED),
        (S.CANDIDATE, S.VERIFIED_FIXED),
        (S.PUBLISHED, S.VERIFIED_FIXED),
        (S.IN_PROGRESS, S.RECURRED),
        (S.REJECTED, S.PUBLISHED),
        (S.RECURRED, S.CLOSED),
        (S.VERIFIED_FIXED, S.CLOSED),
    ],
)
def test_forbidden_moves_raise_a_clear_error(a: IssueStatus, b: IssueStatus) -> None:
    assert not can_transition(a, b)
    with pytest.raises(IssueTransitionError, match=f"from {a.value} to one of .*got {b.value}"):
        check_transition(a, b)


def test_final_states_and_open_states() -> None:
    assert TRANSITIONS[S.RECURRED] == frozenset() and TRANSITIONS[S.REJECTED] == frozenset()
    assert set(TRANSITIONS) == set(IssueStatus)
    assert {S.CANDIDATE, S.PUBLISHED, S.DISPATCHED, S.IN_PROGRESS} == OPEN_STATUSES
    assert issubclass(IssueTransitionError, XunjianError)
    assert issubclass(IssueTransitionError, ValueError)


def test_with_status_walks_the_lifecycle() -> None:
    issue = _issue().with_status(S.PUBLISHED).with_status("closed")
    assert issue.status is S.CLOSED and not issue.is_open
    assert _issue().is_open
    with pytest.raises(IssueTransitionError):
        issue.with_status(S.PUBLISHED)


def test_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        can_transition("candidate", "nonsense")


def test_observation_key_rounds_the_box_and_ids_are_stable() -> None:
    a = _obs((10.0001, 10.0, 20.0, 20.0049))
    b = _obs((10.0, 10.0, 20.0, 20.0))
    assert observation_key(a) == observation_key(b)
    assert observation_key(a) == (
        "B1",
        "F1",
        "road_damage",
        "rd@1",
        "pothole",
        (10.0, 10.0, 20.0, 20.0),
    )
    assert issue_id_for("pothole", a) == issue_id_for("pothole", b)
    assert issue_id_for("pothole", a) != issue_id_for("garbage_pile", a)
    assert issue_id_for("pothole", a).startswith("iss_")
    assert _issue().last_batch_id is None
