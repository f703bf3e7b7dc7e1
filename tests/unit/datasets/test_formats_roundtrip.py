"""Round trips between formats keep every box within half a pixel; records hash stably."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.labelled import SAMPLES, write_voc
from xunjian.datasets.formats import export_dataset, import_dataset
from xunjian.datasets.records import Box, group_of, merge, split_name

TOLERANCE_PX = 0.5


def boxes_by_image(dataset) -> dict[str, tuple[Box, ...]]:
    return {image.path.name: image.boxes for image in dataset.images}


def assert_same(got, want) -> None:
    assert set(got) == set(want)
    for name, boxes in want.items():
        assert len(got[name]) == len(boxes), name
        for a, b in zip(sorted(got[name]), sorted(boxes), strict=True):
            assert a.class_name == b.class_name
            assert max(abs(x - y) for x, y in zip(a[1:], b[1:], strict=True)) <= TOLERANCE_PX


def test_voc_yolo_coco_voc_yolo_keeps_boxes(tmp_path: Path) -> None:
    want = {s.name: s.boxes for s in SAMPLES}
    current = import_dataset(write_voc(tmp_path / "voc0"))
    assert_same(boxes_by_image(current), want)
    for step, fmt in enumerate(("yolo", "coco", "voc", "yolo"), start=1):
        folder = tmp_path / f"{fmt}{step}"
        export_dataset(current, folder, fmt)
        current = import_dataset(folder)
        assert_same(boxes_by_image(current), want)
        assert not [p for p in current.problems if p.severity == "error"], fmt


def test_export_keeps_splits_and_prefixes_mixed_sources(tmp_path: Path) -> None:
    a = import_dataset(write_voc(tmp_path / "a"))
    b = import_dataset(write_voc(tmp_path / "b"))
    mixed = merge("mixed", [a, b])
    export_dataset(mixed, tmp_path / "out", "yolo")
    names = sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir())
    assert names[:2] == ["a__road_a.jpg", "a__road_b.jpg"]
    assert len(names) == 2 * len(SAMPLES)


def test_label_digest_depends_on_labels_only(tmp_path: Path) -> None:
    one = import_dataset(write_voc(tmp_path / "x"))
    two = import_dataset(write_voc(tmp_path / "x"))
    assert one.label_digest() == two.label_digest()
    moved = one.with_images((one.images[0].with_boxes(()), *one.images[1:]))
    assert moved.label_digest() != one.label_digest()


def test_group_and_split_names() -> None:
    assert group_of("101_jpg.rf.27e088eb31bdea8fba31f479a18d5e90.jpg") == "101"
    assert group_of("-2023-11-30-170136_png.rf.12f6f82a27442b740fadcc0a37636641.jpg") == (
        "-2023-11-30-170136"
    )
    assert group_of("tb_00062_bottom_right.jpg") == "00062"
    assert group_of("China_Drone_000000.jpg") == "China_Drone_000000"
    assert group_of("flight0_f0003_00640_00512.jpg") == "flight0_f0003"  # synthetic tiles
    assert (split_name("valid"), split_name("Train"), split_name("images")) == (
        "val",
        "train",
        None,
    )
