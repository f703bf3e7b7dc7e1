"""Feedback to data: what reviewers and the case platform said of issues becomes training data.

:func:`build_feedback_part` reads the stored feedback (``IssueStore.feedback``), takes the
latest verdict per issue and cuts a crop around every box of the issue's observations from
the raw frame in the object store (``frame_key``). Each crop is a labelled example:

- ``false_positive`` → a **hard negative**: the detector's box is not labelled, so a crop with
  nothing else known in it has an empty YOLO label file;
- ``wrong_class`` → the boxes **relabelled** to the class the reviewer gave (a negative for
  the detector that erred when the right class belongs to another detector);
- ``confirm`` → the boxes kept as **positives** of the issue's class;
- ``wrong_place`` → skipped: a place correction says nothing about the boxes (counted in the
  manifest's notes).

Known boxes of other judged issues on the same frame that fall inside a crop are labelled in
it too (a box cut by the crop counts when ``min_visible`` of it is inside). Crops, not whole
frames: a whole frame holds other objects nobody labelled, which a model would then learn as
background. Crops are taken in the frame's displayed orientation (EXIF applied), the pixels
detections refer to.

The part is a YOLO folder — ``images/train``, ``labels/train``, ``data.yaml`` naming every
taxonomy class, ``manifest.json`` with source ``feedback``, licence ``own`` and one entry per
image (issue, feedback id, kind, frame key, detectors it teaches) — written deterministically,
so rebuilding from the same feedback gives the same bytes and the same dataset version.
:func:`add_feedback_part` merges a part into one detector's build (``datasets build
--feedback DIR``): train split only, so the validation split stays a fixed benchmark.

May import: Pillow, ``xunjian.core``, ``xunjian.errors``, ``xunjian.storage`` (IssueStore,
ObjectStore), ``xunjian.datasets`` records and YOLO helpers.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from xunjian.core.feedback import Feedback, FeedbackKind
from xunjian.core.issues import Issue
from xunjian.core.records import Observation
from xunjian.core.taxonomy import CLASSES, class_info
from xunjian.datasets.formats.yolo import write_data_yaml, yolo_line
from xunjian.datasets.records import Box
from xunjian.errors import InputError, StorageError
from xunjian.storage.issues import IssueStore
from xunjian.storage.objectstore import ObjectStore

SOURCE = "feedback"
LICENCE = "own"
ROLE = "feedback"
TAXONOMY_NAMES = tuple(c.name for c in CLASSES)
_IDS = {name: index for index, name in enumerate(TAXONOMY_NAMES)}
_VERDICTS = (FeedbackKind.CONFIRM, FeedbackKind.FALSE_POSITIVE, FeedbackKind.WRONG_CLASS)


@dataclass(frozen=True, slots=True)
class FeedbackOptions:
    context: float = 3.0  # crop side = context × the box's longer side …
    min_side: int = 160  # … but at least this many pixels
    max_side: int = 640  # larger crops are scaled down to this
    max_per_issue: int = 8  # observations per issue, most confident first
    min_visible: float = 0.4  # share of a known box that must lie in a crop to be labelled
    max_pixels: int = 120_000_000
    jpeg_quality: int = 92


@dataclass(frozen=True, slots=True)
class Example:
    """One box of one judged observation: ``label`` is its class in the data, None when it is
    a negative."""

    feedback: Feedback
    issue: Issue
    observation: Observation
    label: str | None

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.observation.detection.bbox_xyxy

    @property
    def detectors(self) -> list[str]:
        """The detectors this example teaches: the one that found it, and the right one."""
        names = [self.observation.detection.detector]
        if self.label is not None:
            names.append(class_info(self.label).detector.value)
        return list(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class FeedbackPart:
    out: Path
    data_yaml: Path
    manifest: dict[str, Any]


def latest_verdicts(feedback: list[Feedback]) -> tuple[dict[str, Feedback], Counter[str]]:
    """The last confirm / false_positive / wrong_class per issue, and every kind counted."""
    verdicts: dict[str, Feedback] = {}
    kinds: Counter[str] = Counter()
    for item in sorted(feedback, key=lambda f: f.id or 0):
        kinds[FeedbackKind(item.kind).value] += 1
        if FeedbackKind(item.kind) in _VERDICTS:
            verdicts[item.issue_id] = item
    return verdicts, kinds


def examples_of(issue: Issue, verdict: Feedback, limit: int) -> list[Example]:
    kind = FeedbackKind(verdict.kind)
    label: str | None = None
    if kind is FeedbackKind.CONFIRM:
        label = issue.class_name
    elif kind is FeedbackKind.WRONG_CLASS:
        label = verdict.class_name or issue.class_name
    observations = issue.observations or (issue.evidence,)
    chosen = sorted(observations, key=lambda o: (-o.confidence, o.frame_key))[:limit]
    return [Example(verdict, issue, o, label) for o in chosen]


def crop_window(
    box: tuple[float, float, float, float], width: int, height: int, options: FeedbackOptions
) -> tuple[int, int, int, int]:
    """A square-ish window around ``box``, shifted (not shrunk) to stay inside the image."""
    x1, y1, x2, y2 = box
    side = max(float(options.min_side), options.context * max(x2 - x1, y2 - y1))
    w, h = min(side, float(width)), min(side, float(height))
    left = min(max((x1 + x2) / 2 - w / 2, 0.0), width - w)
    top = min(max((y1 + y2) / 2 - h / 2, 0.0), height - h)
    return int(left), int(top), min(width, round(left + w)), min(height, round(top + h))


def _visible(box: Box, window: tuple[int, int, int, int], min_visible: float) -> Box | None:
    left, top, right, bottom = window
    shifted = box.shifted(-left, -top).clipped(right - left, bottom - top)
    area = box.width * box.height
    if shifted.width <= 0 or shifted.height <= 0 or area <= 0:
        return None
    return shifted if shifted.width * shifted.height >= min_visible * area else None


def _open_frame(store: ObjectStore, key: str, max_pixels: int) -> Image.Image:
    data = store.get_bytes(key)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            if opened.width * opened.height > max_pixels:
                raise InputError(
                    f"expected at most {max_pixels} pixels, got {opened.width}×{opened.height}",
                    source=key,
                )
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except UnidentifiedImageError:  # its message names a BytesIO at some address
        raise InputError("cannot decode image: not a format Pillow reads", source=key) from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"cannot decode image: {error}", source=key) from None
    return image


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "frame"


def _example_name(example: Example) -> str:
    o = example.observation
    ident = "|".join([o.frame_key, example.issue.id, o.detection.class_name, repr(example.box)])
    stem = _safe(Path(o.frame_key).stem)
    return f"{stem}_{hashlib.sha256(ident.encode('utf-8')).hexdigest()[:10]}"


def build_feedback_part(
    issues: IssueStore,
    store: ObjectStore,
    out: Path,
    *,
    since_id: int | None = None,
    options: FeedbackOptions | None = None,
) -> FeedbackPart:
    """Writes the YOLO part for every verdict after ``since_id`` into ``out`` (replaced)."""
    options = options or FeedbackOptions()
    out = Path(out)
    feedback = issues.feedback(since_id=since_id)
    verdicts, kinds = latest_verdicts(feedback)
    skipped: list[dict[str, str]] = []
    by_frame: dict[str, list[Example]] = defaultdict(list)
    for issue_id, verdict in sorted(verdicts.items()):
        issue = issues.issue(issue_id, with_observations=True)
        if issue is None:
            skipped.append({"issue_id": issue_id, "reason": "issue not found"})
            continue
        for example in examples_of(issue, verdict, options.max_per_issue):
            by_frame[example.observation.frame_key].append(example)
    for name in ("images", "labels"):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    entries: list[dict[str, Any]] = []
    for frame_key in sorted(by_frame):
        try:
            frame = _open_frame(store, frame_key, options.max_pixels)
        except (InputError, StorageError) as error:
            skipped += [
                {"issue_id": e.issue.id, "frame_key": frame_key, "reason": str(error)}
                for e in by_frame[frame_key]
            ]
            continue
        with frame:
            written, dropped = _write_frame(frame, frame_key, by_frame[frame_key], out, options)
        entries += written
        skipped += dropped
    data_yaml = write_data_yaml(out, TAXONOMY_NAMES, {"train"})
    manifest = _part_manifest(feedback, kinds, since_id, entries, skipped)
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return FeedbackPart(out, data_yaml, manifest)


def _write_frame(
    frame: Image.Image,
    frame_key: str,
    examples: list[Example],
    out: Path,
    options: FeedbackOptions,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Crops and labels of one frame's examples; and those that could not be cut, why."""
    width, height = frame.size
    known = [Box(e.label, *e.box).clipped(width, height) for e in examples if e.label is not None]
    entries: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    written: set[str] = set()
    for example in sorted(examples, key=_example_name):
        name = _example_name(example)
        box = Box("", *example.box).clipped(width, height)
        if box.width <= 0 or box.height <= 0:
            reason = f"box {example.box} has no area inside the {width}×{height} frame"
            skipped.append({"issue_id": example.issue.id, "frame_key": frame_key, "reason": reason})
            continue
        if name in written:  # the same box seen by two model versions: one crop
            continue
        written.add(name)
        window = crop_window((box.x1, box.y1, box.x2, box.y2), width, height, options)
        crop = frame.crop(window)
        boxes = [b for k in known if (b := _visible(k, window, options.min_visible))]
        scale = min(1.0, options.max_side / max(crop.size))
        if scale < 1.0:
            size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
            crop = crop.resize(size, Image.Resampling.BILINEAR)
            sx, sy = crop.width / (window[2] - window[0]), crop.height / (window[3] - window[1])
            boxes = [b.scaled(sx, sy) for b in boxes]
        image_path = out / "images" / "train" / f"{name}.jpg"
        image_path.parent.mkdir(parents=True, exist_ok=True)
        crop.save(image_path, format="JPEG", quality=options.jpeg_quality)
        lines = [yolo_line(b, _IDS[b.class_name], crop.width, crop.height) for b in boxes]
        label_path = out / "labels" / "train" / f"{name}.txt"
        label_path.parent.mkdir(parents=True, exist_ok=True)
        label_path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        detection = example.observation.detection
        entries.append(
            {
                "file": f"images/train/{name}.jpg",
                "label_file": f"labels/train/{name}.txt",
                "frame_key": frame_key,
                "group": frame_key,
                "issue_id": example.issue.id,
                "feedback_id": example.feedback.id,
                "kind": FeedbackKind(example.feedback.kind).value,
                "detected_class": detection.class_name,
                "model_version": detection.model_version,
                "label": example.label,
                "detectors": example.detectors,
                "box_in_frame": [round(v, 2) for v in box[1:]],
                "crop_in_frame": list(window),
                "boxes": len(boxes),
            }
        )
    return entries, skipped


