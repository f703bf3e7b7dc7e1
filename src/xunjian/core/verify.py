"""Verification: does a later batch show that an issue was fixed, came back, or was missed?

For each issue and each frame of the later batch, :func:`check_view` says whether the frame
shows the issue's place well enough to judge: the frame has a pose; the place is in front of
the camera, within the usable range (default: ``core.camera.default_max_range_m``), inside
the image and not at its edge (a margin of 5 % of the short side, or 2σ of the issue's
position in pixels if that is more); and the ground sample distance there — worst direction,
slant² / (f·h) — is fine enough for the class (:data:`MAX_GSD_M`).

Then :func:`decide` (rules in order; every decision carries its reasons):

* events (spoil trucks), ``rejected`` and ``recurred`` issues → ``not_applicable``;
* an observation of the same class within fusion's cross-batch gate of the issue
  (max(r, k·√(σ₁² + σ₂²)): two flights' GPS errors are independent) → ``recurred`` for a
  ``closed`` or ``verified_fixed`` issue, ``reobserved`` for an open one;
* ≥ ``min_good_views`` good views (default 2) and nothing seen → ``verified_fixed`` for a
  closed (or already verified) issue, ``not_reobserved`` for an open one (its count grows);
* otherwise ``undecided``: the place was not covered well enough to judge.

:func:`apply_decision` turns a decision into the issue's new state through the lifecycle.

May import: numpy, the standard library and ``xunjian.core`` only.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from xunjian.core.camera import default_max_range_m, latlon_to_pixel
from xunjian.core.fusion import FusionParams, cross_batch_gate
from xunjian.core.geo import latlon_to_en
from xunjian.core.issues import Issue, IssueStatus
from xunjian.core.records import Frame, Observation
from xunjian.core.taxonomy import class_info

MAX_GSD_M: dict[str, float] = {
    "longitudinal_crack": 0.05,
    "transverse_crack": 0.05,
    "alligator_crack": 0.06,
    "pothole": 0.08,
    "garbage_pile": 0.10,
    "construction_waste": 0.20,
    "spoil_truck": 0.30,
    "spoil_truck_uncovered": 0.15,
}
"""The coarsest ground sample distance (m/px) at which a class can still be judged absent:
cracks are 3–6 cm wide, potholes ≥ 0.5 m, trucks 8 m long (specs/taxonomy.md, test range)."""


class Outcome(StrEnum):
    VERIFIED_FIXED = "verified_fixed"
    RECURRED = "recurred"
    NOT_REOBSERVED = "not_reobserved"
    REOBSERVED = "reobserved"
    UNDECIDED = "undecided"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True, slots=True)
class VerifyParams:
    min_good_views: int = 2
    edge_margin: float = 0.05
    max_range_m: float | None = None
    max_gsd_m: Mapping[str, float] = field(default_factory=lambda: dict(MAX_GSD_M))
    fusion: FusionParams = field(default_factory=FusionParams)


@dataclass(frozen=True, slots=True)
class ViewCheck:
    """Whether one frame shows a place well enough to judge, and if not, why."""

    frame_key: str
    good: bool
    reason: str
    range_m: float | None = None
    gsd_m: float | None = None


@dataclass(frozen=True, slots=True)
class VerificationDecision:
    """What a later batch says about one issue, with the reasons."""

    issue_id: str
    batch_id: str
    outcome: Outcome
    good_views: int
    views_checked: int
    matched_frames: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


def check_view(
    frame: Frame,
    lat: float,
    lon: float,
    class_name: str,
    sigma_m: float = 0.0,
    params: VerifyParams = VerifyParams(),
) -> ViewCheck:
    """Whether ``frame`` shows the ground point (lat, lon) well enough for ``class_name``."""
    pose, k = frame.pose, frame.intrinsics
    if pose is None or k is None:
        return ViewCheck(frame.key, False, "no pose or camera: cannot be placed")
    e, n = latlon_to_en(lat, lon, pose.lat, pose.lon)
    rng = math.hypot(float(e), float(n))
    limit = params.max_range_m if params.max_range_m is not None else default_max_range_m(pose)
    if rng > limit:
        return ViewCheck(frame.key, False, f"beyond the usable range of {limit:.0f} m", rng)
    uv, front = latlon_to_pixel(pose, k, [lat, lon])
    if not bool(front) or not math.isfinite(float(uv[0])):
        return ViewCheck(frame.key, False, "behind the camera", rng)
    slant_sq = rng**2 + pose.height_m**2
    gsd = slant_sq / (0.5 * (k.fx + k.fy) * max(pose.height_m, 1e-6))
    u, v = float(uv[0]), float(uv[1])
    if not (0.0 <= u <= k.width and 0.0 <= v <= k.height):
        return ViewCheck(frame.key, False, "outside the image", rng, gsd)
    margin = max(params.edge_margin * min(k.width, k.height), 2.0 * sigma_m / gsd)
    if min(u, v, k.width - u, k.height - v) < margin:
        return ViewCheck(frame.key, False, "at the image edge", rng, gsd)
    need = params.max_gsd_m.get(class_name, 0.10)
    if gsd > need:
        return ViewCheck(
            frame.key,
            False,
            f"ground sample {gsd * 100:.1f} cm coarser than {need * 100:.0f} cm",
            rng,
            gsd,
        )
    return ViewCheck(frame.key, True, "good view", rng, gsd)


def matching_observations(
    issue: Issue, observations: Sequence[Observation], params: VerifyParams = VerifyParams()
) -> list[Observation]:
    """The observations of the issue's class within the cross-batch gate of its place."""
    radius = class_info(issue.class_name).fuse_radius_m
    out = []
    for o in observations:
        if o.class_name != issue.class_name:
            continue
        e, n = latlon_to_en(o.lat, o.lon, issue.lat, issue.lon)
        if math.hypot(float(e), float(n)) <= cross_batch_gate(
            radius, o.sigma_m, issue.sigma_m, params.fusion
        ):
            out.append(o)
    return out


