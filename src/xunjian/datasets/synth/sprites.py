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
from xunjian.datasets.synth.textures import F32

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
        small = np.asarray(cv2.resize(self.rgba, size, interpolation=cv2.INTER_AREA), np.float32)
        return Sprite(
            small.reshape(size[1], size[0], 4), self.a0, self.b0, self.texel * w / size[0]
        )


Region = tuple[slice, slice]


class _Canvas:
    def __init__(self, a0: float, b0: float, a1: float, b1: float, texel: float) -> None:
        self.a0, self.b0, self.t = a0, b0, texel
        self.w = max(1, math.ceil((a1 - a0) / texel))
        self.h = max(1, math.ceil((b1 - b0) / texel))
        self.rgba = np.zeros((self.h, self.w, 4), np.float32)
        self.all: Region = (slice(0, self.h), slice(0, self.w))

    def px(self, pts: F64) -> F64:
        return np.column_stack(
            [(pts[:, 0] - self.a0) / self.t - 0.5, (pts[:, 1] - self.b0) / self.t - 0.5]
        )

    def region(self, polys: list[F64], blur: float = 0.0) -> tuple[Region, F32]:
        """The coverage of ``polys`` (0…1), cropped to where it is non-zero."""
        xy = [self.px(p) for p in polys]
        allxy = np.concatenate(xy)
        pad = 2 + 3 * blur
        x0 = int(max(0, math.floor(allxy[:, 0].min() - pad)))
        y0 = int(max(0, math.floor(allxy[:, 1].min() - pad)))
        x1 = int(min(self.w, math.ceil(allxy[:, 0].max() + pad) + 1))
        y1 = int(min(self.h, math.ceil(allxy[:, 1].max() + pad) + 1))
        sl: Region = (slice(y0, max(y0, y1)), slice(x0, max(x0, x1)))
        m = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
        for p in xy:
            q = np.round((p - [x0, y0]) * _ONE).astype(np.int32)
            cv2.fillPoly(m, [q], 255, cv2.LINE_AA, _SHIFT)
        out: F32 = m.astype(np.float32) / 255.0
        if blur > 0 and out.size:
            out = np.asarray(cv2.GaussianBlur(out, (0, 0), blur), np.float32)
        return sl, out

    def mask(self, polys: list[F64], blur: float = 0.0) -> F32:
        """Full-canvas coverage of ``polys``."""
        sl, m = self.region(polys, blur)
        full = np.zeros((self.h, self.w), np.float32)
        full[sl] = m
        return full

    def lines(self, pts: F64, width_m: float) -> F32:
        m = np.zeros((self.h, self.w), np.uint8)
        thick = max(1, round(width_m / self.t))
        q = np.round(self.px(pts) * _ONE).astype(np.int32)
        cv2.polylines(m, [q], False, 255, thick, cv2.LINE_AA, _SHIFT)
        out: F32 = m.astype(np.float32) / 255.0
        if width_m < self.t:  # thinner than a texel: fade instead of widening
            out *= width_m / self.t
        return out

    def over(self, rgb: F32 | tuple[float, ...], alpha: F32, sl: Region | None = None) -> None:
        """Paints colour ``rgb`` (constant, or per pixel of ``sl``) with coverage ``alpha``."""
        sl = self.all if sl is None else sl
        px = self.rgba[sl]
        a = alpha[..., None]
        col = np.asarray(rgb, np.float32)
        px[..., :3] = px[..., :3] * (1 - a) + col * a
        px[..., 3:] = px[..., 3:] * (1 - a) + a

    def darken(self, alpha: F32, strength: float, sl: Region | None = None) -> None:
        """A shadow: darkens what is drawn and adds a translucent black over what is not."""
        px = self.rgba[self.all if sl is None else sl]
        a = (alpha * strength)[..., None]
        px[..., :3] *= 1 - a
        px[..., 3:] = px[..., 3:] * (1 - a) + a

    def coords(self, sl: Region | None = None) -> tuple[F32, F32]:
        sl = self.all if sl is None else sl
        a = self.a0 + (np.arange(self.w, dtype=np.float32) + 0.5) * self.t
        b = self.b0 + (np.arange(self.h, dtype=np.float32) + 0.5) * self.t
        aa, bb = np.meshgrid(a[sl[1]], b[sl[0]])
        return aa, bb

    def noise(self, rng: np.random.Generator, sigma_px: float, amp: float) -> F32:
        """Smooth noise (std ``amp``) with features of about ``sigma_px``."""
        white = rng.standard_normal((self.h, self.w)).astype(np.float32)
        field = np.asarray(cv2.GaussianBlur(white, (0, 0), sigma_px), np.float32)
        std = float(field.std())
        out: F32 = field * np.float32(amp / std if std > 0 else 0.0)
        return out


