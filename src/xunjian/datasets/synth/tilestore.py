"""Which ground tiles a frame needs, and an optional on-disk store of painted tiles.

A tile is a pure function of (world, level, ix, iy) and of the painter's code, so a tile
painted once can be kept on disk and reused by later runs: :class:`DiskTiles` keys tiles by
the world's seed, a hash of the world's JSON and :data:`PAINT_VERSION` (bump it whenever a
change to the painter alters pixels). Writes are atomic (a temporary file renamed), so runs
sharing a store are safe. The store is opt-in — a cold process meets its time budget without
one — and a damaged or foreign file is ignored and painted afresh.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.textures import U8
from xunjian.datasets.synth.world import World

PAINT_VERSION = 2
"""Version of the tile painter; part of every on-disk key."""
_SHIFT = 4
_SUB = 8

TileKey = tuple[int, int, int]
"""(level, ix, iy)."""


def touched(poly: F64, span: float, ix0: int, iy0: int, nx: int, ny: int) -> NDArray[np.bool_]:
    """Which tiles (ny, nx), row = iy − iy0, of the grid from (ix0, iy0) with tiles ``span``
    metres wide the polygon (world E, N) touches, with a margin of an eighth of a tile.

    Conservative: the polygon and its outline are rasterised on a grid eight times finer,
    dilated by one cell, and a tile is kept if any of its cells is set.
    """
    grid = np.zeros((ny * _SUB, nx * _SUB), np.uint8)
    xy = np.column_stack([poly[:, 0] / span - ix0, poly[:, 1] / span - iy0]) * _SUB - 0.5
    pts = [np.round(xy * (1 << _SHIFT)).astype(np.int32)]
    cv2.fillPoly(grid, pts, 1, cv2.LINE_8, _SHIFT)
    cv2.polylines(grid, pts, True, 1, 1, cv2.LINE_8, _SHIFT)
    grown = np.asarray(cv2.dilate(grid, np.ones((3, 3), np.uint8)), np.uint8)
    out: NDArray[np.bool_] = grown.reshape(ny, _SUB, nx, _SUB).max(axis=(1, 3)) > 0
    return out


@dataclass
class Canvas:
    """A mosaic of one level kept between frames: tile (ix, iy) sits at rows from
    (iy1 − iy)·px, columns from (ix − ix0)·px. A tile is placed once; later frames inside
    the canvas copy only the tiles they add, and parts never placed stay black."""

    img: U8
    ix0: int
    iy1: int
    px: int
    placed: set[TileKey] = field(default_factory=set)

    @classmethod
    def around(cls, box: tuple[int, int, int, int], px: int, max_bytes: int) -> Canvas:
        """A canvas for tiles ``box`` = (ix0, ix1, iy0, iy1) with room around them to move
        into (less room if that would pass ``max_bytes``)."""
        ix0, ix1, iy0, iy1 = box
        nx, ny = ix1 - ix0 + 1, iy1 - iy0 + 1
        margin = max(nx, ny) // 2 + 1
        while margin > 0 and (nx + 2 * margin) * (ny + 2 * margin) * px * px * 3 > max_bytes:
            margin //= 2
        shape = ((ny + 2 * margin) * px, (nx + 2 * margin) * px, 3)
        return cls(np.zeros(shape, np.uint8), ix0 - margin, iy1 + margin, px)

    def covers(self, box: tuple[int, int, int, int]) -> bool:
        ix0, ix1, iy0, iy1 = box
        rows, cols = self.img.shape[0] // self.px, self.img.shape[1] // self.px
        return (
            ix0 >= self.ix0 and ix1 < self.ix0 + cols and iy1 <= self.iy1 and iy0 > self.iy1 - rows
        )

    def slot(self, ix: int, iy: int) -> tuple[slice, slice]:
        row, col = (self.iy1 - iy) * self.px, (ix - self.ix0) * self.px
        return slice(row, row + self.px), slice(col, col + self.px)

    def view(self, box: tuple[int, int, int, int]) -> U8:
        """The part of the canvas holding tiles ``box`` (a view, no copy)."""
        ix0, ix1, iy0, iy1 = box
        rows, cols = self.slot(ix0, iy1)
        out: U8 = self.img[rows.start : rows.start + (iy1 - iy0 + 1) * self.px,
                           cols.start : cols.start + (ix1 - ix0 + 1) * self.px]  # fmt: skip
        return out


def world_key(world: World) -> str:
    """Seed, hash of the world and painter version: the folder name of a world's tiles."""
    digest = hashlib.sha256(world.to_json().encode()).hexdigest()[:16]
    return f"seed{world.seed}-{digest}-v{PAINT_VERSION}"


class DiskTiles:
    """Painted tiles of one world under ``root``/<world key>/L<level>/<ix>_<iy>.npy."""

    def __init__(self, root: Path, world: World, tile_px: int) -> None:
        self.dir = Path(root) / world_key(world)
        self.shape = (tile_px, tile_px, 3)

    def path(self, key: TileKey) -> Path:
        level, ix, iy = key
        return self.dir / f"L{level}" / f"{ix}_{iy}.npy"

    def has(self, key: TileKey) -> bool:
        return self.path(key).is_file()

    def load(self, key: TileKey) -> U8 | None:
        """The stored tile, or None if absent or unreadable."""
        try:
            img = np.load(self.path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if img.shape != self.shape or img.dtype != np.uint8:
            return None
        out: U8 = np.ascontiguousarray(img)
        return out

    def save(self, key: TileKey, img: U8) -> None:
        """Stores a tile atomically; a full or read-only disk only loses the copy."""
        target = self.path(key)
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, img, allow_pickle=False)
            Path(tmp).replace(target)
        except OSError:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    Path(tmp).unlink()
