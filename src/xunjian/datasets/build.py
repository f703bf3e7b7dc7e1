"""Build one detector's YOLO training set from the real sources and synthetic test-range data.

``build_training_set(detector, out, data_root=…, synthetic=[…])``:

1. picks the real sources in :data:`REAL_SOURCES` whose mapping table reaches one of the
   detector's classes, imports them, maps classes onto the taxonomy and keeps only the
   detector's classes (other names are counted in the manifest as left out);
2. splits train/val by *group* (augmented copies of one photo never straddle), keeping a
   source's own train/valid split where it has one (a group found in both goes wholly to
   val), otherwise a seeded split of ``val_fraction`` per source;
3. adds synthetic YOLO folders (``xunjian synth export-yolo``) to train only, so validation
   stays real; when no real val image exists, val is held-out synthetic data (the export's
   own val split, else a grouped seeded one) and the manifest says so;
4. optionally fits or tiles large images to ``imgsz`` (tiles keep their photo's group);
5. writes ``images/``, ``labels/``, ``data.yaml`` (taxonomy class order) and ``manifest.json``
   (sources, licences, per-split counts, seed, every file and where it came from).

Imports: the standard library, :mod:`xunjian.core.taxonomy`, ``xunjian.datasets`` formats,
mapping, records and resize, :mod:`xunjian.errors`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from xunjian import __version__
from xunjian.core.taxonomy import Detector, classes_of
from xunjian.datasets.formats import import_dataset
from xunjian.datasets.formats._common import export_names, read_provenance
from xunjian.datasets.formats.yolo import export_yolo
from xunjian.datasets.mapping import IDENTITY, apply_mapping, load_mapping
from xunjian.datasets.records import Dataset, LabelledImage, Problem, merge
from xunjian.datasets.resize import ResizeMode, derive_images
from xunjian.errors import InputError


@dataclass(frozen=True, slots=True)
class RealSource:
    """A real labelled set under the data root, its format and its mapping table."""

    folder: str
    fmt: str
    mapping: str


# Real sets with a mapping onto the taxonomy. aerial_vehicles_dji (cars, buses) has no
# taxonomy class and amsterdam_dumping_unlabeled no labels, so neither is listed.
REAL_SOURCES: tuple[RealSource, ...] = (
    RealSource("pothole_roboflow", "yolo", "pothole_roboflow"),
    RealSource("rdd2022_samples", "voc", "rdd"),
    RealSource("uav_pdd2023_samples", "voc", "uav_pdd"),
    RealSource("trashbags_seg", "yolo-seg", "trashbags"),
)


@dataclass(frozen=True, slots=True)
class BuildOptions:
    imgsz: int = 640
    seed: int = 0
    val_fraction: float = 0.2
    resize: ResizeMode = "none"
    # Copy by default: a trainer that rewrites a bad JPEG in place must never reach the source.
    link: bool = False


@dataclass(frozen=True, slots=True)
class BuildResult:
    out: Path
    data_yaml: Path
    manifest: dict[str, Any]


def _restrict(dataset: Dataset, classes: tuple[str, ...], left_out: Counter[str]) -> Dataset:
    images = []
    for image in dataset.images:
        left_out.update(b.class_name for b in image.boxes if b.class_name not in classes)
        images.append(image.with_boxes(tuple(b for b in image.boxes if b.class_name in classes)))
    return replace(dataset, images=tuple(images), class_names=classes)


def _rank(seed: int, key: tuple[str, str]) -> str:
    return hashlib.sha256(f"{seed}\0{key[0]}\0{key[1]}".encode()).hexdigest()


def seeded_split(images: list[LabelledImage], fraction: float, seed: int) -> list[LabelledImage]:
    """Images with ``split`` set: whole groups go to val, in seeded hash order, until val holds
    ``fraction`` of the images (at least one group when there are two or more)."""
    sizes = Counter(image.key for image in images)
    order = sorted(sizes, key=lambda key: _rank(seed, key))
    target = round(fraction * len(images))
    if fraction > 0 and len(order) >= 2:
        target = max(target, 1)
    val: set[tuple[str, str]] = set()
    taken = 0
    for key in order[:-1]:  # the last group always trains
        if taken >= target:
            break
        val.add(key)
        taken += sizes[key]
    return [replace(i, split="val" if i.key in val else "train") for i in images]


def split_real(
    images: list[LabelledImage], fraction: float, seed: int
) -> tuple[list[LabelledImage], dict[str, int]]:
    """Own splits kept (test left out, straddling groups moved to val); the rest seeded."""
    notes: Counter[str] = Counter()
    val_keys = {i.key for i in images if i.split == "val"}
    kept: list[LabelledImage] = []
    unsplit: dict[str, list[LabelledImage]] = {}
    for image in images:
        if image.split == "test":
            notes["test_images_left_out"] += 1
        elif image.split is None:
            unsplit.setdefault(image.source, []).append(image)
        elif image.split == "train" and image.key in val_keys:
            notes["train_images_moved_to_val"] += 1
            kept.append(replace(image, split="val"))
        else:
            kept.append(image)
    for source in sorted(unsplit):
        kept += seeded_split(unsplit[source], fraction, seed)
    return kept, dict(notes)


def synthetic_holdout(
    images: list[LabelledImage], options: BuildOptions
) -> tuple[list[LabelledImage], str]:
    """Synthetic val when no real val exists: the export's own val split (by frame) where it
    has one, else a grouped seeded split; and how it was made, for the manifest."""
    if any(i.split == "val" for i in images):
        kept, _ = split_real(images, options.val_fraction, options.seed)
        return kept, "the synthetic export's own val split"
    split = seeded_split(images, options.val_fraction, options.seed)
    return split, f"grouped, seeded ({options.seed}), {options.val_fraction:.0%} of images"


def _load_real(
    detector: Detector, data_root: Path | None, manifest: dict[str, Any]
) -> tuple[list[Dataset], Counter[str]]:
    classes = classes_of(detector)
    left_out: Counter[str] = Counter()
    parts: list[Dataset] = []
    for real in REAL_SOURCES:
        mapping = load_mapping(real.mapping)
        if not mapping.targets() & set(classes):
            continue
        folder = data_root / real.folder if data_root is not None else None
        if folder is None or not folder.is_dir():
            manifest["notes"].append(f"real source {real.folder} not found under {data_root}")
            continue
        dataset, _ = apply_mapping(import_dataset(folder, real.fmt), mapping)
        parts.append(_restrict(dataset, classes, left_out))
        _, files = read_provenance(folder)
        manifest["sources"].append(_source_entry(dataset, folder, "real", real.mapping, files))
    return parts, left_out


def _load_synthetic(
    detector: Detector, folders: list[Path], manifest: dict[str, Any], left_out: Counter[str]
) -> list[Dataset]:
    parts = []
    for index, folder in enumerate(folders):
        name = "synthetic" if index == 0 else f"synthetic_{index + 1}"
        dataset, _ = apply_mapping(import_dataset(folder, "yolo", source=name), IDENTITY)
        parts.append(_restrict(dataset, classes_of(detector), left_out))
        manifest["sources"].append(_source_entry(dataset, folder, "synthetic", "identity", []))
    return parts


def _source_entry(
    dataset: Dataset, folder: Path, role: str, mapping: str, files: list[str]
) -> dict[str, Any]:
    source = dataset.sources[0]
    return {
        "name": source,
        "role": role,
        "path": str(folder),
        "mapping": mapping,
        "licence": dataset.licences.get(source, "unknown"),
        "licence_files": files,
        "images": len(dataset.images),
        "import_errors": sum(1 for p in dataset.problems if p.severity == "error"),
        "import_warnings": sum(1 for p in dataset.problems if p.severity == "warning"),
    }


def build_training_set(
    detector: Detector | str,
    out: Path,
    *,
    data_root: Path | None,
    synthetic: list[Path] | None = None,
    options: BuildOptions | None = None,
) -> BuildResult:
    """Write a YOLO detect training set for ``detector`` into ``out`` (see module doc)."""
    detector = Detector(detector)
    options = options or BuildOptions()
    synthetic = synthetic or []
    classes = classes_of(detector)
    manifest: dict[str, Any] = {
        "detector": detector.value,
        "classes": list(classes),
        "seed": options.seed,
        "imgsz": options.imgsz,
        "resize": options.resize,
        "val_fraction": options.val_fraction,
        "linked": options.link,
        "xunjian_version": __version__,
        "sources": [],
        "notes": [],
    }
    real_parts, left_out = _load_real(detector, data_root, manifest)
    synth_parts = _load_synthetic(detector, synthetic, manifest, left_out)
    if not real_parts and not synth_parts:
        raise InputError(
            f"no training data for {detector.value}: no real source under {data_root} maps "
            f"onto {', '.join(classes)}; pass a synthetic YOLO folder (--synthetic DIR)"
        )
    real = merge("real", real_parts)
    real_images, split_notes = split_real(list(real.images), options.val_fraction, options.seed)
    synth = merge("synthetic", synth_parts)
    val_is_real = any(i.split == "val" for i in real_images)
    if val_is_real:
        synth_images = [replace(i, split="train") for i in synth.images]
    else:
        synth_images, how = synthetic_holdout(list(synth.images), options)
        manifest["notes"].append(
            f"no real validation data exists for {detector.value}: val is a held-out synthetic "
            f"split ({how}); its metrics say nothing about real images"
        )
    manifest["val_is_real"] = val_is_real
    manifest["split_notes"] = split_notes
    manifest["left_out_classes"] = dict(sorted(left_out.items()))
    everything = merge("build", [real.with_images(tuple(real_images)), synth])
    everything = everything.with_images(tuple(real_images + synth_images))
    _prepare_out(out)
    derived, origins = derive_images(everything, out / "derived", options.imgsz, options.resize)
    derived = replace(derived, class_names=classes)
    data_yaml = export_yolo(derived, out, names=classes, link=options.link)
    _drop_derived_copies(out, derived)
    synthetic_sources = {s["name"] for s in manifest["sources"] if s["role"] == "synthetic"}
    manifest["splits"] = _split_counts(derived, classes, synthetic_sources)
    val_boxes = Counter(
        b.class_name
        for i in derived.images
        if i.split == "val" and i.source not in synthetic_sources
        for b in i.boxes
    )
    manifest["classes_without_real_val"] = [c for c in classes if not val_boxes[c]]
    manifest["problems"] = [str(p) for p in _problems(real_parts + synth_parts)]
    manifest["files"] = [
        {"file": f"images/{i.split}/{name}", "source": i.source, "group": i.group, **origin}
        for i, name, origin in zip(derived.images, export_names(derived), origins, strict=True)
    ]
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return BuildResult(out, data_yaml, manifest)


def _prepare_out(out: Path) -> None:
    """An empty folder, or a previous build's (its images and labels are removed first, so
    no stale file from another seed slips into the new split)."""
    if out.is_dir() and any(out.iterdir()):
        if not (out / "manifest.json").is_file():
            raise InputError("is not empty and holds no earlier build", source=str(out))
        for name in ("images", "labels", "derived"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        (out / "manifest.json").unlink()
    out.mkdir(parents=True, exist_ok=True)


def _problems(parts: list[Dataset]) -> list[Problem]:
    return [p for part in parts for p in part.problems]


def _drop_derived_copies(out: Path, dataset: Dataset) -> None:
    """Derived images were hard-linked into images/: the working copies can go."""
    work = out / "derived"
    if not work.is_dir():
        return
    names = export_names(dataset)
    for image, name in zip(dataset.images, names, strict=True):
        target = out / "images" / (image.split or "train") / name
        if work in image.path.parents and target.is_file() and not target.is_symlink():
            image.path.unlink(missing_ok=True)
    for folder in sorted(work.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if not any(work.iterdir()):
        work.rmdir()


def _split_counts(
    dataset: Dataset, classes: tuple[str, ...], synthetic: set[str]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for split in ("train", "val"):
        images = [i for i in dataset.images if i.split == split]
        boxes = Counter(b.class_name for i in images for b in i.boxes)
        holding = Counter(c for i in images for c in {b.class_name for b in i.boxes})
        result[split] = {
            "images": len(images),
            "real_images": sum(1 for i in images if i.source not in synthetic),
            "synthetic_images": sum(1 for i in images if i.source in synthetic),
            "background_images": sum(1 for i in images if not i.boxes),
            "groups": len({i.key for i in images}),
            "boxes": {c: boxes[c] for c in classes},
            "images_with_class": {c: holding[c] for c in classes},
            "by_source": dict(sorted(Counter(i.source for i in images).items())),
        }
    return result
