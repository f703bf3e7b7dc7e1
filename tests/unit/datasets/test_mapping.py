"""Mapping tables are data files onto the taxonomy; unmapped names are kept and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.labelled import write_voc, write_yolo
from xunjian.core.taxonomy import BY_NAME
from xunjian.datasets.formats import import_dataset
from xunjian.datasets.mapping import (
    IDENTITY,
    apply_mapping,
    available_mappings,
    guess_mapping,
    load_mapping,
)
from xunjian.errors import ConfigurationError


def test_shipped_tables_load_and_target_only_taxonomy_classes() -> None:
    names = available_mappings()
    assert {"rdd", "uav_pdd", "pothole_roboflow", "trashbags"} <= set(names)
    for name in names:
        table = load_mapping(name)
        assert table.targets() <= set(BY_NAME), name


def test_rdd_table() -> None:
    rdd = load_mapping("rdd")
    assert [rdd.target(c) for c in ("D00", "D10", "D20", "D40")] == [
        "longitudinal_crack",
        "transverse_crack",
        "alligator_crack",
        "pothole",
    ]
    for kept in ("D43", "D44", "D50", "Repair"):
        assert rdd.target(kept) is None and kept in rdd.keep
    assert load_mapping("trashbags").target("other_trashbag") == "garbage_pile"
    assert load_mapping("pothole_roboflow").target("pothole") == "pothole"  # any case


def test_apply_renames_keeps_and_reports(tmp_path: Path) -> None:
    dataset = import_dataset(write_voc(tmp_path / "rdd"))
    mapped, report = apply_mapping(dataset, load_mapping("rdd"))
    assert mapped.class_counts() == {
        "longitudinal_crack": 2,
        "transverse_crack": 1,
        "pothole": 1,
        "D43": 1,
    }
    assert mapped.names()[:4] == (
        "longitudinal_crack",
        "transverse_crack",
        "alligator_crack",
        "pothole",
    )
    assert report.mapped[("D00", "longitudinal_crack")] == 2
    assert report.unmapped == {"D43": 1} and report.unexpected == {}
    assert "D43: kept by name (1)" in report.lines()


def test_unknown_names_not_in_the_table_are_flagged(tmp_path: Path) -> None:
    dataset = import_dataset(write_voc(tmp_path / "rdd"))
    table = tmp_path / "mine.yaml"
    table.write_text("map:\n  D00: longitudinal_crack\nkeep: [D10]\n", "utf-8")
    _, report = apply_mapping(dataset, load_mapping(table))
    assert report.unexpected == {"D40": 1, "D43": 1}
    assert report.mapping == "mine"


def test_taxonomy_names_pass_through_the_identity(tmp_path: Path) -> None:
    dataset = import_dataset(write_voc(tmp_path / "rdd"))
    renamed, _ = apply_mapping(dataset, load_mapping("rdd"))
    again, report = apply_mapping(renamed, IDENTITY)
    assert again.class_counts() == renamed.class_counts()
    assert set(report.unmapped) == {"D43"}


def test_guess_picks_the_table_that_maps_most(tmp_path: Path) -> None:
    rdd = import_dataset(write_voc(tmp_path / "rdd"))
    assert guess_mapping(rdd).name == "rdd"
    other = import_dataset(write_yolo(tmp_path / "y", names=["car", "D00", "D10", "D40", "D43"]))
    assert guess_mapping(other).name == "rdd"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("map:\n  D00: crack\n", "not taxonomy classes"),
        ("nothing: here\n", "expected a mapping with a 'map' table"),
        ("map: {D00: pothole}\nkeep: [D00]\n", "both mapped and kept"),
        ("map: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_tables_are_clear_configuration_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_mapping(path)


def test_unknown_table_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"expected a YAML path or one of .*rdd"):
        load_mapping("no_such_table")
