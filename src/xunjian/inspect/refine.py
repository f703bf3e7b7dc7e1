"""Pose refinement from overlap: check each frame's metadata pose against what the images show.

Metadata lies sometimes (specs/georef.md, last section): on reverse legs of DJI nadir surveys
the XMP gimbal yaw can be 180° off the image content, and every pose carries GPS / yaw /
height noise. Overlapping frames see the same ground, so:

1. Pairs: frames whose metadata footprints overlap (≥ ``min_overlap`` of the smaller one).
2. Features: ORB on images reduced to ≤ ``work_px`` on the long side; Hamming matches with a
   ratio test; a RANSAC homography keeps the inliers (a flat ground is a homography).
3. Ground check: each inlier pixel pair is cast onto the ground with its frame's pose, in one
   local East-North frame. With right poses both casts land on the same spot.
4. Gross errors: a 180° yaw error mirrors a frame's ground points through its camera's ground
   point (g → 2c − g). Per pair the four flip hypotheses are scored by the median ground
   distance; each pair votes, and a frame whose pairs mostly prefer it flipped is corrected.
   The image motion, not the majority, decides: two frames of one flipped leg still disagree
   with their GPS baseline (their casts land 2 × baseline apart).
5. Adjustment: weighted least squares for a shift (E, N) and a yaw per frame (heights stay),
   with the metadata σ as priors and the matched ground points as observations; this tightens
   the *relative* accuracy (absolute stays that of the GPS mean).

Corrections are reported as ``(frame key, what, why)``: ``yaw +180°`` (fixed), ``inconsistent``
(the adjustment moved it beyond 3σ of its metadata: look at it) and ``unchecked`` (no
overlapping frame matched it). On 1024 px frames a pair costs ≈ 50–100 ms on one core,
ORB included.

May import: numpy, OpenCV (lazily), core, errors and sibling stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from xunjian.core.camera import clip_convex, footprint_enu, pixel_to_ground_enu, polygon_area
from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.records import CameraIntrinsics, CameraPose, Frame
from xunjian.inspect.georef import NEAR_NADIR_PITCH_DEG, frame_camera

F64 = np.ndarray[Any, np.dtype[np.float64]]
MAX_PAIR_POINTS = 300  # matched points kept per frame pair (evenly spread inliers)
Correction = tuple[str, str, str]


@dataclass
class PairMatch:
    """Matched ground-consistent pixels of two overlapping frames (full-resolution pixels)."""

    i: int
    j: int
    uv_i: F64
    uv_j: F64
    flips: tuple[bool, bool] = (False, False)
    outlier: bool = False


@dataclass
class RefinementReport:
    """Refined frames (same order), what was corrected and why, and how well frames agree."""

    frames: list[Frame]
    corrections: list[Correction] = field(default_factory=list)
    pairs_used: int = 0
    pairs_rejected: int = 0
    residuals: dict[str, float] = field(default_factory=dict)
    seconds_per_pair: float = 0.0


def _reduced_gray(image: np.ndarray, work_px: int) -> np.ndarray:
    import cv2

    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = min(1.0, work_px / max(gray.shape[:2]))
    if scale < 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.asarray(gray)


def match_pair(
    feat_a: tuple[Any, Any, float], feat_b: tuple[Any, Any, float], *, min_inliers: int = 30
) -> tuple[F64, F64] | None:
    """Inlier pixel pairs (full resolution) of two frames' ORB features, or None."""
    import cv2

    kp_a, des_a, s_a = feat_a
    kp_b, des_b, s_b = feat_b
    if des_a is None or des_b is None or len(kp_a) < min_inliers or len(kp_b) < min_inliers:
        return None
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(des_a, des_b, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < min_inliers:
        return None
    pa = kp_a[[m.queryIdx for m in good]]
    pb = kp_b[[m.trainIdx for m in good]]
    _, mask = cv2.findHomography(pa, pb, cv2.RANSAC, 3.0)
    if mask is None or int(mask.sum()) < min_inliers:
        return None
    keep = np.flatnonzero(mask.ravel())
    # every later use (disagreement medians, flip votes, the adjustment's rows) samples a
    # pair's points; keeping a bounded, evenly spread subset bounds a flight's memory
    keep = keep[:: max(1, len(keep) // MAX_PAIR_POINTS)][:MAX_PAIR_POINTS]
    return (pa[keep] + 0.5) / s_a, (pb[keep] + 0.5) / s_b


def features(
    image: np.ndarray, full_width: int, work_px: int = 1000, n: int = 2000
) -> tuple[Any, Any, float]:
    """ORB keypoint positions (N × 2) and descriptors of the image reduced to ≤ ``work_px``,
    and the scale from the frame's full-resolution pixels (``full_width`` wide) to the reduced
    ones. ``image`` may already be reduced (e.g. decoded at 1/4 scale)."""
    import cv2

    gray = _reduced_gray(image, work_px)
    orb = cv2.ORB.create(nfeatures=n)
    kp, des = orb.detectAndCompute(gray, None)
    # Only the points are kept, as one array: a flight holds every frame's features until its
    # pairs are matched, and a list of cv2.KeyPoint objects costs several times more memory.
    points = np.array([k.pt for k in kp], dtype=np.float64).reshape(-1, 2)
    return points, des, gray.shape[1] / full_width


class _Flight:
    """The frames' poses in one local East-North frame, for casting pixels onto the ground."""

    def __init__(self, frames: Sequence[Frame], idx: Sequence[int]) -> None:
        self.frames = frames
        self.idx = list(idx)
        cams = [frame_camera(frames[i]) for i in self.idx]
        self.poses: dict[int, CameraPose] = {i: c[0] for i, c in zip(self.idx, cams, strict=True)}
        self.ks: dict[int, CameraIntrinsics] = {
            i: c[1] for i, c in zip(self.idx, cams, strict=True)
        }
        first = self.poses[self.idx[0]]
        self.lat0, self.lon0 = first.lat, first.lon
        self.centre: dict[int, F64] = {}
        for i, p in self.poses.items():
            e, n = latlon_to_en(p.lat, p.lon, self.lat0, self.lon0)
            self.centre[i] = np.array([float(e), float(n)])

    def cast(self, i: int, uv: F64, flip: bool = False) -> F64:
        """Ground offsets (from camera i's ground point) of pixels, yaw turned 180° if flip."""
        pose = self.poses[i]
        if flip:
            pose = replace(pose, yaw_deg=pose.yaw_deg + 180.0)
        en, _ = pixel_to_ground_enu(pose, self.ks[i], uv)
        return en

    def footprint(self, i: int) -> F64:
        return footprint_enu(self.poses[i], self.ks[i]) + self.centre[i]


def _pairs(flight: _Flight, min_overlap: float) -> list[tuple[int, int]]:
    prints = {i: p for i in flight.idx if len(p := flight.footprint(i)) >= 3}
    lo = {i: p.min(axis=0) for i, p in prints.items()}
    hi = {i: p.max(axis=0) for i, p in prints.items()}
    keys = sorted(prints)
    out = []
    for a, i in enumerate(keys):
        for j in keys[a + 1 :]:
            if (lo[i] > hi[j]).any() or (lo[j] > hi[i]).any():
                continue  # bounding boxes apart: no need to clip
            inter = polygon_area(clip_convex(prints[i], prints[j]))
            small = min(polygon_area(prints[i]), polygon_area(prints[j]))
            if small > 0 and inter / small >= min_overlap:
                out.append((i, j))
    return out


def _disagreement(flight: _Flight, m: PairMatch, fi: bool, fj: bool) -> float:
    gi = flight.cast(m.i, m.uv_i, fi) + flight.centre[m.i]
    gj = flight.cast(m.j, m.uv_j, fj) + flight.centre[m.j]
    d = np.hypot(*(gi - gj).T)
    return float(np.nanmedian(d)) if np.isfinite(d).any() else math.inf


def _vote_flips(
    flight: _Flight, matches: list[PairMatch]
) -> dict[int, tuple[int, int, float, float]]:
    """Per frame: (pairs preferring it flipped, all its pairs, median disagreement as is / best)."""
    votes: dict[int, list[tuple[bool, float, float]]] = {i: [] for i in flight.idx}
    # Only near-nadir frames can carry the reverse-leg flip unseen: an oblique frame with its
    # yaw off by 180° would look the other way and overlap nothing it is paired with.
    options = {
        i: (False, True) if p.pitch_deg < NEAR_NADIR_PITCH_DEG else (False,)
        for i, p in flight.poses.items()
    }
    for m in matches:
        hyp = {(a, b): _disagreement(flight, m, a, b) for a in options[m.i] for b in options[m.j]}
        best = min(hyp, key=lambda h: hyp[h])
        m.flips = best
        limit = 3.0 * math.hypot(flight.poses[m.i].sigma_xy_m, flight.poses[m.j].sigma_xy_m)
        if hyp[best] > max(limit, 1.0):
            m.outlier = True  # no pose hypothesis makes this pair agree: wrong matches
            continue
        votes[m.i].append((best[0], hyp[(False, False)], hyp[best]))
        votes[m.j].append((best[1], hyp[(False, False)], hyp[best]))
    out = {}
    for i, v in votes.items():
        if v:
            before = float(np.median([x[1] for x in v]))
            after = float(np.median([x[2] for x in v]))
            out[i] = (sum(x[0] for x in v), len(v), before, after)
    return out


def _adjust(
    flight: _Flight, matches: list[PairMatch], per_pair: int = 40, pair_weight: float = 6.0
) -> dict[int, F64]:
    """Least squares for (dE, dN, dyaw rad) per frame; priors from the metadata σ.

    Heights stay as the metadata says: images alone cannot tell a flight's scale (shrinking
    all heights and baselines together shrinks every disagreement), so a free height would
    trade the altimeter for smaller residuals. A pair's matches share its poses' errors, so
    together they weigh as ``pair_weight`` independent observations, not as hundreds.
    """
    col = {i: 3 * n for n, i in enumerate(flight.idx)}
    size = 3 * len(flight.idx)
    # Normal equations, summed row by row: every row touches at most six unknowns, so the
    # design matrix itself (pairs × 80 rows × 3N columns) is never built — dense, it needs
    # gigabytes for a 1000-frame batch; AᵀA is 3N × 3N.
    ata = np.zeros((size, size))
    atb = np.zeros(size)

    def add(index: list[int], values: list[float], rhs: float) -> None:
        at, v = np.array(index), np.array(values)
        ata[np.ix_(at, at)] += np.outer(v, v)
        atb[at] += v * rhs

    for i in flight.idx:
        p = flight.poses[i]
        for c, s in enumerate((p.sigma_xy_m, p.sigma_xy_m, math.radians(p.sigma_yaw_deg))):
            add([col[i] + c], [1.0 / max(s, 1e-4)], 0.0)
    for m in matches:
        oi, oj = flight.cast(m.i, m.uv_i), flight.cast(m.j, m.uv_j)
        ok = np.isfinite(oi).all(axis=1) & np.isfinite(oj).all(axis=1)
        sel = np.flatnonzero(ok)[:: max(1, int(ok.sum()) // per_pair)][:per_pair]
        if len(sel) == 0:
            continue
        gsd = flight.poses[m.i].height_m / flight.ks[m.i].fx
        # σ of one match: pitch / roll noise and the feature's own error, ≈ a few GSD.
        w = math.sqrt(pair_weight / len(sel)) / (0.05 + 3.0 * gsd)
        for k in sel:
            r0 = (oi[k] + flight.centre[m.i]) - (oj[k] + flight.centre[m.j])
            for axis in (0, 1):
                index: list[int] = []
                values: list[float] = []
                for frame, off, sign in ((m.i, oi[k], 1.0), (m.j, oj[k], -1.0)):
                    # A yaw turn dψ (clockwise) moves an offset (e, n) by dψ·(n, −e).
                    index += [col[frame] + axis, col[frame] + 2]
                    values += [sign * w, sign * w * float(off[1] if axis == 0 else -off[0])]
                add(index, values, -w * float(r0[axis]))
    # The priors make AᵀA positive definite: a direct solve, no SVD (which needs several
    # 3N × 3N work arrays — hundreds of MB at 1000 frames).
    try:
        x = np.asarray(np.linalg.solve(ata, atb), dtype=np.float64)
    except np.linalg.LinAlgError:
        x = np.asarray(np.linalg.lstsq(ata, atb, rcond=None)[0], dtype=np.float64)
    return {i: x[col[i] : col[i] + 3] for i in flight.idx}


def _apply(pose: CameraPose, lat0: float, lon0: float, centre: F64, dx: F64) -> CameraPose:
    lat, lon = en_to_latlon(centre[0] + dx[0], centre[1] + dx[1], lat0, lon0)
    yaw = (pose.yaw_deg + math.degrees(dx[2]) + 180.0) % 360.0 - 180.0
    return replace(pose, lat=float(lat), lon=float(lon), yaw_deg=yaw)


def refine_flight(
    frames: Sequence[Frame],
    images: Callable[[Frame], np.ndarray],
    *,
    work_px: int = 1000,
    min_overlap: float = 0.2,
    adjust: bool = True,
) -> RefinementReport:
    """Refines the poses of one flight's frames from their overlap (see the module docstring).

    ``images(frame)`` returns the decoded image (BGR or grey, full resolution). Frames that
    cannot be georeferenced pass through unchanged. Deterministic for the same inputs.
    """
    import time

    idx = [n for n, f in enumerate(frames) if f.georeferenceable]
    report = RefinementReport(frames=list(frames))
    if len(idx) < 2:
        return report
    flight = _Flight(frames, idx)
    pairs = _pairs(flight, min_overlap)
    feats: dict[int, tuple[Any, Any, float]] = {}
    last_pair = {n: k for k, pair in enumerate(pairs) for n in pair}
    start = time.perf_counter()
    matches: list[PairMatch] = []
    for k, (i, j) in enumerate(pairs):
        for n in (i, j):
            if n not in feats:
                feats[n] = features(images(frames[n]), frames[n].width, work_px)
        found = match_pair(feats[i], feats[j])
        if found is not None:
            matches.append(PairMatch(i, j, *found))
        for n in (i, j):  # a frame's features are dropped after its last pair: a survey holds
            if last_pair[n] == k:  # about two legs of them at a time, not the whole flight
                del feats[n]
    report.seconds_per_pair = (time.perf_counter() - start) / max(len(pairs), 1)
    report.pairs_used = len(matches)
    matched = {n for m in matches for n in (m.i, m.j)}
    for n in idx:
        if n not in matched:
            why = "no overlapping frame matched it: its pose could not be checked"
            report.corrections.append((frames[n].key, "unchecked", why))
    if not matches:
        return report
    report.residuals["before_m"] = _median_disagreement(flight, matches)
    votes = _vote_flips(flight, matches)
    for i, (flipped, total, before, after) in votes.items():
        if 2 * flipped > total and after < 0.5 * before:
            yaw = (flight.poses[i].yaw_deg + 360.0) % 360.0 - 180.0  # turned by 180°
            flight.poses[i] = replace(flight.poses[i], yaw_deg=yaw)
            report.corrections.append(
                (
                    frames[i].key,
                    "yaw +180°",
                    f"{flipped} of {total} overlapping frames agree with its image only with the"
                    f" yaw turned by 180° (median ground disagreement {before:.1f} m →"
                    f" {after:.1f} m): the gimbal yaw contradicts the image motion",
                )
            )
    flight = _Flight(_with_poses(frames, flight.poses), idx)
    report.residuals["after_flips_m"] = _median_disagreement(flight, matches)
    if adjust:
        dx = _robust_adjust(flight, matches, frames)
        report.pairs_rejected = sum(m.outlier for m in matches)
        for i in idx:
            new = _apply(flight.poses[i], flight.lat0, flight.lon0, flight.centre[i], dx[i])
            shift, turn = float(np.hypot(dx[i][0], dx[i][1])), math.degrees(dx[i][2])
            if shift > 3 * new.sigma_xy_m or abs(turn) > max(5.0, 3 * new.sigma_yaw_deg):
                why = f"adjusted by {shift:.1f} m and {turn:+.1f}°, beyond 3σ of its metadata"
                report.corrections.append((frames[i].key, "inconsistent", why))
            flight.poses[i] = new
        flight = _Flight(_with_poses(frames, flight.poses), idx)
    report.residuals["after_m"] = _median_disagreement(flight, matches)
    report.frames = _with_poses(frames, flight.poses)
    return report


def _robust_adjust(
    flight: _Flight, matches: list[PairMatch], frames: Sequence[Frame]
) -> dict[int, F64]:
    """:func:`_adjust`, dropping pairs the solution cannot reconcile (wrong matches, roofs)."""
    dx = {i: np.zeros(3) for i in flight.idx}
    for _ in range(3):
        kept = [m for m in matches if not m.outlier]
        if not kept:
            break
        dx = _adjust(flight, kept)
        moved = {
            i: _apply(p, flight.lat0, flight.lon0, flight.centre[i], dx[i])
            for i, p in flight.poses.items()
        }
        trial = _Flight(_with_poses(frames, moved), flight.idx)
        res = np.array([_disagreement(trial, m, False, False) for m in kept])
        bad = res > max(0.5, 5.0 * float(np.median(res)))
        if not bad.any():
            break
        for m, b in zip(kept, bad, strict=True):
            m.outlier = m.outlier or bool(b)
    return dx


def _with_poses(frames: Sequence[Frame], poses: dict[int, CameraPose]) -> list[Frame]:
    return [replace(f, pose=poses[n]) if n in poses else f for n, f in enumerate(frames)]


def _median_disagreement(flight: _Flight, matches: list[PairMatch]) -> float:
    """Median over pairs of the median ground distance between matched points' casts (m)."""
    return float(np.median([_disagreement(flight, m, False, False) for m in matches]))
