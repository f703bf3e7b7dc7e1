"""How targets look from above: a target's shape rasterised into an RGBA sprite.

A sprite is premultiplied RGBA (float32) in the target's local frame — columns along ``a``
(its heading), rows along ``b`` (its right) — at the finest texel size, with shading and cast
shadows from the world's sun. Coarser levels are area-averaged, so thin cracks fade to the
right contrast instead of thickening. The ground renderer pastes sprites into its tiles; the
solid renderer uses the truck sprites for truck roofs.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from xunjian.datasets.synth import shapes
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.shapes import Blob, Shape
from xunjian.datasets.synth.textures import F32, periodic_noise

_SHIFT = 4
_ONE = 1 << _SHIFT


@dataclass
class Sprite:
    """Premultiplied RGBA ``rgba`` (H, W, 4); pixel (col, row) centre is local
    (a0 + (col + ½)·texel, b0 + (row + ½)·texel)."""

    rgba: F32
    a0: float
    b0: float
    texel: float

    def downsampled(self, factor: int) -> Sprite:
        if factor == 1:
            return self
        h, w = self.rgba.shape[:2]
        size = (max(1, round(w / factor)), max(1, round(h / factor)))
        small = cv2.resize(self.rgba, size, interpolation=cv2.INTER_AREA)
        return Sprite(small.reshape(size[1], size[0], 4), self.a0, self.b0, self.texel * w / size[0])


class _Canvas:
    def __init__(self, a0: float, b0: float, a1: float, b1: float, texel: float) -> None:
        self.a0, self.b0, self.t = a0, b0, texel
        self.w = max(1, math.ceil((a1 - a0) / texel))
        self.h = max(1, math.ceil((b1 - b0) / texel))
        self.rgba = np.zeros((self.h, self.w, 4), np.float32)

    def px(self, pts: F64) -> np.ndarray:
        xy = np.column_stack([(pts[:, 0] - self.a0) / self.t - 0.5, (pts[:, 1] - self.b0) / self.t - 0.5])
        return np.round(xy * _ONE).astype(np.int32)

    def mask(self, polys: list[F64], blur: float = 0.0) -> F32:
        m = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(m, [self.px(p) for p in polys], 255, cv2.LINE_AA, _SHIFT)
        out = m.astype(np.float32) / 255.0
        return cv2.GaussianBlur(out, (0, 0), blur) if blur > 0 else out

    def lines(self, pts: F64, width_m: float) -> F32:
        m = np.zeros((self.h, self.w), np.uint8)
        thick = max(1, round(width_m / self.t))
        cv2.polylines(m, [self.px(pts)], False, 255, thick, cv2.LINE_AA, _SHIFT)
        out: F32 = m.astype(np.float32) / 255.0
        if width_m < self.t:  # thinner than a texel: fade instead of widening
            out *= width_m / self.t
        return out

    def over(self, rgb: F32 | tuple[float, ...], alpha: F32) -> None:
        """Paints colour ``rgb`` (constant or per pixel) with coverage ``alpha`` on top."""
        col = np.broadcast_to(np.asarray(rgb, np.float32), (self.h, self.w, 3))
        a = alpha[..., None]
        self.rgba[..., :3] = self.rgba[..., :3] * (1 - a) + col * a
        self.rgba[..., 3:] = self.rgba[..., 3:] * (1 - a) + a

    def darken(self, alpha: F32, strength: float) -> None:
        """A shadow: darkens what is drawn and adds a translucent black over what is not."""
        a = (alpha * strength)[..., None]
        self.rgba[..., :3] *= 1 - a
        self.rgba[..., 3:] = self.rgba[..., 3:] * (1 - a) + a

    def coords(self) -> tuple[F32, F32]:
        a = self.a0 + (np.arange(self.w, dtype=np.float32) + 0.5) * self.t
        b = self.b0 + (np.arange(self.h, dtype=np.float32) + 0.5) * self.t
        aa, bb = np.meshgrid(a, b)
        return aa, bb

    def noise(self, rng: np.random.Generator, sigma_px: float, amp: float) -> F32:
        size = 1 << max(4, math.ceil(math.log2(max(self.w, self.h))))
        field: F32 = periodic_noise(rng, size, sigma_px)[: self.h, : self.w] * amp
        return field


def _shade(canvas: _Canvas, blob: Blob, sun: F64, strength: float) -> F32:
    """Brightness across a blob: lighter on its sun side."""
    aa, bb = canvas.coords()
    c = blob.polygon.mean(axis=0)
    r = max(float(np.max(np.hypot(*(blob.polygon - c).T))), 1e-3)
    proj = ((aa - c[0]) * sun[0] + (bb - c[1]) * sun[1]) / r
    out: F32 = (1.0 + strength * np.clip(proj, -1, 1)).astype(np.float32)
    return out


def _crack(canvas: _Canvas, shape: Shape, rng: np.random.Generator) -> None:
    for blob in shape.blobs:  # alligator: the weathered, greyer patch under the mesh
        canvas.over((78.0, 77.0, 74.0), canvas.mask([blob.polygon], 3.0) * 0.35)
    halo = np.zeros((canvas.h, canvas.w), np.float32)
    core = np.zeros_like(halo)
    for s in shape.strokes:
        halo = np.maximum(halo, canvas.lines(s.points, s.width_m * 2.6))
        core = np.maximum(core, canvas.lines(s.points, s.width_m))
    canvas.over((58.0, 56.0, 54.0), halo * 0.35)
    canvas.over((20.0, 18.0, 17.0), core * 0.93 * (1 + canvas.noise(rng, 3.0, 0.08)))


def _pothole(canvas: _Canvas, shape: Shape, sun: F64, elev: float, rng: np.random.Generator) -> None:
    rim, hole = shape.blobs
    rim_mask = canvas.mask([rim.polygon])
    canvas.over(np.array(rim.color, np.float32) * (1 + canvas.noise(rng, 1.0, 0.12))[..., None], rim_mask)
    hole_mask = canvas.mask([hole.polygon])
    grit = canvas.noise(rng, 0.8, 0.22) + canvas.noise(rng, 4.0, 0.1)
    canvas.over(np.array(hole.color, np.float32) * (1 + grit)[..., None], hole_mask)
    lit = canvas.mask([hole.polygon + sun * (-0.07 / math.tan(elev))])
    canvas.darken(np.clip(hole_mask - lit, 0, 1), 0.55)


def _garbage(canvas: _Canvas, shape: Shape, sun: F64, elev: float, rng: np.random.Generator) -> None:
    base, *items = shape.blobs
    dirt = np.array(base.color, np.float32) * (1 + canvas.noise(rng, 2.0, 0.15))[..., None]
    canvas.over(dirt, canvas.mask([base.polygon], 2.0) * 0.5)
    shadow_len = 1.0 / math.tan(elev)
    for blob in sorted(items, key=lambda b: b.height_m):
        canvas.darken(canvas.mask([blob.polygon - sun * blob.height_m * shadow_len], 1.0), 0.45)
    for blob in sorted(items, key=lambda b: b.height_m):
        m = canvas.mask([blob.polygon])
        shade = _shade(canvas, blob, sun, 0.35 if blob.material == "bag" else 0.15)
        col = np.array(blob.color, np.float32)[None, None, :] * shade[..., None]
        canvas.over(np.clip(col, 0, 255), m)
        if blob.material == "bag":  # plastic sheen on the sun side
            c = blob.polygon.mean(axis=0) + sun * 0.35 * float(np.ptp(blob.polygon[:, 0])) / 2
            spot = blob.polygon * 0.3 + c - blob.polygon.mean(axis=0) * 0.3
            canvas.over((250.0, 250.0, 250.0), canvas.mask([spot], 1.2) * 0.45 * m)
        edge = np.clip(m - cv2.erode(m, np.ones((3, 3), np.uint8)), 0, 1)
        canvas.darken(edge, 0.35)


def _rubble(canvas: _Canvas, shape: Shape, sun: F64, elev: float, rng: np.random.Generator) -> None:
    heap, *chunks = shape.blobs
    shadow = heap.polygon - sun * heap.height_m * 0.8 / math.tan(elev)
    canvas.darken(canvas.mask([shadow], 2.0), 0.5)
    m = canvas.mask([heap.polygon])
    dist = cv2.distanceTransform((m > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    height = np.sqrt(np.clip(dist / max(float(dist.max()), 1.0), 0, 1)) * heap.height_m / canvas.t
    height = height + canvas.noise(rng, 2.5, 2.0) + canvas.noise(rng, 8.0, 4.0)
    gy, gx = np.gradient(height.astype(np.float32))
    normal = np.dstack([-gx, -gy, np.ones_like(gx)])
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    light = np.array([sun[0] * math.cos(elev), sun[1] * math.cos(elev), math.sin(elev)], np.float32)
    shade = np.clip(normal @ light, 0.0, 1.0)
    grain = 1 + canvas.noise(rng, 0.7, 0.18)
    col = np.array(heap.color, np.float32) * ((0.45 + 0.75 * shade) * grain)[..., None]
    canvas.over(np.clip(col, 0, 255), m)
    for blob in chunks:
        cm = canvas.mask([blob.polygon])
        canvas.darken(canvas.mask([blob.polygon - sun * 0.06 / math.tan(elev)]) * m, 0.35)
        tone = float(rng.uniform(0.75, 1.2))
        canvas.over(np.array(blob.color, np.float32) * tone * (0.55 + 0.6 * shade)[..., None], cm)


def _truck_top(canvas: _Canvas, shape: Shape, sun: F64, rng: np.random.Generator) -> None:
    cab, body, cover = shape.blobs
    canvas.over((34.0, 34.0, 36.0), canvas.mask([shape.outline]))  # chassis in the gap
    paint = np.array(cab.color, np.float32)
    canvas.over(paint * 0.82, canvas.mask([body.polygon]))
    canvas.over(paint, canvas.mask([cab.polygon]))
    front = cab.polygon[:, 0].max()
    wind = cab.polygon.copy()
    wind[:, 0] = np.clip(wind[:, 0], front - 0.45, front - 0.08)
    wind[:, 1] *= 0.9
    canvas.over((38.0, 48.0, 60.0), canvas.mask([wind]))
    aa, bb = canvas.coords()
    inner = canvas.mask([cover.polygon])
    col = np.array(cover.color, np.float32)
    if cover.material == "tarp":  # ripples across the tarp, ropes along the edges
        ripple = 1 + 0.12 * np.sin(aa * 2 * np.pi / 0.55) + canvas.noise(rng, 2.0, 0.05)
        canvas.over(col * ripple[..., None], inner)
        rope = np.clip(inner - cv2.erode(inner, np.ones((5, 5), np.uint8)), 0, 1)
        canvas.darken(rope, 0.4)
    else:  # a heaped load of soil and rubble, higher in the middle
        c = cover.polygon.mean(axis=0)
        half = np.ptp(cover.polygon, axis=0) / 2
        dome = 1 - ((aa - c[0]) / half[0]) ** 2 * 0.6 - ((bb - c[1]) / half[1]) ** 2
        lumps = canvas.noise(rng, 3.0, 0.25) + canvas.noise(rng, 0.8, 0.2)
        shade = 0.8 + 0.25 * dome + lumps + 0.15 * ((aa - c[0]) * sun[0] + (bb - c[1]) * sun[1])
        canvas.over(np.clip(col * shade[..., None], 0, 255), inner)


def render(shape: Shape, texel: float, sun_local: F64, sun_elev_deg: float, look_seed: int) -> Sprite:
    """The sprite of ``shape`` at ``texel`` metres, lit by a sun in local direction ``sun_local``."""
    elev = math.radians(sun_elev_deg)
    pts = [shape.outline] + [b.polygon for b in shape.blobs] + [s.points for s in shape.strokes]
    allp = np.concatenate(pts)
    reach = max([b.height_m for b in shape.blobs] + [0.0]) / math.tan(elev)
    cast = -sun_local * reach  # the longest shadow's offset
    lo = allp.min(axis=0) + np.minimum(cast, 0) - 3 * texel
    hi = allp.max(axis=0) + np.maximum(cast, 0) + 3 * texel
    canvas = _Canvas(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), texel)
    rng = shapes.rng_for(look_seed, 1)
    if shape.cls.endswith("crack"):
        _crack(canvas, shape, rng)
    elif shape.cls == "pothole":
        _pothole(canvas, shape, sun_local, elev, rng)
    elif shape.cls == "garbage_pile":
        _garbage(canvas, shape, sun_local, elev, rng)
    elif shape.cls == "construction_waste":
        _rubble(canvas, shape, sun_local, elev, rng)
    else:
        _truck_top(canvas, shape, sun_local, rng)
    np.clip(canvas.rgba, 0.0, 255.0, out=canvas.rgba)
    np.clip(canvas.rgba[..., 3], 0.0, 1.0, out=canvas.rgba[..., 3])
    return Sprite(canvas.rgba, canvas.a0, canvas.b0, texel)
