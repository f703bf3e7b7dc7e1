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
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from xunjian.datasets.synth import geom, paint, roads, shapes, sprites
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.textures import (
    BASE_TEXEL_M,
    MATERIAL_INDEX,
    U8,
    NoiseFields,
    material_texture,
)
from xunjian.datasets.synth.tilestore import Canvas, DiskTiles, TileKey, touched
from xunjian.datasets.synth.world import Target, World

TILE_PX = 512
MAX_LEVEL = 8
_THREADS = 2
_CANVAS_BYTES = 256 * 1024 * 1024
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


def sun_vector(world: World) -> F64:
    """Unit (E, N) vector pointing towards the sun."""
    az = math.radians(world.sun_azimuth_deg)
    return np.array([math.sin(az), math.cos(az)])


def shadow_offset(world: World, height_m: float) -> F64:
    """Where the shadow of a point ``height_m`` up falls, relative to its foot (E, N)."""
    return -sun_vector(world) * height_m / math.tan(math.radians(world.sun_elevation_deg))


class GroundTexture:
    """Tiles of one world, generated on demand and kept in an LRU cache of ``cache_mb``;
    with ``cache_dir`` also kept on disk for later runs (``tilestore``)."""

    def __init__(self, world: World, *, cache_mb: int = 768, cache_dir: Path | None = None) -> None:
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
        self._tiles: OrderedDict[TileKey, U8] = OrderedDict()
        self._canvases: dict[int, Canvas] = {}
        self.disk = None if cache_dir is None else DiskTiles(cache_dir, world, TILE_PX)
        self._budget = cache_mb * 1024 * 1024
        self._sprites: dict[tuple[str, int], sprites.Sprite] = {}
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._guard = threading.Lock()
        self._textures: dict[tuple[int, int], U8] = {}
        self._rgb: dict[tuple[str, int], U8] = {}

    # -- public -----------------------------------------------------------------------------

    def tile(self, level: int, ix: int, iy: int) -> U8:
        key = (level, ix, iy)
        found = self._tiles.get(key)
        if found is not None:
            self._tiles.move_to_end(key)
            return found
        img = self._fetch(key)
        self._tiles[key] = img
        while len(self._tiles) * img.nbytes > self._budget and len(self._tiles) > 1:
            self._tiles.popitem(last=False)
        return img

    def mosaic(
        self, level: int, e0: float, n0: float, e1: float, n1: float, within: F64 | None = None
    ) -> tuple[U8, F64]:
        """Tiles covering the box as one image, and the 3×3 map (E, N, 1) → its pixels.

        With ``within`` (a polygon, world E, N) only the tiles it touches are painted, the rest
        of the box may be black: a frame's footprint rarely fills its bounding box. The image
        is a view into a canvas kept per level (``tilestore.Canvas``), so a later frame over
        the same ground copies only the tiles it adds; treat it as read-only.
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
        box = (ix0, ix1, iy0, iy1)
        canvas = self._canvases.get(level)
        if canvas is None or not canvas.covers(box):
            canvas = self._canvases[level] = Canvas.around(box, TILE_PX, _CANVAS_BYTES)

        def place(key: TileKey) -> U8 | None:
            """Copies tile ``key`` into the canvas, painting it first if not cached; the fresh
            one is returned for the cache (filled on the calling thread, after the pool)."""
            img = self._tiles.get(key)
            fresh = None
            if img is None:
                img = fresh = self._fetch(key)
            canvas.img[canvas.slot(key[1], key[2])] = img
            return fresh

        new = [key for key in keys if key not in canvas.placed]
        if any(key not in self._tiles for key in new):
            self._warm(level)
        if len(new) >= 4 and _THREADS > 1:
            # Painting and copying on two threads: OpenCV and numpy release the GIL, and each
            # tile is a pure function of its key, so the result does not depend on the order.
            with ThreadPoolExecutor(max_workers=_THREADS) as pool:
                fresh = list(pool.map(place, new))
        else:
            fresh = [place(key) for key in new]
        canvas.placed.update(new)
        for key in keys:
            if key in self._tiles:
                self._tiles.move_to_end(key)
        for key, img in zip(new, fresh, strict=True):
            if img is not None:
                self._tiles[key] = img
        while len(self._tiles) * TILE_PX * TILE_PX * 3 > self._budget and len(self._tiles) > 1:
            self._tiles.popitem(last=False)
        out = canvas.view(box)
        m = np.array(
            [
                [1 / t, 0.0, -ix0 * span / t - 0.5],
                [0.0, -1 / t, (iy1 + 1) * span / t - 0.5],
                [0.0, 0.0, 1.0],
            ]
        )
        return out, m

    def _warm(self, level: int) -> None:
        """The level's textures, on the calling thread (sprites are drawn by the tiles that
        need them, on the pool's threads: ``sprite`` is safe to call from several)."""
        for material in range(len(MATERIAL_INDEX)):
            self.texture(material, level)

    def sprite(self, target: Target, level: int) -> sprites.Sprite:
        key = (target.id, level)
        found = self._sprites.get(key)
        if found is not None:
            return found
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one thread draws it; another that needs it waits for it
            found = self._sprites.get(key)
            if found is None:
                found = self._draw_sprite(target, level)
                self._sprites[key] = found
        return found

    def _draw_sprite(self, target: Target, level: int) -> sprites.Sprite:
        if level > 0:
            return self.sprite(target, 0).downsampled(1 << level)
        fwd, right = geom.heading_vectors(target.heading_deg)
        sun = sun_vector(self.world)
        shape = shapes.build(target.cls, target.length_m, target.width_m, target.look_seed)
        shape.outline = geom.as_points(target.outline)
        return sprites.render(
            shape,
            BASE_TEXEL_M,
            np.array([sun @ fwd, sun @ right]),
            self.world.sun_elevation_deg,
            target.look_seed,
        )

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

    def _fetch(self, key: TileKey) -> U8:
        """A tile not in memory: from the disk store if there, else painted (and stored)."""
        img = None if self.disk is None else self.disk.load(key)
        if img is None:
            img = paint.tile(self, *key)
            if self.disk is not None:
                self.disk.save(key, img)
        return img
