"""Per-frame ground truth: which targets a frame shows, where (pixel boxes), and how hidden.

A target's box is the projection of its exact footprint polygon (ground targets) or its 3-D
box (trucks) through the frame's exact pose — the camera model the pipeline inverts — in
continuous pixel coordinates (the image spans [0, W] × [0, H]), clipped to the image.

Rules (docs/test-range.md):
- listed when at least ``MIN_IN_IMAGE`` of its projected area lies inside the image and its
  clipped box is at least ``MIN_BOX_PX`` pixels in both directions;
- ``visible_fraction`` is the share of its in-image area not hidden by a nearer standing
  object (building or truck), measured on a z-buffer at reduced resolution;
  ``occluded`` is ``visible_fraction < OCCLUDED_BELOW``. Occluded targets stay listed; the
  YOLO export leaves them out.

May import: numpy, OpenCV, the standard library, ``xunjian.core`` and sibling modules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from xunjian.core import camera
from xunjian.core.taxonomy import BY_NAME
from xunjian.datasets.synth import geom, solids
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.view import View, clip_near
from xunjian.datasets.synth.world import Target, World

MIN_IN_IMAGE = 0.25
MIN_BOX_PX = 2.0
OCCLUDED_BELOW = 0.5
ZBUF_WIDTH = 320


@dataclass(frozen=True)
class VisibleTarget:
    """One target in one frame. Boxes are (x0, y0, x1, y1) pixels."""

    id: str
    cls: str
    detector: str
    box: tuple[float, float, float, float]
    box_full: tuple[float, float, float, float]
    in_image_fraction: float
    visible_fraction: float
    occluded: bool
    distance_m: float
    center_px: tuple[float, float] | None
    lat: float
    lon: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class"] = d.pop("cls")
        return d


def _hull_px(view: View, target: Target, t_s: float) -> F64:
    """The target's silhouette in the image (convex, continuous pixels); may be empty."""
    outline = target.outline_at(t_s)
    if not target.is_truck:
        return view.project_polygon(np.column_stack([outline, np.zeros(len(outline))]))
    box = np.vstack(
        [np.column_stack([outline, np.full(len(outline), z)]) for z in (0.0, target.height_m)]
    )
    cam = view.to_camera(box)
    pts = []
    n = len(outline)
    faces = [[0, 1, 2, 3], [4, 5, 6, 7]] + [
        [i, (i + 1) % n, n + (i + 1) % n, n + i] for i in range(n)
    ]
    for f in faces:
        clipped = clip_near(cam[f])
        if len(clipped) >= 3:
            pts.append(view.project_camera(clipped))
    if not pts:
        return np.zeros((0, 2))
    return geom.convex_hull(np.concatenate(pts))


