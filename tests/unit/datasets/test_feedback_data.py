"""Feedback to data (datasets/feedback.py): verdicts on issues become labelled crops, and a false
positive appears as a hard negative in the next dataset version.

Issues live in a SQLite IssueStore in a temporary folder; their frames are JPEGs in a local
object store, stored rotated with EXIF orientation 6 (as phones and some drones write them),
so the crops must be cut from the displayed picture the detections refer to.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.fixtures.db import sqlite_url
from tests.fixtures.labelled import write_synthetic
from xunjian.core.feedback import Feedback, FeedbackKind
from xunjian.core.geo import en_to_latlon
from xunjian.core.records import Detection, Observation
from xunjian.core.taxonomy import class_info
from xunjian.datasets.build import build_training_set
from xunjian.datasets.feedback import (
    TAXONOMY_NAMES,
    FeedbackPart,
    add_feedback_part,
    build_feedback_part,
)
from xunjian.datasets.versions import publish_dataset, read_version
from xunjian.storage.issues import IssueStore
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import ObjectStore

LAT0, LON0 = 29.563, 106.5516
T0 = datetime(2025, 5, 12, 10, 0, tzinfo=UTC)
POTHOLE_BOX = (60.0, 60.0, 100.0, 100.0)
GARBAGE_BOX = (280.0, 180.0, 330.0, 230.0)
WHITE, GREEN = (255, 255, 255), (0, 200, 0)


def frame_jpeg(seed: int) -> bytes:
    """A 400×300 picture (as displayed) with a white pothole patch and a green garbage patch,
    stored rotated with EXIF orientation 6."""
    rng = np.random.default_rng(seed)
    shown = rng.integers(60, 120, size=(300, 400, 3), dtype=np.uint8)
    for (x1, y1, x2, y2), colour in ((POTHOLE_BOX, WHITE), (GARBAGE_BOX, GREEN)):
        shown[int(y1) : int(y2), int(x1) : int(x2)] = colour
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[274] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def observation(frame: str, cls: str, box: tuple[float, ...], e: float) -> Observation:
    lat, lon = en_to_latlon(e, 0.0, LAT0, LON0)
    detection = Detection(class_info(cls).detector.value, cls, 0.8, box, "m@1", frame)  # type: ignore[arg-type]
    return Observation(detection, "B1", frame, float(lat), float(lon), 0.3, 12.0, 0.04, T0)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def issues(tmp_path: Path, store: ObjectStore) -> Iterator[IssueStore]:
    """A flight of three frames over a pothole and a garbage pile 40 m apart."""
    with IssueStore(sqlite_url(tmp_path)) as opened:
        record_flight(opened, store)
        yield opened


def record_flight(issues: IssueStore, store: ObjectStore) -> None:
    observations = []
    for i in range(3):
        key = f"raw/B1/DJI_000{i}.JPG"
        store.put_bytes(key, frame_jpeg(i))
        observations.append(observation(key, "pothole", POTHOLE_BOX, 0.05 * i))
        observations.append(observation(key, "garbage_pile", GARBAGE_BOX, 40.0 + 0.05 * i))
    issues.record_batch("B1", observations)


def issue_of(issues: IssueStore, cls: str) -> str:
    return next(i.id for i in issues.issues() if i.detector == class_info(cls).detector.value)


def labels(folder: Path, entry: dict) -> list[list[float]]:
    text = (folder / entry["label_file"]).read_text("utf-8")
    return [[float(v) for v in line.split()] for line in text.splitlines()]


def digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "data.yaml"
    }


def test_false_positive_appears_in_the_next_dataset_version(
    issues: IssueStore, store: LocalStore, tmp_path: Path
) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    build = tmp_path / "build"
    build_training_set("illegal_dumping", build, data_root=None, synthetic=[synthetic])
    before = publish_dataset(store, build)

    garbage = issue_of(issues, "garbage_pile")
    issues.add_feedback(Feedback(garbage, FeedbackKind.FALSE_POSITIVE, note="a green tarp"))
    part = build_feedback_part(issues, store, tmp_path / "feedback")
    assert part.manifest["hard_negatives"] == 3 and part.manifest["licence"] == "own"

    build_training_set("illegal_dumping", build, data_root=None, synthetic=[synthetic])
    add_feedback_part(build, part.out)
    after = publish_dataset(store, build)
    assert after.created and after.version != before.version

    manifest = read_version(store, "illegal_dumping", after.version).manifest
    (source,) = [s for s in manifest["sources"] if s["role"] == "feedback"]
    assert (source["name"], source["licence"], source["images"]) == ("feedback", "own", 3)
    negatives = [f for f in manifest["files"] if f.get("feedback", {}).get("issue_id") == garbage]
    assert len(negatives) == 3
    for entry in negatives:
        assert entry["feedback"]["kind"] == "false_positive" and entry["file"].startswith(
            "images/train/"
        )
        label_key = f"{after.prefix}/{entry['file'].replace('images/', 'labels/', 1)}"
        label_key = label_key.rsplit(".", 1)[0] + ".txt"
        assert store.get_bytes(label_key) == b""  # the hard negative: nothing to find here
        assert store.exists(f"{after.prefix}/{entry['file']}")
    assert not any(
        s["role"] == "feedback"
        for s in read_version(store, "illegal_dumping", before.version).manifest["sources"]
    )
    train = manifest["splits"]["train"]
    assert train["by_source"]["feedback"] == 3 and manifest["splits"]["val"].get("by_source", {})
    assert "feedback" not in manifest["splits"]["val"]["by_source"]  # val stays the benchmark


def test_each_verdict_becomes_the_right_labels(
    issues: IssueStore, store: LocalStore, tmp_path: Path
) -> None:
    pothole, garbage = issue_of(issues, "pothole"), issue_of(issues, "garbage_pile")
    issues.add_feedback(Feedback(pothole, FeedbackKind.FALSE_POSITIVE))
    issues.add_feedback(Feedback(pothole, FeedbackKind.CONFIRM))  # the reviewer changed mind
    issues.add_feedback(Feedback(pothole, FeedbackKind.WRONG_PLACE, lat=LAT0, lon=LON0 + 1e-5))
    last, _ = issues.add_feedback(
        Feedback(garbage, FeedbackKind.WRONG_CLASS, class_name="construction_waste")
    )
    part = build_feedback_part(issues, store, tmp_path / "feedback")
    manifest = part.manifest
    assert manifest["feedback"] == {
        "confirm": 1, "false_positive": 1, "wrong_class": 1, "wrong_place": 1
    }  # fmt: skip
    assert manifest["examples"] == {"confirm": 3, "wrong_class": 3}
    assert "1 wrong_place feedback skipped" in manifest["notes"][0]
    assert manifest["last_feedback_id"] == last.id
    by_issue = {e["issue_id"]: [] for e in manifest["images"]}
    for entry in manifest["images"]:
        by_issue[entry["issue_id"]].append(entry)
    for entry in by_issue[pothole]:
        (line,) = labels(part.out, entry)
        assert TAXONOMY_NAMES[int(line[0])] == "pothole" and entry["detectors"] == ["road_damage"]
        check_patch(part, entry, line, WHITE)
    for entry in by_issue[garbage]:
        (line,) = labels(part.out, entry)
        assert TAXONOMY_NAMES[int(line[0])] == "construction_waste"
        assert entry["detected_class"] == "garbage_pile" and entry["label"] == "construction_waste"
        check_patch(part, entry, line, GREEN)
    assert (
        build_feedback_part(issues, store, tmp_path / "none", since_id=last.id).manifest["images"]
        == []
    )


def check_patch(part: FeedbackPart, entry: dict, line: list[float], colour: tuple) -> None:
    """The labelled box of the crop covers the patch drawn at the detection's place."""
    with Image.open(part.out / entry["file"]) as crop:
        pixels = np.asarray(crop.convert("RGB"), dtype=np.float64)
    h, w = pixels.shape[:2]
    _, cx, cy, bw, bh = line
    inner = pixels[int((cy - bh / 4) * h) : int((cy + bh / 4) * h),
                   int((cx - bw / 4) * w) : int((cx + bw / 4) * w)]  # fmt: skip
    assert np.abs(inner.mean(axis=(0, 1)) - colour).max() < 20, entry["file"]


