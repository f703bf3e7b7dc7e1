"""`xunjian datasets import|export|stats` on generated data."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.fixtures.labelled import SAMPLES, break_yolo, write_voc, write_yolo
from xunjian.cli import app


def run(*args: str):
    return CliRunner().invoke(app, ["datasets", *args])


def text(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_stats_prints_classes_images_boxes_and_problems(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "set", names=["D00", "D10", "D40", "D43"])
    break_yolo(root)
    result = run("stats", str(root))
    assert result.exit_code == 0, result.output
    for text in ("D00", "boxes", "images", "errors", "garbled_label", "missing_label"):
        assert text in result.stdout
    data = json.loads(run("stats", str(root), "--json").stdout)
    assert data["classes"]["D10"] == {"boxes": 1, "images": 1}
    assert data["errors"] > 0 and data["problem_kinds"]["unknown_class"] == 1
    assert {"file", "kind", "severity", "reason"} <= set(data["problems"][0])


def test_stats_with_a_mapping_counts_taxonomy_classes(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "rdd")
    data = json.loads(run("stats", str(root), "--mapping", "rdd", "--json").stdout)
    assert data["classes"]["longitudinal_crack"]["boxes"] == 2
    assert data["mapping"]["kept_by_name"] == {"D43": 1}
    assert data["images"] == len(SAMPLES) and data["boxes"] == 5


def test_import_writes_yolo_and_a_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("import", str(write_voc(tmp_path / "rdd")), "--mapping", "rdd", "--out", str(out))
    assert result.exit_code == 0, result.output
    names = (out / "data.yaml").read_text("utf-8")
    assert "longitudinal_crack" in names and "D43" in names
    report = json.loads((out / "import-report.json").read_text("utf-8"))
    assert report["boxes"] == 5 and report["mapping"]["name"] == "rdd"


def test_import_of_broken_data_writes_the_rest_and_exits_one(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "set", names=["D00", "D10", "D40", "D43"])
    break_yolo(root)
    out = tmp_path / "out"
    result = run("import", str(root), "--out", str(out), "--to", "coco")
    assert result.exit_code == 1
    data = json.loads((out / "annotations" / "instances_train.json").read_text("utf-8"))
    assert len(data["images"]) == len(SAMPLES) + 5  # broken-but-kept images included
    assert not (out / "images" / "train" / "road_a.jpg").is_symlink()


def test_export_converts_and_unknown_things_fail_clearly(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "rdd")
    assert run("export", str(root), "--out", str(tmp_path / "c"), "--to", "coco").exit_code == 0
    assert (tmp_path / "c" / "annotations" / "instances_train.json").is_file()
    bad = run("export", str(root), "--out", str(tmp_path / "x"), "--to", "pdf")
    assert bad.exit_code == 2 and "pdf" in text(bad)
    missing = run("stats", str(tmp_path / "nothing"))
    assert missing.exit_code == 2 and "no such file or folder" in text(missing)
    unknown = run("stats", str(root), "--mapping", "nope")
    assert unknown.exit_code == 2 and "unknown mapping 'nope'" in text(unknown)
