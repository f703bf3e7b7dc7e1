"""Plane geometry in local metres for the test range: polylines, headings, hulls.

Coordinates are (E, N) metres around the world's anchor. A heading is degrees clockwise from
north, like a camera yaw; an object's local frame has ``a`` along its heading and ``b`` to its
right.

May import: numpy, OpenCV and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]
Point = tuple[float, float]


def as_points(pts: ArrayLike) -> F64:
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def heading_vectors(heading_deg: float) -> tuple[F64, F64]:
    """Unit vectors (forward, right) in (E, N) for a heading clockwise from north."""
    h = math.radians(heading_deg)
    return np.array([math.sin(h), math.cos(h)]), np.array([math.cos(h), -math.sin(h)])


def heading_of(vec: ArrayLike) -> float:
    """The heading (degrees clockwise from north, in [0, 360)) of an (E, N) vector."""
    v = np.asarray(vec, dtype=np.float64)
    return math.degrees(math.atan2(float(v[0]), float(v[1]))) % 360.0


def local_to_world(local: ArrayLike, center: ArrayLike, heading_deg: float) -> F64:
    """Points given as (a along the heading, b to the right) → (E, N) around ``center``."""
    fwd, right = heading_vectors(heading_deg)
    p = as_points(local)
    out: F64 = np.asarray(center, dtype=np.float64) + p[:, :1] * fwd + p[:, 1:2] * right
    return out


def world_to_local(world: ArrayLike, center: ArrayLike, heading_deg: float) -> F64:
    """Inverse of :func:`local_to_world`."""
    fwd, right = heading_vectors(heading_deg)
    rel = as_points(world) - np.asarray(center, dtype=np.float64)
    return np.column_stack([rel @ fwd, rel @ right])


def cumulative_length(poly: F64) -> F64:
    seg = np.hypot(*np.diff(poly, axis=0).T)
    return np.concatenate([[0.0], np.cumsum(seg)])


def point_at(poly: ArrayLike, s: float) -> tuple[F64, float]:
    """The point ``s`` metres along a polyline (clamped to its ends) and the heading there."""
    p = as_points(poly)
    cum = cumulative_length(p)
    s = min(max(s, 0.0), float(cum[-1]))
    i = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(p) - 2))
    seg = p[i + 1] - p[i]
    length = float(cum[i + 1] - cum[i])
    frac = (s - float(cum[i])) / length if length > 0 else 0.0
    return p[i] + frac * seg, heading_of(seg)


def offset_polyline(poly: ArrayLike, right_m: float) -> F64:
    """The polyline shifted ``right_m`` metres to its right (negative: to its left)."""
    p = as_points(poly)
    tang = np.gradient(p, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    right = np.column_stack([tang[:, 1], -tang[:, 0]])
    out: F64 = p + right * right_m
    return out


def distance_to_polyline(points: ArrayLike, poly: ArrayLike) -> F64:
    """Distance (m) from each point (N, 2) to the nearest point of a polyline."""
    pts = as_points(points)
    p = as_points(poly)
    a, b = p[:-1], p[1:]
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
    rel = pts[:, None, :] - a[None, :, :]
    t = np.clip(np.sum(rel * ab[None], axis=2) / denom[None], 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    out: F64 = np.min(np.hypot(*(pts[:, None, :] - closest).transpose(2, 0, 1)), axis=1)
    return out


def convex_hull(points: ArrayLike) -> F64:
    """Counter-clockwise (in E, N) convex hull of points (N, 2)."""
    pts = as_points(points)
    if len(pts) < 3:
        return pts
    hull = cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    x, y = hull[:, 0], hull[:, 1]
    if np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) < 0:
        hull = hull[::-1]
    return hull


def rect(length: float, width: float) -> F64:
    """A rectangle centred on the origin in local (a, b) coordinates, counter-clockwise in E, N."""
    a, b = length / 2.0, width / 2.0
    return np.array([[-a, -b], [-a, b], [a, b], [a, -b]])


def point_in_polygon(points: ArrayLike, poly: ArrayLike) -> NDArray[np.bool_]:
    """Even-odd rule test for points (N, 2) against a simple polygon (M, 2)."""
    pts = as_points(points)
    p = as_points(poly)
    x, y = pts[:, 0:1], pts[:, 1:2]
    x1, y1 = p[:, 0][None], p[:, 1][None]
    x2, y2 = np.roll(p[:, 0], -1)[None], np.roll(p[:, 1], -1)[None]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    inside: NDArray[np.bool_] = np.sum(crosses & (x < xi), axis=1) % 2 == 1
    return inside


def to_tuple(points: ArrayLike, decimals: int = 3) -> tuple[Point, ...]:
    """Rounded plain tuples, for frozen dataclasses and stable JSON."""
    return tuple(
        (round(float(e), decimals), round(float(n), decimals)) for e, n in as_points(points)
    )


def bbox(points: Sequence[Point] | F64) -> tuple[float, float, float, float]:
    p = as_points(points)
    return float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())
