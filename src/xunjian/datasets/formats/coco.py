"""COCO detection JSON: import and export.

Import reads every JSON under a folder that has ``images``, ``annotations`` and
``categories`` (``instances_train.json``, Roboflow's ``train/_annotations.coco.json``…).
An image's ``file_name`` is looked for next to the JSON, in ``images/<split>/`` beside it,
then by base name anywhere under the folder. The split comes from the JSON's folder or name.
A missing ``bbox`` is taken from the polygon ``segmentation``.
Export writes ``annotations/instances_<split>.json`` and ``images/<split>/``.

Imports: the standard library, :mod:`xunjian.datasets` records/validate/_common.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

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
from xunjian.datasets.records import (
    Box,
    Dataset,
    LabelledImage,
    Problem,
    Split,
    group_of,
    split_name,
)
from xunjian.datasets.validate import check_boxes, image_size
from xunjian.errors import InputError

_SPLIT_IN_NAME = re.compile(r"(train|val|valid|test)", re.I)


def is_coco(path: Path) -> bool:
    """Whether a JSON file looks like COCO detection (cheap: reads the file once)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(loaded, dict) and {"images", "annotations"} <= loaded.keys()


def coco_files(root: Path) -> list[Path]:
    """The JSON files to read: ``root`` itself, or every ``*.json`` below it."""
    if root.is_file():
        return [root]
    return [p for p in walk(root) if p.suffix.lower() == ".json"]


def _split_of_json(path: Path, root: Path) -> Split | None:
    split = split_from_path(path, root)
    if split is None:
        match = _SPLIT_IN_NAME.search(path.stem)
        if match:
            split = split_name(match[1])
    return split


def import_coco(root: Path, *, source: str | None = None) -> Dataset:
    """Every COCO JSON under ``root`` (or that one file); problems are reported, not raised."""
    folder = root if root.is_dir() else root.parent
    if root.is_file() and folder.name.lower() == "annotations":
        folder = folder.parent  # the COCO layout: annotations/ beside images/
    source = source or source_name(folder)
    by_name: dict[str, list[Path]] = defaultdict(list)
    all_images = images_under(folder)
    for image in all_images:
        by_name[image.name].append(image)
    problems: list[Problem] = []
    records: list[LabelledImage] = []
    names: list[str] = []
    listed: set[Path] = set()
    for json_path in coco_files(root):
        try:
            found = _read_json(json_path, folder, by_name, source, names, listed, problems)
        except _NotCocoError:
            if root.is_file():
                reason = "no 'images' and 'annotations' keys; not COCO"
                problems.append(Problem(str(json_path), "garbled_label", reason))
            continue  # in a folder: some other JSON (a manifest, a report)
        except InputError as error:
            problems.append(Problem(str(json_path), "garbled_label", f"{error.reason}; skipped"))
            continue
        records += found
    for image in all_images if root.is_dir() else ():
        if image not in listed:
            problems.append(
                Problem(str(image), "missing_label", "image is in no COCO file; skipped", "warning")
            )
    licence, _ = read_provenance(folder)
    return Dataset(
        images=tuple(records),
        name=source,
        sources=(source,),
        licences={source: licence},
        problems=tuple(problems),
        class_names=tuple(names),
    )


class _NotCocoError(Exception):
    """A well-formed JSON file that is not COCO: skipped without a problem."""