def _part_manifest(
    feedback: list[Feedback],
    kinds: Counter[str],
    since_id: int | None,
    entries: list[dict[str, Any]],
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
    ids = [f.id for f in feedback if f.id is not None]
    notes = []
    if kinds[FeedbackKind.WRONG_PLACE.value]:
        notes.append(
            f"{kinds[FeedbackKind.WRONG_PLACE.value]} wrong_place feedback skipped: a place "
            "correction says nothing about the boxes"
        )
    return {
        "kind": "feedback_part",
        "source": SOURCE,
        "role": ROLE,
        "licence": LICENCE,
        "classes": list(TAXONOMY_NAMES),
        "since_id": since_id,
        "first_feedback_id": min(ids) if ids else None,
        "last_feedback_id": max(ids) if ids else since_id,
        "feedback": dict(sorted(kinds.items())),
        "examples": dict(sorted(Counter(e["kind"] for e in entries).items())),
        "hard_negatives": sum(1 for e in entries if e["kind"] == "false_positive"),
        "empty_label_files": sum(1 for e in entries if e["boxes"] == 0),
        "images": entries,
        "skipped": skipped,
        "notes": notes,
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read manifest: {error}", source=str(path)) from None
    if not isinstance(loaded, dict):
        raise InputError("expected a JSON object", source=str(path))
    return loaded


def add_feedback_part(build: Path, part: Path) -> dict[str, Any]:
    """Merges a feedback part into a detector's build (train split only); returns the build's
    updated manifest. Examples that teach another detector are left out; boxes of other
    detectors' classes are dropped (the crop then is a negative for this one)."""
    build, part = Path(build), Path(part)
    manifest = _read_json(build / "manifest.json")
    part_manifest = _read_json(part / "manifest.json")
    if part_manifest.get("kind") != "feedback_part":
        raise InputError("expected a feedback part (xunjian datasets feedback)", source=str(part))
    detector, classes = str(manifest.get("detector")), [str(c) for c in manifest["classes"]]
    taken = {s["name"] for s in manifest.get("sources", [])}
    name, n = SOURCE, 1
    while name in taken:  # a second part in one build
        n += 1
        name = f"{SOURCE}_{n}"
    names = [str(c) for c in part_manifest["classes"]]
    ids = {c: i for i, c in enumerate(classes)}
    split = manifest.setdefault("splits", {}).setdefault("train", {})
    boxes: Counter[str] = Counter()
    holding: Counter[str] = Counter()
    added: list[dict[str, Any]] = []
    groups: set[str] = set()
    for entry in part_manifest["images"]:
        if detector not in entry["detectors"]:
            continue
        lines = _relabel(part / entry["label_file"], names, ids)
        found = [classes[int(line.split()[0])] for line in lines]
        boxes.update(found)
        holding.update(set(found))
        stem = f"{name}__{Path(entry['file']).stem}"
        target = build / "images" / "train" / f"{stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(part / entry["file"], target)
        except OSError as error:
            raise InputError(f"cannot copy a feedback image: {error}", source=str(part)) from None
        label = build / "labels" / "train" / f"{stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        groups.add(str(entry["group"]))
        added.append(
            {
                "file": f"images/train/{stem}.jpg",
                "source": name,
                "group": entry["group"],
                "feedback": {k: entry[k] for k in ("issue_id", "feedback_id", "kind", "label")},
                "boxes": len(lines),
            }
        )
    manifest.setdefault("sources", []).append(
        {
            "name": name,
            "role": ROLE,
            "path": str(part.resolve()),
            "mapping": "identity",
            "licence": part_manifest.get("licence", LICENCE),
            "licence_files": [],
            "images": len(added),
            "feedback_ids": [
                part_manifest.get("first_feedback_id"),
                part_manifest.get("last_feedback_id"),
            ],
            "import_errors": 0,
            "import_warnings": 0,
        }
    )
    _count_into(split, classes, name, added, boxes, holding, len(groups))
    manifest.setdefault("files", []).extend(added)
    manifest.setdefault("notes", []).append(
        f"{len(added)} feedback examples ({name}, feedback ids "
        f"{part_manifest.get('first_feedback_id')}..{part_manifest.get('last_feedback_id')}) "
        "are in train only: the val split stays the same benchmark"
    )
    (build / "manifest.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return manifest


def _relabel(label: Path, names: list[str], ids: dict[str, int]) -> list[str]:
    """A part's label lines with class ids of the build; other detectors' boxes dropped."""
    try:
        text = label.read_text(encoding="utf-8")
        out = []
        for line in text.splitlines():
            fields = line.split()
            if fields and names[int(fields[0])] in ids:
                out.append(" ".join([str(ids[names[int(fields[0])]]), *fields[1:]]))
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as error:
        raise InputError(f"unreadable feedback label: {error}", source=str(label)) from None
    return out


def _count_into(
    split: dict[str, Any],
    classes: list[str],
    name: str,
    added: list[dict[str, Any]],
    boxes: Counter[str],
    holding: Counter[str],
    groups: int,
) -> None:
    split["images"] = int(split.get("images", 0)) + len(added)
    split["real_images"] = int(split.get("real_images", 0)) + len(added)
    split["background_images"] = int(split.get("background_images", 0)) + sum(
        1 for a in added if not a["boxes"]
    )
    split["groups"] = int(split.get("groups", 0)) + groups
    for key, counts in (("boxes", boxes), ("images_with_class", holding)):
        section = split.setdefault(key, dict.fromkeys(classes, 0))
        for c in classes:
            section[c] = int(section.get(c, 0)) + counts[c]
    by_source = split.setdefault("by_source", {})
    by_source[name] = len(added)
    split["by_source"] = dict(sorted(by_source.items()))
