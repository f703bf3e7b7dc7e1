"""YOLO detect/segment import and detect export on generated data, broken files included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.fixtures.labelled import (
    SAMPLES,
    Sample,
    break_yolo,
    problem_pairs,
    roboflow_name,
    write_image,
    write_yolo,
)
from xunjian.datasets.formats import detect_format, export_yolo, import_yolo, parse_label
from xunjian.datasets.records import Box, Dataset, LabelledImage
from xunjian.errors import InputError

NAMES = ["D00", "D10", "D40", "D43"]


def by_name(dataset: Dataset) -> dict[str, LabelledImage]:
    return {image.path.name: image for image in dataset.images}


def assert_boxes_close(got, want, tol=0.01) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.class_name == b.class_name
        assert all(abs(x - y) <= tol for x, y in zip(a[1:], b[1:], strict=True)), (a, b)


@pytest.mark.parametrize("polygon", [False, True], ids=["detect", "segment"])
def test_boxes_and_polygons_read_back_in_pixels(tmp_path: Path, polygon: bool) -> None:
    root = write_yolo(tmp_path / "set", names=NAMES, polygon=polygon)
    dataset = import_yolo(root)
    assert dataset.class_names == tuple(NAMES)
    for sample in SAMPLES:
        assert_boxes_close(by_name(dataset)[sample.name].boxes, sample.boxes)
    assert detect_format(root) == ("yolo-seg" if polygon else "yolo")


def test_polygon_box_is_min_max_of_points() -> None:
    parsed = parse_label("1 0.1 0.2 0.5 0.05 0.9 0.7 0.3 0.6", ("a", "b"), 200, 100)
    assert parsed.boxes == (Box("b", 20.0, 5.0, 180.0, 70.0),)
    assert parsed.polygons == 1


def test_own_splits_and_roboflow_groups(tmp_path: Path) -> None:
    box = (Box("Pothole", 2.0, 2.0, 10.0, 10.0),)
    samples = (
        Sample(roboflow_name("12", 0), 40, 40, box, "train"),
        Sample(roboflow_name("12", 1), 40, 40, box, "train"),
        Sample(roboflow_name("13", 2), 40, 40, box, "val"),
    )
    images = import_yolo(write_yolo(tmp_path / "rf", samples)).images
    assert [(i.group, i.split) for i in images] == [("12", "train"), ("12", "train"), ("13", "val")]


def test_names_from_classes_txt_and_no_names(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    write_image(root / "images" / "a.jpg", 20, 20)
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n", "utf-8")
    assert import_yolo(root).images[0].boxes[0].class_name == "class_1"
    assert "no_class_names" in {p.kind for p in import_yolo(root).problems}
    (root / "classes.txt").write_text("car\ntruck\n", "utf-8")
    assert import_yolo(root).images[0].boxes[0] == Box("truck", 5.0, 5.0, 15.0, 15.0)


def test_broken_files_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "set", names=NAMES)
    expected = break_yolo(root)
    dataset = import_yolo(root)
    assert expected <= problem_pairs(dataset.problems)
    images = by_name(dataset)
    assert {s.name for s in SAMPLES} <= set(images)
    for dropped in ("garbled.jpg", "short.jpg", "unreadable.jpg", "no_label.jpg"):
        assert dropped not in images
    assert images["empty.jpg"].boxes == ()
    assert images["far_out.jpg"].boxes == (Box("D00", 28.0, 16.0, 40.0, 24.0),)
    for kept_one in ("wholly_out.jpg", "flat.jpg", "unknown.jpg"):
        assert images[kept_one].boxes == (Box("D00", 16.0, 16.0, 24.0, 24.0),)
    severities = {p.kind: p.severity for p in dataset.problems}
    assert severities["box_clipped"] == "warning" and severities["box_outside"] == "error"


def test_a_box_a_hair_outside_is_clipped_silently(tmp_path: Path) -> None:
    root = tmp_path / "hair"
    write_image(root / "images" / "a.jpg", 100, 100)
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 1.01 0.5", "utf-8")
    (root / "classes.txt").write_text("x\n", "utf-8")
    dataset = import_yolo(root)
    assert dataset.images[0].boxes == (Box("x", 0.0, 25.0, 100.0, 75.0),)
    assert not dataset.problems


def test_parse_label_rejects_garbage() -> None:
    with pytest.raises(InputError, match="line 2"):
        parse_label("0 0.5 0.5 0.1 0.1\n0 a b c d", ("x",), 10, 10)
    with pytest.raises(InputError, match="not a class id"):
        parse_label("-1 0.5 0.5 0.1 0.1", ("x",), 10, 10)
    with pytest.raises(InputError, match="6 fields"):
        parse_label("0 0.5 0.5 0.1 0.1 0.3", ("x",), 10, 10)


def test_export_writes_ultralytics_layout_with_links(tmp_path: Path) -> None:
    dataset = import_yolo(write_yolo(tmp_path / "in", names=NAMES))
    data_yaml = export_yolo(dataset, tmp_path / "out", names=("D40", "D00"))
    config = yaml.safe_load(data_yaml.read_text("utf-8"))
    assert config["names"] == {0: "D40", 1: "D00"}
    assert config["train"] == "images/train" and config["val"] == "images/train"
    image = tmp_path / "out" / "images" / "train" / "road_a.jpg"
    source = tmp_path / "in" / "train" / "images" / "road_a.jpg"
    assert image.is_symlink() or os.path.samefile(image, source)
    label = (tmp_path / "out" / "labels" / "train" / "road_a.txt").read_text("utf-8")
    assert [line.split()[0] for line in label.splitlines()] == ["1", "0"]
    assert (tmp_path / "out" / "labels" / "train" / "road_b.txt").read_text("utf-8") == ""
