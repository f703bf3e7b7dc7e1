"""Fit or tile large labelled images to a training size, moving their boxes with them.

``none`` keeps every image as it is (the trainer letterboxes); ``fit`` shrinks images whose
long side exceeds ``imgsz``; ``tile`` cuts images larger than ``TILE_ABOVE × imgsz`` into
overlapping ``imgsz`` squares, as detection does at run time, so thin cracks keep their
pixels. A box is kept in a tile when at least ``MIN_VISIBLE`` of its area lies inside.
Tiles keep their photo's group and split, so they can never straddle train/val.

Imports: the standard library, Pillow, :mod:`xunjian.datasets.records`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from xunjian.datasets.records import Box, Dataset, LabelledImage

ResizeMode = Literal["none", "fit", "tile"]
RESIZE_MODES: tuple[str, ...] = ("none", "fit", "tile")
TILE_ABOVE = 1.25
TILE_OVERLAP = 0.2
MIN_VISIBLE = 0.4
JPEG_QUALITY = 95


def tile_windows(
    width: int, height: int, size: int, overlap: float = TILE_OVERLAP
) -> list[tuple[int, int, int, int]]:
    """Windows ``(x0, y0, x1, y1)`` covering the image, evenly spread, at most ``size`` wide."""

    def starts(length: int) -> list[int]:
        if length <= size:
            return [0]
        count = math.ceil((length - size) / (size * (1 - overlap))) + 1
        return [round(i * (length - size) / (count - 1)) for i in range(count)]

    return [
        (x, y, min(x + size, width), min(y + size, height))
        for y in starts(height)
        for x in starts(width)
    ]


def boxes_in_window(
    boxes: tuple[Box, ...], window: tuple[int, int, int, int], min_visible: float = MIN_VISIBLE
) -> tuple[Box, ...]:
    """Boxes clipped to a window, in window pixels; those mostly outside are left out."""
    x0, y0, x1, y1 = window
    kept = []
    for box in boxes:
        inside = box.shifted(-x0, -y0).clipped(x1 - x0, y1 - y0)
        area = box.width * box.height
        if inside.width <= 0 or inside.height <= 0 or area <= 0:
            continue
        if inside.width * inside.height >= min_visible * area:
            kept.append(inside)
    return tuple(kept)


def derive_images(
    dataset: Dataset, work: Path, imgsz: int, mode: str
) -> tuple[Dataset, list[dict[str, Any]]]:
    """The dataset with large images fitted or tiled into ``work``; per output image, where
    it came from (``origin`` path, ``window`` in source pixels or None, ``scale``)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)}")
    images: list[LabelledImage] = []
    origins: list[dict[str, Any]] = []
    used: set[Path] = set()
    for image in dataset.images:
        long_side = max(image.width, image.height)
        if mode == "fit" and long_side > imgsz:
            fitted = _fit(image, _free(work, image, "", used), imgsz)
            images.append(fitted)
            origins.append(_origin(image, None, fitted.width / image.width))
        elif mode == "tile" and long_side > TILE_ABOVE * imgsz:
            for tile, window in _tiles(image, work, imgsz, used):
                images.append(tile)
                origins.append(_origin(image, window, 1.0))
        else:
            images.append(image)
            origins.append(_origin(image, None, 1.0))
    return dataset.with_images(tuple(images)), origins


def _origin(
    image: LabelledImage, window: tuple[int, int, int, int] | None, scale: float
) -> dict[str, Any]:
    return {
        "origin": str(image.path),
        "window": list(window) if window else None,
        "scale": round(scale, 6),
    }


def _free(work: Path, image: LabelledImage, suffix: str, used: set[Path]) -> Path:
    folder = work / image.source / (image.split or "train")
    path = folder / f"{image.path.stem}{suffix}.jpg"
    n = 1
    while path in used:
        path = folder / f"{image.path.stem}{suffix}-{n}.jpg"
        n += 1
    used.add(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _fit(image: LabelledImage, target: Path, imgsz: int) -> LabelledImage:
    scale = imgsz / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    with Image.open(image.path) as source:
        source.convert("RGB").resize(size, Image.Resampling.BILINEAR).save(
            target, quality=JPEG_QUALITY
        )
    sx, sy = size[0] / image.width, size[1] / image.height
    boxes = tuple(b.scaled(sx, sy) for b in image.boxes)
    return replace(image, path=target, width=size[0], height=size[1], boxes=boxes)


def _tiles(
    image: LabelledImage, work: Path, imgsz: int, used: set[Path]
) -> list[tuple[LabelledImage, tuple[int, int, int, int]]]:
    """Every tile of one image (decoded once), written as JPEG."""
    tiles = []
    with Image.open(image.path) as source:
        pixels = source.convert("RGB")
    for window in tile_windows(image.width, image.height, imgsz):
        x0, y0, x1, y1 = window
        target = _free(work, image, f"_{x0}_{y0}", used)
        pixels.crop(window).save(target, quality=JPEG_QUALITY)
        boxes = boxes_in_window(image.boxes, window)
        tile = replace(image, path=target, width=x1 - x0, height=y1 - y0, boxes=boxes)
        tiles.append((tile, window))
    return tiles
