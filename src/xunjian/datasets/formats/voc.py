"""Pascal VOC XML: import (any folder layout) and export.

Layouts read: the RDD2020/2022 one (``<country>/images`` + ``<country>/annotations/xmls``,
one or many countries), UAV-PDD2023 (``images`` + ``annotations/xmls``), classic VOC
(``JPEGImages`` + ``Annotations``) and XML files next to their images. Each XML is paired with
the image of the same stem nearest to it in the tree (then with its ``<filename>``). UAV-PDD
variant names (``lr_00088_top_left``) are grouped by frame (see ``records.group_of``).

Imports: the standard library, defusedxml, :mod:`xunjian.datasets` records/validate/_common.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # only to build XML for export; parsing uses defusedxml
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from defusedxml import ElementTree as SafeET

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


@dataclass(frozen=True, slots=True)
class VocAnnotation:
    """What one VOC XML says: file name, declared size (0 when absent) and boxes."""

    filename: str
    width: int
    height: int
    boxes: tuple[Box, ...]


def _number(element: ET.Element | None, tag: str, where: str) -> float:
    text = element.findtext(tag) if element is not None else None
    if text is None or not text.strip():
        raise InputError(f"{where} has no <{tag}>")
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where} <{tag}> is {text.strip()!r}; expected a number") from None


def read_voc(path: Path) -> VocAnnotation:
    """Parse one VOC XML; InputError naming the file for empty or garbled files."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"cannot read label file: {error}", source=str(path)) from None
    if not data.strip():
        raise InputError("empty label file", source=str(path))
    try:
        root = SafeET.fromstring(data)
        if root.tag != "annotation":
            raise InputError(f"root element is <{root.tag}>; expected <annotation>")
        size = root.find("size")
        width = int(_number(size, "width", "<size>")) if size is not None else 0
        height = int(_number(size, "height", "<size>")) if size is not None else 0
        boxes: list[Box] = []
        for index, obj in enumerate(root.iter("object")):
            name = (obj.findtext("name") or "").strip()
            if not name:
                raise InputError(f"object {index} has no <name>")
            where = f"object {index} ({name}) <bndbox>"
            bndbox = obj.find("bndbox")
            if bndbox is None:
                raise InputError(f"object {index} ({name}) has no <bndbox>")
            x1, y1, x2, y2 = (_number(bndbox, t, where) for t in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append(Box(name, x1, y1, x2, y2))
    except InputError as error:
        raise InputError(error.reason, source=str(path)) from None
    except (ET.ParseError, ValueError) as error:
        raise InputError(f"garbled XML: {error}", source=str(path)) from None
    return VocAnnotation((root.findtext("filename") or "").strip(), width, height, tuple(boxes))


def _nearest(xml: Path, candidates: list[Path]) -> Path | None:
    """The candidate image sharing the longest folder prefix with the XML."""
    if not candidates:
        return None

    def shared(image: Path) -> int:
        n = 0
        for a, b in zip(xml.parent.parts, image.parent.parts, strict=False):
            if a != b:
                break
            n += 1
        return n

    return max(candidates, key=lambda image: (shared(image), -len(image.parts)))


def import_voc(root: Path, *, source: str | None = None) -> Dataset:
    """Every XML under ``root`` with its image; problems are reported, never raised."""
    source = source or source_name(root)
    images = images_under(root)
    by_stem: dict[str, list[Path]] = defaultdict(list)
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in images:
        by_stem[path.stem].append(path)
        by_name[path.name].append(path)
    xmls = [p for p in walk(root) if p.suffix.lower() == ".xml"]
    problems: list[Problem] = []
    records: list[LabelledImage] = []
    paired: set[Path] = set()
    for xml in xmls:
        image: Path | None = _nearest(xml, by_stem.get(xml.stem, []))
        try:
            annotation = read_voc(xml)
        except InputError as error:
            problems.append(Problem(str(xml), "garbled_label", f"{error.reason}; image skipped"))
            if image is not None:
                paired.add(image)
            continue
        if image is None and annotation.filename:
            image = _nearest(xml, by_name.get(Path(annotation.filename).name, []))
        if image is None:
            problems.append(Problem(str(xml), "missing_image", "label file has no image"))
            continue
        paired.add(image)
        record, found = _record(image, xml, annotation, source, root)
        problems += found
        if record is not None:
            records.append(record)
    for path in images:
        if path not in paired:
            problems.append(
                Problem(str(path), "missing_label", "image has no label file; skipped", "warning")
            )
    licence, _ = read_provenance(root)
    return Dataset(
        images=tuple(records),
        name=source,
        sources=(source,),
        licences={source: licence},
        problems=tuple(problems),
    )


def _record(
    image: Path, xml: Path, annotation: VocAnnotation, source: str, root: Path
) -> tuple[LabelledImage | None, list[Problem]]:
    try:
        width, height = image_size(image)
    except InputError as error:
        return None, [Problem(str(image), "unreadable_image", f"{error.reason}; skipped")]
    problems: list[Problem] = []
    if (
        annotation.width
        and annotation.height
        and (annotation.width, annotation.height)
        != (
            width,
            height,
        )
    ):
        problems.append(
            Problem(
                str(xml),
                "size_mismatch",
                f"<size> says {annotation.width}×{annotation.height}, the image is "
                f"{width}×{height}; using the image",
                "warning",
            )
        )
    rotated = orientation_problem(image)
    if rotated is not None:
        problems.append(rotated)
    if not annotation.boxes:
        problems.append(
            Problem(str(xml), "empty_label", "no objects; kept as background", "warning")
        )
    boxes, found = check_boxes(annotation.boxes, width, height, str(xml))
    problems += found
    record = LabelledImage(
        path=image,
        width=width,
        height=height,
        boxes=boxes,
        source=source,
        group=group_of(image),
        split=split_from_path(image, root),
    )
    return record, problems


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def voc_xml(image: LabelledImage, filename: str) -> bytes:
    """One image's boxes as VOC XML (coordinates as given, up to two decimals)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(image.width)
    ET.SubElement(size, "height").text = str(image.height)
    ET.SubElement(size, "depth").text = "3"
    for box in image.boxes:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = box.class_name
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box[1:], strict=True):
            ET.SubElement(bndbox, tag).text = _fmt(value)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def export_voc(dataset: Dataset, out: Path, *, link: bool = True) -> Path:
    """Write ``<split>/images`` and ``<split>/annotations/xmls`` (the RDD layout)."""
    for image, name in zip(dataset.images, export_names(dataset), strict=True):
        split = split_of(image)
        place_image(image.path, out / split / "images" / name, link=link)
        xml = out / split / "annotations" / "xmls" / f"{Path(name).stem}.xml"
        xml.parent.mkdir(parents=True, exist_ok=True)
        xml.write_bytes(voc_xml(image, name))
    return out
