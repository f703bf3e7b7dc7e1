"""Model cards without any training: built from a stand-in ONNX file and made-up figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xunjian.core.taxonomy import Detector, classes_of
from xunjian.errors import ConfigurationError
from xunjian.models.card import REQUIRED_KEYS, build_card, validate_card, write_model_card
from xunjian.models.evaluate import ClassEval, EvalResult
from xunjian.models.export import sha256_file

DUMPING = classes_of(Detector.ILLEGAL_DUMPING)
MANIFEST = {
    "detector": "illegal_dumping",
    "classes": list(DUMPING),
    "val_is_real": True,
    "classes_without_real_val": ["construction_waste"],
    "sources": [
        {"name": "trashbags_seg", "role": "real", "licence": "CC BY 4.0", "images": 1128},
        {"name": "synthetic", "role": "synthetic", "licence": "unknown", "images": 112},
    ],
    "splits": {"train": {"images": 10, "real_images": 8, "synthetic_images": 2, "boxes": {}}},
}


def _eval(split_has_waste: bool) -> EvalResult:
    garbage = ClassEval("garbage_pile", 5, 9, True, 0.5, 0.25, 0.6, 0.4, 0.48)
    if split_has_waste:
        waste = ClassEval("construction_waste", 3, 4, True, 0.7, 0.35, 0.8, 0.5, 0.62)
    else:
        waste = ClassEval("construction_waste", 0, 0, False, None, None, None, None, None)
    return EvalResult(
        "model.onnx", "data.yaml", "val", 320, 6, 13, 0.5, 0.25, 0.6, 0.4, 0.21, 0.6,
        (garbage, waste),
    )  # fmt: skip


def _card(folder: Path) -> dict[str, object]:
    onnx = folder / "model.onnx"
    onnx.write_bytes(b"not really onnx, only hashed")
    card = build_card(
        detector="illegal_dumping",
        version="illegal_dumping-test",
        imgsz=320,
        onnx_path=onnx,
        manifest=MANIFEST,
        training={"epochs": 3, "model_cfg": "yolo11n.yaml"},
        reproduce="scripts/train_defaults.sh all illegal_dumping",
        real_eval=_eval(False),
        synthetic_eval=_eval(True),
        limitations=["a baseline"],
    )
    write_model_card(folder, card)
    return card


def test_card_holds_the_required_keys_and_validates(tmp_path: Path) -> None:
    card = _card(tmp_path)
    assert set(REQUIRED_KEYS) <= set(card)
    loaded = validate_card(tmp_path)
    assert loaded["sha256"] == sha256_file(tmp_path / "model.onnx")
    assert loaded["classes"] == list(DUMPING)
    assert json.loads((tmp_path / "card.json").read_text())["imgsz"] == 320


def test_classes_without_real_val_are_named_and_synthetic_figures_labelled(tmp_path: Path) -> None:
    card = _card(tmp_path)
    metrics = card["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["classes_without_real_val"] == ["construction_waste"]
    real = metrics["real_val"]["classes"]["construction_waste"]
    assert real["has_data"] is False and real["map50"] is None  # not 0.0
    assert metrics["synthetic_val"]["classes"]["construction_waste"]["map50"] == 0.7
    md = (tmp_path / "MODEL_CARD.md").read_text()
    assert "No real validation data for: `construction_waste`" in md
    assert "SYNTHETIC" in md and "CC BY 4.0" in md and "trashbags_seg" in md
    assert "scripts/train_defaults.sh all illegal_dumping" in md


def test_data_section_reads_sources_and_licences(tmp_path: Path) -> None:
    data = _card(tmp_path)["data"]
    assert isinstance(data, dict)
    assert [s["name"] for s in data["sources"]] == ["trashbags_seg", "synthetic"]
    assert "CC BY 4.0" in data["licences"]
    assert all(s["licence"] != "unknown" for s in data["sources"])


def test_tampered_model_fails_validation(tmp_path: Path) -> None:
    _card(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"something else")
    with pytest.raises(ConfigurationError, match="expected sha256"):
        validate_card(tmp_path)


def test_missing_key_fails_validation(tmp_path: Path) -> None:
    _card(tmp_path)
    card = json.loads((tmp_path / "card.json").read_text())
    del card["reproduce"]
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ConfigurationError, match="missing keys"):
        validate_card(tmp_path)


def test_manifest_of_another_detector_is_refused(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ConfigurationError, match="differ"):
        build_card(
            detector="spoil_truck", version="v", imgsz=320, onnx_path=onnx, manifest=MANIFEST,
            training={}, reproduce="x", real_eval=None,
        )  # fmt: skip
