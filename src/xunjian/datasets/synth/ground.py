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
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from numpy.typing import NDArray

from xunjian.datasets.synth import geom, paint, roads, shapes, sprites
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.textures import (
    BASE_TEXEL_M,
    MATERIAL_INDEX,
    U8,
    NoiseFields,
    material_texture,
)
from xunjian.datasets.synth.world import Target, World

TILE_PX = 512
MAX_LEVEL = 8
_THREADS = 2
TREE_HEIGHT_M = 5.0
_SHIFT = 4
_AREA_MATERIAL = {
    "green": "green",
    "plaza": "plaza",
    "lot": "lot",
    "patch": "patch",
    "swept": "swept",
}


def texel_of(level: int) -> float:
    return BASE_TEXEL_M * (1 << level)


def touched(poly: F64, span: float, ix0: int, iy0: int, nx: int, ny: int) -> NDArray[np.bool_]:
    """Which tiles (ny, nx), row = iy − iy0, of the grid from (ix0, iy0) the polygon touches,
    with a margin of an eighth of a tile (conservative: rasterised on a finer grid, dilated)."""
    sub = 8
    grid = np.zeros((ny * sub, nx * sub), np.uint8)
    xy = np.column_stack([poly[:, 0] / span - ix0, poly[:, 1] / span - iy0]) * sub - 0.5
    pts = [np.round(xy * (1 << _SHIFT)).astype(np.int32)]
    cv2.fillPoly(grid, pts, 1, cv2.LINE_8, _SHIFT)
    cv2.polylines(grid, pts, True, 1, 1, cv2.LINE_8, _SHIFT)
    grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    out: NDArray[np.bool_] = grid.reshape(ny, sub, nx, sub).max(axis=(1, 3)) > 0
    return out


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
        areas = list(world.areas)
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
        # A crown is a few overlapping discs (a cauliflower from above), each a polygon.
        rng = np.random.Generator(np.random.PCG64([world.seed, 303]))
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = np.column_stack([np.cos(ang), np.sin(ang)])
        crowns = []
        for t in world.trees:
            c, r = np.array(t.center), t.radius_m
            crowns.append(c + ring * r * 0.72)
            for _ in range(int(rng.integers(3, 6))):
                a = rng.uniform(0, 2 * np.pi)
                offset = np.array([np.cos(a), np.sin(a)]) * r * rng.uniform(0.3, 0.45)
                crowns.append(c + offset + ring * r * rng.uniform(0.45, 0.6))
        self.canopies = roads.Polys.of(crowns, [0] * len(crowns))
        # Far away a crown is a disc: one polygon, not five (coarse tiles hold hundreds).
        self.canopies_far = roads.Polys.of(
            [np.array(t.center) + ring * t.radius_m * 0.95 for t in world.trees],
            [0] * len(world.trees),
        )
        self.static: list[Target] = [t for t in world.targets if not t.is_truck]
        self.static_boxes = np.array([geom.bbox(t.outline_at()) for t in self.static]).reshape(
            -1, 4
        ) + np.array([-4.0, -4.0, 4.0, 4.0])  # shadows reach outside
        self.noise = NoiseFields(world.seed, world.size_m)
        self._tiles: OrderedDict[tuple[int, int, int], U8] = OrderedDict()
        self._budget = cache_mb * 1024 * 1024
        self._sprites: dict[tuple[str, int], sprites.Sprite] = {}
        self._textures: dict[tuple[int, int], U8] = {}
        self._rgb: dict[tuple[str, int], U8] = {}

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

    def mosaic(
        self, level: int, e0: float, n0: float, e1: float, n1: float, within: F64 | None = None
    ) -> tuple[U8, F64]:
        """Tiles covering the box as one image, and the 3×3 map (E, N, 1) → its pixels.

        With ``within`` (a polygon, world E, N) only the tiles it touches are painted, the rest
        of the box left black: a frame's footprint rarely fills its bounding box.
        """
        t = texel_of(level)
        span = TILE_PX * t
        ix0, ix1 = math.floor(e0 / span), math.floor(e1 / span)
        iy0, iy1 = math.floor(n0 / span), math.floor(n1 / span)
        need = (
            np.ones((iy1 - iy0 + 1, ix1 - ix0 + 1), bool)
            if within is None
            else touched(within, span, ix0, iy0, ix1 - ix0 + 1, iy1 - iy0 + 1)
        )
        keys = [
            (level, ix, iy)
            for iy in range(iy0, iy1 + 1)
            for ix in range(ix0, ix1 + 1)
            if need[iy - iy0, ix - ix0]
        ]
        self._prefetch([key for key in keys if key not in self._tiles])
        shape = ((iy1 - iy0 + 1) * TILE_PX, (ix1 - ix0 + 1) * TILE_PX, 3)
        out = np.empty(shape, np.uint8) if need.all() else np.zeros(shape, np.uint8)
        for _, ix, iy in keys:
            row = (iy1 - iy) * TILE_PX
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

    def _prefetch(self, keys: list[tuple[int, int, int]]) -> None:
        """Paints missing tiles on two threads (OpenCV and numpy release the GIL); each tile is
        a pure function of its key, so the result does not depend on the order."""
        if len(keys) < 4:
            return
        for key in keys:  # sprites and textures first, once, on this thread
            self._warm(key[0], key[1], key[2])
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            tiles = list(pool.map(lambda key: self._render_tile(*key), keys))
        for key, img in zip(keys, tiles, strict=True):
            self._tiles[key] = img
        while len(self._tiles) * TILE_PX * TILE_PX * 3 > self._budget and len(self._tiles) > 1:
            self._tiles.popitem(last=False)

    def _warm(self, level: int, ix: int, iy: int) -> None:
        span = TILE_PX * texel_of(level)
        e0, n0 = ix * span, iy * span
        b = self.static_boxes
        hit = np.flatnonzero(
            (b[:, 2] >= e0) & (b[:, 0] <= e0 + span) & (b[:, 3] >= n0) & (b[:, 1] <= n0 + span)
        )
        for i in hit:
            self.sprite(self.static[int(i)], level)
        for material in range(len(MATERIAL_INDEX)):
            self.texture(material, level)

    def sprite(self, target: Target, level: int) -> sprites.Sprite:
        key = (target.id, level)
        if key not in self._sprites:
            if level == 0:
                fwd, right = geom.heading_vectors(target.heading_deg)
                sun = sun_vector(self.world)
                shape = shapes.build(target.cls, target.length_m, target.width_m, target.look_seed)
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

    # -- drawing ----------------------------------------------------------------------------

    def sprite_rgb(self, target: Target, level: int) -> U8:
        """The sprite's colour as uint8 (opaque sprites: truck tops)."""
        key = (target.id + "/rgb", level)
        if key not in self._rgb:
            self._rgb[key] = np.clip(self.sprite(target, level).rgba[..., :3], 0, 255).astype(
                np.uint8
            )
        return self._rgb[key]

    def texture(self, material: int, level: int) -> U8:
        """A material's texture repeated to the size of a tile."""
        key = (material, level)
        if key not in self._textures:
            names = list(MATERIAL_INDEX)
            tex = material_texture(names[material], self.seed, level)
            reps = TILE_PX // tex.shape[0]
            self._textures[key] = np.ascontiguousarray(np.tile(tex, (reps, reps, 1)))
        return self._textures[key]

    def _render_tile(self, level: int, ix: int, iy: int) -> U8:
        return paint.tile(self, level, ix, iy)
