"""Training sets built from the licensed real samples: val real, groups whole, taxonomy order.

Group checks here derive each file's source photo from its original name without the
package's code (Roboflow ``<stem>_jpg.rf.<hash>``, UAV-PDD ``lr_/tb_/r180_`` + quadrant).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.fixtures.labelled import write_synthetic
from xunjian.core.taxonomy import Detector, classes_of
from xunjian.datasets.build import build_training_set

pytestmark = pytest.mark.realdata

UAV = re.compile(r"^(?:lr_|tb_|r180_)?(\d+)(?:_(?:top|bottom)_(?:left|right))?$")


def photo_of(origin: str) -> str:
    stem = Path(origin).stem
    if ".rf." in stem:
        return re.sub(r"_(jpg|jpeg|png)$", "", stem.split(".rf.")[0])
    match = UAV.match(stem)
    return match[1] if match else stem


def photos_by_split(out: Path, manifest) -> dict[str, set[tuple[str, str]]]:
    result: dict[str, set[tuple[str, str]]] = {"train": set(), "val": set()}
    for entry in manifest["files"]:
        split = entry["file"].split("/")[1]
        assert (out / entry["file"]).is_file()
        result[split].add((entry["source"], photo_of(entry["origin"])))
    return result


def xml_names(root: Path) -> Counter[str]:
    return Counter(
        o.findtext("name") or ""
        for xml in root.rglob("*.xml")
        for o in ET.parse(xml).getroot().iter("object")
    )


def yolo_boxes(root: Path) -> int:
    return sum(
        1 for label in root.rglob("labels/*.txt") for line in label.read_text("utf-8").splitlines()
        if line.split()
    )  # fmt: skip


def test_road_damage_from_real_data(tmp_path: Path, shared_data: Path) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    out = tmp_path / "road"
    result = build_training_set("road_damage", out, data_root=shared_data, synthetic=[synthetic])
    manifest = result.manifest
    config = yaml.safe_load(result.data_yaml.read_text("utf-8"))
    assert list(config["names"].values()) == list(classes_of(Detector.ROAD_DAMAGE))
    photos = photos_by_split(out, manifest)
    assert not photos["train"] & photos["val"]
    assert all(source != "synthetic" for source, _ in photos["val"])
    assert manifest["val_is_real"] is True and manifest["classes_without_real_val"] == []
    val = manifest["splits"]["val"]
    assert val["synthetic_images"] == 0 and val["by_source"]["pothole_roboflow"] == 118
    assert set(val["by_source"]) == {"pothole_roboflow", "rdd2022_samples", "uav_pdd2023_samples"}
    rdd = xml_names(shared_data / "rdd2022_samples")
    uav = xml_names(shared_data / "uav_pdd2023_samples")
    total = Counter(manifest["splits"]["train"]["boxes"]) + Counter(val["boxes"])
    assert total["longitudinal_crack"] == rdd["D00"] + uav["Longitudinal crack"]
    assert total["alligator_crack"] == rdd["D20"] + uav["Alligator crack"]
    roboflow = yolo_boxes(shared_data / "pothole_roboflow")
    assert total["pothole"] == rdd["D40"] + uav["Pothole"] + roboflow + 3  # + 3 synthetic
    assert manifest["left_out_classes"]["D50"] == rdd["D50"]
    licences = {s["name"]: s["licence"] for s in manifest["sources"]}
    assert "CC BY-SA 4.0" in licences["rdd2022_samples"]
    assert "CC BY 4.0" in licences["uav_pdd2023_samples"]


def test_illegal_dumping_from_trashbags(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "dump"
    manifest = build_training_set("illegal_dumping", out, data_root=shared_data).manifest
    photos = photos_by_split(out, manifest)
    assert not photos["train"] & photos["val"]
    splits = manifest["splits"]
    assert splits["val"]["images"] == 145 + manifest["split_notes"]["train_images_moved_to_val"]
    assert splits["train"]["images"] + splits["val"]["images"] == 983 + 145
    boxes = splits["train"]["boxes"]["garbage_pile"] + splits["val"]["boxes"]["garbage_pile"]
    assert boxes == yolo_boxes(shared_data / "trashbags_seg")
    assert manifest["classes_without_real_val"] == ["construction_waste"]
    assert [s["name"] for s in manifest["sources"]] == ["trashbags_seg"]
