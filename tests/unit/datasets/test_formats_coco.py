"""COCO import/export on generated data, broken files included."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.labelled import SAMPLES, break_coco, problem_pairs, write_coco, write_image
from xunjian.datasets.formats import detect_format, export_coco, import_coco
from xunjian.datasets.records import Box, Dataset, LabelledImage


def by_name(dataset: Dataset) -> dict[str, LabelledImage]:
    return {image.path.name: image for image in dataset.images}


def test_reads_every_box_as_written(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    dataset = import_coco(root)
    assert dataset.class_names == ("D00", "D10", "D40", "D43")
    for sample in SAMPLES:
        image = by_name(dataset)[sample.name]
        assert image.boxes == sample.boxes
        assert image.split == "train"  # from instances_train.json
    assert not dataset.problems
    assert detect_format(root) == "coco"
    assert detect_format(root / "annotations" / "instances_train.json") == "coco"


def test_one_json_file_can_be_imported_alone(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    dataset = import_coco(root / "annotations" / "instances_train.json")
    assert len(dataset.images) == len(SAMPLES)


def test_broken_entries_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    expected = break_coco(root)
    dataset = import_coco(root)
    assert expected <= problem_pairs(dataset.problems)
    assert {s.name for s in SAMPLES} == set(by_name(dataset))
    assert by_name(dataset)[SAMPLES[0].name].boxes == SAMPLES[0].boxes  # bad one dropped


def test_other_json_in_the_folder_is_ignored(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    (root / "manifest.json").write_text('{"version": 1}', "utf-8")
    assert not import_coco(root).problems


def test_segmentation_without_bbox_gives_its_box(tmp_path: Path) -> None:
    root = tmp_path / "seg"
    write_image(root / "images" / "a.jpg", 50, 50)
    payload = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 50, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[5, 6, 20, 4, 12, 30]]}
        ],
        "categories": [{"id": 3, "name": "garbage_pile"}],
    }
    (root / "val.json").write_text(json.dumps(payload), "utf-8")
    (image,) = import_coco(root).images
    assert image.boxes == (Box("garbage_pile", 5.0, 4.0, 20.0, 30.0),)
    assert image.split == "val"


def test_export_writes_one_file_per_split(tmp_path: Path) -> None:
    dataset = import_coco(write_coco(tmp_path / "in"))
    paths = export_coco(dataset, tmp_path / "out", names=("D40", "D00"))
    assert [p.name for p in paths] == ["instances_train.json"]
    data = json.loads(paths[0].read_text("utf-8"))
    assert [c["name"] for c in data["categories"]] == ["D40", "D00"]
    assert len(data["annotations"]) == 3  # D10 and D43 are not in names
    again = by_name(import_coco(tmp_path / "out"))
    assert again["road_a.jpg"].boxes == (
        Box("D00", 10.0, 5.5, 30.25, 50.0),
        Box("D40", 40.0, 20.0, 70.5, 44.75),
    )
