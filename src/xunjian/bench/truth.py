"""Scoring issues found by the real pipeline against the test range's ground truth.

A truth target counts as visible when some frame shows it unoccluded. An issue matches a
visible target of its class within the class's fuse radius or 3σ of the issue, whichever
is larger; each issue matches at most its nearest target.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from xunjian.core.geo import latlon_to_en
from xunjian.core.issues import Issue
from xunjian.core.taxonomy import class_info


def visible_targets(frames: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Target id → {class, lat, lon} for targets some frame shows unoccluded."""
    seen: dict[str, dict[str, Any]] = {}
    for frame in frames:
        for target in frame.targets:
            if not target.get("occluded"):
                seen.setdefault(
                    str(target["id"]),
                    {"class": target["class"], "lat": target["lat"], "lon": target["lon"]},
                )
    return seen


def score_against_truth(
    issues: Sequence[Issue], targets: dict[str, dict[str, Any]], *, events: bool = False
) -> dict[str, Any]:
    """Precision, recall, duplicate rate and location error of ``issues`` vs ``targets``."""
    chosen = [i for i in issues if i.is_event == events]
    wanted = {t: v for t, v in targets.items() if class_info(v["class"]).is_event == events}
    per_target: dict[str, list[float]] = {}
    matched = 0
    for issue in chosen:
        gate = max(class_info(issue.class_name).fuse_radius_m, 3.0 * issue.sigma_m)
        best: tuple[float, str] | None = None
        for tid, target in wanted.items():
            if target["class"] != issue.class_name:
                continue
            e, n = latlon_to_en(issue.lat, issue.lon, target["lat"], target["lon"])
            distance = math.hypot(float(e), float(n))
            if distance <= gate and (best is None or distance < best[0]):
                best = (distance, tid)
        if best is not None:
            matched += 1
            per_target.setdefault(best[1], []).append(best[0])
    errors = [min(d) for d in per_target.values()]
    found = len(per_target)
    return {
        "issues": len(chosen),
        "targets_visible": len(wanted),
        "precision": round(matched / len(chosen), 4) if chosen else None,
        "recall": round(found / len(wanted), 4) if wanted else None,
        "duplicate_rate": round(sum(1 for d in per_target.values() if len(d) > 1) / found, 4)
        if found
        else None,
        "median_location_error_m": round(statistics.median(errors), 3) if errors else None,
    }