def test_a_part_merges_into_each_detector_it_teaches(
    issues: IssueStore, store: LocalStore, tmp_path: Path
) -> None:
    issues.add_feedback(Feedback(issue_of(issues, "pothole"), FeedbackKind.CONFIRM))
    issues.add_feedback(
        Feedback(issue_of(issues, "garbage_pile"), FeedbackKind.WRONG_CLASS, class_name="pothole")
    )
    part = build_feedback_part(issues, store, tmp_path / "feedback")
    synthetic = write_synthetic(tmp_path / "synth")
    road = tmp_path / "road"
    build_training_set("road_damage", road, data_root=None, synthetic=[synthetic])
    manifest = add_feedback_part(road, part.out)
    added = [f for f in manifest["files"] if f["source"] == "feedback"]
    assert len(added) == 6 and all(f["boxes"] == 1 for f in added)  # every box a pothole
    pothole_id = manifest["classes"].index("pothole")
    for entry in added:
        label = road / entry["file"].replace("images/", "labels/", 1).replace(".jpg", ".txt")
        assert label.read_text("utf-8").split()[0] == str(pothole_id)
    dumping = tmp_path / "dumping"
    build_training_set("illegal_dumping", dumping, data_root=None, synthetic=[synthetic])
    merged = add_feedback_part(dumping, part.out)
    negatives = [f for f in merged["files"] if f["source"] == "feedback"]
    assert len(negatives) == 3 and all(f["boxes"] == 0 for f in negatives)  # not garbage
    assert merged["splits"]["train"]["background_images"] >= 3


