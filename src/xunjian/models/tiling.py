"""Tiled inference for large frames with small targets: plan, batch, merge.

A 20 MP drone frame letterboxed into a 640 px network shrinks a 30 cm pothole to a few
pixels; cutting the frame into overlapping network-sized tiles keeps targets at full size.
:func:`plan_tiles` covers the image (the last tile in a row or column flush with the edge),
:func:`predict_tiled` pushes the tiles through every detector of a
:class:`~xunjian.models.detector.DetectorSet` in batches (one letterbox pass per batch for all
detectors) and :func:`merge_tile_boxes` turns per-tile boxes into one set per image:

* a target cut by a tile edge comes out as ONE box: two boxes of the same class from
  different tiles are fused into their union when one of them ends on an interior edge of its
  tile (within ``edge_tolerance``), the other reaches across that edge line, they overlap
  across it, and they overlap along it by at least ``min_edge_overlap`` of the shorter one;
  fusion is transitive (a target on a four-tile corner fuses from four pieces);
* then per-class NMS over the union removes the duplicates the overlaps produce.

:func:`plan_passes` chooses between tiling and one full-image pass: tile only when the frame is
much larger than the network input (``auto_factor``), or as configured.

May import: numpy, ``xunjian.models.backends``, ``xunjian.models.detector``, ``xunjian.errors``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from xunjian.models.backends import Boxes, Image, PredictParams, batched_nms

if TYPE_CHECKING:
    from xunjian.models.detector import DetectorSet

__all__ = ["Rect", "TileConfig", "merge_tile_boxes", "plan_passes", "plan_tiles", "predict_tiled"]

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels, x1/y1 exclusive


@dataclass(frozen=True, slots=True)
class TileConfig:
    """How a frame is cut. ``tile`` None means the detectors' network input size.

    ``mode``: ``"auto"`` tiles when the frame is more than ``auto_factor`` times the network
    input along either side, ``"tiles"`` always tiles, ``"full"`` never does (whole frame
    letterboxed). ``batch_size`` tiles go through the networks per call.
    """

    tile: int | None = None
    overlap: float = 0.2
    batch_size: int = 8
    mode: Literal["auto", "tiles", "full"] = "auto"
    auto_factor: float = 1.5
    edge_tolerance: float = 0.01  # of the tile side, at least 2 px
    min_edge_overlap: float = 0.5

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile < 32:
            raise ValueError(f"tile: expected at least 32 px, got {self.tile}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap: expected a fraction in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: expected at least 1, got {self.batch_size}")
        if self.mode not in ("auto", "tiles", "full"):
            raise ValueError(f"mode: expected auto, tiles or full, got {self.mode!r}")


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile flush with the edge
    return starts


def plan_tiles(width: int, height: int, tile: int | tuple[int, int], overlap: float) -> list[Rect]:
    """Tiles (x0, y0, x1, y1) covering a ``width`` × ``height`` image, row by row.

    Neighbours overlap by at least ``overlap`` of the tile; the last tile of each row and
    column is flush with the image edge. An image smaller than a tile gets one tile of its size.
    """
    tw, th = (tile, tile) if isinstance(tile, int) else tile
    if width < 1 or height < 1:
        raise ValueError(f"expected a positive image size, got {width}×{height}")
    if tw < 1 or th < 1:
        raise ValueError(f"expected a positive tile size, got {tw}×{th}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap: expected a fraction in [0, 1), got {overlap}")
    sx = max(1, math.floor(tw * (1.0 - overlap)))
    sy = max(1, math.floor(th * (1.0 - overlap)))
    return [
        (x, y, min(x + tw, width), min(y + th, height))
        for y in _starts(height, th, sy)
        for x in _starts(width, tw, sx)
    ]


def plan_passes(
    width: int, height: int, input_hw: tuple[int, int], config: TileConfig
) -> tuple[list[Rect], bool]:
    """The regions to run and whether they are tiles (False: one full-image pass)."""
    tiled = config.mode == "tiles" or (
        config.mode == "auto"
        and max(width / input_hw[1], height / input_hw[0]) > config.auto_factor
    )
    if not tiled:
        return [(0, 0, width, height)], False
    tile = config.tile or max(input_hw)
    return plan_tiles(width, height, tile, config.overlap), True


def _fuse_groups(
    boxes: Boxes,
    tile_of: NDArray[np.intp],
    rects: NDArray[np.float32],
    image_wh: tuple[int, int],
    tol: NDArray[np.float32],
    min_overlap: float,
) -> NDArray[np.intp]:
    """Union-find root of each box after fusing pieces cut by tile edges."""
    n = len(boxes)
    parent = np.arange(n)
    if n < 2:
        return parent
    b, t = boxes.xyxy.astype(np.float64), rects[tile_of].astype(np.float64)
    limit = np.array([0.0, 0.0, image_wh[0], image_wh[1]])
    # cut[k, s]: box k ends on side s (x0, y0, x1, y1) of its tile, and that side is interior.
    cut = (np.abs(b - t) <= tol[tile_of, None]) & (np.abs(t - limit) > 0.5)
    candidates = np.flatnonzero(cut.any(axis=1))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i in candidates:
        same = (boxes.cls == boxes.cls[i]) & (tile_of != tile_of[i])
        for side in np.flatnonzero(cut[i]):
            line = t[i, side]
            axis = side % 2  # 0: a vertical edge (x), 1: a horizontal edge (y)
            lo, hi = b[:, axis], b[:, axis + 2]
            if side >= 2:  # i ends on its tile's right/bottom edge: j must reach past it
                across = (hi > line + tol[tile_of[i]]) & (lo < b[i, side])
            else:
                across = (lo < line - tol[tile_of[i]]) & (hi > b[i, side])
            other = 1 - axis
            along = np.minimum(b[:, other + 2], b[i, other + 2]) - np.maximum(
                b[:, other], b[i, other]
            )
            shorter = np.minimum(b[:, other + 2] - b[:, other], b[i, other + 2] - b[i, other])
            match = same & across & (along >= min_overlap * np.maximum(shorter, 1e-6))
            for j in np.flatnonzero(match):
                ri, rj = find(int(i)), find(int(j))
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)], dtype=np.intp)


def merge_tile_boxes(
    per_tile: Sequence[Boxes],
    rects: Sequence[Rect],
    image_wh: tuple[int, int],
    *,
    iou: float = 0.7,
    edge_tolerance: float = 0.01,
    min_edge_overlap: float = 0.5,
    max_det: int | None = None,
) -> Boxes:
    """One set of boxes for the image from boxes already in image pixels, one set per tile."""
    if len(per_tile) != len(rects):
        raise ValueError(f"expected one Boxes per tile ({len(rects)}), got {len(per_tile)}")
    boxes = Boxes.concat(per_tile)
    if len(boxes) == 0:
        return boxes
    tile_of = np.repeat(np.arange(len(rects)), [len(p) for p in per_tile]).astype(np.intp)
    rect_arr = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
    sides = np.maximum(rect_arr[:, 2] - rect_arr[:, 0], rect_arr[:, 3] - rect_arr[:, 1])
    tol = np.maximum(2.0, edge_tolerance * sides).astype(np.float32)
    roots = _fuse_groups(boxes, tile_of, rect_arr, image_wh, tol, min_edge_overlap)
    if np.any(roots != np.arange(len(roots))):
        groups = np.unique(roots)
        xyxy = np.empty((len(groups), 4), np.float32)
        conf = np.empty(len(groups), np.float32)
        for k, g in enumerate(groups):
            members = roots == g
            part = boxes.xyxy[members]
            xyxy[k] = (*part[:, :2].min(axis=0), *part[:, 2:].max(axis=0))
            conf[k] = boxes.conf[members].max()
        boxes = Boxes(xyxy, conf, boxes.cls[groups])
    kept = boxes.take(batched_nms(boxes, iou))
    return kept if max_det is None else kept.take(np.arange(min(max_det, len(kept))))


def predict_tiled(
    detectors: DetectorSet,
    image: Image,
    rects: Sequence[Rect],
    *,
    params: PredictParams,
    config: TileConfig,
) -> dict[str, Boxes]:
    """Every detector's boxes for ``image`` (in its pixels), from the given tiles.

    Tiles are cut once and batched; each batch is shared by all detectors. With one region
    covering the whole image this is a plain full-image pass (no merging needed).
    """
    per_detector: dict[str, list[Boxes]] = {d.name: [] for d in detectors}
    for start in range(0, len(rects), config.batch_size):
        chunk = rects[start : start + config.batch_size]
        crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in chunk]
        results = detectors.predict(crops, params)
        for name, boxes_per_tile in results.items():
            for (x0, y0, _, _), found in zip(chunk, boxes_per_tile, strict=True):
                per_detector[name].append(found.scaled(1.0, 1.0, x0, y0))
    height, width = image.shape[:2]
    if len(rects) == 1:
        return {name: parts[0] for name, parts in per_detector.items()}
    return {
        name: merge_tile_boxes(
            parts,
            rects,
            (width, height),
            iou=params.iou,
            edge_tolerance=config.edge_tolerance,
            min_edge_overlap=config.min_edge_overlap,
            max_det=params.max_det,
        )
        for name, parts in per_detector.items()
    }
