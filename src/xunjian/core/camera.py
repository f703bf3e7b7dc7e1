"""The pinhole camera over flat ground: pixel ↔ ground, exactly as specs/georef.md defines it.

One model serves both directions: the georeferencing stage inverts it (pixel → ground) and the
synthetic test range renders through it (ground → pixel), so a frame drawn from a pose projects
back onto the ground points it was drawn from.

Frame: local East-North-Up (ENU) metres with the origin on the ground straight below the
camera; the camera sits at (0, 0, h). Orientation from the gimbal yaw ψ (clockwise from
north), pitch θ (−90 straight down, 0 at the horizon) and roll φ::

    forward f = (sinψ·cosθ, cosψ·cosθ, sinθ)
    right   r = (cosψ, −sinψ, 0)
    down    d = f × r                  (image-down)
    roll φ rotates r and d about f:    r' = r·cosφ + d·sinφ,  d' = d·cosφ − r·sinφ
    pixel (u, v): x = (u − cx)/fx, y = (v − cy)/fy,  ray = f + x·r' + y·d'

Check: ψ = 0, θ = −90 gives image-top = north and image-right = east.

Everything is vectorised: pixel and ground arrays have shape (..., 2) and results keep the
leading shape. Invalid results (a ray at or above the horizon, a point behind the camera) are
NaN and flagged False in the accompanying mask — never silently wrong numbers.

May import: numpy, the standard library, ``xunjian.errors`` and other ``xunjian.core`` modules.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.errors import GeoreferenceError

F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

_FOOTPRINT_CIRCLE_SIDES = 72


def camera_axes(pose: CameraPose) -> tuple[F64, F64, F64]:
    """The camera's forward, right and down unit vectors (f, r, d) in local ENU, roll applied."""
    psi, theta, phi = (math.radians(a) for a in (pose.yaw_deg, pose.pitch_deg, pose.roll_deg))
    f = np.array(
        [math.sin(psi) * math.cos(theta), math.cos(psi) * math.cos(theta), math.sin(theta)]
    )
    r = np.array([math.cos(psi), -math.sin(psi), 0.0])
    d = np.cross(f, r)
    if phi != 0.0:
        c, s = math.cos(phi), math.sin(phi)
        r, d = r * c + d * s, d * c - r * s
    return f, r, d


def camera_rotation(pose: CameraPose) -> F64:
    """3×3 matrix taking ENU vectors to camera coordinates (x right, y down, z forward)."""
    f, r, d = camera_axes(pose)
    return np.stack([r, d, f])


def intrinsic_matrix(k: CameraIntrinsics) -> F64:
    """The 3×3 pinhole matrix K."""
    return np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])


def _check_pose(pose: CameraPose) -> None:
    if not math.isfinite(pose.height_m) or pose.height_m <= 0.0:
        raise GeoreferenceError(
            f"camera height must be a positive number of metres above the ground, "
            f"got {pose.height_m!r}"
        )


def _as_points(a: ArrayLike, name: str) -> F64:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise ValueError(f"{name}: expected an array of shape (..., 2), got shape {arr.shape}")
    return arr


def pixel_rays(pose: CameraPose, k: CameraIntrinsics, uv: ArrayLike) -> F64:
    """The ENU direction (not normalised: f + x·r + y·d) through each pixel, shape (..., 3)."""
    p = _as_points(uv, "uv")
    f, r, d = camera_axes(pose)
    x = (p[..., 0] - k.cx) / k.fx
    y = (p[..., 1] - k.cy) / k.fy
    return f + x[..., None] * r + y[..., None] * d


def pixel_to_ground_enu(
    pose: CameraPose,
    k: CameraIntrinsics,
    uv: ArrayLike,
    *,
    plane_height_m: float = 0.0,
    max_range_m: float | None = None,
) -> tuple[F64, Mask]:
    """Where each pixel's ray meets the ground: (E, N) metres around the camera's ground point.

    Returns ``(en, valid)``: ``en`` of shape (..., 2), NaN where ``valid`` is False — a ray at
    or above the horizon (it never meets the ground) or, when ``max_range_m`` is given, a
    ground point farther than that from the camera's ground point. ``plane_height_m`` intersects
    a horizontal plane that high above the ground instead (a truck's roof, a building's roof).
    """
    _check_pose(pose)
    rays = pixel_rays(pose, k, uv)
    drop = pose.height_m - plane_height_m
    rz = rays[..., 2]
    valid = rz < 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(valid, drop / -rz, np.nan)
    en = rays[..., :2] * t[..., None]
    if max_range_m is not None:
        valid &= np.hypot(en[..., 0], en[..., 1]) <= max_range_m
    en[~valid] = np.nan
    return en, valid


