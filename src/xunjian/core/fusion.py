"""Fusion: many observations of one problem in overlapping frames become one :class:`Issue`.

Rules (specs/taxonomy.md gives each class its radius r; specs/cases.md the lifecycle):

* **Static classes — greedy complete-linkage clustering, σ-aware.** Two observations are
  *compatible* when their distance d ≤ gate = max(r, min(k·√(σ₁² + σ₂²), c·r)) with
  k = 2.45 (95 % of a 2-D Gaussian) and c = 1.5: a precise pair must lie within the radius, an
  imprecise pair may lie further apart, but never more than 1.5 r. Observations are taken
  best first (conf/σ²); each joins the nearest cluster (by d/gate to its fused centre) with
  which it is compatible with *every* member (complete linkage: no single-linkage chains),
  else starts one.
* **Second pass — whole clusters merge, centroid linkage.** The frames of one survey leg
  share their GPS error, the next leg's differ by metres, so one target seen on two legs
  can come out as two tight clusters a little more than 1.5 r apart member to member. Two
  clusters merge (best pair first) when their fused centres are within the gate above (fused
  σs), every cross pair is statistically compatible (d ≤ max(r, k·√(σ₁² + σ₂²))) and
  strictly closer than 2 r. So no issue ever spans 2 r: two real targets 2 r apart never
  share one, however large σ is.
* **One frame, one object per cluster**: two boxes of one frame join one cluster only when
  they overlap (intersection ≥ 30 % of the smaller box: the same object from two tiles or
  two models); two potholes side by side in one photo stay two issues.
* **Events** (spoil trucks): an observation joins an event when it is within the class's time
  window (30 s) and radius (20 m) of the event's member nearest in time. Time is continuous,
  so a truck seen at 23:59:50 and 00:00:10 is one event; sightings on different days are
  never within the window. Without a capture time, events group within one batch by place.
* **Fused location** = weighted mean, weights conf/σ²; **fused σ** = the inverse-variance
  σ, but never below 0.8 × the best single σ: overlapping frames of one flight share most
  of their GPS error (it drifts over tens of seconds), so averaging them cannot remove it.
* **Issue confidence** = 1 − Π(1 − cᵢ)^α over frames (the best box per frame), α = 0.5,
  capped at 0.99: a noisy-OR whose views are discounted because detections of one place in
  overlapping frames are not independent evidence.
* **Best evidence** = highest conf · exp(−σ/r) / (1 + range/30 m): sure, well placed, close.
* **Across batches** the GPS errors of two flights are independent (metres, not
  centimetres), so the gate is max(r, k'·√(σ₁² + σ₂²)) on the fused σs, k' = 3.0 (a whole
  flight can be off by 2σ), *without* the 1.5 r cap; instead the assignment is one-to-one,
  best pairs first, so two neighbouring targets never both land on one old issue. A
  leftover cluster that fits an issue already claimed under the within-batch rules (a split
  of the same problem) joins it too; any other cluster becomes a new issue. Events match an
  open event of their class within its window and radius. Observations an issue already
  holds are skipped, so re-fusing a batch changes nothing.

May import: numpy, the standard library and ``xunjian.core`` only.
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.issues import Issue, IssueStatus, issue_id_for, observation_key
from xunjian.core.records import Observation
from xunjian.core.taxonomy import ClassInfo, class_info

MIN_SIGMA_M = 0.05
SHARED_ERROR_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class FusionParams:
    """The knobs of the rules in the module docstring."""

    k_sigma: float = 2.45
    k_sigma_across: float = 3.0
    max_gate_factor: float = 1.5
    same_frame_overlap: float = 0.3
    view_discount: float = 0.5
    max_confidence: float = 0.99
    range_scale_m: float = 30.0


@dataclass(frozen=True, slots=True)
class FusionResult:
    """What fusing a batch did: issues to create and open issues it updated."""

    new: tuple[Issue, ...]
    updated: tuple[Issue, ...]


def pair_gate(radius_m: float, sigma1: float, sigma2: float, p: FusionParams) -> float:
    """How far apart two positions with these σs may lie and still be one problem."""
    return max(radius_m, min(p.k_sigma * math.hypot(sigma1, sigma2), p.max_gate_factor * radius_m))


def cross_batch_gate(radius_m: float, sigma1: float, sigma2: float, p: FusionParams) -> float:
    """The gate between positions from two flights: independent GPS errors, so no cap."""
    return max(radius_m, p.k_sigma_across * math.hypot(sigma1, sigma2))


def _sigma(o: Observation) -> float:
    return max(o.sigma_m, MIN_SIGMA_M)


def _quality(o: Observation) -> float:
    return o.confidence / _sigma(o) ** 2


def _same_object_boxes(a: Observation, b: Observation, p: FusionParams) -> bool:
    """Two boxes of one frame: the same object only when they overlap enough."""
    ax1, ay1, ax2, ay2 = a.detection.bbox_xyxy
    bx1, by1, bx2, by2 = b.detection.bbox_xyxy
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    if iw <= 0 or ih <= 0:
        return False
    smaller = min((ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1))
    return smaller <= 0 or iw * ih >= p.same_frame_overlap * smaller


def _frames_conflict(a: Sequence[Observation], b: Sequence[Observation], p: FusionParams) -> bool:
    frames = defaultdict(list)
    for o in a:
        frames[(o.batch_id, o.frame_key)].append(o)
    for o in b:
        for other in frames.get((o.batch_id, o.frame_key), ()):
            if not _same_object_boxes(o, other, p):
                return True
    return False


def _time_gap_s(a: datetime | None, b: datetime | None) -> float | None:
    return None if a is None or b is None else abs((a - b).total_seconds())


class _Cluster:
    def __init__(self, first: Observation, en: tuple[float, float], index: int = 0) -> None:
        self.index = index
        self.members: list[Observation] = [first]
        self.points: list[tuple[float, float]] = [en]
        self.centre = en
        self.sigma = _sigma(first)

    def add(self, o: Observation, en: tuple[float, float]) -> None:
        self.members.append(o)
        self.points.append(en)
        w = np.array([_quality(m) for m in self.members])
        pts = np.array(self.points)
        c = (w[:, None] * pts).sum(axis=0) / w.sum()
        self.centre = (float(c[0]), float(c[1]))
        self.sigma = fused_sigma(self.members)


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _compatible_static(
    a: _Cluster, b: _Cluster, radius: float, p: FusionParams, *, whole: bool
) -> float | None:
    """d/gate between the two clusters' centres when every cross pair is compatible.

    ``whole``: two clusters (second pass) rather than an observation joining a cluster.
    """
    for oa, pa in zip(a.members, a.points, strict=True):
        for ob, pb in zip(b.members, b.points, strict=True):
            d = _dist(pa, pb)
            if whole:
                stat = max(radius, p.k_sigma * math.hypot(_sigma(oa), _sigma(ob)))
                if d >= 2.0 * radius or d > stat:
                    return None
            elif d > pair_gate(radius, _sigma(oa), _sigma(ob), p):
                return None
    if _frames_conflict(a.members, b.members, p):
        return None
    gate = pair_gate(radius, a.sigma, b.sigma, p)
    d = _dist(a.centre, b.centre)
    return d / gate if d <= gate else None


def _compatible_event(a: _Cluster, b: _Cluster, radius: float, window_s: float) -> float | None:
    best: float | None = None
    for oa, pa in zip(a.members, a.points, strict=True):
        for ob, pb in zip(b.members, b.points, strict=True):
            gap = _time_gap_s(oa.captured_at, ob.captured_at)
            if gap is None:
                if oa.captured_at is not None or ob.captured_at is not None:
                    continue
                if oa.batch_id != ob.batch_id:
                    continue
                gap = 0.0
            d = _dist(pa, pb)
            if gap <= window_s and d <= radius:
                score = d / radius + gap / max(window_s, 1e-9)
                best = score if best is None else min(best, score)
    return best


def cluster_observations(
    observations: Sequence[Observation], params: FusionParams = FusionParams()
) -> list[tuple[Observation, ...]]:
    """Group observations of **one class** into clusters, one per real problem or event."""
    if not observations:
        return []
    names = {o.class_name for o in observations}
    if len(names) != 1:
        raise ValueError(f"expected observations of one class, got {sorted(names)}")
    info = class_info(names.pop())
    lat0, lon0 = observations[0].lat, observations[0].lon
    e, n = latlon_to_en([o.lat for o in observations], [o.lon for o in observations], lat0, lon0)
    if info.is_event:
        order = sorted(
            range(len(observations)),
            key=lambda i: (
                observations[i].captured_at is None,
                _when(observations[i]),
                observation_key(observations[i]),
            ),
        )
    else:
        order = sorted(
            range(len(observations)),
            key=lambda i: (-_quality(observations[i]), observation_key(observations[i])),
        )
    # The widest distance at which two members can be compatible: r for events, 2 r static.
    cell = info.fuse_radius_m * (1.0 if info.is_event else max(params.max_gate_factor, 2.0))
    grid = _Grid(cell)
    clusters: list[_Cluster] = []
    for i in order:
        single = _Cluster(observations[i], (float(e[i]), float(n[i])), len(clusters))
        target = _best_fit(grid.near(single.points), single, info, params)
        if target is None:
            clusters.append(single)
            grid.add(single, single.points[0])
        else:
            target.add(observations[i], single.points[0])
            grid.add(target, single.points[0])
    merged = _merge_pass(clusters, grid, info, params)
    return [tuple(c.members) for c in merged]


def _when(o: Observation) -> float:
    return o.captured_at.timestamp() if o.captured_at is not None else 0.0


def _score(
    a: _Cluster, b: _Cluster, info: ClassInfo, p: FusionParams, *, whole: bool = False
) -> float | None:
    """How well two clusters fit together (lower is better), None when they must not merge."""
    radius = info.fuse_radius_m
    if info.is_event:
        if _frames_conflict(a.members, b.members, p):
            return None
        return _compatible_event(a, b, radius, info.event_window_s)
    # Cheap reject first: no pair of centres further apart than the widest gate can merge.
    if _dist(a.centre, b.centre) > p.max_gate_factor * radius:
        return None
    return _compatible_static(a, b, radius, p, whole=whole)


def _best_fit(
    candidates: Sequence[_Cluster], single: _Cluster, info: ClassInfo, p: FusionParams
) -> _Cluster | None:
    best: tuple[float, int, _Cluster] | None = None
    for c in candidates:
        s = _score(c, single, info, p)
        if s is not None and (best is None or (s, c.index) < best[:2]):
            best = (s, c.index, c)
    return None if best is None else best[2]


def _merge_pass(
    clusters: list[_Cluster], grid: _Grid, info: ClassInfo, p: FusionParams
) -> list[_Cluster]:
    """Merge whole clusters that fit together, best pair first, until none do."""
    alive = {c.index: c for c in clusters}
    version = dict.fromkeys(alive, 0)
    heap: list[tuple[float, int, int, int, int]] = []

    def push_pairs(a: _Cluster) -> None:
        for b in grid.near(a.points):
            if b is not a:
                s = _score(a, b, info, p, whole=True)
                if s is not None:
                    i, j = sorted((a.index, b.index))
                    heapq.heappush(heap, (s, i, j, version[i], version[j]))

    for c in clusters:
        push_pairs(c)
    while heap:
        _, i, j, vi, vj = heapq.heappop(heap)
        if i not in alive or j not in alive or (vi, vj) != (version[i], version[j]):
            continue
        keep, gone = alive[i], alive.pop(j)
        grid.remove(gone)
        for o, pt in zip(gone.members, gone.points, strict=True):
            keep.add(o, pt)
            grid.add(keep, pt)
        version[i] += 1
        push_pairs(keep)
    return [c for c in clusters if c.index in alive]


class _Grid:
    """Clusters filed under the cells of their members' points (cell = the widest gate):
    two clusters that can merge have members in neighbouring cells."""

    def __init__(self, cell_m: float) -> None:
        self.cell = cell_m
        self.cells: dict[tuple[int, int], list[_Cluster]] = defaultdict(list)

    def _key(self, pt: tuple[float, float]) -> tuple[int, int]:
        return (math.floor(pt[0] / self.cell), math.floor(pt[1] / self.cell))

    def add(self, c: _Cluster, pt: tuple[float, float]) -> None:
        bucket = self.cells[self._key(pt)]
        if all(x is not c for x in bucket):
            bucket.append(c)

    def remove(self, c: _Cluster) -> None:
        for pt in c.points:
            bucket = self.cells.get(self._key(pt), [])
            bucket[:] = [x for x in bucket if x is not c]

    def near(self, points: Sequence[tuple[float, float]]) -> list[_Cluster]:
        keys = {
            (kx + dx, ky + dy)
            for kx, ky in map(self._key, points)
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
        }
        found = {c.index: c for k in keys for c in self.cells.get(k, ())}
        return [found[i] for i in sorted(found)]


# -- fused values ----------------------------------------------------------------------------


def fused_sigma(observations: Sequence[Observation]) -> float:
    """Inverse-variance σ, floored at a share of the best single σ (shared GPS error)."""
    sig = np.array([_sigma(o) for o in observations])
    return float(
        max(1.0 / math.sqrt(float(np.sum(1.0 / sig**2))), SHARED_ERROR_SHARE * float(sig.min()))
    )


def fused_location(observations: Sequence[Observation]) -> tuple[float, float]:
    """The conf/σ²-weighted mean (lat, lon), averaged on the tangent plane at the first one."""
    lat0, lon0 = observations[0].lat, observations[0].lon
    e, n = latlon_to_en([o.lat for o in observations], [o.lon for o in observations], lat0, lon0)
    w = np.array([max(_quality(o), 1e-12) for o in observations])
    lat, lon = en_to_latlon(
        float(np.sum(w * e) / w.sum()), float(np.sum(w * n) / w.sum()), lat0, lon0
    )
    return float(lat), float(lon)


def issue_confidence(
    observations: Iterable[Observation], p: FusionParams = FusionParams()
) -> float:
    """1 − Π(1 − c_f)^α over frames f (best box per frame), capped."""
    per_frame: dict[tuple[str, str], float] = {}
    for o in observations:
        k = (o.batch_id, o.frame_key)
        per_frame[k] = max(per_frame.get(k, 0.0), o.confidence)
    miss = 1.0
    for c in per_frame.values():
        miss *= (1.0 - c) ** p.view_discount
    return float(min(1.0 - miss, p.max_confidence))


def evidence_score(o: Observation, p: FusionParams = FusionParams()) -> float:
    """Higher is better evidence: confident, well placed, seen from close by."""
    r = class_info(o.class_name).fuse_radius_m
    return o.confidence * math.exp(-_sigma(o) / r) / (1.0 + o.range_m / p.range_scale_m)


def best_evidence(
    observations: Sequence[Observation], p: FusionParams = FusionParams()
) -> Observation:
    return max(observations, key=lambda o: (evidence_score(o, p), observation_key(o)))


def build_issue(
    observations: Sequence[Observation],
    *,
    base: Issue | None = None,
    evidence_from: Sequence[Observation] | None = None,
    params: FusionParams = FusionParams(),
) -> Issue:
    """The issue made of ``observations``; with ``base``, that issue with them added.

    ``evidence_from`` restricts the evidence choice (an update takes fresh evidence from the
    new batch); ``base`` keeps its id, status and counters.
    """
    allobs = list(base.observations if base else ()) + list(observations)
    seen: set[object] = set()
    unique = []
    for o in allobs:
        key = observation_key(o)
        if key not in seen:
            seen.add(key)
            unique.append(o)
    info = class_info(unique[0].class_name)
    lat, lon = fused_location(unique)
    times = sorted(o.captured_at for o in unique if o.captured_at is not None)
    batches = sorted({o.batch_id for o in unique}, key=lambda b: (_first_time(unique, b), b))
    evidence = best_evidence(list(evidence_from or observations) or unique, params)
    seed = min(unique, key=lambda o: (-_quality(o), observation_key(o)))
    return Issue(
        id=base.id if base else issue_id_for(info.name, seed),
        class_name=info.name,
        detector=str(info.detector),
        lat=lat,
        lon=lon,
        sigma_m=fused_sigma(unique),
        confidence=issue_confidence(unique, params),
        evidence=evidence,
        observations=tuple(unique),
        observation_count=len(unique),
        status=base.status if base else IssueStatus.CANDIDATE,
        first_seen=times[0] if times else None,
        last_seen=times[-1] if times else None,
        batch_ids=tuple(batches),
        is_event=info.is_event,
        not_reobserved=base.not_reobserved if base else 0,
    )


def _first_time(observations: Sequence[Observation], batch_id: str) -> float:
    times = [_when(o) for o in observations if o.batch_id == batch_id and o.captured_at]
    return min(times) if times else math.inf


# -- a batch against the open issues ---------------------------------------------------------


def fuse_batch(
    observations: Iterable[Observation],
    open_issues: Sequence[Issue] = (),
    params: FusionParams = FusionParams(),
) -> FusionResult:
    """Fuse one batch's observations, updating ``open_issues`` where they match.

    ``open_issues`` must carry their observations (a store loads them); issues that are not
    open are ignored. Observations already held by an issue, or repeated, are skipped.
    """
    candidates = [i for i in open_issues if i.is_open]
    for issue in candidates:
        if len(issue.observations) < issue.observation_count or not issue.observations:
            raise ValueError(f"expected issue {issue.id} with its observations loaded")
    held = {observation_key(o) for i in candidates for o in i.observations}
    by_class: dict[str, list[Observation]] = defaultdict(list)
    for o in observations:
        key = observation_key(o)
        if key not in held:
            held.add(key)
            by_class[o.class_name].append(o)
    new: list[Issue] = []
    updates: dict[str, list[Observation]] = {}
    for cls in sorted(by_class):
        info = class_info(cls)
        same_class = [i for i in candidates if i.class_name == cls]
        clusters = cluster_observations(by_class[cls], params)
        for members, target in _assign(clusters, same_class, info, params):
            if target is None:
                new.append(build_issue(members, params=params))
            else:
                updates.setdefault(target.id, []).extend(members)
    by_id = {i.id: i for i in candidates}
    updated = [
        build_issue(obs, base=by_id[iid], evidence_from=obs, params=params)
        for iid, obs in updates.items()
    ]
    return FusionResult(tuple(new), tuple(updated))


def _as_cluster(observations: Sequence[Observation], lat0: float, lon0: float) -> _Cluster:
    e, n = latlon_to_en([o.lat for o in observations], [o.lon for o in observations], lat0, lon0)
    c = _Cluster(observations[0], (float(e[0]), float(n[0])))
    for o, ei, ni in zip(observations[1:], e[1:], n[1:], strict=True):
        c.add(o, (float(ei), float(ni)))
    return c


def _match_score(
    members: Sequence[Observation], issue: Issue, info: ClassInfo, p: FusionParams, *, capped: bool
) -> float | None:
    """d/gate of a cluster against an open issue, None when it cannot be that issue."""
    if _frames_conflict(members, issue.observations, p):
        return None
    lat, lon = fused_location(members)
    if info.is_event:
        mine, theirs = _as_cluster(members, lat, lon), _as_cluster(issue.observations, lat, lon)
        return _compatible_event(mine, theirs, info.fuse_radius_m, info.event_window_s)
    e, n = latlon_to_en(issue.lat, issue.lon, lat, lon)
    d = math.hypot(float(e), float(n))
    sigma, r = fused_sigma(members), info.fuse_radius_m
    gate = (pair_gate if capped else cross_batch_gate)(r, sigma, issue.sigma_m, p)
    return d / gate if d <= gate else None


def _assign(
    clusters: Sequence[tuple[Observation, ...]],
    issues: Sequence[Issue],
    info: ClassInfo,
    p: FusionParams,
) -> list[tuple[tuple[Observation, ...], Issue | None]]:
    """Each cluster with the open issue it updates (one-to-one, best first) or None."""
    near = _near_issues(clusters, issues, info, p)
    pairs = []
    for ci, members in enumerate(clusters):
        for ii in near[ci]:
            s = _match_score(members, issues[ii], info, p, capped=False)
            if s is not None:
                pairs.append((s, ci, ii))
    chosen: dict[int, int] = {}
    claimed: set[int] = set()
    for _, ci, ii in sorted(pairs):
        if ci not in chosen and ii not in claimed:
            chosen[ci] = ii
            claimed.add(ii)
    out: list[tuple[tuple[Observation, ...], Issue | None]] = []
    for ci, members in enumerate(clusters):
        if ci in chosen:
            out.append((members, issues[chosen[ci]]))
            continue
        fits = [
            (s, ii)
            for ii in near[ci]
            if ii in claimed
            and (s := _match_score(members, issues[ii], info, p, capped=True)) is not None
        ]
        out.append((members, issues[min(fits)[1]] if fits else None))
    return out


def _near_issues(
    clusters: Sequence[tuple[Observation, ...]],
    issues: Sequence[Issue],
    info: ClassInfo,
    p: FusionParams,
) -> list[list[int]]:
    """A cheap first cut: per cluster, the issues it could possibly match (vectorised)."""
    if not issues:
        return [[] for _ in clusters]
    lat0, lon0 = issues[0].lat, issues[0].lon
    ie, in_ = latlon_to_en([i.lat for i in issues], [i.lon for i in issues], lat0, lon0)
    isig = np.array([i.sigma_m for i in issues])
    window = info.event_window_s
    big = float("inf")
    first = np.array([i.first_seen.timestamp() if i.first_seen else -big for i in issues])
    last = np.array([i.last_seen.timestamp() if i.last_seen else big for i in issues])
    out = []
    for members in clusters:
        if info.is_event:
            times = [o.captured_at.timestamp() for o in members if o.captured_at is not None]
            if not times:
                out.append(list(range(len(issues))))
                continue
            ok = (first - window <= max(times)) & (last + window >= min(times))
        else:
            lat, lon = fused_location(members)
            ce, cn = latlon_to_en(lat, lon, lat0, lon0)
            sig = np.hypot(fused_sigma(members), isig)
            gate = np.maximum(info.fuse_radius_m, p.k_sigma_across * sig)
            ok = np.hypot(ie - ce, in_ - cn) <= gate + 1e-6
        out.append([int(i) for i in np.nonzero(ok)[0]])
    return out