def test_missing_frames_are_listed_and_rebuilds_are_identical(
    issues: IssueStore, store: LocalStore, tmp_path: Path
) -> None:
    issues.add_feedback(Feedback(issue_of(issues, "garbage_pile"), FeedbackKind.FALSE_POSITIVE))
    store.delete("raw/B1/DJI_0001.JPG")
    store.put_bytes("raw/B1/DJI_0002.JPG", b"not a jpeg")
    part = build_feedback_part(issues, store, tmp_path / "a")
    assert len(part.manifest["images"]) == 1
    reasons = {s["frame_key"]: s["reason"] for s in part.manifest["skipped"]}
    assert "no such object" in reasons["raw/B1/DJI_0001.JPG"]
    assert "cannot decode image" in reasons["raw/B1/DJI_0002.JPG"]
    again = build_feedback_part(issues, store, tmp_path / "b")
    assert digests(part.out) == digests(again.out)


def test_feedback_cli_and_build_with_feedback(settings, store: LocalStore, tmp_path: Path) -> None:
    from xunjian.storage.objectstore import open_store

    settings_store = open_store(settings)
    with IssueStore(settings.db_url) as opened:
        record_flight(opened, settings_store)
        opened.add_feedback(Feedback(issue_of(opened, "garbage_pile"), FeedbackKind.FALSE_POSITIVE))
    runner = CliRunner()
    out = tmp_path / "fb"
    done = runner.invoke(app_cli(), ["datasets", "feedback", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip().endswith("data.yaml") and "3 hard negatives" in done.output
    synthetic = write_synthetic(tmp_path / "synth")
    built = runner.invoke(
        app_cli(),
        ["datasets", "build", "illegal_dumping", "--out", str(tmp_path / "b"),
         "--synthetic", str(synthetic), "--data-root", str(tmp_path / "nowhere"),
         "--feedback", str(out)],
    )  # fmt: skip
    assert built.exit_code == 0, built.output
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text("utf-8"))
    assert manifest["splits"]["train"]["by_source"]["feedback"] == 3


def app_cli():  # imported late: the CLI modules import settings-dependent code lazily anyway
    from xunjian.cli import app

    return app