def project_enu(pose: CameraPose, k: CameraIntrinsics, enu: ArrayLike) -> tuple[F64, F64]:
    """Pixels of 3-D points (E, N, U) around the camera's ground point, shape (..., 3).

    Returns ``(uv, depth)``: depth is the distance along the optical axis (positive in front of
    the camera); ``uv`` is NaN where depth ≤ 0.
    """
    _check_pose(pose)
    pts = np.asarray(enu, dtype=np.float64)
    if pts.ndim == 0 or pts.shape[-1] != 3:
        raise ValueError(f"enu: expected an array of shape (..., 3), got shape {pts.shape}")
    rel = pts - np.array([0.0, 0.0, pose.height_m])
    cam = rel @ camera_rotation(pose).T
    depth = cam[..., 2]
    front = depth > 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(front, k.cx + k.fx * cam[..., 0] / depth, np.nan)
        v = np.where(front, k.cy + k.fy * cam[..., 1] / depth, np.nan)
    return np.stack([u, v], axis=-1), depth


def ground_enu_to_pixel(
    pose: CameraPose, k: CameraIntrinsics, en: ArrayLike, *, plane_height_m: float = 0.0
) -> tuple[F64, Mask]:
    """Pixels of ground points (E, N) around the camera's ground point.

    Returns ``(uv, in_front)``; ``uv`` is NaN for points behind the camera. Pixels outside the
    image are returned as they are — the caller decides what to do with them.
    """
    p = _as_points(en, "en")
    enu = np.concatenate([p, np.full((*p.shape[:-1], 1), plane_height_m)], axis=-1)
    uv, depth = project_enu(pose, k, enu)
    return uv, depth > 0.0


def ground_homography(pose: CameraPose, k: CameraIntrinsics, *, plane_height_m: float = 0.0) -> F64:
    """3×3 H with ``w·(u, v, 1) = H @ (E, N, 1)`` for points on the ground (or a plane above it).

    E, N are metres around the camera's ground point. ``w`` is the point's depth along the
    optical axis, positive in front of the camera — a renderer must mask what lies behind.
    """
    _check_pose(pose)
    f, r, d = camera_axes(pose)
    drop = pose.height_m - plane_height_m
    m = np.array(
        [
            [r[0], r[1], -drop * r[2]],
            [d[0], d[1], -drop * d[2]],
            [f[0], f[1], -drop * f[2]],
        ]
    )
    h: F64 = intrinsic_matrix(k) @ m
    return h


def pixel_to_latlon(
    pose: CameraPose,
    k: CameraIntrinsics,
    uv: ArrayLike,
    *,
    max_range_m: float | None = None,
) -> tuple[F64, Mask]:
    """Where each pixel's ray meets the ground, as (lat, lon) degrees, shape (..., 2)."""
    en, valid = pixel_to_ground_enu(pose, k, uv, max_range_m=max_range_m)
    lat, lon = en_to_latlon(en[..., 0], en[..., 1], pose.lat, pose.lon)
    return np.stack([lat, lon], axis=-1), valid


def latlon_to_pixel(pose: CameraPose, k: CameraIntrinsics, latlon: ArrayLike) -> tuple[F64, Mask]:
    """Pixels of ground points given as (lat, lon) degrees, shape (..., 2)."""
    p = _as_points(latlon, "latlon")
    e, n = latlon_to_en(p[..., 0], p[..., 1], pose.lat, pose.lon)
    return ground_enu_to_pixel(pose, k, np.stack([e, n], axis=-1))


def default_max_range_m(pose: CameraPose) -> float:
    """The usable range when none is configured: 4 × height for drones, at least 60 m."""
    return max(4.0 * pose.height_m, 60.0)


