"""YOLO text labels: detect and segment import (polygons become boxes), detect export.

A label line is ``class cx cy w h`` (detect) or ``class x1 y1 x2 y2 … xn yn`` with n ≥ 3
(segment; a polygon's box is the min/max of its points), all normalised to the image size.
Labels sit where Ultralytics looks for them: the image path with its last ``images`` folder
replaced by ``labels`` and the suffix by ``.txt`` (or next to the image). Class names come
from ``data.yaml`` (list or mapping), ``classes.txt`` or ``obj.names`` in the folder or its
parent. Roboflow copies ``xxx_jpg.rf.<hash>.jpg`` share the group ``xxx``.

Imports: the standard library, PyYAML, :mod:`xunjian.datasets` records/validate/_common.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from xunjian.datasets.formats._common import (
    export_names,
    images_under,
    place_image,
    read_provenance,
    source_name,
    split_from_path,
    split_of,
    walk,
)
from xunjian.datasets.records import Box, Dataset, LabelledImage, Problem, group_of
from xunjian.datasets.validate import check_boxes, image_size, orientation_problem
from xunjian.errors import InputError

NAME_FILES = ("classes.txt", "obj.names", "names.txt")
SPLIT_ORDER = ("train", "val", "test")


def label_path(image: Path) -> Path:
    """Where a YOLO label for ``image`` lives (Ultralytics' rule)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def read_names(root: Path) -> tuple[str, ...] | None:
    """Class names in id order from data.yaml / classes.txt near ``root``, or None."""
    for folder in (root, root.parent):
        for yaml_name in ("data.yaml", "dataset.yaml"):
            path = folder / yaml_name
            if path.is_file():
                try:
                    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (yaml.YAMLError, OSError, UnicodeDecodeError):
                    continue
                names = loaded.get("names") if isinstance(loaded, dict) else None
                if isinstance(names, list):
                    return tuple(str(n) for n in names)
                if isinstance(names, dict):
                    return tuple(str(names[k]) for k in sorted(names, key=int))
        for name_file in NAME_FILES:
            path = folder / name_file
            if path.is_file():
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
                return tuple(line.strip() for line in lines if line.strip())
    return None


@dataclass(frozen=True, slots=True)
class ParsedLabel:
    """One label file: its boxes, how many came from polygons, and ids without a name."""

    boxes: tuple[Box, ...]
    polygons: int
    unknown: tuple[tuple[int, int], ...]  # (line number, class id)


def parse_label(text: str, names: tuple[str, ...], width: int, height: int) -> ParsedLabel:
    """Boxes in pixels from one label file's text; InputError for a garbled line.

    With no names known at all, boxes are named ``class_<id>``; with names, a box whose id
    has none is left out and listed in ``unknown``.
    """
    boxes: list[Box] = []
    unknown: list[tuple[int, int]] = []
    polygons = 0
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise InputError(f"line {number} is {line.strip()!r}; expected numbers") from None
        if not math.isfinite(values[0]) or values[0] < 0 or values[0] != int(values[0]):
            raise InputError(f"line {number}: class {fields[0]!r} is not a class id")
        class_id = int(values[0])
        coords = values[1:]
        if len(coords) == 4:
            cx, cy, w, h = coords
            x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(coords) >= 6 and len(coords) % 2 == 0:
            xs, ys = coords[0::2], coords[1::2]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
            polygons += 1
        else:
            raise InputError(
                f"line {number} has {len(fields)} fields; expected 5 (box) or an odd number "
                "≥ 7 (polygon)"
            )
        if names and class_id >= len(names):
            unknown.append((number, class_id))
            continue
        name = names[class_id] if names else f"class_{class_id}"
        boxes.append(Box(name, x1 * width, y1 * height, x2 * width, y2 * height))
    return ParsedLabel(tuple(boxes), polygons, tuple(unknown))


def import_yolo(root: Path, *, source: str | None = None) -> Dataset:
    """Every image under ``root`` with its label file (detect or segment lines)."""
    source = source or source_name(root)
    names = read_names(root)
    problems: list[Problem] = []
    if names is None:
        problems.append(
            Problem(str(root), "no_class_names", "no data.yaml/classes.txt; ids used", "warning")
        )
    images = images_under(root)
    records: list[LabelledImage] = []
    expected_labels: set[Path] = set()
    for image in images:
        label = label_path(image)
        expected_labels.add(label)
        record, found = _record(image, label, names or (), source, root)
        problems += found
        if record is not None:
            records.append(record)
    for txt in walk(root):
        in_labels = "labels" in txt.parts[len(root.parts) :]
        orphan = txt.suffix == ".txt" and in_labels and txt not in expected_labels
        if orphan and txt.name not in NAME_FILES:
            problems.append(Problem(str(txt), "missing_image", "label file has no image"))
    licence, _ = read_provenance(root)
    return Dataset(
        images=tuple(records),
        name=source,
        sources=(source,),
        licences={source: licence},
        problems=tuple(problems),
        class_names=names or (),
    )


def _record(
    image: Path, label: Path, names: tuple[str, ...], source: str, root: Path
) -> tuple[LabelledImage | None, list[Problem]]:
    if not label.is_file():
        return None, [Problem(str(image), "missing_label", "no label file; skipped", "warning")]
    try:
        width, height = image_size(image)
    except InputError as error:
        return None, [Problem(str(image), "unreadable_image", f"{error.reason}; skipped")]
    problems: list[Problem] = []
    try:
        parsed = parse_label(label.read_text(encoding="utf-8"), names, width, height)
    except InputError as error:
        return None, [Problem(str(label), "garbled_label", f"{error.reason}; image skipped")]
    except (UnicodeDecodeError, OSError) as error:
        return None, [Problem(str(label), "garbled_label", f"cannot read: {error}; skipped")]
    problems += [
        Problem(
            str(label),
            "unknown_class",
            f"line {line}: class id {class_id} has no name (ids 0..{len(names) - 1}); box dropped",
        )
        for line, class_id in parsed.unknown
    ]
    if not parsed.boxes and not parsed.unknown:
        problems.append(
            Problem(str(label), "empty_label", "no objects; kept as background", "warning")
        )
    rotated = orientation_problem(image)
    if rotated is not None:
        problems.append(rotated)
    boxes, found = check_boxes(parsed.boxes, width, height, str(label))
    record = LabelledImage(
        path=image,
        width=width,
        height=height,
        boxes=boxes,
        source=source,
        group=group_of(image),
        split=split_from_path(image, root),
    )
    return record, problems + found


def yolo_line(box: Box, class_id: int, width: int, height: int) -> str:
    """One ``class cx cy w h`` line, normalised, 6 decimals (≈0.004 px at 4000 px)."""
    cx = (box.x1 + box.x2) / 2 / width
    cy = (box.y1 + box.y2) / 2 / height
    return f"{class_id} {cx:.6f} {cy:.6f} {box.width / width:.6f} {box.height / height:.6f}"


def export_yolo(
    dataset: Dataset,
    out: Path,
    *,
    names: tuple[str, ...] | None = None,
    link: bool = True,
) -> Path:
    """Write ``images/<split>``, ``labels/<split>`` and ``data.yaml``; returns data.yaml.

    ``names`` fixes the class order (boxes of other classes are left out); by default the
    dataset's own names. Images are hard- or sym-linked unless ``link`` is False.
    """
    names = names if names is not None else dataset.names()
    ids = {name: i for i, name in enumerate(names)}
    splits: set[str] = set()
    for image, file_name in zip(dataset.images, export_names(dataset), strict=True):
        split = split_of(image)
        splits.add(split)
        place_image(image.path, out / "images" / split / file_name, link=link)
        lines = [
            yolo_line(box, ids[box.class_name], image.width, image.height)
            for box in image.boxes
            if box.class_name in ids
        ]
        label = out / "labels" / split / f"{Path(file_name).stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return write_data_yaml(out, names, splits)


def write_data_yaml(out: Path, names: tuple[str, ...], splits: set[str]) -> Path:
    """An Ultralytics data.yaml; with no val split, val points at train (Ultralytics needs one)."""
    present = [s for s in SPLIT_ORDER if s in splits] or ["train"]
    config: dict[str, object] = {"path": str(out.resolve())}
    for split in SPLIT_ORDER:
        if split in present:
            config[split] = f"images/{split}"
    config.setdefault("val", config.get("train", "images/train"))
    config["nc"] = len(names)
    config["names"] = dict(enumerate(names))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "data.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