def decide(
    issue: Issue,
    batch_id: str,
    frames: Sequence[Frame],
    observations: Sequence[Observation],
    params: VerifyParams = VerifyParams(),
) -> VerificationDecision:
    """The decision the later batch ``batch_id`` (its frames and observations) supports."""
    status = IssueStatus(issue.status)
    if issue.is_event:
        return VerificationDecision(
            issue.id, batch_id, Outcome.NOT_APPLICABLE, 0, 0, (), ("events are never verified",)
        )
    if status in (IssueStatus.REJECTED, IssueStatus.RECURRED):
        return VerificationDecision(
            issue.id, batch_id, Outcome.NOT_APPLICABLE, 0, 0, (), (f"issue is {status}",)
        )
    checks = [
        check_view(f, issue.lat, issue.lon, issue.class_name, issue.sigma_m, params) for f in frames
    ]
    good = sum(c.good for c in checks)
    matched = matching_observations(issue, observations, params)
    frames_seen = tuple(sorted({o.frame_key for o in matched}))
    reasons = [f"{good} good view(s) of {len(checks)} frame(s), {params.min_good_views} needed"]
    why_not = Counter(c.reason for c in checks if not c.good)
    reasons += [f"{n} frame(s): {reason}" for reason, n in sorted(why_not.items())]
    closed = status in (IssueStatus.CLOSED, IssueStatus.VERIFIED_FIXED)
    if matched:
        reasons.insert(0, f"seen again in {len(frames_seen)} frame(s)")
        outcome = Outcome.RECURRED if closed else Outcome.REOBSERVED
    elif good >= params.min_good_views:
        reasons.insert(0, f"not seen although covered well: no {issue.class_name} nearby")
        outcome = Outcome.VERIFIED_FIXED if closed else Outcome.NOT_REOBSERVED
    else:
        reasons.insert(0, "not covered well enough to judge")
        outcome = Outcome.UNDECIDED
    return VerificationDecision(
        issue.id, batch_id, outcome, good, len(checks), frames_seen, tuple(reasons)
    )


def verify_batch(
    issues: Sequence[Issue],
    batch_id: str,
    frames: Sequence[Frame],
    observations: Sequence[Observation],
    params: VerifyParams = VerifyParams(),
) -> list[VerificationDecision]:
    """:func:`decide` for every issue against one later batch.

    Each observation counts for the one issue it fits best (smallest distance / gate), so a
    problem still there does not also make its repaired neighbour look recurred.
    """
    claims: dict[str, list[Observation]] = {i.id: [] for i in issues}
    for o in observations:
        best: tuple[float, str] | None = None
        for issue in issues:
            if issue.class_name != o.class_name:
                continue
            radius = class_info(issue.class_name).fuse_radius_m
            e, n = latlon_to_en(o.lat, o.lon, issue.lat, issue.lon)
            gate = cross_batch_gate(radius, o.sigma_m, issue.sigma_m, params.fusion)
            score = math.hypot(float(e), float(n)) / gate
            if score <= 1.0 and (best is None or (score, issue.id) < best):
                best = (score, issue.id)
        if best is not None:
            claims[best[1]].append(o)
    return [decide(i, batch_id, frames, claims[i.id], params) for i in issues]


def apply_decision(issue: Issue, decision: VerificationDecision) -> Issue:
    """The issue after ``decision``: a status change, or its not-re-observed count."""
    if decision.issue_id != issue.id:
        raise ValueError(f"expected a decision about {issue.id}, got one about {decision.issue_id}")
    match decision.outcome:
        case Outcome.VERIFIED_FIXED | Outcome.RECURRED:
            return issue.with_status(IssueStatus(decision.outcome.value))
        case Outcome.NOT_REOBSERVED:
            return replace(issue, not_reobserved=issue.not_reobserved + 1)
        case Outcome.REOBSERVED:
            return replace(issue, not_reobserved=0)
        case _:
            return issue
