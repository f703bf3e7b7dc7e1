"""Per-detector training sets built from generated stand-ins for the real sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.fixtures.labelled import write_real_like_root, write_synthetic
from xunjian.core.taxonomy import Detector, classes_of
from xunjian.datasets.build import BuildOptions, build_training_set, seeded_split
from xunjian.datasets.records import Box, LabelledImage
from xunjian.errors import InputError


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return write_real_like_root(tmp_path / "data")


def groups_by_split(manifest) -> dict[str, set[tuple[str, str]]]:
    result: dict[str, set[tuple[str, str]]] = {"train": set(), "val": set()}
    for entry in manifest["files"]:
        result[entry["file"].split("/")[1]].add((entry["source"], entry["group"]))
    return result


def read_labels(out: Path, split: str) -> dict[str, list[list[float]]]:
    return {
        p.stem: [[float(v) for v in line.split()] for line in p.read_text("utf-8").splitlines()]
        for p in (out / "labels" / split).glob("*.txt")
    }


def test_road_damage_takes_real_sources_keeps_splits_and_groups(
    tmp_path: Path, data_root: Path
) -> None:
    out = tmp_path / "road"
    result = build_training_set("road_damage", out, data_root=data_root)
    manifest = result.manifest
    config = yaml.safe_load(result.data_yaml.read_text("utf-8"))
    assert list(config["names"].values()) == list(classes_of(Detector.ROAD_DAMAGE))
    assert {s["name"] for s in manifest["sources"]} == {
        "pothole_roboflow",
        "rdd2022_samples",
        "uav_pdd2023_samples",
    }
    assert all(s["licence"] for s in manifest["sources"])
    groups = groups_by_split(manifest)
    assert not groups["train"] & groups["val"]
    assert ("pothole_roboflow", "p1") in groups["val"]  # own valid split wins
    assert manifest["split_notes"] == {"train_images_moved_to_val": 1}
    assert manifest["val_is_real"] is True
    assert manifest["left_out_classes"] == {"D43": 5, "Oblique crack": 6}
    val = manifest["splits"]["val"]
    assert val["by_source"]["pothole_roboflow"] == 4 and val["synthetic_images"] == 0
    assert val["by_source"]["rdd2022_samples"] == 2  # 20 % of 10, seeded
    train, val_boxes = manifest["splits"]["train"]["boxes"], val["boxes"]
    assert train["longitudinal_crack"] + val_boxes["longitudinal_crack"] == 10
    assert train["transverse_crack"] + val_boxes["transverse_crack"] == 6
    assert train["pothole"] + val_boxes["pothole"] == 9 + 5
    labels = read_labels(out, "train") | read_labels(out, "val")
    assert sum(len(rows) for rows in labels.values()) == 10 + 6 + 14
    assert all(0 <= row[0] < 4 for rows in labels.values() for row in rows)
    assert len(list((out / "images" / "train").iterdir())) == manifest["splits"]["train"]["images"]


def test_same_seed_same_set_other_seed_other_split(tmp_path: Path, data_root: Path) -> None:
    first = build_training_set("road_damage", tmp_path / "a", data_root=data_root).manifest
    again = build_training_set("road_damage", tmp_path / "b", data_root=data_root).manifest
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    vals = {
        frozenset(
            groups_by_split(
                build_training_set(
                    "road_damage",
                    tmp_path / f"s{seed}",
                    data_root=data_root,
                    options=BuildOptions(seed=seed),
                ).manifest
            )["val"]
        )
        for seed in range(4)
    }
    assert len(vals) > 1


def test_synthetic_data_only_trains_when_real_val_exists(tmp_path: Path, data_root: Path) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    manifest = build_training_set(
        "illegal_dumping", tmp_path / "dump", data_root=data_root, synthetic=[synthetic]
    ).manifest
    assert manifest["val_is_real"] is True
    assert manifest["splits"]["val"]["synthetic_images"] == 0
    assert manifest["splits"]["train"]["synthetic_images"] == 10
    assert manifest["splits"]["train"]["boxes"]["construction_waste"] == 4
    assert manifest["classes_without_real_val"] == ["construction_waste"]
    assert manifest["left_out_classes"]["spoil_truck"] == 10
    roles = {s["name"]: s["role"] for s in manifest["sources"]}
    assert roles == {"trashbags_seg": "real", "synthetic": "synthetic"}
    assert manifest["splits"]["val"]["boxes"]["garbage_pile"] == 2 * 2  # both bag classes


def test_spoil_truck_from_synthetic_only_says_val_is_synthetic(
    tmp_path: Path, data_root: Path
) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    result = build_training_set(
        "spoil_truck", tmp_path / "truck", data_root=data_root, synthetic=[synthetic]
    )
    manifest = result.manifest
    assert manifest["val_is_real"] is False
    assert any("no real validation data" in note for note in manifest["notes"])
    assert manifest["splits"]["val"]["synthetic_images"] == 2
    assert manifest["splits"]["train"]["synthetic_images"] == 8
    assert not groups_by_split(manifest)["train"] & groups_by_split(manifest)["val"]
    assert yaml.safe_load(result.data_yaml.read_text("utf-8"))["names"] == {
        0: "spoil_truck",
        1: "spoil_truck_uncovered",
    }


def test_synthetic_val_uses_the_exports_own_split_when_it_has_one(
    tmp_path: Path, data_root: Path
) -> None:
    synthetic = write_synthetic(tmp_path / "synth", own_val=True)
    manifest = build_training_set(
        "spoil_truck", tmp_path / "truck", data_root=data_root, synthetic=[synthetic]
    ).manifest
    assert manifest["splits"]["val"]["groups"] == 1 and manifest["splits"]["val"]["images"] == 2
    assert any("export's own val split" in note for note in manifest["notes"])
    road = build_training_set(
        "road_damage", tmp_path / "road", data_root=data_root, synthetic=[synthetic]
    ).manifest
    assert road["splits"]["val"]["synthetic_images"] == 0  # real val exists: synthetic trains


def test_no_data_at_all_is_a_clear_error(tmp_path: Path, data_root: Path) -> None:
    with pytest.raises(InputError, match="no training data for spoil_truck"):
        build_training_set("spoil_truck", tmp_path / "x", data_root=data_root)


def test_missing_data_root_still_builds_from_synthetic(tmp_path: Path) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    manifest = build_training_set(
        "road_damage", tmp_path / "x", data_root=tmp_path / "absent", synthetic=[synthetic]
    ).manifest
    assert manifest["val_is_real"] is False
    assert sum("not found" in note for note in manifest["notes"]) == 3


def test_tiling_cuts_large_images_and_keeps_groups(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "tiled"
    manifest = build_training_set(
        "road_damage", out, data_root=data_root, options=BuildOptions(imgsz=64, resize="tile")
    ).manifest
    tiles = [f for f in manifest["files"] if f["window"] is not None]
    assert tiles and all(f["source"] == "uav_pdd2023_samples" for f in tiles)
    assert len(tiles) == 6 * 9  # 160×120 at 64 px, 20 % overlap: 3 × 3 windows
    for entry in tiles:
        with Image.open(out / entry["file"]) as image:
            assert max(image.size) <= 64
    groups = groups_by_split(manifest)
    assert not groups["train"] & groups["val"]
    assert not (out / "derived").exists()
    for rows in read_labels(out, "train").values():
        for _, cx, cy, w, h in rows:
            assert cx - w / 2 >= -1e-6 and cx + w / 2 <= 1 + 1e-6
            assert cy - h / 2 >= -1e-6 and cy + h / 2 <= 1 + 1e-6


def test_fit_shrinks_large_images_and_scales_boxes(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "fit"
    manifest = build_training_set(
        "road_damage", out, data_root=data_root, options=BuildOptions(imgsz=80, resize="fit")
    ).manifest
    fitted = [f for f in manifest["files"] if f["scale"] != 1.0]
    assert len(fitted) == 6 and all(f["scale"] == 0.5 for f in fitted)
    with Image.open(out / fitted[0]["file"]) as image:
        assert image.size == (80, 60)


def test_seeded_split_never_splits_a_group() -> None:
    images = [
        LabelledImage(Path(f"{g}_{c}.jpg"), 10, 10, (Box("x", 1, 1, 5, 5),), "s", f"g{g}")
        for g in range(20)
        for c in range(g % 3 + 1)
    ]
    split = seeded_split(images, 0.25, seed=3)
    by_group: dict[str, set[str | None]] = {}
    for image in split:
        by_group.setdefault(image.group, set()).add(image.split)
    assert all(len(s) == 1 for s in by_group.values())
    val = sum(1 for i in split if i.split == "val")
    assert 0.2 * len(images) <= val <= 0.35 * len(images)
    assert seeded_split(images, 0.25, seed=3) == split


def test_rebuilding_replaces_the_old_build_and_spares_other_folders(
    tmp_path: Path, data_root: Path
) -> None:
    out = tmp_path / "road"
    build_training_set("road_damage", out, data_root=data_root)
    stale = out / "images" / "train" / "stale.jpg"
    stale.write_bytes(b"old")
    build_training_set("road_damage", out, data_root=data_root, options=BuildOptions(seed=5))
    assert not stale.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("mine", "utf-8")
    with pytest.raises(InputError, match="not empty"):
        build_training_set("road_damage", busy, data_root=data_root)
    assert (busy / "thesis.txt").is_file()
