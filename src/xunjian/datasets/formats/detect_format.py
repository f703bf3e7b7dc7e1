"""Which format a folder holds, and one entry point to import or export any of them.

Detection looks, in order, for a COCO JSON (``images`` + ``annotations``), VOC XML files
(``<annotation>`` root) and YOLO label files (``labels/*.txt`` or text next to images);
YOLO is reported as ``yolo-seg`` when a sampled label line holds a polygon.

Imports: the standard library and the format modules of this package.
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Literal, get_args

from xunjian.datasets.formats._common import walk
from xunjian.datasets.formats.coco import export_coco, import_coco, is_coco
from xunjian.datasets.formats.voc import export_voc, import_voc
from xunjian.datasets.formats.yolo import NAME_FILES, export_yolo, import_yolo
from xunjian.datasets.records import Dataset
from xunjian.datasets.validate import IMAGE_SUFFIXES
from xunjian.errors import InputError

Format = Literal["voc", "coco", "yolo", "yolo-seg"]
FORMATS: tuple[str, ...] = get_args(Format)
_SAMPLE_LABELS = 50


def detect_format(root: Path) -> Format:
    """The format of a dataset folder (or COCO JSON file); InputError when none fits."""
    if not root.exists():
        raise InputError("no such file or folder", source=str(root))
    if root.is_file():
        if root.suffix.lower() == ".json" and is_coco(root):
            return "coco"
        raise InputError("expected a dataset folder or a COCO JSON file", source=str(root))
    files = list(walk(root))
    if any(p.suffix.lower() == ".json" and is_coco(p) for p in files):
        return "coco"
    if any(p.suffix.lower() == ".xml" and _is_voc(p) for p in islice(_xmls(files), 20)):
        return "voc"
    image_stems = {(p.parent, p.stem) for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    labels = [
        p
        for p in files
        if p.suffix == ".txt"
        and p.name not in NAME_FILES
        and ("labels" in p.relative_to(root).parts or (p.parent, p.stem) in image_stems)
    ]
    if labels:
        return "yolo-seg" if any(_has_polygon(p) for p in labels[:_SAMPLE_LABELS]) else "yolo"
    if image_stems:
        raise InputError(
            "holds images but no label files (COCO JSON, VOC XML or YOLO txt); unlabelled?",
            source=str(root),
        )
    raise InputError(
        "found no COCO JSON, VOC XML or YOLO label files; expected one of those formats",
        source=str(root),
    )


def _xmls(files: list[Path]) -> list[Path]:
    return [p for p in files if p.suffix.lower() == ".xml"]


def _is_voc(path: Path) -> bool:
    try:
        head = path.read_bytes()[:2048]
    except OSError:
        return False
    return b"<annotation" in head


def _has_polygon(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return False
    return any(len(line.split()) > 5 for line in lines[:20])


def import_dataset(root: Path, fmt: str = "auto", *, source: str | None = None) -> Dataset:
    """Read a dataset folder in ``fmt`` (``auto`` detects it). Problems go in the report."""
    chosen = detect_format(root) if fmt == "auto" else fmt
    if chosen == "voc":
        return import_voc(root, source=source)
    if chosen == "coco":
        return import_coco(root, source=source)
    if chosen in ("yolo", "yolo-seg"):
        return import_yolo(root, source=source)
    raise InputError(f"format {fmt!r} is not one of auto, {', '.join(FORMATS)}")


def export_dataset(
    dataset: Dataset,
    out: Path,
    fmt: str = "yolo",
    *,
    names: tuple[str, ...] | None = None,
    link: bool = True,
) -> Path:
    """Write ``dataset`` under ``out`` as ``yolo`` (detect), ``coco`` or ``voc``."""
    if fmt == "yolo":
        return export_yolo(dataset, out, names=names, link=link)
    if fmt == "coco":
        export_coco(dataset, out, names=names, link=link)
        return out
    if fmt == "voc":
        return export_voc(dataset, out, link=link)
    raise InputError(f"export format {fmt!r} is not one of yolo, coco, voc")
