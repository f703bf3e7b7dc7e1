"""Verification decisions on a later batch (core.verify), with nadir frames over a point."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from xunjian.core.geo import en_to_latlon
from xunjian.core.issues import Issue, IssueStatus, IssueTransitionError
from xunjian.core.records import CameraIntrinsics, CameraPose, Detection, Frame, Observation
from xunjian.core.taxonomy import class_info
from xunjian.core.verify import (
    Outcome,
    VerificationDecision,
    VerifyParams,
    apply_decision,
    check_view,
    decide,
    verify_batch,
)

LAT0, LON0 = 29.563, 106.5516
K = CameraIntrinsics(1024, 768, 727.5, 727.5, 512.0, 384.0)
T = datetime(2025, 5, 19, 10, 0, tzinfo=UTC)


def frame(key: str, e: float = 0.0, n: float = 0.0, height: float = 30.0) -> Frame:
    lat, lon = en_to_latlon(e, n, LAT0, LON0)
    pose = CameraPose(float(lat), float(lon), height, 0.0, -90.0)
    return Frame("B2", key, "", 1024, 768, captured_at=T, intrinsics=K, pose=pose)


def observation(e: float, n: float, cls: str = "pothole", key: str = "G1") -> Observation:
    lat, lon = en_to_latlon(e, n, LAT0, LON0)
    det = Detection(str(class_info(cls).detector), cls, 0.8, (500, 380, 520, 400), "m@2", key)
    return Observation(det, "B2", key, float(lat), float(lon), 0.5, 5.0, 0.04, T)


def issue(
    e: float = 0.0,
    n: float = 0.0,
    *,
    cls: str = "pothole",
    status: IssueStatus = IssueStatus.CLOSED,
) -> Issue:
    o = observation(e, n, cls, "F1")
    o = replace(o, batch_id="B1")
    return Issue(
        "iss_x",
        cls,
        o.detection.detector,
        o.lat,
        o.lon,
        0.5,
        0.9,
        o,
        (o,),
        1,
        status,
        is_event=class_info(cls).is_event,
    )


def test_a_good_view_and_the_reasons_for_bad_ones() -> None:
    i = issue()
    assert check_view(frame("A"), i.lat, i.lon, "pothole").good
    assert check_view(frame("A", e=-20.5), i.lat, i.lon, "pothole").reason == "at the image edge"
    assert check_view(frame("A", e=-25.0), i.lat, i.lon, "pothole").reason == "outside the image"
    high = check_view(frame("A", height=150.0), i.lat, i.lon, "pothole")
    assert not high.good and "coarser than 8 cm" in high.reason
    far = check_view(frame("A", e=-400.0), i.lat, i.lon, "pothole")
    assert far.reason.startswith("beyond the usable range")
    blind = replace(frame("A"), pose=None)
    assert "no pose" in check_view(blind, i.lat, i.lon, "pothole").reason
    # A crack needs a finer ground sample than a pothole: 12 m off-centre is too coarse.
    assert check_view(frame("A", e=-12.0), i.lat, i.lon, "pothole").good
    assert not check_view(frame("A", e=-15.0), i.lat, i.lon, "longitudinal_crack").good


def test_a_large_sigma_widens_the_edge_margin() -> None:
    i = issue()
    f = frame("A", e=-17.0)
    assert check_view(f, i.lat, i.lon, "pothole", 0.0).good
    assert check_view(f, i.lat, i.lon, "pothole", 3.0).reason == "at the image edge"


def test_closed_issue_covered_and_not_seen_is_verified_fixed() -> None:
    frames = [frame("A"), frame("B", e=3.0), frame("C", e=-400.0)]
    d = decide(issue(), "B2", frames, [observation(30.0, 0.0)])
    assert d.outcome is Outcome.VERIFIED_FIXED
    assert (d.good_views, d.views_checked, d.matched_frames) == (2, 3, ())
    assert any("beyond the usable range" in r for r in d.reasons)
    fixed = apply_decision(issue(), d)
    assert fixed.status is IssueStatus.VERIFIED_FIXED


def test_closed_or_verified_issue_seen_again_recurred() -> None:
    frames = [frame("A"), frame("B", e=3.0)]
    seen = [observation(0.8, 0.3, key="A"), observation(0.0, 0.0, "garbage_pile", key="B")]
    d = decide(issue(), "B2", frames, seen)
    assert d.outcome is Outcome.RECURRED and d.matched_frames == ("A",)
    assert apply_decision(issue(), d).status is IssueStatus.RECURRED
    fixed = issue(status=IssueStatus.VERIFIED_FIXED)
    assert decide(fixed, "B2", frames, seen).outcome is Outcome.RECURRED
    # Seen even from a poor view: seen is seen.
    assert decide(issue(), "B2", [frame("A", e=-25.0)], seen).outcome is Outcome.RECURRED


def test_too_few_good_views_is_undecided_with_reasons() -> None:
    d = decide(issue(), "B2", [frame("A"), frame("B", e=-25.0)], [])
    assert d.outcome is Outcome.UNDECIDED
    assert d.reasons[0] == "not covered well enough to judge"
    assert "1 frame(s): outside the image" in d.reasons
    assert apply_decision(issue(), d) == issue()
    assert decide(issue(), "B2", [], []).outcome is Outcome.UNDECIDED


def test_open_issue_not_seen_counts_and_seen_again_resets() -> None:
    open_issue = issue(status=IssueStatus.PUBLISHED)
    frames = [frame("A"), frame("B", e=2.0)]
    d = decide(open_issue, "B2", frames, [])
    assert d.outcome is Outcome.NOT_REOBSERVED
    once = apply_decision(open_issue, d)
    twice = apply_decision(once, replace(d, batch_id="B3"))
    assert (once.not_reobserved, twice.not_reobserved, twice.status) == (
        1,
        2,
        IssueStatus.PUBLISHED,
    )
    seen = decide(open_issue, "B4", frames, [observation(0.2, 0.0)])
    assert seen.outcome is Outcome.REOBSERVED
    assert apply_decision(twice, seen).not_reobserved == 0


def test_events_and_final_issues_are_not_verified() -> None:
    frames = [frame("A"), frame("B", e=2.0)]
    event = issue(cls="spoil_truck")
    assert decide(event, "B2", frames, []).outcome is Outcome.NOT_APPLICABLE
    for status in (IssueStatus.REJECTED, IssueStatus.RECURRED):
        d = decide(issue(status=status), "B2", frames, [])
        assert d.outcome is Outcome.NOT_APPLICABLE and status.value in d.reasons[0]


def test_more_good_views_can_be_required() -> None:
    frames = [frame("A"), frame("B", e=2.0)]
    d = decide(issue(), "B2", frames, [], VerifyParams(min_good_views=3))
    assert d.outcome is Outcome.UNDECIDED


def test_verify_batch_and_apply_checks() -> None:
    frames = [frame("A"), frame("B", e=2.0)]
    ds = verify_batch([issue(), issue(e=100.0)], "B2", frames, [])
    assert [d.outcome for d in ds] == [Outcome.VERIFIED_FIXED, Outcome.UNDECIDED]
    other = VerificationDecision("iss_other", "B2", Outcome.VERIFIED_FIXED, 2, 2)
    with pytest.raises(ValueError, match="iss_other"):
        apply_decision(issue(), other)
    open_issue = issue(status=IssueStatus.CANDIDATE)
    bad = VerificationDecision(open_issue.id, "B2", Outcome.VERIFIED_FIXED, 2, 2)
    with pytest.raises(IssueTransitionError):
        apply_decision(open_issue, bad)


def test_an_observation_counts_for_the_nearest_issue_only() -> None:
    frames = [frame("A"), frame("B", e=2.0)]
    still_there, repaired = issue(0.0, 0.0), replace(issue(1.8, 0.0), id="iss_y")
    seen = [observation(-0.2, 0.0)]  # within the gate of both, nearer the first
    ds = verify_batch([still_there, repaired], "B2", frames, seen)
    assert [d.outcome for d in ds] == [Outcome.RECURRED, Outcome.VERIFIED_FIXED]
    # decide() alone, on one issue, takes any observation within the gate.
    assert decide(repaired, "B2", frames, seen).outcome is Outcome.RECURRED
