"""Paints one ground tile: surfaces, wear, markings, shadows, tree crowns, static targets.

See ``ground`` for the tile grid. Surfaces are filled into a label map and textured per
material; the rest is composited in float32 with OpenCV (fast on large arrays), each layer
only over the part of the tile it touches.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from xunjian.datasets.synth import geom, roads
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.textures import F32, MATERIAL_INDEX, U8

if TYPE_CHECKING:
    from xunjian.datasets.synth.ground import GroundTexture

_SHIFT = 4
_TOP_AREAS = (MATERIAL_INDEX["patch"], MATERIAL_INDEX["swept"])
I32 = np.ndarray  # int32 fixed-point pixel coordinates


class _Tile:
    """Coordinates of one tile: world (E, N) ↔ fixed-point pixel coordinates for cv2."""

    def __init__(self, level: int, ix: int, iy: int) -> None:
        from xunjian.datasets.synth.ground import TILE_PX, texel_of

        self.n = TILE_PX
        self.t = texel_of(level)
        span = TILE_PX * self.t
        self.e0, self.n0 = ix * span, iy * span
        self.e1, self.n1 = self.e0 + span, self.n0 + span

    def pxs(self, p: roads.Polys, ids: list[int], offset: F64 | None = None) -> list[I32]:
        return p.pixels(ids, self.e0, self.n1, self.t, _SHIFT, offset)

    def ids(self, p: roads.Polys, reach: float = 0.0) -> list[int]:
        r = reach + 2 * self.t
        return p.within(self.e0 - r, self.n0 - r, self.e1 + r, self.n1 + r)

    def fill(self, img: np.ndarray, polys: list[I32], value: int, aa: bool = False) -> None:
        # One call per polygon: fillPoly XORs overlapping contours of a single call.
        for q in polys:
            cv2.fillPoly(img, [q], value, cv2.LINE_AA if aa else cv2.LINE_8, _SHIFT)


def _labels(g: GroundTexture, tl: _Tile) -> tuple[U8, set[int]]:
    label = np.full((tl.n, tl.n), MATERIAL_INDEX["background"], np.uint8)
    used = {MATERIAL_INDEX["background"]}

    def put(p: roads.Polys, ids: list[int], material: int | None = None) -> None:
        for i, q in zip(ids, tl.pxs(p, ids), strict=True):
            m = p.kinds[i] if material is None else material
            tl.fill(label, [q], m)
            used.add(m)

    area_ids = tl.ids(g.areas)
    put(g.areas, [i for i in area_ids if g.areas.kinds[i] not in _TOP_AREAS])
    put(g.walk, tl.ids(g.walk), MATERIAL_INDEX["sidewalk"])
    road_ids = tl.ids(g.carriage)
    put(g.carriage, [i for i in road_ids if g.carriage.kinds[i] == 0], MATERIAL_INDEX["asphalt"])
    put(
        g.carriage,
        [i for i in road_ids if g.carriage.kinds[i] == 1],
        MATERIAL_INDEX["asphalt_main"],
    )
    put(g.areas, [i for i in area_ids if g.areas.kinds[i] in _TOP_AREAS])
    put(g.roofs, tl.ids(g.roofs))
    return label, used


def _markings(g: GroundTexture, tl: _Tile, out: F32) -> None:
    ids = tl.ids(g.marks)
    for kind, colour in roads.PAINT.items():
        drawn = tl.pxs(g.marks, [i for i in ids if g.marks.kinds[i] == kind])
        if not drawn:
            continue
        cov = np.zeros((tl.n, tl.n), np.uint8)
        tl.fill(cov, drawn, 255, aa=True)
        sl = _nonzero(cov)
        if sl is None:
            continue
        rows, cols = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        e0, n1 = tl.e0 + sl[1].start * tl.t, tl.n1 - sl[0].start * tl.t
        spots = g.noise.sample(g.noise.SPOTS, e0, n1, tl.t, rows, cols)
        a = cov[sl].astype(np.float32) * (1.0 / 255.0)
        a *= np.clip(0.82 - 0.25 * spots, 0.3, 0.9)
        part = out[sl]
        part += (np.array(colour, np.float32) - part) * a[..., None]


def _nonzero(img: U8, pad: int = 0) -> tuple[slice, slice] | None:
    """The box around the non-zero pixels of ``img``, grown by ``pad``; None if all zero."""
    x, y, w, h = cv2.boundingRect(img)
    if w == 0 or h == 0:
        return None
    rows, cols = img.shape[:2]
    return (
        slice(max(0, y - pad), min(rows, y + h + pad)),
        slice(max(0, x - pad), min(cols, x + w + pad)),
    )


def _trees(g: GroundTexture, tl: _Tile, out: F32, shade: U8) -> None:
    from xunjian.datasets.synth.ground import TREE_HEIGHT_M, shadow_offset, sun_vector

    offset = shadow_offset(g.world, TREE_HEIGHT_M)
    crowns = g.canopies if tl.t < 0.15 else g.canopies_far
    ids = tl.ids(crowns, float(np.hypot(*offset)) + 5.0)
    if not ids:
        return
    mask = np.zeros((tl.n, tl.n), np.uint8)
    cast = np.zeros_like(mask)
    tl.fill(cast, tl.pxs(crowns, ids, offset), 200, aa=True)
    tl.fill(mask, tl.pxs(crowns, ids), 255, aa=True)
    np.maximum(shade, cast, out=shade)
    sl = _nonzero(mask, 3)
    if sl is None:
        return
    # Domed crowns: brighter towards the sun, from the distance to the crown's edge. Worked out
    # only around the crowns: the box keeps a margin of bare ground, so nothing changes.
    crop = mask[sl]
    dist = cv2.distanceTransform((crop > 127).astype(np.uint8), cv2.DIST_L2, 3)
    dome = np.minimum(dist * (tl.t / 1.2), 1.0)
    gy, gx = np.gradient(dome)
    sun = sun_vector(g.world)
    toward = (gx * sun[0] - gy * sun[1]) * (1.2 / tl.t)
    light = np.clip(1.0 - 0.45 * toward, 0.6, 1.4) * (0.85 + 0.15 * dome)
    level = round(math.log2(tl.t / 0.02))
    tex = g.texture(MATERIAL_INDEX["canopy"], level)[sl]
    col = tex.astype(np.float32) * light[..., None]
    cover = crop.astype(np.float32) * (1.0 / 255.0)
    part = out[sl]
    part += (col - part) * cover[..., None]
    shade[sl][crop > 0] = 0  # a crown is lit; its own shadow falls on the ground beyond it


def _targets(g: GroundTexture, tl: _Tile, out: F32, level: int) -> None:
    b = g.static_boxes
    hit = np.flatnonzero(
        (b[:, 2] >= tl.e0) & (b[:, 0] <= tl.e1) & (b[:, 3] >= tl.n0) & (b[:, 1] <= tl.n1)
    )
    m_tile = np.array(
        [[1 / tl.t, 0.0, -tl.e0 / tl.t - 0.5], [0.0, -1 / tl.t, tl.n1 / tl.t - 0.5], [0, 0, 1]]
    )
    for i in hit:
        target = g.static[int(i)]
        spr = g.sprite(target, level)
        fwd, right = geom.heading_vectors(target.heading_deg)
        c = target.center
        ts = spr.texel
        # sprite px → local (a, b) → world (E, N) → tile px
        m_local = np.array([[ts, 0.0, spr.a0 + 0.5 * ts], [0.0, ts, spr.b0 + 0.5 * ts], [0, 0, 1]])
        m_world = np.array([[fwd[0], right[0], c[0]], [fwd[1], right[1], c[1]], [0, 0, 1]])
        m = m_tile @ m_world @ m_local
        h, w = spr.rgba.shape[:2]
        corners = np.array(
            [[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]]
        )
        pc = (m @ corners.T).T
        x0 = max(0, math.floor(pc[:, 0].min()))
        y0 = max(0, math.floor(pc[:, 1].min()))
        x1 = min(tl.n, math.ceil(pc[:, 0].max()) + 1)
        y1 = min(tl.n, math.ceil(pc[:, 1].max()) + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]])
        patch = cv2.warpAffine(
            spr.rgba,
            (shift @ m)[:2],
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0, 0, 0, 0),
        )
        region = out[y0:y1, x0:x1]
        region *= 1.0 - patch[..., 3:]
        region += patch[..., :3]


def tile(g: GroundTexture, level: int, ix: int, iy: int) -> U8:
    """The tile (ix, iy) of ``level``: TILE_PX² RGB, row 0 at the north edge."""
    tl = _Tile(level, ix, iy)
    label, used = _labels(g, tl)
    img = np.empty((tl.n, tl.n, 3), np.uint8)
    for mat in sorted(used):
        cv2.copyTo(g.texture(mat, level), (label == mat).view(np.uint8), img)
    gain = g.noise.gain(tl.e0, tl.n1, tl.t, tl.n)
    out = np.asarray(cv2.multiply(img, gain, dtype=cv2.CV_32F), np.float32)
    _markings(g, tl, out)
    shade = np.zeros((tl.n, tl.n), np.uint8)
    tl.fill(
        shade,
        tl.pxs(g.building_shadows, tl.ids(g.building_shadows)),
        255,
        aa=True,
    )
    _trees(g, tl, out, shade)
    sl = _nonzero(shade)
    if sl is not None:
        shade_sl = shade[sl]
        shade_sl[label[sl] >= MATERIAL_INDEX["roof_concrete"]] = 0  # roofs stand above them
        out[sl] *= (1.0 - shade_sl.astype(np.float32) * (0.5 / 255.0))[..., None]
    _targets(g, tl, out, level)
    np.clip(out, 0, 255, out=out)
    result: U8 = out.astype(np.uint8)
    return result
