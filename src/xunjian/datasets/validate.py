"""Checks every importer applies, and the report of what an import met.

Rules (one bad file never stops an import; each problem names the file and the reason):

- a box a little outside the image (≤ ``CLIP_TOLERANCE_PX``, rounding or 1-based VOC) is
  clipped silently; further outside but overlapping the image: clipped, ``warning``;
  wholly outside: dropped, ``error``;
- a degenerate box (non-finite, or no width or height left after clipping): dropped,
  ``error``; a tiny one (under ``MIN_BOX_PX`` either way) is kept with a ``warning``, so
  counts stay equal to the label files (trainers drop such boxes themselves);
- an unknown class (a YOLO id without a name, a COCO category that is not declared): the box
  is dropped, ``error``;
- an image without a label file is skipped (``warning``): an *empty* label file is how a
  background image is marked; a label file without its image: ``error``;
- an empty label file: kept as a background image (``warning``); a garbled one, or an image
  that cannot be opened: the image is dropped (``error``).

Imports: the standard library, Pillow, :mod:`xunjian.datasets.records`, :mod:`xunjian.errors`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from xunjian.datasets.records import Box, Dataset, Problem
from xunjian.errors import InputError

CLIP_TOLERANCE_PX = 2.0
MIN_BOX_PX = 1.0
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header; InputError naming the file when unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"cannot read image: {error}", source=str(path)) from None
    if width <= 0 or height <= 0:
        raise InputError(f"image has no pixels ({width}×{height})", source=str(path))
    return width, height


def orientation_problem(path: Path) -> Problem | None:
    """A warning when EXIF orientation rotates the picture: labels refer to stored pixels."""
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(274)
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if orientation in _ROTATING_ORIENTATIONS:
        return Problem(
            str(path),
            "exif_rotation",
            f"EXIF orientation {orientation} rotates the image; boxes assume stored pixels",
            "warning",
        )
    return None


def check_box(
    box: Box, width: int, height: int, file: str, index: int
) -> tuple[Box | None, Problem | None]:
    """The box clipped to the image, or None and the reason it was dropped."""
    label = f"box {index} ({box.class_name})"
    if not all(math.isfinite(v) for v in box[1:]):
        return None, Problem(file, "degenerate_box", f"{label} has non-finite coordinates")
    if box.x2 <= 0 or box.y2 <= 0 or box.x1 >= width or box.y1 >= height:
        return None, Problem(
            file,
            "box_outside",
            f"{label} [{box.x1:.1f}, {box.y1:.1f}, {box.x2:.1f}, {box.y2:.1f}] lies wholly "
            f"outside the {width}×{height} image; dropped",
        )
    overshoot = max(-box.x1, -box.y1, box.x2 - width, box.y2 - height, 0.0)
    clipped = box.clipped(width, height)
    size = f"{clipped.width:.2f}×{clipped.height:.2f} px"
    if clipped.width <= 0 or clipped.height <= 0:
        return None, Problem(file, "degenerate_box", f"{label} is {size}: no area; dropped")
    if clipped.width < MIN_BOX_PX or clipped.height < MIN_BOX_PX:
        return clipped, Problem(
            file,
            "tiny_box",
            f"{label} is {size}; expected at least {MIN_BOX_PX:g} px each way; kept",
            "warning",
        )
    if overshoot > CLIP_TOLERANCE_PX:
        return clipped, Problem(
            file,
            "box_clipped",
            f"{label} reaches {overshoot:.1f} px outside the {width}×{height} image; clipped",
            "warning",
        )
    return clipped, None


def check_boxes(
    boxes: Iterable[Box], width: int, height: int, file: str
) -> tuple[tuple[Box, ...], list[Problem]]:
    """Every box checked: the kept (clipped) boxes and the problems met."""
    kept: list[Box] = []
    problems: list[Problem] = []
    for index, box in enumerate(boxes):
        good, problem = check_box(box, width, height, file, index)
        if good is not None:
            kept.append(good)
        if problem is not None:
            problems.append(problem)
    return tuple(kept), problems


@dataclass(frozen=True, slots=True)
class Report:
    """What a dataset holds and what went wrong reading it."""

    name: str
    images: int
    background_images: int
    boxes: int
    class_boxes: dict[str, int]
    class_images: dict[str, int]
    splits: dict[str, int]
    errors: int
    warnings: int
    problem_kinds: dict[str, int]
    problems: tuple[Problem, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "images": self.images,
            "background_images": self.background_images,
            "boxes": self.boxes,
            "classes": {
                name: {"boxes": count, "images": self.class_images.get(name, 0)}
                for name, count in self.class_boxes.items()
            },
            "splits": self.splits,
            "errors": self.errors,
            "warnings": self.warnings,
            "problem_kinds": self.problem_kinds,
            "problems": [
                {"file": p.file, "kind": p.kind, "severity": p.severity, "reason": p.reason}
                for p in self.problems
            ],
        }


def report(dataset: Dataset) -> Report:
    """Counts per class (in the dataset's name order), per split, and the problems."""
    boxes = dataset.class_counts()
    images = dataset.image_counts()
    splits = Counter(image.split or "unsplit" for image in dataset.images)
    return Report(
        name=dataset.name,
        images=len(dataset.images),
        background_images=sum(1 for image in dataset.images if not image.boxes),
        boxes=dataset.box_count,
        class_boxes={name: boxes[name] for name in dataset.names()},
        class_images={name: images[name] for name in dataset.names()},
        splits=dict(sorted(splits.items())),
        errors=sum(1 for p in dataset.problems if p.severity == "error"),
        warnings=sum(1 for p in dataset.problems if p.severity == "warning"),
        problem_kinds=dict(sorted(Counter(p.kind for p in dataset.problems).items())),
        problems=dataset.problems,
    )
