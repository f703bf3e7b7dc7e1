"""The in-memory labelled dataset every format reads into and writes from.

A :class:`Dataset` is a tuple of :class:`LabelledImage` (path, size, pixel boxes, source,
group, own split) plus provenance (sources, licences) and the problems met while reading it.
Records are frozen and sort canonically, so a content-hashed dataset version can later be
made from :meth:`Dataset.canonical_records` plus the image bytes.

``group`` ties together images that come from one source photo (Roboflow augmented copies,
UAV-PDD flips and quadrant tiles, synthetic tiles of one frame, tiles cut by a build):
train/val splits never separate a group. This module imports only the standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple

Split = Literal["train", "val", "test"]
Severity = Literal["error", "warning"]

_SPLIT_ALIASES: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}

# Roboflow renames every export ``<stem>_<ext>.rf.<32 hex>.<ext>``: copies share ``<stem>``.
_ROBOFLOW = re.compile(r"^(?P<stem>.+?)(?:_(?:jpe?g|png|bmp|tiff?|webp))?\.rf\.[0-9a-f]{32}$", re.I)
# Tiles cut from one frame (``xunjian synth export-yolo``): ``<frame>_<x:05d>_<y:05d>``.
_TILE = re.compile(r"^(?P<stem>.+)_\d{5}_\d{5}$")
# UAV-PDD2023 names flipped/rotated variants ``lr_ tb_ r180_`` and quadrant tiles of one frame.
_UAV_PDD = re.compile(
    r"^(?:(?:lr|tb|r90|r180|r270)_)?(?P<frame>\d+)(?:_(?:top|bottom)_(?:left|right))?$", re.I
)


def split_name(name: str) -> Split | None:
    """``train``/``val``/``test`` for a folder name such as ``valid``; None when not a split."""
    return _SPLIT_ALIASES.get(name.lower())


def group_of(path: str | Path) -> str:
    """The source-photo key of an image file name (augmented copies share it)."""
    stem = Path(path).stem
    roboflow = _ROBOFLOW.match(stem)
    if roboflow:
        return roboflow["stem"]
    uav = _UAV_PDD.match(stem)
    if uav:
        return uav["frame"]
    tile = _TILE.match(stem)
    return tile["stem"] if tile else stem


class Box(NamedTuple):
    """One labelled object: class name and corners in pixels (x1 < x2, y1 < y2)."""

    class_name: str
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def renamed(self, class_name: str) -> Box:
        return self._replace(class_name=class_name)

    def scaled(self, sx: float, sy: float) -> Box:
        return Box(self.class_name, self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.class_name, self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def clipped(self, width: float, height: float) -> Box:
        width, height = float(width), float(height)
        return Box(
            self.class_name,
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input file. ``error``: something (a box, an image) was dropped;
    ``warning``: kept, perhaps fixed (a clipped box). ``kind`` is a short tag for counting."""

    file: str
    kind: str
    reason: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.file}: {self.reason}"


@dataclass(frozen=True, slots=True)
class LabelledImage:
    """An image file with its boxes. ``split`` is the split its own dataset put it in."""

    path: Path
    width: int
    height: int
    boxes: tuple[Box, ...]
    source: str
    group: str
    split: Split | None = None

    @property
    def key(self) -> tuple[str, str]:
        """The key that keeps augmented copies together across train/val."""
        return (self.source, self.group)

    def with_boxes(self, boxes: tuple[Box, ...]) -> LabelledImage:
        return replace(self, boxes=boxes)

    def canonical(self) -> dict[str, object]:
        """A JSON-ready record with rounded coordinates: stable input for content hashes."""
        return {
            "path": self.path.as_posix(),
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "group": self.group,
            "split": self.split,
            "boxes": [[b.class_name, *(round(v, 3) for v in b[1:])] for b in self.boxes],
        }


@dataclass(frozen=True, slots=True)
class Dataset:
    """Labelled images from one or more sources, with provenance and read problems."""

    images: tuple[LabelledImage, ...]
    name: str
    sources: tuple[str, ...] = ()
    licences: dict[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    class_names: tuple[str, ...] = ()

    def class_counts(self) -> Counter[str]:
        """Boxes per class name."""
        return Counter(b.class_name for image in self.images for b in image.boxes)

    def image_counts(self) -> Counter[str]:
        """Images that hold at least one box of each class."""
        return Counter(c for image in self.images for c in {b.class_name for b in image.boxes})

    @property
    def box_count(self) -> int:
        return sum(len(image.boxes) for image in self.images)

    def names(self) -> tuple[str, ...]:
        """Declared class names first (in their order), then any other names seen, sorted."""
        seen = set(self.class_counts())
        return self.class_names + tuple(sorted(seen - set(self.class_names)))

    def with_images(self, images: tuple[LabelledImage, ...]) -> Dataset:
        return replace(self, images=images)

    def canonical_records(self) -> list[dict[str, object]]:
        """Every image as a canonical record, in a stable order."""
        ordered = sorted(self.images, key=lambda i: (i.source, i.path.as_posix()))
        return [image.canonical() for image in ordered]

    def label_digest(self) -> str:
        """SHA-256 of the labels (not the pixels): equal labels give equal digests."""
        text = json.dumps(self.canonical_records(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def merge(name: str, parts: list[Dataset]) -> Dataset:
    """One dataset from several, keeping every source, licence and problem."""
    licences: dict[str, str] = {}
    for part in parts:
        licences.update(part.licences)
    names: list[str] = []
    for part in parts:
        names += [n for n in part.class_names if n not in names]
    return Dataset(
        images=tuple(image for part in parts for image in part.images),
        name=name,
        sources=tuple(dict.fromkeys(s for part in parts for s in part.sources)),
        licences=licences,
        problems=tuple(p for part in parts for p in part.problems),
        class_names=tuple(names),
    )
