"""YOLO export of a rendered flight: tiles, normalised labels, class indices per detector."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import yaml

from xunjian.core.taxonomy import CLASSES, Detector, classes_of
from xunjian.datasets.synth.export_yolo import export_yolo
from xunjian.datasets.synth.flight import FlightTruth, render_flight
from xunjian.datasets.synth.plans import CAMERAS, plan_survey
from xunjian.datasets.synth.world import World


@cache
def world() -> World:
    """One world per module (generating one takes about half a second)."""
    return World.generate(11)


@pytest.fixture(scope="module")
def flight(tmp_path_factory: pytest.TempPathFactory) -> FlightTruth:
    plan = plan_survey(world(), area=(-10, -10, 10, 10), cam=CAMERAS["tiny"], height_m=25.0)
    return render_flight(world(), plan, tmp_path_factory.mktemp("flight"), seed=6)


def read_labels(root: Path) -> list[list[str]]:
    return [
        line.split()
        for p in sorted(root.glob("labels/*/*.txt"))
        for line in p.read_text().splitlines()
    ]


def test_all_classes_export(flight: FlightTruth, tmp_path: Path) -> None:
    result = export_yolo(flight, tmp_path, tile=160, overlap=0.25)
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert data["names"] == {i: c.name for i, c in enumerate(CLASSES)}
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert result.images["train"] > 0 and result.images["val"] > 0
    images = sorted(tmp_path.glob("images/*/*.jpg"))
    labels = sorted(tmp_path.glob("labels/*/*.txt"))
    assert [p.stem for p in images] == [p.stem for p in labels]
    rows = read_labels(tmp_path)
    assert rows, "expected some boxes"
    for row in rows:
        assert len(row) == 5
        cls = int(row[0])
        assert 0 <= cls < len(CLASSES)
        cx, cy, w, h = map(float, row[1:])
        assert 0 < w <= 1 and 0 < h <= 1
        assert cx - w / 2 + 1e-6 >= 0 and cx + w / 2 - 1e-6 <= 1
        assert cy - h / 2 + 1e-6 >= 0 and cy + h / 2 - 1e-6 <= 1
    assert sum(result.labels.values()) == len(rows)
    # Tiles of one frame stay on one side of the split.
    stems = {p.stem.rsplit("_", 2)[0]: p.parent.name for p in images}
    for p in images:
        assert stems[p.stem.rsplit("_", 2)[0]] == p.parent.name


def test_one_detector_gets_its_own_class_indices(flight: FlightTruth, tmp_path: Path) -> None:
    result = export_yolo(flight, tmp_path, tile=320, overlap=0.0, detector="road_damage")
    names = classes_of(Detector.ROAD_DAMAGE)
    data = yaml.safe_load((tmp_path / "data.yaml").read_text())
    assert tuple(data["names"].values()) == names
    assert set(result.labels) == set(names)
    rows = read_labels(tmp_path)
    assert rows and all(0 <= int(r[0]) < len(names) for r in rows)


def test_bad_arguments_are_clear_errors(flight: FlightTruth, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="overlap"):
        export_yolo(flight, tmp_path, overlap=1.5)
    with pytest.raises(ValueError, match="not_a_detector"):
        export_yolo(flight, tmp_path, detector="not_a_detector")


def test_the_datasets_yolo_reader_reads_the_export(flight: FlightTruth, tmp_path: Path) -> None:
    """The project's own YOLO importer reads the export back: same names, same boxes."""
    from xunjian.datasets.formats.yolo import import_yolo

    result = export_yolo(flight, tmp_path, tile=160, overlap=0.25)
    dataset = import_yolo(tmp_path)
    assert dataset.class_names == tuple(c.name for c in CLASSES)
    assert dataset.box_count == sum(result.labels.values())
    assert dict(dataset.class_counts()) == {k: v for k, v in result.labels.items() if v}
