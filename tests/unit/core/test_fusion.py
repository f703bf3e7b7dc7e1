"""Fusion of observations into issues (core.fusion), on synthetic observations in metres."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from xunjian.core.fusion import (
    FusionParams,
    best_evidence,
    build_issue,
    cluster_observations,
    fuse_batch,
    fused_sigma,
    issue_confidence,
    pair_gate,
)
from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.issues import IssueStatus
from xunjian.core.records import Detection, Observation
from xunjian.core.taxonomy import class_info

LAT0, LON0 = 29.563, 106.5516
T0 = datetime(2025, 5, 12, 10, 0, tzinfo=UTC)
CST = timezone(timedelta(hours=8))


def obs(
    e: float,
    n: float,
    *,
    cls: str = "pothole",
    frame: str = "F1",
    batch: str = "B1",
    sigma: float = 0.2,
    conf: float = 0.8,
    box: tuple[float, float, float, float] | None = None,
    at: datetime | None = T0,
    range_m: float = 10.0,
) -> Observation:
    lat, lon = en_to_latlon(e, n, LAT0, LON0)
    if box is None:  # a distinct box per place, so keys differ
        x = 500 + 40 * e
        box = (x, 300.0 + 40 * n, x + 20, 320.0 + 40 * n)
    det = Detection(str(class_info(cls).detector), cls, conf, box, "m@1", frame)
    return Observation(det, batch, frame, float(lat), float(lon), sigma, range_m, 0.04, at)


def en(o: Observation | tuple[float, float]) -> tuple[float, float]:
    lat, lon = (o.lat, o.lon) if isinstance(o, Observation) else o
    e, n = latlon_to_en(lat, lon, LAT0, LON0)
    return float(e), float(n)


def spread(cluster: tuple[Observation, ...]) -> float:
    pts = [en(o) for o in cluster]
    return max(math.dist(a, b) for a in pts for b in pts)


def test_one_target_in_overlapping_frames_is_one_issue() -> None:
    jitter = [(0.1, 0.0), (-0.1, 0.1), (0.0, -0.15), (0.2, 0.1), (-0.05, -0.05)]
    seen = [obs(de, dn, frame=f"F{i}") for i, (de, dn) in enumerate(jitter)]
    result = fuse_batch(seen)
    assert len(result.new) == 1 and result.updated == ()
    issue = result.new[0]
    assert issue.observation_count == 5 and len(issue.observations) == 5
    assert math.dist(en((issue.lat, issue.lon)), (0.03, -0.0)) < 0.05
    assert issue.status is IssueStatus.CANDIDATE and issue.batch_ids == ("B1",)
    assert issue.detector == "road_damage" and not issue.is_event


@pytest.mark.parametrize("sigma", [0.1, 0.5])
def test_two_targets_one_and_a_half_radii_apart_stay_two(sigma: float) -> None:
    r = class_info("pothole").fuse_radius_m
    a = [obs(0.0, 0.0, frame=f"A{i}", sigma=sigma) for i in range(3)]
    b = [obs(1.5 * r, 0.0, frame=f"B{i}", sigma=sigma) for i in range(3)]
    clusters = cluster_observations(a + b)
    assert sorted(len(c) for c in clusters) == [3, 3]


def test_large_sigma_never_merges_targets_two_radii_apart() -> None:
    r = class_info("garbage_pile").fuse_radius_m
    a = [obs(0.0, 0.0, cls="garbage_pile", frame=f"A{i}", sigma=5.0) for i in range(3)]
    b = [obs(2 * r + 0.01, 0.0, cls="garbage_pile", frame=f"B{i}", sigma=5.0) for i in range(3)]
    assert len(cluster_observations(a + b)) == 2


def test_large_sigma_lets_scattered_views_of_one_target_fuse() -> None:
    # σ 1.5 m: the views scatter over more than the 2 m radius but stay one issue.
    pts = [(0.0, 0.0), (2.4, 0.3), (0.5, 2.2), (1.2, -0.5)]
    seen = [obs(e, n, frame=f"F{i}", sigma=1.5) for i, (e, n) in enumerate(pts)]
    assert len(cluster_observations(seen)) == 1
    small = [obs(e, n, frame=f"F{i}", sigma=0.1) for i, (e, n) in enumerate(pts)]
    assert len(cluster_observations(small)) > 1


def test_a_chain_of_overlapping_observations_is_not_merged_end_to_end() -> None:
    r = class_info("pothole").fuse_radius_m
    chain = [obs(1.5 * i, 0.0, frame=f"F{i}") for i in range(7)]  # 9 m, steps < r
    clusters = cluster_observations(chain)
    assert len(clusters) >= 3
    assert all(spread(c) < 2 * r for c in clusters)
    assert sorted(o.frame_key for c in clusters for o in c) == sorted(o.frame_key for o in chain)


def test_one_target_on_two_legs_with_drifted_gps_is_one_issue() -> None:
    # Leg 1 and leg 2 see the pothole 2.8 m apart (GPS drift between legs, σ 1.5 m):
    # members are more than 1.5 r apart, but the two tight groups merge in the second pass.
    leg1 = [obs(x, -0.4, frame=f"L1-{x}", sigma=1.5) for x in (0.0, 0.1, 0.2)]
    leg2 = [obs(x, 2.4, frame=f"L2-{x}", sigma=1.5) for x in (0.6, 0.7, 1.2)]
    assert max(math.dist(en(a), en(b)) for a in leg1 for b in leg2) > 3.0
    (cluster,) = cluster_observations(leg1 + leg2)
    assert len(cluster) == 6


def test_two_potholes_side_by_side_in_one_photo_stay_two() -> None:
    frames = [f"F{i}" for i in range(4)]
    left = [obs(0.0, 0.0, frame=f, box=(100, 100, 130, 130)) for f in frames]
    right = [obs(0.9, 0.0, frame=f, box=(140, 100, 170, 130)) for f in frames]
    clusters = cluster_observations(left + right)
    assert sorted(len(c) for c in clusters) == [4, 4]
    assert all(len({o.frame_key for o in c}) == 4 for c in clusters)


def test_overlapping_boxes_in_one_frame_are_one_object() -> None:
    # The same pothole found twice in one frame (two tiles, two models) is one issue.
    a = obs(0.0, 0.0, box=(100, 100, 140, 140))
    b = obs(0.1, 0.0, box=(105, 102, 145, 141))
    (cluster,) = cluster_observations([a, b])
    assert len(cluster) == 2


def test_classes_never_merge_and_mixed_input_is_refused_by_the_clusterer() -> None:
    mixed = [obs(0.0, 0.0), obs(0.0, 0.0, cls="alligator_crack")]
    assert len(fuse_batch(mixed).new) == 2
    with pytest.raises(ValueError, match="one class"):
        cluster_observations(mixed)
    assert cluster_observations([]) == []


def test_fused_location_weights_confidence_and_sigma() -> None:
    sharp = obs(0.0, 0.0, frame="F1", sigma=0.1, conf=0.9)
    vague = obs(1.0, 0.0, frame="F2", sigma=1.0, conf=0.9)
    issue = build_issue([sharp, vague])
    e, _ = en((issue.lat, issue.lon))
    assert e == pytest.approx(1.0 / 101.0, abs=1e-3)  # weights 1/0.01 vs 1/1
    # Overlapping frames share GPS error: σ stays near the best single σ.
    assert fused_sigma([sharp, vague]) == pytest.approx(1 / math.sqrt(100 + 1))
    many = [obs(0.0, 0.0, frame=f"F{i}", sigma=1.0) for i in range(9)]
    assert fused_sigma(many) == pytest.approx(0.8)


def test_issue_confidence_is_a_discounted_noisy_or_over_frames() -> None:
    one = issue_confidence([obs(0, 0, conf=0.5)])
    assert one == pytest.approx(1 - 0.5**0.5)
    same_frame_twice = issue_confidence([obs(0, 0, conf=0.5), obs(0.1, 0, conf=0.4)])
    assert same_frame_twice == pytest.approx(one)
    five = issue_confidence([obs(0, 0, conf=0.5, frame=f"F{i}") for i in range(5)])
    assert one < five < 1.0
    assert issue_confidence([obs(0, 0, conf=1.0)]) == FusionParams().max_confidence


def test_best_evidence_prefers_sure_precise_and_close() -> None:
    far = obs(0, 0, frame="far", conf=0.9, range_m=80.0)
    vague = obs(0, 0, frame="vague", conf=0.9, sigma=3.0)
    unsure = obs(0, 0, frame="unsure", conf=0.4)
    good = obs(0, 0, frame="good", conf=0.85)
    assert best_evidence([far, vague, unsure, good]).frame_key == "good"
    assert build_issue([far, vague, unsure, good]).evidence.frame_key == "good"


def test_ids_and_clusters_do_not_depend_on_input_order() -> None:
    seen = [obs(0.1 * i, 0.05 * i, frame=f"F{i}") for i in range(5)]
    seen += [obs(10 + 0.1 * i, 0, frame=f"F{i}") for i in range(5)]
    ids = sorted(i.id for i in fuse_batch(seen).new)
    shuffled = seen[:]
    random.Random(3).shuffle(shuffled)
    assert sorted(i.id for i in fuse_batch(shuffled).new) == ids
    assert len(ids) == 2


def test_pair_gate_is_bounded_by_radius_and_cap() -> None:
    p = FusionParams()
    assert pair_gate(2.0, 0.01, 0.01, p) == 2.0
    assert pair_gate(2.0, 0.7, 0.7, p) == pytest.approx(p.k_sigma * math.hypot(0.7, 0.7))
    assert pair_gate(2.0, 10.0, 10.0, p) == pytest.approx(3.0)


# -- events ----------------------------------------------------------------------------------


def truck(e: float, at: datetime, frame: str, batch: str = "B1") -> Observation:
    return obs(e, 0.0, cls="spoil_truck", frame=frame, batch=batch, at=at, sigma=1.0)


def test_truck_sightings_within_the_window_are_one_event() -> None:
    seen = [truck(0, T0, "F1"), truck(5, T0 + timedelta(seconds=10), "F2")]
    seen.append(truck(12, T0 + timedelta(seconds=25), "F3"))  # chains in time
    (issue,) = fuse_batch(seen).new
    assert issue.is_event and issue.observation_count == 3
    assert issue.first_seen == T0 and issue.last_seen == T0 + timedelta(seconds=25)


def test_truck_sightings_outside_the_window_or_radius_are_separate_events() -> None:
    later = [truck(0, T0, "F1"), truck(0, T0 + timedelta(seconds=45), "F2")]
    assert len(fuse_batch(later).new) == 2
    apart = [truck(0, T0, "F1"), truck(30, T0 + timedelta(seconds=5), "F2")]
    assert len(fuse_batch(apart).new) == 2


def test_events_across_midnight_are_continuous_but_days_never_merge() -> None:
    before = datetime(2025, 5, 12, 23, 59, 50, tzinfo=CST)
    after = datetime(2025, 5, 13, 0, 0, 5, tzinfo=CST)
    assert len(fuse_batch([truck(0, before, "F1"), truck(2, after, "F2")]).new) == 1
    day1 = fuse_batch([truck(0, T0, "F1", "D1")]).new
    day2 = fuse_batch([truck(0, T0 + timedelta(days=1), "F1", "D2")], day1)
    assert len(day2.new) == 1 and day2.updated == ()


def test_two_trucks_in_one_frame_are_two_events() -> None:
    a = obs(0, 0, cls="spoil_truck", frame="F1", box=(0, 0, 100, 50))
    b = obs(6, 0, cls="spoil_truck", frame="F1", box=(200, 0, 300, 50))
    assert len(fuse_batch([a, b]).new) == 2


def test_events_without_capture_time_group_by_place_within_one_batch() -> None:
    a = obs(0, 0, cls="spoil_truck", frame="F1", at=None)
    b = obs(3, 0, cls="spoil_truck", frame="F2", at=None)
    c = obs(3, 0, cls="spoil_truck", frame="F3", at=None, batch="B2")
    assert sorted(i.observation_count for i in fuse_batch([a, b, c]).new) == [1, 2]


# -- across batches --------------------------------------------------------------------------


def test_a_later_batch_updates_the_open_issue_instead_of_opening_another() -> None:
    first = fuse_batch([obs(0, 0, frame=f"F{i}", sigma=1.5) for i in range(3)]).new
    later = [
        obs(2.6, 1.0, frame=f"G{i}", batch="B2", sigma=1.5, at=T0 + timedelta(days=7))
        for i in range(3)
    ]
    result = fuse_batch(later, first)
    assert result.new == () and len(result.updated) == 1
    updated = result.updated[0]
    assert updated.id == first[0].id and updated.observation_count == 6
    assert updated.batch_ids == ("B1", "B2")
    assert updated.last_seen == T0 + timedelta(days=7) and updated.first_seen == T0
    assert updated.evidence.batch_id == "B2"  # fresh evidence


def test_a_whole_flight_offset_by_its_gps_still_matches() -> None:
    # Two flights' GPS errors are independent: a 4.4 m shift of the whole later flight is
    # about 2σ of the difference and must not open a second issue.
    first = fuse_batch([obs(0, 0, frame=f"F{i}", sigma=1.5) for i in range(3)]).new
    later = [obs(-4.4, -0.4, frame=f"G{i}", batch="B2", sigma=1.5) for i in range(3)]
    result = fuse_batch(later, first)
    assert result.new == () and [i.id for i in result.updated] == [first[0].id]


def test_refusing_a_batch_already_held_changes_nothing() -> None:
    seen = [obs(0, 0, frame=f"F{i}") for i in range(3)]
    first = fuse_batch(seen).new
    again = fuse_batch(seen, first)
    assert again.new == () and again.updated == ()


def test_closed_issues_are_not_updated_and_neighbours_keep_their_own_issue() -> None:
    a = fuse_batch([obs(0, 0, frame="F1"), obs(0, 0.1, frame="F2")]).new[0]
    b = fuse_batch([obs(3.5, 0, frame="F3"), obs(3.5, 0.1, frame="F4")]).new[0]
    closed = a.with_status(IssueStatus.PUBLISHED).with_status(IssueStatus.CLOSED)
    later = [obs(0.2, 0, frame="G1", batch="B2", sigma=1.0)]
    result = fuse_batch(later, [closed, b])
    assert len(result.new) == 1 and result.updated == ()
    both_open = fuse_batch(
        [obs(0.3, 0, frame="G1", batch="B2", sigma=1.0), obs(3.3, 0, frame="G2", batch="B2")],
        [a, b],
    )
    assert sorted(i.id for i in both_open.updated) == sorted([a.id, b.id])
    assert both_open.new == ()


def test_open_issues_must_come_with_their_observations() -> None:
    issue = fuse_batch([obs(0, 0)]).new[0]
    from dataclasses import replace

    with pytest.raises(ValueError, match="observations loaded"):
        fuse_batch([obs(0, 0, batch="B2")], [replace(issue, observations=())])
