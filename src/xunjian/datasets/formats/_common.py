"""Helpers every format shares: walking folders, splits from paths, provenance, writing files.

Imports: the standard library, PyYAML, :mod:`xunjian.datasets.records` and ``validate``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import yaml

from xunjian.datasets.records import Dataset, LabelledImage, Split, split_name
from xunjian.datasets.validate import is_image

_LICENCE_LINE = re.compile(r"^\s*licen[cs]e\b[^:\n]*:\s*(?P<text>.+)$", re.I | re.M)
_PROVENANCE_FILES = ("SOURCE", "LICENSE", "LICENCE", "README")


def images_under(root: Path) -> list[Path]:
    """Every image file below ``root``, sorted, hidden folders skipped."""
    return sorted(p for p in walk(root) if is_image(p))


def walk(root: Path) -> Iterator[Path]:
    """Files below ``root`` in a stable order, skipping hidden entries."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def split_from_path(path: Path, root: Path) -> Split | None:
    """The split named by the nearest folder between ``root`` and ``path`` (``valid`` → val)."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        parts = path.parts[:-1]
    for part in reversed(parts):
        split = split_name(part)
        if split is not None:
            return split
    return None


def source_name(root: Path) -> str:
    """A dataset's default source name: its folder's name."""
    return root.resolve().name or "dataset"


def read_provenance(root: Path) -> tuple[str, list[str]]:
    """The licence line from SOURCE.txt / data.yaml / LICENSE near ``root``, and those files."""
    for folder in (root, root.parent):
        files = sorted(
            p
            for p in folder.glob("*")
            if p.is_file() and p.name.upper().startswith(_PROVENANCE_FILES)
        )
        licence = _licence_from(folder, files)
        if licence:
            return licence, [str(p) for p in files]
    return "unknown", []


def _licence_from(folder: Path, files: list[Path]) -> str:
    for path in files:
        if path.name.upper().startswith("SOURCE"):
            match = _LICENCE_LINE.search(_read_text(path))
            if match:
                return match["text"].strip()
    data_yaml = folder / "data.yaml"
    if data_yaml.is_file():
        try:
            loaded = yaml.safe_load(_read_text(data_yaml))
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict):
            roboflow = loaded.get("roboflow")
            licence = loaded.get("license") or (
                roboflow.get("license") if isinstance(roboflow, dict) else None
            )
            if licence:
                return str(licence)
    for path in files:
        if path.name.upper().startswith(("LICENSE", "LICENCE")):
            first = next((ln.strip() for ln in _read_text(path).splitlines() if ln.strip()), "")
            if first:
                return first
    return ""


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def export_names(dataset: Dataset) -> list[str]:
    """A unique file name per image, in dataset order; prefixed by source when mixed."""
    prefix = len({image.source for image in dataset.images}) > 1
    used: set[str] = set()
    names: list[str] = []
    for image in dataset.images:
        base = f"{_safe(image.source)}__{image.path.name}" if prefix else image.path.name
        name, n = base, 1
        while name.lower() in used:
            name = f"{Path(base).stem}_{n}{Path(base).suffix}"
            n += 1
        used.add(name.lower())
        names.append(name)
    return names


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "source"


def place_image(source: Path, target: Path, *, link: bool = True) -> None:
    """Put ``source`` at ``target``: a hard link, else a symlink, else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    if link:
        try:
            os.link(source, target)
            return
        except OSError:
            pass
        try:
            target.symlink_to(source.resolve())
            return
        except OSError:
            pass
    shutil.copy2(source, target)


def split_of(image: LabelledImage) -> Split:
    """The split an exporter writes an image into (unsplit images go to train)."""
    return image.split or "train"