def _as_list(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(f"{key!r} is not a list of objects")
    return value


def _read_json(
    path: Path,
    root: Path,
    by_name: dict[str, list[Path]],
    source: str,
    names: list[str],
    listed: set[Path],
    problems: list[Problem],
) -> list[LabelledImage]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"garbled JSON: {error}") from None
    if not isinstance(data, dict):
        raise InputError("top level is not an object")
    if not {"images", "annotations"} <= data.keys():
        raise _NotCocoError
    categories = {c.get("id"): str(c.get("name")) for c in _as_list(data, "categories")}
    names += [n for n in categories.values() if n not in names]
    split = _split_of_json(path, root)
    boxes_of: dict[Any, list[Box]] = defaultdict(list)
    image_ids = {entry.get("id") for entry in _as_list(data, "images")}
    for index, ann in enumerate(_as_list(data, "annotations")):
        where = f"annotation {index} (id {ann.get('id')})"
        if ann.get("image_id") not in image_ids:
            problems.append(Problem(str(path), "missing_image", f"{where}: unknown image_id"))
        elif ann.get("category_id") not in categories:
            problems.append(
                Problem(
                    str(path),
                    "unknown_class",
                    f"{where}: category_id {ann.get('category_id')!r} is not declared; dropped",
                )
            )
        else:
            box = _box(ann, categories[ann["category_id"]])
            if box is None:
                problems.append(Problem(str(path), "garbled_label", f"{where}: no usable bbox"))
            else:
                boxes_of[ann["image_id"]].append(box)
    records: list[LabelledImage] = []
    for entry in _as_list(data, "images"):
        file_name = str(entry.get("file_name", ""))
        image = _locate(file_name, path, split, by_name)
        label = f"{path}#{file_name}"
        if image is None:
            problems.append(Problem(label, "missing_image", "image file not found; skipped"))
            continue
        listed.add(image)
        try:
            width, height = image_size(image)
        except InputError as error:
            problems.append(Problem(str(image), "unreadable_image", f"{error.reason}; skipped"))
            continue
        declared = (entry.get("width"), entry.get("height"))
        if declared != (width, height):
            problems.append(
                Problem(
                    label,
                    "size_mismatch",
                    f"JSON says {declared[0]}×{declared[1]}, the image is {width}×{height}",
                    "warning",
                )
            )
        boxes, found = check_boxes(boxes_of.get(entry.get("id"), []), width, height, label)
        problems += found
        records.append(LabelledImage(image, width, height, boxes, source, group_of(image), split))
    return records


def _box(ann: dict[str, Any], name: str) -> Box | None:
    bbox = ann.get("bbox")
    try:
        if isinstance(bbox, list) and len(bbox) == 4:
            x, y, w, h = (float(v) for v in bbox)
            return Box(name, x, y, x + w, y + h)
        polygons = ann.get("segmentation")
        if isinstance(polygons, list) and polygons and isinstance(polygons[0], list):
            xs = [float(v) for poly in polygons for v in poly[0::2]]
            ys = [float(v) for poly in polygons for v in poly[1::2]]
            return Box(name, min(xs), min(ys), max(xs), max(ys))
    except (TypeError, ValueError):
        return None
    return None


def _locate(
    file_name: str, json_path: Path, split: Split | None, by_name: dict[str, list[Path]]
) -> Path | None:
    if not file_name:
        return None
    candidates = [json_path.parent / file_name]
    if split is not None:
        candidates.append(json_path.parent.parent / "images" / split / file_name)
    candidates.append(json_path.parent / "images" / file_name)
    candidates.append(json_path.parent.parent / "images" / file_name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = by_name.get(Path(file_name).name, [])
    if split is not None:
        found = sorted(found, key=lambda p: split_from_path(p, json_path.parent) != split)
    return found[0] if found else None


def export_coco(
    dataset: Dataset,
    out: Path,
    *,
    names: tuple[str, ...] | None = None,
    link: bool = True,
) -> list[Path]:
    """Write one ``annotations/instances_<split>.json`` per split; returns their paths."""
    names = names if names is not None else dataset.names()
    ids = {name: i + 1 for i, name in enumerate(names)}
    categories = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(names)]
    per_split: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for image, file_name in zip(dataset.images, export_names(dataset), strict=True):
        split = split_of(image)
        doc = per_split.setdefault(split, {"images": [], "annotations": []})
        place_image(image.path, out / "images" / split / file_name, link=link)
        image_id = len(doc["images"]) + 1
        doc["images"].append(
            {"id": image_id, "file_name": file_name, "width": image.width, "height": image.height}
        )
        for box in image.boxes:
            if box.class_name not in ids:
                continue
            bbox = [round(v, 3) for v in (box.x1, box.y1, box.width, box.height)]
            doc["annotations"].append(
                {
                    "id": len(doc["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": ids[box.class_name],
                    "bbox": bbox,
                    "area": round(box.width * box.height, 3),
                    "iscrowd": 0,
                }
            )
    written: list[Path] = []
    for split_key, doc in sorted(per_split.items()):
        path = out / "annotations" / f"instances_{split_key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"info": {"description": dataset.name}, **doc, "categories": categories}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        written.append(path)
    return written
