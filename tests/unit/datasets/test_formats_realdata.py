"""Importing the licensed real samples gives the counts their label files hold.

Each test counts the label files itself (XML ``<object>`` names, YOLO lines per class id)
without the importer's code, then compares.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from xunjian.datasets.formats import detect_format, import_dataset
from xunjian.datasets.mapping import apply_mapping, load_mapping
from xunjian.errors import InputError

pytestmark = pytest.mark.realdata


def voc_counts(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for xml in root.rglob("*.xml"):
        counts.update(o.findtext("name") or "" for o in ET.parse(xml).getroot().iter("object"))
    return counts


def yolo_counts(root: Path, names: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for label in root.rglob("labels/*.txt"):
        for line in label.read_text("utf-8").splitlines():
            if line.split():
                counts[names[int(line.split()[0])]] += 1
    return counts


def yaml_names(root: Path) -> list[str]:
    names: list[str] = yaml.safe_load((root / "data.yaml").read_text("utf-8"))["names"]
    return names


def no_errors(dataset) -> None:
    assert [str(p) for p in dataset.problems if p.severity == "error"] == []


def test_rdd2022_counts_and_mapping(shared_data: Path) -> None:
    root = shared_data / "rdd2022_samples"
    dataset = import_dataset(root)
    no_errors(dataset)
    assert detect_format(root) == "voc"
    assert dataset.class_counts() == voc_counts(root)
    assert len(dataset.images) == len(list(root.glob("*/images/*.jpg"))) == 30
    assert "CC BY-SA 4.0" in dataset.licences["rdd2022_samples"]
    mapped, report = apply_mapping(dataset, load_mapping("rdd"))
    raw, counts = voc_counts(root), mapped.class_counts()
    for code, name in {
        "D00": "longitudinal_crack",
        "D10": "transverse_crack",
        "D20": "alligator_crack",
        "D40": "pothole",
    }.items():
        assert counts[name] == raw[code] > 0
        assert code not in counts
    for kept in ("D43", "D44", "D50", "Repair"):
        assert counts[kept] == raw[kept] > 0
        assert report.unmapped[kept] == raw[kept]
    assert report.unexpected == {}


def test_uav_pdd_counts_and_mapping(shared_data: Path) -> None:
    root = shared_data / "uav_pdd2023_samples"
    dataset = import_dataset(root)
    no_errors(dataset)
    assert dataset.class_counts() == voc_counts(root)
    assert {(i.width, i.height) for i in dataset.images} == {(1280, 960)}
    assert len({i.group for i in dataset.images}) < len(dataset.images)  # flips share frames
    mapped, report = apply_mapping(dataset, load_mapping("uav_pdd"))
    raw = voc_counts(root)
    assert mapped.class_counts()["longitudinal_crack"] == raw["Longitudinal crack"]
    assert mapped.class_counts()["Oblique crack"] == raw["Oblique crack"]
    assert set(report.unmapped) == {"Oblique crack", "Repair"}


@pytest.mark.parametrize("folder", ["pothole_roboflow", "trashbags_seg"])
def test_roboflow_sets_count_and_keep_their_splits(shared_data: Path, folder: str) -> None:
    root = shared_data / folder
    dataset = import_dataset(root)
    no_errors(dataset)
    assert dataset.class_counts() == yolo_counts(root, yaml_names(root))
    splits = Counter(i.split for i in dataset.images)
    assert splits == {
        "train": len(list((root / "train" / "images").iterdir())),
        "val": len(list((root / "valid" / "images").iterdir())),
    }
    assert "CC BY 4.0" in dataset.licences[folder]


def test_trashbag_polygons_become_min_max_boxes(shared_data: Path) -> None:
    root = shared_data / "trashbags_seg"
    dataset = import_dataset(root)
    names = yaml_names(root)
    images = {i.path: i for i in dataset.images}
    checked = 0
    for label in sorted(root.rglob("labels/*.txt")):
        image_path = label.parent.parent / "images" / f"{label.stem}.jpg"
        with Image.open(image_path) as image:
            width, height = image.size
        expected = []
        for line in label.read_text("utf-8").splitlines():
            values = [float(v) for v in line.split()]
            if not values:
                continue
            xs, ys = values[1::2], values[2::2]
            box = (min(xs) * width, min(ys) * height, max(xs) * width, max(ys) * height)
            clipped = (
                min(max(box[0], 0), width),
                min(max(box[1], 0), height),
                min(max(box[2], 0), width),
                min(max(box[3], 0), height),
            )
            expected.append((names[int(values[0])], *clipped))
        got = images[image_path].boxes
        assert len(got) == len(expected), label
        for a, b in zip(got, expected, strict=True):
            assert a.class_name == b[0]
            assert max(abs(x - y) for x, y in zip(a[1:], b[1:], strict=True)) < 1e-6
        checked += len(got)
    assert checked == sum(dataset.class_counts().values()) > 6000


def test_aerial_vehicles_counts_by_classes_txt(shared_data: Path) -> None:
    root = shared_data / "aerial_vehicles_dji"
    names = (root / "classes.txt").read_text("utf-8").split()
    dataset = import_dataset(root)
    no_errors(dataset)
    assert dataset.class_counts() == yolo_counts(root, names)
    assert dataset.class_names == tuple(names)


def test_unlabelled_folder_is_refused_clearly(shared_data: Path) -> None:
    with pytest.raises(InputError, match="no label files"):
        detect_format(shared_data / "amsterdam_dumping_unlabeled")