def frame_truth(
    world: World, view: View, t_s: float, *, max_range_m: float = 300.0
) -> list[VisibleTarget]:
    """The targets ``view`` shows at ``t_s`` seconds after the world's epoch."""
    k = view.k
    rect = np.array([[0.0, 0.0], [0.0, k.height], [k.width, k.height], [k.width, 0.0]])
    rect_ccw = rect[::-1]
    footprint = footprint_world(view, max_range_m)
    if len(footprint) == 0:
        return []
    e0, n0, e1, n1 = geom.bbox(footprint)
    candidates: list[tuple[Target, F64]] = []
    for t in world.targets:
        (ce, cn), _ = t.placement_at(t_s)
        reach = max(t.length_m, t.width_m) + t.height_m * 4
        if not (e0 - reach <= ce <= e1 + reach and n0 - reach <= cn <= n1 + reach):
            continue
        if view.ground_distance(np.array([[ce, cn]]))[0] > max_range_m:
            continue
        hull = _hull_px(view, t, t_s)
        if len(hull) < 3:
            continue
        candidates.append((t, hull))
    if not candidates:
        return []
    scale = min(1.0, ZBUF_WIDTH / k.width)
    low = view.scaled(scale)
    standing = solids.in_view(world, low, t_s, footprint, max_range_m, None)
    zbuf = np.full((low.k.height, low.k.width), np.inf, np.float32)
    ids = np.full((low.k.height, low.k.width), -1, np.int32)
    solids.draw(low, standing, zbuf, ids, None)
    owner = {s.owner: i for i, s in enumerate(standing)}
    out: list[VisibleTarget] = []
    for t, hull in candidates:
        if geom_area(hull) <= 0:
            continue
        inside = camera.clip_convex(_ccw(hull), rect_ccw)
        frac = geom_area(inside) / geom_area(hull) if len(inside) >= 3 else 0.0
        if frac < MIN_IN_IMAGE:
            continue
        x0, y0 = inside.min(axis=0)
        x1, y1 = inside.max(axis=0)
        if x1 - x0 < MIN_BOX_PX or y1 - y0 < MIN_BOX_PX:
            continue
        visible = _visible_fraction(inside * scale, ids, owner.get(t.id, -2), t.is_truck)
        (ce, cn), _ = t.placement_at(t_s)
        ll = world.to_latlon(np.array([[ce, cn]]))[0]
        uv, front = camera.latlon_to_pixel(view.pose, k, ll)
        fx0, fy0 = hull.min(axis=0)
        fx1, fy1 = hull.max(axis=0)
        out.append(
            VisibleTarget(
                id=t.id,
                cls=t.cls,
                detector=str(BY_NAME[t.cls].detector),
                box=_round4((x0, y0, x1, y1)),
                box_full=_round4((fx0, fy0, fx1, fy1)),
                in_image_fraction=round(float(frac), 4),
                visible_fraction=round(visible, 4),
                occluded=visible < OCCLUDED_BELOW,
                distance_m=round(float(view.ground_distance(np.array([[ce, cn]]))[0]), 3),
                center_px=(round(float(uv[0]), 3), round(float(uv[1]), 3)) if bool(front) else None,
                lat=round(float(ll[0]), 9),
                lon=round(float(ll[1]), 9),
            )
        )
    return out


def footprint_world(view: View, max_range_m: float) -> F64:
    """The frame's ground polygon in world (E, N), clipped to ``max_range_m``."""
    fp = camera.footprint_enu(view.pose, view.k, max_range_m)
    if len(fp) == 0:
        return fp
    out: F64 = (view.cam_to_world_en @ np.column_stack([fp, np.ones(len(fp))]).T).T[:, :2]
    return out


def _visible_fraction(poly: F64, ids: np.ndarray, own: int, standing: bool) -> float:
    """Share of the polygon's pixels not covered by another (nearer) standing object."""
    h, w = ids.shape
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((poly - 0.5) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    sel = ids[mask > 0]
    if sel.size == 0:  # smaller than a pixel of the z-buffer: test its centre
        c = np.clip(np.round(poly.mean(axis=0) - 0.5).astype(int), 0, [w - 1, h - 1])
        sel = ids[c[1] : c[1] + 1, c[0] : c[0] + 1].ravel()
    hidden = (sel >= 0) & (sel != own) if standing else sel >= 0
    return float(1.0 - hidden.mean())


def _ccw(poly: F64) -> F64:
    x, y = poly[:, 0], poly[:, 1]
    signed = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return poly if signed > 0 else poly[::-1]


def geom_area(poly: F64) -> float:
    return camera.polygon_area(poly)


def _round4(box: tuple[Any, Any, Any, Any]) -> tuple[float, float, float, float]:
    a, b, c, d = (round(float(v), 3) for v in box)
    return a, b, c, d


def targets_geojson(world: World, t_s: float = 0.0) -> dict[str, Any]:
    """Every target as a GeoJSON Feature (polygon in lon, lat; where it is at ``t_s``)."""
    features = []
    for t in world.targets:
        ring = world.to_latlon(t.outline_at(t_s))
        center, heading = t.placement_at(t_s)
        c = world.to_latlon(np.array([center]))[0]
        coords = [[round(float(lon), 8), round(float(lat), 8)] for lat, lon in ring]
        coords.append(coords[0])
        features.append(
            {
                "type": "Feature",
                "id": t.id,
                "geometry": {"type": "Polygon", "coordinates": [coords]},
                "properties": {
                    "id": t.id,
                    "class": t.cls,
                    "detector": str(BY_NAME[t.cls].detector),
                    "lat": round(float(c[0]), 9),
                    "lon": round(float(c[1]), 9),
                    "length_m": t.length_m,
                    "width_m": t.width_m,
                    "height_m": t.height_m,
                    "heading_deg": round(heading, 3),
                    "moving": t.route is not None,
                    "day": t.day,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