def clip_polygon_halfplane(poly: F64, a: float, b: float, c: float) -> F64:
    """Sutherland–Hodgman: the part of a polygon (M, 2) where a·x + b·y + c ≤ 0."""
    if len(poly) == 0:
        return poly
    s = poly @ np.array([a, b]) + c
    out: list[F64] = []
    n = len(poly)
    for i in range(n):
        j = (i + 1) % n
        p, q, sp, sq = poly[i], poly[j], s[i], s[j]
        if sp <= 0.0:
            out.append(p)
        if (sp <= 0.0) != (sq <= 0.0):
            out.append(p + (q - p) * (sp / (sp - sq)))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def footprint_enu(
    pose: CameraPose,
    k: CameraIntrinsics,
    max_range_m: float | None = None,
    *,
    region: ArrayLike | None = None,
) -> F64:
    """The ground polygon (M, 2) an image covers, (E, N) metres around the camera's ground point.

    The image rectangle is clipped where its rays leave the ground (the horizon) and the ground
    polygon is clipped to a circle of ``max_range_m`` (default :func:`default_max_range_m`) —
    an oblique or vehicle view sees to the horizon, but nothing far off is usable. Vertices run
    counter-clockwise; the result is empty (0, 2) when the image sees no ground at all.
    ``region`` replaces the image rectangle by another convex pixel polygon (M, 2).
    """
    _check_pose(pose)
    rng = default_max_range_m(pose) if max_range_m is None else max_range_m
    f, r, d = camera_axes(pose)
    w, h = float(k.width), float(k.height)
    rect = (
        np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
        if region is None
        else np.asarray(region, dtype=np.float64).reshape(-1, 2)
    )
    # ray_z = f_z + x·r_z + y·d_z must be ≤ −δ, with δ small enough that the cut lies far
    # beyond the range circle (t = h·|ray| / δ ≫ range).
    corners_ray = pixel_rays(pose, k, rect)
    max_norm = float(np.max(np.linalg.norm(corners_ray, axis=-1)))
    delta = pose.height_m * max_norm / (100.0 * rng)
    a = r[2] / k.fx
    b = d[2] / k.fy
    c = f[2] - a * k.cx - b * k.cy + delta
    img_poly = clip_polygon_halfplane(rect, a, b, c)
    if len(img_poly) < 3:
        return np.zeros((0, 2))
    ground, _ = pixel_to_ground_enu(pose, k, img_poly)
    if _signed_area(ground) < 0.0:
        ground = ground[::-1]
    angles = np.linspace(0.0, 2.0 * math.pi, _FOOTPRINT_CIRCLE_SIDES, endpoint=False)
    # Circumscribe the circle so the polygon never cuts inside the range.
    radius = rng / math.cos(math.pi / _FOOTPRINT_CIRCLE_SIDES)
    circle = np.column_stack([np.cos(angles), np.sin(angles)]) * radius
    return clip_convex(ground, circle)


def footprint_latlon(
    pose: CameraPose, k: CameraIntrinsics, max_range_m: float | None = None
) -> F64:
    """:func:`footprint_enu` as (lat, lon) degrees, shape (M, 2)."""
    en = footprint_enu(pose, k, max_range_m)
    lat, lon = en_to_latlon(en[:, 0], en[:, 1], pose.lat, pose.lon)
    return np.column_stack([lat, lon])


def clip_convex(subject: F64, clip: F64) -> F64:
    """The part of polygon ``subject`` inside the convex counter-clockwise polygon ``clip``."""
    out = subject
    n = len(clip)
    for i in range(n):
        p, q = clip[i], clip[(i + 1) % n]
        # Inside a CCW edge p→q is to its left: cross(q−p, x−p) ≥ 0  ⇔  a·x + b·y + c ≤ 0.
        a, b = q[1] - p[1], -(q[0] - p[0])
        c = -(a * p[0] + b * p[1])
        out = clip_polygon_halfplane(out, float(a), float(b), float(c))
        if len(out) == 0:
            break
    return out


def _signed_area(poly: F64) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def polygon_area(poly: ArrayLike) -> float:
    """Unsigned area of a simple polygon (M, 2)."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    return abs(_signed_area(p)) if len(p) >= 3 else 0.0
