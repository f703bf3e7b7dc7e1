"""The fusion and verify benchmarks on a small test-range flight (bench.fusion, bench.verify).

Each simulated flight is the demo's survey of the focus area (28 nadir frames, 70 % / 60 %
overlap) with truth boxes as detections, georeferenced from the noisy photo metadata.
"""

from __future__ import annotations

import json

import pytest

from xunjian.bench import fusion as bench_fusion
from xunjian.bench import verify as bench_verify

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def result() -> dict[str, object]:
    return bench_fusion.run(7)


def test_most_visible_targets_become_exactly_one_issue(result: dict[str, object]) -> None:
    fused = result["fused"]
    assert isinstance(fused, dict)
    assert fused["targets_visible"] >= 15
    assert fused["exactly_one"] >= 0.85
    assert fused["recall"] >= 0.95 and fused["precision"] >= 0.95


def test_the_naive_baseline_duplicates_far_more(result: dict[str, object]) -> None:
    fused, naive = result["fused"], result["naive"]
    assert isinstance(fused, dict) and isinstance(naive, dict)
    assert naive["duplicate_rate"] >= 0.8
    assert naive["duplicate_rate"] >= fused["duplicate_rate"] + 0.5
    assert naive["issues"] > 3 * fused["issues"]


def test_a_second_flight_over_the_unchanged_world_opens_no_issue_for_known_targets(
    result: dict[str, object],
) -> None:
    second = result["second_flight"]
    assert isinstance(second, dict)
    assert second["new_issues_for_known_targets"] == 0
    assert second["new_static_issues"] == 0
    assert second["updated_issues"] >= 15


def test_the_results_are_json() -> None:
    # Small and fast: exact metadata, a noisy detector, still one issue per target mostly.
    noisy = bench_fusion.run(11, pose_noise=None, detector=bench_fusion.NOISY_DETECTOR)
    json.dumps(noisy)
    assert noisy["fused"]["exactly_one"] >= 0.85
    assert noisy["naive"]["duplicate_rate"] > 0.8


def test_verification_after_a_world_change() -> None:
    out = bench_verify.run(7)
    json.dumps(out)
    assert out["decided"] >= 15
    assert out["correct_share"] >= 0.85
    assert out["still_there_but_verified_fixed"] == 0
    table = out["table"]
    assert isinstance(table, dict)
    assert table.get("verified_fixed -> verified_fixed", 0) >= 3
    assert table.get("recurred -> recurred", 0) >= 5
    assert table.get("undecided -> undecided", 0) >= 1
