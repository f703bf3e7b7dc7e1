"""The case mapping file: the shipped example is valid; mistakes are named clearly."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from xunjian.cases.mapping import DEFAULT_MAPPING, load_mapping, parse_mapping
from xunjian.core.issues import IssueStatus
from xunjian.core.taxonomy import BY_NAME
from xunjian.errors import ConfigurationError


def shipped() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_MAPPING.read_text(encoding="utf-8"))


def test_the_shipped_example_maps_every_class_and_the_platform_words() -> None:
    mapping = load_mapping()
    assert set(mapping.classes) == set(BY_NAME)
    assert mapping.codes("pothole").service_code == "pothole"
    assert mapping.codes("garbage_pile").szcg.minor == "暴露垃圾"
    assert mapping.codes("spoil_truck").szcg.major == "施工管理"
    assert mapping.threshold("pothole") == 0.45
    assert mapping.threshold("garbage_pile") == 0.5  # the default
    assert mapping.status_for("派遣") is IssueStatus.DISPATCHED
    assert mapping.status_for("作废") is IssueStatus.REJECTED
    assert mapping.status_for(" Closed ") is IssueStatus.CLOSED
    assert mapping.status_for("whatever") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["classes"].pop("pothole"), "none for pothole"),
        (lambda d: d["classes"].__setitem__("manhole", d["classes"]["pothole"]), "manhole"),
        (lambda d: d["classes"]["pothole"].pop("service_code"), "classes.pothole.service_code"),
        (lambda d: d["classes"]["pothole"]["szcg"].pop("minor"), "classes.pothole.szcg"),
        (lambda d: d["classes"]["pothole"]["szcg"].__setitem__("kind", "别的"), "部件 or 事件"),
        (lambda d: d["classes"]["pothole"].__setitem__("publish_threshold", 1.5), "[0, 1]"),
        (lambda d: d.__setitem__("default_publish_threshold", "high"), "[0, 1]"),
        (lambda d: d["statuses"].__setitem__("done", "verified_fixed"), "statuses.done"),
        (lambda d: d.__setitem__("classes", []), "class name → codes"),
    ],
)
def test_mistakes_are_refused_naming_the_entry(change: Any, message: str) -> None:
    document = copy.deepcopy(shipped())
    change(document)
    with pytest.raises(ConfigurationError, match=r"my\.yaml") as caught:
        parse_mapping(document, "my.yaml")
    assert message in str(caught.value)


def test_unreadable_or_broken_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("classes: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_mapping(broken)


def test_a_class_without_codes_is_a_clear_error() -> None:
    mapping = load_mapping()
    with pytest.raises(ConfigurationError, match="no case-system codes for class 'manhole'"):
        mapping.codes("manhole")
