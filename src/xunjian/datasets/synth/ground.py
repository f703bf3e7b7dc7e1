"""The ground as an image pyramid: the world rasterised into tiles, lazily, cached per world.

Level L has texels of ``BASE_TEXEL_M · 2^L`` metres; tile (ix, iy) of level L covers
E ∈ [ix·S, (ix+1)·S), N ∈ [iy·S, (iy+1)·S) with S = TILE_PX texels, row 0 at its north edge.
A tile is a pure function of (world, level, ix, iy), so frames are byte-identical whatever was
cached before. What stands on the ground (buildings, trucks) is drawn per frame (``solids``);
everything flat — surfaces, markings, shadows, tree canopies and the static targets — is here.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import cv2
import numpy as np

from xunjian.datasets.synth import geom, roads, shapes, sprites
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.textures import (
    BASE_TEXEL_M,
    F32,
    MATERIAL_INDEX,
    U8,
    NoiseFields,
    material_texture,
)
from xunjian.datasets.synth.world import Target, World

TILE_PX = 512
MAX_LEVEL = 8
TREE_HEIGHT_M = 7.0
_SHIFT = 4
_AREA_MATERIAL = {"green": "green", "plaza": "plaza", "lot": "lot", "patch": "patch", "swept": "swept"}


def texel_of(level: int) -> float:
    return BASE_TEXEL_M * (1 << level)


def sun_vector(world: World) -> F64:
    """Unit (E, N) vector pointing towards the sun."""
    az = math.radians(world.sun_azimuth_deg)
    return np.array([math.sin(az), math.cos(az)])


def shadow_offset(world: World, height_m: float) -> F64:
    """Where the shadow of a point ``height_m`` up falls, relative to its foot (E, N)."""
    return -sun_vector(world) * height_m / math.tan(math.radians(world.sun_elevation_deg))


class GroundTexture:
    """Tiles of one world, generated on demand and kept in an LRU cache of ``cache_mb``."""

    def __init__(self, world: World, *, cache_mb: int = 768) -> None:
        self.world = world
        self.seed = world.seed
        self.walk, self.carriage = roads.surfaces(world.roads)
        self.marks = roads.markings(world.roads)
        areas = [a for a in world.areas]
        self.areas = roads.Polys.of(
            [geom.as_points(a.polygon) for a in areas],
            [MATERIAL_INDEX[_AREA_MATERIAL[a.kind]] for a in areas],
        )
        self.roofs = roads.Polys.of(
            [geom.as_points(b.footprint) for b in world.buildings],
            [MATERIAL_INDEX["roof_" + b.roof] for b in world.buildings],
        )
        self.building_shadows = roads.Polys.of(
            [
                geom.convex_hull(np.vstack([fp, fp + shadow_offset(world, b.height_m)]))
                for b in world.buildings
                for fp in [geom.as_points(b.footprint)]
            ],
            [0] * len(world.buildings),
        )
        rng = np.random.Generator(np.random.PCG64([world.seed, 303]))
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        self.canopies = roads.Polys.of(
            [
                np.column_stack([np.cos(ang), np.sin(ang)])
                * (t.radius_m * (1 + 0.12 * rng.standard_normal(24)))[:, None]
                + np.array(t.center)
                for t in world.trees
            ],
            [0] * len(world.trees),
        )
        self.static: list[Target] = [t for t in world.targets if not t.is_truck]
        self.static_boxes = np.array(
            [geom.bbox(t.outline_at()) for t in self.static]
        ).reshape(-1, 4) + np.array([-4.0, -4.0, 4.0, 4.0])  # shadows reach outside
        self.noise = NoiseFields(world.seed, world.size_m)
        self._tiles: OrderedDict[tuple[int, int, int], U8] = OrderedDict()
        self._budget = cache_mb * 1024 * 1024
        self._sprites: dict[tuple[str, int], sprites.Sprite] = {}
        self._textures: dict[tuple[int, int], U8] = {}

    # -- public -----------------------------------------------------------------------------

    def tile(self, level: int, ix: int, iy: int) -> U8:
        key = (level, ix, iy)
        found = self._tiles.get(key)
        if found is not None:
            self._tiles.move_to_end(key)
            return found
        img = self._render_tile(level, ix, iy)
        self._tiles[key] = img
        while len(self._tiles) * img.nbytes > self._budget and len(self._tiles) > 1:
            self._tiles.popitem(last=False)
        return img

    def mosaic(self, level: int, e0: float, n0: float, e1: float, n1: float) -> tuple[U8, F64]:
        """Tiles covering the box as one image, and the 3×3 map (E, N, 1) → its pixels."""
        t = texel_of(level)
        span = TILE_PX * t
        ix0, ix1 = math.floor(e0 / span), math.floor(e1 / span)
        iy0, iy1 = math.floor(n0 / span), math.floor(n1 / span)
        out = np.empty(((iy1 - iy0 + 1) * TILE_PX, (ix1 - ix0 + 1) * TILE_PX, 3), np.uint8)
        for iy in range(iy0, iy1 + 1):
            row = (iy1 - iy) * TILE_PX
            for ix in range(ix0, ix1 + 1):
                col = (ix - ix0) * TILE_PX
                out[row : row + TILE_PX, col : col + TILE_PX] = self.tile(level, ix, iy)
        m = np.array(
            [
                [1 / t, 0.0, -ix0 * span / t - 0.5],
                [0.0, -1 / t, (iy1 + 1) * span / t - 0.5],
                [0.0, 0.0, 1.0],
            ]
        )
        return out, m

    def sprite(self, target: Target, level: int) -> sprites.Sprite:
        key = (target.id, level)
        if key not in self._sprites:
            if level == 0:
                fwd, right = geom.heading_vectors(target.heading_deg)
                sun = sun_vector(self.world)
                shape = shapes.build(target.cls, *self._nominal(target), target.look_seed)
                shape.outline = geom.as_points(target.outline)
                self._sprites[key] = sprites.render(
                    shape,
                    BASE_TEXEL_M,
                    np.array([sun @ fwd, sun @ right]),
                    self.world.sun_elevation_deg,
                    target.look_seed,
                )
            else:
                self._sprites[key] = self.sprite(target, 0).downsampled(1 << level)
        return self._sprites[key]

    @staticmethod
    def _nominal(target: Target) -> tuple[float, float]:
        return target_size(target)

    # -- drawing ----------------------------------------------------------------------------

    def _texture(self, material: int, level: int) -> U8:
        key = (material, level)
        if key not in self._textures:
            names = list(MATERIAL_INDEX)
            tex = material_texture(names[material], self.seed, level)
            reps = TILE_PX // tex.shape[0]
            self._textures[key] = np.ascontiguousarray(np.tile(tex, (reps, reps, 1)))
        return self._textures[key]

    def _render_tile(self, level: int, ix: int, iy: int) -> U8:
        t = texel_of(level)
        span = TILE_PX * t
        e0, n0 = ix * span, iy * span
        e1, n1 = e0 + span, n0 + span
        pad = 2 * t

        def px(poly: F64) -> np.ndarray:
            xy = np.column_stack([(poly[:, 0] - e0) / t - 0.5, (n1 - poly[:, 1]) / t - 0.5])
            return np.round(xy * (1 << _SHIFT)).astype(np.int32)

        def polys(p: roads.Polys, kind: int | None = None) -> list[np.ndarray]:
            ids = p.within(e0 - pad, n0 - pad, e1 + pad, n1 + pad)
            return [px(p.polys[i]) for i in ids if kind is None or p.kinds[i] == kind]

        label = np.full((TILE_PX, TILE_PX), MATERIAL_INDEX["background"], np.uint8)
        used = {MATERIAL_INDEX["background"]}
        for i in self.areas.within(e0 - pad, n0 - pad, e1 + pad, n1 + pad):
            if self.areas.kinds[i] not in (MATERIAL_INDEX["patch"], MATERIAL_INDEX["swept"]):
                cv2.fillPoly(label, [px(self.areas.polys[i])], self.areas.kinds[i], cv2.LINE_8, _SHIFT)
                used.add(self.areas.kinds[i])
        for mat, p, kind in (
            ("sidewalk", self.walk, None),
            ("asphalt", self.carriage, 0),
            ("asphalt_main", self.carriage, 1),
        ):
            drawn = polys(p, kind)
            if drawn:
                cv2.fillPoly(label, drawn, MATERIAL_INDEX[mat], cv2.LINE_8, _SHIFT)
                used.add(MATERIAL_INDEX[mat])
        for i in self.areas.within(e0 - pad, n0 - pad, e1 + pad, n1 + pad):
            if self.areas.kinds[i] in (MATERIAL_INDEX["patch"], MATERIAL_INDEX["swept"]):
                cv2.fillPoly(label, [px(self.areas.polys[i])], self.areas.kinds[i], cv2.LINE_8, _SHIFT)
                used.add(self.areas.kinds[i])
        roof_ids = self.roofs.within(e0 - pad, n0 - pad, e1 + pad, n1 + pad)
        for i in roof_ids:
            cv2.fillPoly(label, [px(self.roofs.polys[i])], self.roofs.kinds[i], cv2.LINE_8, _SHIFT)
            used.add(self.roofs.kinds[i])
        img = np.empty((TILE_PX, TILE_PX, 3), np.uint8)
        for mat in sorted(used):
            np.copyto(img, self._texture(mat, level), where=(label == mat)[..., None])
        wear = self.noise.sample(0, e0, n1, t, TILE_PX, TILE_PX)
        spots = self.noise.sample(1, e0, n1, t, TILE_PX, TILE_PX)
        out = img.astype(np.float32) * (1.0 + 0.06 * wear + 0.035 * spots)[..., None]
        roof = label >= MATERIAL_INDEX["roof_concrete"]
        for colour, kind in ((roads.PAINT[roads.WHITE], roads.WHITE), (roads.PAINT[roads.YELLOW], roads.YELLOW)):
            drawn = polys(self.marks, kind)
            if drawn:
                cov = np.zeros((TILE_PX, TILE_PX), np.uint8)
                cv2.fillPoly(cov, drawn, 255, cv2.LINE_AA, _SHIFT)
                a = cov.astype(np.float32) / 255.0 * np.clip(0.82 - 0.25 * spots, 0.3, 0.9)
                out += (np.array(colour, np.float32) - out) * a[..., None]
        shade = np.zeros((TILE_PX, TILE_PX), np.uint8)
        drawn = polys(self.building_shadows)
        if drawn:
            cv2.fillPoly(shade, drawn, 255, cv2.LINE_AA, _SHIFT)
        self._trees(out, shade, px, e0, n0, e1, n1, t, ~roof)
        out *= (1.0 - 0.5 * (shade.astype(np.float32) / 255.0) * ~roof)[..., None]
        self._targets(out, level, e0, n0, e1, n1, t)
        result: U8 = np.clip(out, 0, 255).astype(np.uint8)
        return result

    def _trees(self, out: F32, shade: U8, px: object, e0: float, n0: float, e1: float,
               n1: float, t: float, ground: np.ndarray) -> None:
        reach = float(np.hypot(*shadow_offset(self.world, TREE_HEIGHT_M))) + 5.0
        ids = self.canopies.within(e0 - reach, n0 - reach, e1 + reach, n1 + reach)
        if not ids:
            return
        to_px = px  # type: ignore[assignment]
        crowns = [to_px(self.canopies.polys[i]) for i in ids]  # type: ignore[operator]
        offset = shadow_offset(self.world, TREE_HEIGHT_M)
        cast = [to_px(self.canopies.polys[i] + offset) for i in ids]  # type: ignore[operator]
        cv2.fillPoly(shade, cast, 255, cv2.LINE_AA, _SHIFT)
        mask = np.zeros((TILE_PX, TILE_PX), np.uint8)
        cv2.fillPoly(mask, crowns, 255, cv2.LINE_AA, _SHIFT)
        if not mask.any():
            return
        cover = mask.astype(np.float32) / 255.0
        dome = cv2.GaussianBlur(cover, (0, 0), max(1.0, 1.0 / t))
        gy, gx = np.gradient(dome)
        sun = sun_vector(self.world)
        light = np.clip(1.0 + 6.0 / max(1.0, 0.5 / t) * (gx * sun[0] - gy * sun[1]) * (1.0 / t) * t, 0.6, 1.4)
        leaves = self._texture(MATERIAL_INDEX["canopy"], int(round(math.log2(t / BASE_TEXEL_M))))
        col = leaves.astype(np.float32) * light[..., None]
        out += (col - out) * cover[..., None]
        shade[mask > 0] = 0  # the crown is lit; its own shadow falls on the ground beyond it
        del ground

    def _targets(self, out: F32, level: int, e0: float, n0: float, e1: float, n1: float, t: float) -> None:
        b = self.static_boxes
        hit = np.flatnonzero((b[:, 2] >= e0) & (b[:, 0] <= e1) & (b[:, 3] >= n0) & (b[:, 1] <= n1))
        for i in hit:
            target = self.static[int(i)]
            spr = self.sprite(target, level)
            fwd, right = geom.heading_vectors(target.heading_deg)
            c = np.array(target.center)
            ts = spr.texel
            # sprite px → local (a, b) → world (E, N) → tile px
            m_local = np.array([[ts, 0.0, spr.a0 + 0.5 * ts], [0.0, ts, spr.b0 + 0.5 * ts], [0, 0, 1]])
            m_world = np.array([[fwd[0], right[0], c[0]], [fwd[1], right[1], c[1]], [0, 0, 1]])
            m_tile = np.array([[1 / t, 0.0, -e0 / t - 0.5], [0.0, -1 / t, n1 / t - 0.5], [0, 0, 1]])
            m = m_tile @ m_world @ m_local
            h, w = spr.rgba.shape[:2]
            corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1], [-0.5, h - 0.5, 1]])
            pc = (m @ corners.T).T
            x0 = max(0, math.floor(pc[:, 0].min()))
            y0 = max(0, math.floor(pc[:, 1].min()))
            x1 = min(TILE_PX, math.ceil(pc[:, 0].max()) + 1)
            y1 = min(TILE_PX, math.ceil(pc[:, 1].max()) + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]])
            patch = cv2.warpAffine(
                spr.rgba, (shift @ m)[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0),
            )
            region = out[y0:y1, x0:x1]
            region *= 1.0 - patch[..., 3:]
            region += patch[..., :3]


def target_size(target: Target) -> tuple[float, float]:
    """The nominal (length, width) a target's shape was built from (see ``placement``)."""
    return _NOMINAL.get(target.id, (target.length_m, target.width_m))


_NOMINAL: dict[str, tuple[float, float]] = {}