def _shade(canvas: _Canvas, blob: Blob, sun: F64, strength: float, sl: Region) -> F32:
    """Brightness across a blob: lighter on its sun side."""
    aa, bb = canvas.coords(sl)
    c = blob.polygon.mean(axis=0)
    r = max(float(np.max(np.hypot(*(blob.polygon - c).T))), 1e-3)
    proj = ((aa - c[0]) * sun[0] + (bb - c[1]) * sun[1]) / r
    out: F32 = (1.0 + strength * np.clip(proj, -1, 1)).astype(np.float32)
    return out


def _crack(canvas: _Canvas, shape: Shape, rng: np.random.Generator) -> None:
    for blob in shape.blobs:  # alligator: a sunken, darker patch under the mesh
        canvas.over((62.0, 61.0, 59.0), canvas.mask([blob.polygon], 3.0) * 0.45)
    halo = np.zeros((canvas.h, canvas.w), np.float32)
    core = np.zeros_like(halo)
    for s in shape.strokes:
        halo = np.maximum(halo, canvas.lines(s.points, s.width_m * 3.0))
        core = np.maximum(core, canvas.lines(s.points, s.width_m))
    canvas.over((46.0, 44.0, 42.0), halo * 0.5)  # spalled, dirty edges
    canvas.over((14.0, 13.0, 12.0), np.clip(core * (1 + canvas.noise(rng, 3.0, 0.1)), 0, 1))


def _pothole(
    canvas: _Canvas, shape: Shape, sun: F64, elev: float, rng: np.random.Generator
) -> None:
    rim, hole = shape.blobs
    rim_mask = canvas.mask([rim.polygon], 1.0)
    broken = (1 + canvas.noise(rng, 1.0, 0.15) + canvas.noise(rng, 5.0, 0.1))[..., None]
    canvas.over(np.array(rim.color, np.float32) * broken, rim_mask)
    hole_mask = canvas.mask([hole.polygon])
    grit = canvas.noise(rng, 0.8, 0.22) + canvas.noise(rng, 4.0, 0.1)
    canvas.over(np.array(hole.color, np.float32) * (1 + grit)[..., None], hole_mask)
    lit = canvas.mask([hole.polygon + sun * (-0.07 / math.tan(elev))])
    canvas.darken(np.clip(hole_mask - lit, 0, 1), 0.55)


def _garbage(
    canvas: _Canvas, shape: Shape, sun: F64, elev: float, rng: np.random.Generator
) -> None:
    base, *items = shape.blobs
    dirt = np.array(base.color, np.float32) * (1 + canvas.noise(rng, 2.0, 0.15))[..., None]
    canvas.over(dirt, canvas.mask([base.polygon], 2.0) * 0.5)
    shadow_len = 1.0 / math.tan(elev)
    ordered = sorted(items, key=lambda b: b.height_m)
    for blob in ordered:
        sl, m = canvas.region([blob.polygon - sun * blob.height_m * shadow_len], 1.0)
        canvas.darken(m, 0.45, sl)
    for blob in ordered:
        sl, m = canvas.region([blob.polygon])
        shade = _shade(canvas, blob, sun, 0.35 if blob.material == "bag" else 0.15, sl)
        col = np.array(blob.color, np.float32)[None, None, :] * shade[..., None]
        canvas.over(np.clip(col, 0, 255), m, sl)
        if blob.material == "bag":  # plastic sheen on the sun side
            c = blob.polygon.mean(axis=0)
            spot = (blob.polygon - c) * 0.3 + c + sun * 0.35 * float(np.ptp(blob.polygon[:, 0])) / 2
            sl2, m2 = canvas.region([spot], 1.2)
            canvas.over((250.0, 250.0, 250.0), m2 * 0.4, sl2)
        if blob.material != "litter_bit":
            edge = np.clip(m - cv2.erode(m, np.ones((3, 3), np.uint8)), 0, 1)
            canvas.darken(edge, 0.35, sl)


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
        sl, cast = canvas.region([blob.polygon - sun * 0.06 / math.tan(elev)])
        canvas.darken(cast * m[sl], 0.35, sl)
        sl, cm = canvas.region([blob.polygon])
        tone = float(rng.uniform(0.75, 1.2))
        canvas.over(
            np.array(blob.color, np.float32) * tone * (0.55 + 0.6 * shade[sl])[..., None], cm, sl
        )


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


def render(
    shape: Shape, texel: float, sun_local: F64, sun_elev_deg: float, look_seed: int
) -> Sprite:
    """The sprite of ``shape`` at ``texel`` metres, lit by a sun in local direction
    ``sun_local``."""
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
