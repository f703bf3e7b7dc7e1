"""Pascal VOC import/export on generated data: RDD and UAV-PDD layouts, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.labelled import SAMPLES, Sample, break_voc, problem_pairs, voc_text, write_voc
from xunjian.datasets.formats import detect_format, export_voc, import_voc, read_voc
from xunjian.datasets.records import Box, Dataset, LabelledImage
from xunjian.errors import InputError


def by_name(dataset: Dataset) -> dict[str, LabelledImage]:
    return {image.path.name: image for image in dataset.images}


def test_rdd_layout_reads_every_box_as_written(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "rdd")
    dataset = import_voc(root)
    images = by_name(dataset)
    assert set(images) == {s.name for s in SAMPLES}
    for sample in SAMPLES:
        image = images[sample.name]
        assert (image.width, image.height) == (sample.width, sample.height)
        assert image.boxes == sample.boxes
        assert image.source == "rdd" and image.split is None
    assert dataset.class_counts() == {"D00": 2, "D10": 1, "D40": 1, "D43": 1}
    assert detect_format(root) == "voc"


def test_several_countries_pair_each_xml_with_its_own_image(tmp_path: Path) -> None:
    root = tmp_path / "rdd"
    write_voc(root, SAMPLES[:2], country="china")
    write_voc(root, (Sample("japan_1.jpg", 30, 30, (Box("D20", 1.0, 1.0, 9.0, 9.0),)),), "japan")
    dataset = import_voc(root)
    assert len(dataset.images) == 3
    assert by_name(dataset)["japan_1.jpg"].path.parent == root / "japan" / "images"
    assert not dataset.problems


def test_classic_voc_and_split_folders(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    write_voc(root / "train", SAMPLES[:1], country="x")
    (root / "train" / "x" / "annotations" / "xmls").rename(root / "train" / "x" / "Annotations")
    (root / "train" / "x" / "images").rename(root / "train" / "x" / "JPEGImages")
    (image,) = import_voc(root).images
    assert image.split == "train"
    assert image.boxes == SAMPLES[0].boxes


def test_uav_pdd_variants_of_one_frame_share_a_group(tmp_path: Path) -> None:
    names = ("lr_00088_bottom_left.jpg", "00088_top_right.jpg", "r180_00411_top_left.jpg")
    samples = tuple(Sample(n, 32, 24, (Box("Pothole", 1.0, 1.0, 5.0, 5.0),)) for n in names)
    groups = {i.path.name: i.group for i in import_voc(write_voc(tmp_path / "u", samples)).images}
    assert groups[names[0]] == groups[names[1]] == "00088"
    assert groups[names[2]] == "00411"


def test_broken_files_are_reported_and_the_rest_imported(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "rdd")
    expected = break_voc(root)
    dataset = import_voc(root)
    assert expected <= problem_pairs(dataset.problems)
    images = by_name(dataset)
    assert {s.name for s in SAMPLES} <= set(images)
    assert "garbled.jpg" not in images and "no_label.jpg" not in images
    assert images["outside.jpg"].boxes == (Box("D00", 1.0, 1.0, 9.0, 9.0),)
    assert (images["resized.jpg"].width, images["resized.jpg"].height) == (40, 40)
    for problem in dataset.problems:
        assert problem.reason and Path(problem.file).name


def test_read_voc_names_the_file_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text("<annotation><object><name>D00</name><bndbox><xmin>x</xmin>", "utf-8")
    with pytest.raises(InputError, match=r"a\.xml: garbled XML"):
        read_voc(path)
    path.write_text(
        "<annotation><object><name>D00</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
        "<xmax>x</xmax><ymax>4</ymax></bndbox></object></annotation>",
        "utf-8",
    )
    with pytest.raises(InputError, match="<xmax> is 'x'; expected a number"):
        read_voc(path)


def test_hostile_xml_entities_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xml"
    path.write_text(
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>',
        "utf-8",
    )
    with pytest.raises(InputError, match=r"bomb\.xml"):
        read_voc(path)


def test_export_writes_rdd_layout_that_reads_back(tmp_path: Path) -> None:
    dataset = import_voc(write_voc(tmp_path / "in"))
    export_voc(dataset, tmp_path / "out")
    assert (tmp_path / "out" / "train" / "annotations" / "xmls" / "road_a.xml").is_file()
    again = by_name(import_voc(tmp_path / "out"))
    for sample in SAMPLES:
        assert again[sample.name].boxes == sample.boxes
        assert again[sample.name].split == "train"


def test_voc_text_round_trips_fractional_coordinates(tmp_path: Path) -> None:
    path = tmp_path / "f.xml"
    path.write_text(voc_text(SAMPLES[0]), "utf-8")
    assert read_voc(path).boxes == SAMPLES[0].boxes
