"""The ``verify`` benchmark: verification decisions after a world change vs the truth.

Flight 1 surveys day 0 of the test range; its observations are fused into issues and every
issue is marked closed (as if the city had handled them all). ``world.later_day`` repairs a
share of the problems; flight 2 surveys part of the same area on that later day (by default
the western 60 %, so some places are not covered at all); ``core.verify`` decides for each
closed issue. Expected, per issue (attributed to its target as in ``bench.fusion``):

* a spoil-truck event → ``not_applicable`` (events are never verified);
* a place flight 2 did not show well (fewer than 2 frames show the target's day-0 outline
  whole and unoccluded, with the exact pose) → ``undecided``;
* a repaired target → ``verified_fixed``; an unchanged one → ``recurred``; a repaired one
  with a *new* target of its class within the class radius on the later day → ``recurred``
  (the problem came back at that place: dumping again where a pile was cleared).

Issues of false positives have no target and are reported apart. The figures: the share of
correct decisions, the confusion table, and the dangerous error counted on its own — a
problem still there declared ``verified_fixed``.

May import: anything in xunjian but ``service`` and ``cli``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace
from typing import Any

from xunjian.bench.fusion import DetectorNoise, SimFlight, attribute, simulate_flight
from xunjian.core.fusion import fuse_batch
from xunjian.core.issues import Issue, IssueStatus
from xunjian.core.taxonomy import class_info
from xunjian.core.verify import Outcome, VerifyParams, verify_batch
from xunjian.datasets.synth import PoseNoise, World, frame_truth, survey_area
from xunjian.datasets.synth.render import Renderer

COVERED_FRAMES = 2


def close_all(issues: list[Issue]) -> list[Issue]:
    """Every issue moved through the lifecycle to ``closed``."""
    out = []
    for issue in issues:
        for status in (IssueStatus.PUBLISHED, IssueStatus.CLOSED):
            issue = issue.with_status(status)
        out.append(issue)
    return out


def covered_targets(day0: World, flight: SimFlight) -> Counter[str]:
    """How many of the flight's frames show each day-0 target whole and unoccluded."""
    renderer = Renderer(day0)
    counts: Counter[str] = Counter()
    for pose, k, t_s in flight.exact.values():
        for v in frame_truth(day0, renderer.view(pose, k), t_s):
            if not v.occluded and v.in_image_fraction >= 0.999:
                counts[v.id] += 1
    return counts


def expected_outcome(
    issue: Issue, target: str | None, day0: World, day: World, covered: Counter[str]
) -> Outcome | None:
    """What a perfect verifier would say (None: a false-positive issue, no truth)."""
    if issue.is_event:
        return Outcome.NOT_APPLICABLE
    if target is None:
        return None
    if covered[target] < COVERED_FRAMES:
        return Outcome.UNDECIDED
    changes = day.changes
    assert changes is not None
    if target not in changes.repaired:
        return Outcome.RECURRED
    return Outcome.RECURRED if _came_back(target, day0, day) else Outcome.VERIFIED_FIXED


def _came_back(target: str, day0: World, day: World) -> bool:
    """A new target of the same class within the class radius of a repaired one."""
    changes = day.changes
    assert changes is not None
    by_id = {t.id: t for t in day.targets}
    old = next((t for t in day0.targets if t.id == target), None)
    if old is None:
        return False
    radius = class_info(old.cls).fuse_radius_m
    return any(
        by_id[n].cls == old.cls and math.dist(by_id[n].center, old.center) <= radius
        for n in changes.new
        if n in by_id
    )


def run(
    seed: int = 7,
    *,
    pose_noise: PoseNoise | None = PoseNoise(),
    detector: DetectorNoise = DetectorNoise(),
    covered_share: float = 0.6,
    later_seed: int = 1,
    params: VerifyParams = VerifyParams(),
) -> dict[str, Any]:
    """One scenario: flight 1 → closed issues → later day → flight 2 → decisions vs truth."""
    day0 = World.generate(seed)
    f1 = simulate_flight(
        day0, batch_id="flight-1", seed=seed, pose_noise=pose_noise, detector=detector
    )
    issues = close_all(list(fuse_batch(f1.observations).new))
    later = day0.later_day(later_seed)
    e0, n0, e1, n1 = survey_area(day0)
    area = (e0, n0, e0 + covered_share * (e1 - e0), n1)
    f2 = simulate_flight(
        later,
        batch_id="flight-2",
        seed=seed + 1000,
        pose_noise=pose_noise,
        detector=detector,
        area=area,
    )
    decisions = verify_batch(issues, "flight-2", f2.frames, f2.observations, params)
    covered = covered_targets(day0, replace(f2, world=day0))
    table: Counter[str] = Counter()
    false_positive: Counter[str] = Counter()
    correct = total = wrong_fixed = 0
    for issue, d in zip(issues, decisions, strict=True):
        target = attribute(issue, [f1])
        want = expected_outcome(issue, target, day0, later, covered)
        if want is None:
            false_positive[d.outcome.value] += 1
            continue
        total += 1
        correct += d.outcome is want
        wrong_fixed += want is Outcome.RECURRED and d.outcome is Outcome.VERIFIED_FIXED
        table[f"{want.value} -> {d.outcome.value}"] += 1
    return {
        "seed": seed,
        "pose_noise": "exact" if pose_noise is None else "metadata",
        "detector_noise": {
            "drop": detector.drop,
            "jitter": detector.jitter,
            "false_positives_per_frame": detector.false_positives_per_frame,
        },
        "issues": len(issues),
        "frames_flight_2": len(f2.frames),
        "decided": total,
        "correct": correct,
        "correct_share": round(correct / max(total, 1), 4),
        "still_there_but_verified_fixed": wrong_fixed,
        "table": dict(sorted(table.items())),
        "false_positive_issues": dict(sorted(false_positive.items())),
    }


def run_all(seeds: tuple[int, ...] = (7, 11)) -> dict[str, Any]:
    """Exact and noisy metadata, clean and noisy detector, for ``seeds``."""
    from xunjian.bench.fusion import NOISY_DETECTOR

    scenarios: dict[str, dict[str, Any]] = {
        "exact_clean": {"pose_noise": None, "detector": DetectorNoise()},
        "metadata_clean": {"pose_noise": PoseNoise(), "detector": DetectorNoise()},
        "metadata_noisy_detector": {"pose_noise": PoseNoise(), "detector": NOISY_DETECTOR},
    }
    return {
        "benchmark": "verify",
        "scenarios": {name: [run(s, **kw) for s in seeds] for name, kw in scenarios.items()},
    }


def bench_verify(quick: bool = False) -> dict[str, Any]:
    """Entry point of ``xunjian bench verify``: one seed when ``quick``, four otherwise."""
    return run_all((7,) if quick else (7, 11, 23, 31))
