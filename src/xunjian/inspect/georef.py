"""The georef stage: detections in a frame's pixels → places on the ground with a σ in metres.

``georeference(frame, detections)`` returns one :class:`Observation` per detection it could
place and, for every other one, the detection with the reason (ray above the horizon, beyond
the usable range, σ too large) — nothing is dropped silently. A frame without pose or
intrinsics raises :class:`GeoreferenceError` naming the frame and what is missing.

Which point of a box stands for the object (specs/georef.md): its centre in near-nadir views
(pitch < −60°); in oblique and vehicle views the bottom-centre, where the object meets the
ground. The bottom-centre is the object's *near edge*, though, up to half its depth short of
its centre, so by class (:func:`box_kind`):

- ``standing`` (trucks): the bottom-centre, as the spec says;
- ``flat`` (cracks, potholes: in the road surface): the ground midpoint of the bottom-centre
  and top-centre rays — the middle of the object's ground extent along the view;
- ``heap`` (anything else, e.g. garbage piles, rubble): its top edge may be the heap's top,
  not ground, so the bottom-centre pushed away from the camera by half the box's ground width
  (a heap is about as deep as it is wide).

σ comes from :mod:`xunjian.core.uncertainty` with the frame's GPS / RTK σ, yaw and height σ,
a pitch σ by platform (gimbal 0.2°, vehicle mount 0.3°: the car pitches on its springs) and the
box's ground extent. May import: core, errors, settings and sibling stages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xunjian.core.camera import footprint_latlon, pixel_to_ground_enu
from xunjian.core.geo import en_to_latlon
from xunjian.core.records import (
    CameraIntrinsics,
    CameraPose,
    Detection,
    Frame,
    Observation,
    Platform,
)
from xunjian.core.uncertainty import sigma_terms
from xunjian.errors import GeoreferenceError
from xunjian.inspect.footprints import max_range_m as usable_range_m

__all__ = [
    "DEFAULT_MAX_SIGMA_M",
    "NEAR_NADIR_PITCH_DEG",
    "GroundPoint",
    "anchor_pixels",
    "box_kind",
    "frame_camera",
    "frame_footprint",
    "georeference",
    "ground_point",
    "pixel_points",
    "usable_range_m",
]

NEAR_NADIR_PITCH_DEG = -60.0
DEFAULT_MAX_SIGMA_M = 10.0
STANDING_CLASSES = frozenset({"spoil_truck", "spoil_truck_uncovered"})
FLAT_CLASSES = frozenset({"longitudinal_crack", "transverse_crack", "alligator_crack", "pothole"})
PITCH_SIGMA_DEG = {Platform.DRONE: 0.2, Platform.VEHICLE: 0.3}


@dataclass(frozen=True, slots=True)
class GroundPoint:
    """A pixel (or box) placed on the ground: where, how far, how big a pixel is there, σ."""

    lat: float
    lon: float
    range_m: float
    gsd_m: float
    sigma_m: float
    dominant: str


def frame_camera(frame: Frame) -> tuple[CameraPose, CameraIntrinsics]:
    """The frame's pose and intrinsics (scaled to the frame's pixels), or GeoreferenceError."""
    missing = [name for name in ("pose", "intrinsics") if getattr(frame, name) is None]
    if missing:
        why = "; ".join(frame.problems) or "no reason recorded"
        raise GeoreferenceError(
            f"{frame.key}: cannot georeference, no {' and no '.join(missing)} ({why})"
        )
    pose, k = frame.pose, frame.intrinsics
    assert pose is not None and k is not None
    if not math.isfinite(pose.height_m) or pose.height_m <= 0.0:
        raise GeoreferenceError(
            f"{frame.key}: cannot georeference, camera height must be > 0 m above the ground,"
            f" got {pose.height_m!r}"
        )
    if (k.width, k.height) != (frame.width, frame.height):
        k = k.scaled_to(frame.width, frame.height)
    return pose, k


def box_kind(pose: CameraPose, class_name: str) -> str:
    """How a box of ``class_name`` is placed: ``centre``, ``flat``, ``heap`` or ``standing``."""
    if pose.pitch_deg < NEAR_NADIR_PITCH_DEG:
        return "centre"
    if class_name in STANDING_CLASSES:
        return "standing"
    return "flat" if class_name in FLAT_CLASSES else "heap"


def anchor_pixels(
    pose: CameraPose, box: tuple[float, float, float, float], class_name: str = ""
) -> list[tuple[float, float]]:
    """The pixel(s) whose ground point(s), averaged, stand for the object in ``box``."""
    x0, y0, x1, y1 = box
    u = (x0 + x1) / 2.0
    kind = box_kind(pose, class_name)
    if kind == "centre":
        return [(u, (y0 + y1) / 2.0)]
    if kind == "flat":
        return [(u, y1), (u, y0)]
    return [(u, y1)]


def _en(pose: CameraPose, k: CameraIntrinsics, uv: Sequence[tuple[float, float]]) -> np.ndarray:
    en, _ = pixel_to_ground_enu(pose, k, np.asarray(uv, dtype=np.float64))
    return en


def ground_point(
    frame: Frame,
    pixels: Sequence[tuple[float, float]],
    *,
    box_px: tuple[float, float] = (1.0, 1.0),
    kind: str = "centre",
    max_range_m: float | None = None,
    max_sigma_m: float = math.inf,
    sigma_pitch_deg: float | None = None,
) -> GroundPoint | str:
    """The ground midpoint of ``pixels`` (one or two) with its σ — or why there is none.

    ``box_px`` (width, height) is the box whose ground extent adds the box term of σ; ``kind``
    (:func:`box_kind`) says how: for ``standing`` and ``heap`` objects only the width is taken
    as ground extent (their image height is not on the ground), and a ``heap`` is pushed away
    from the camera by half its ground width.
    """
    pose, k = frame_camera(frame)
    rng_cap = usable_range_m(frame) if max_range_m is None else max_range_m
    en = _en(pose, k, pixels)
    if not np.isfinite(en[0]).all():
        return "above the horizon: its ray never meets the ground"
    # A far edge above the horizon (a long object to the skyline): use the near edge alone.
    point = en[np.isfinite(en).all(axis=1)].mean(axis=0)
    u, v = pixels[0]
    near = _en(pose, k, [(u, v), (u + 1.0, v), (u, v - 1.0)])
    gsd_u = float(np.hypot(*(near[1] - near[0])))
    gsd_v = float(np.hypot(*(near[2] - near[0]))) if np.isfinite(near[2]).all() else gsd_u
    ext_u = gsd_u * box_px[0]
    ext_v = ext_u if kind in ("standing", "heap") else gsd_v * box_px[1]
    if kind == "heap" and np.hypot(*point) > 0.0:
        point = point + point / np.hypot(*point) * ext_u / 2.0
    rng = float(np.hypot(*point))
    if rng > rng_cap:
        return f"beyond the usable range: {rng:.1f} m > {rng_cap:.1f} m"
    pitch_sigma = PITCH_SIGMA_DEG[frame.platform] if sigma_pitch_deg is None else sigma_pitch_deg
    terms = sigma_terms(
        sigma_xy_m=pose.sigma_xy_m,
        range_m=rng,
        height_m=pose.height_m,
        sigma_yaw_deg=pose.sigma_yaw_deg,
        sigma_h_m=pose.sigma_h_m,
        gsd_m=1.0,
        box_px=math.sqrt((ext_u**2 + ext_v**2) / 2.0),
        sigma_pitch_deg=pitch_sigma,
    )
    sigma = terms.total
    if sigma > max_sigma_m:
        return f"σ too large: {sigma:.1f} m > {max_sigma_m:.1f} m (mostly {terms.dominant} error)"
    lat, lon = en_to_latlon(point[0], point[1], pose.lat, pose.lon)
    return GroundPoint(float(lat), float(lon), rng, math.sqrt(gsd_u * gsd_v), sigma, terms.dominant)


def georeference(
    frame: Frame,
    detections: Sequence[Detection],
    *,
    max_range_m: float | None = None,
    max_sigma_m: float = DEFAULT_MAX_SIGMA_M,
    sigma_pitch_deg: float | None = None,
) -> tuple[list[Observation], list[tuple[Detection, str]]]:
    """Places each detection of ``frame`` on the ground.

    Returns ``(observations, rejected)``: ``rejected`` pairs each detection that could not be
    placed with the reason. ``max_range_m`` defaults to the platform's usable range (60 m for
    vehicles, 4 × height for drones). Raises GeoreferenceError when the frame has no pose or
    no intrinsics.
    """
    pose, _ = frame_camera(frame)
    observations: list[Observation] = []
    rejected: list[tuple[Detection, str]] = []
    for det in detections:
        result = ground_point(
            frame,
            anchor_pixels(pose, det.bbox_xyxy, det.class_name),
            box_px=(det.width, det.height),
            kind=box_kind(pose, det.class_name),
            max_range_m=max_range_m,
            max_sigma_m=max_sigma_m,
            sigma_pitch_deg=sigma_pitch_deg,
        )
        if isinstance(result, str):
            rejected.append((det, result))
            continue
        observations.append(
            Observation(
                detection=det,
                batch_id=frame.batch_id,
                frame_key=frame.key,
                lat=result.lat,
                lon=result.lon,
                sigma_m=result.sigma_m,
                range_m=result.range_m,
                gsd_m=result.gsd_m,
                captured_at=frame.captured_at,
            )
        )
    return observations, rejected


def frame_footprint(frame: Frame, max_range_m: float | None = None) -> list[tuple[float, float]]:
    """The frame's ground polygon as (lat, lon) vertices, counter-clockwise, cut at the horizon
    and at the usable range (default :func:`usable_range_m`); empty when it sees no ground."""
    pose, k = frame_camera(frame)
    ring = footprint_latlon(pose, k, usable_range_m(frame) if max_range_m is None else max_range_m)
    return [(float(lat), float(lon)) for lat, lon in ring]


def pixel_points(
    frame: Frame,
    uv: Sequence[tuple[float, float]],
    *,
    max_range_m: float | None = None,
    max_sigma_m: float = math.inf,
) -> list[tuple[float, float, float] | str]:
    """(lat, lon, σ metres) of single pixels — or the reason one cannot be placed (for the CLI).

    Raises GeoreferenceError when the frame has no pose or no intrinsics.
    """
    frame_camera(frame)
    out: list[tuple[float, float, float] | str] = []
    for u, v in uv:
        if not (0.0 <= u <= frame.width and 0.0 <= v <= frame.height):
            out.append(
                f"outside the image: ({u}, {v}) not in [0, {frame.width}] × [0, {frame.height}]"
            )
            continue
        result = ground_point(frame, [(u, v)], max_range_m=max_range_m, max_sigma_m=max_sigma_m)
        out.append(result if isinstance(result, str) else (result.lat, result.lon, result.sigma_m))
    return out
