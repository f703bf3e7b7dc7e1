"""Detector, DetectorSet and loading models through the registry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.models import CLASSES, BlobBackend, draw_shape, noise, write_toy_onnx
from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.core.taxonomy import classes_of
from xunjian.errors import DetectorError
from xunjian.models import registry
from xunjian.models.backends import Boxes, PredictParams, predict_tensor_backend
from xunjian.models.detector import Detector, DetectorSet
from xunjian.models.onnx_backend import OnnxBackend


class CountingTensorBackend:
    """Wraps an OnnxBackend and records every tensor it is given."""

    name = "counting"

    def __init__(self, inner: OnnxBackend) -> None:
        self.inner = inner
        self.tensors: list[np.ndarray] = []
        self.input_size = inner.input_size
        self.num_classes = inner.num_classes
        self.class_names = inner.class_names

    def run_tensor(self, batch: np.ndarray) -> np.ndarray:
        self.tensors.append(batch)
        return self.inner.run_tensor(batch)

    def predict(self, images: Sequence[np.ndarray], params: PredictParams) -> list[Boxes]:
        return predict_tensor_backend(self, images, params)


def test_one_letterbox_pass_feeds_every_detector(tmp_path: Path) -> None:
    model = OnnxBackend(write_toy_onnx(tmp_path / "toy.onnx"))
    first, second = CountingTensorBackend(model), CountingTensorBackend(model)
    blob = BlobBackend()
    detectors = DetectorSet(
        [
            Detector("road_damage", first, CLASSES, "a@1"),
            Detector("illegal_dumping", second, CLASSES, "b@1"),
            Detector("toy", blob, CLASSES, "c@1"),
        ]
    )
    images = [noise(64, 64, seed=i) for i in range(3)]
    params = PredictParams(conf=0.3)
    results = detectors.predict(images, params)
    assert list(results) == ["road_damage", "illegal_dumping", "toy"]
    assert len(first.tensors) == len(second.tensors) == 1
    assert first.tensors[0] is second.tensors[0]  # the same array: letterboxed once
    assert len(blob.calls) == 1 and len(blob.calls[0]) == 3
    alone = model.predict(images, params)
    for shared, own in zip(results["road_damage"], alone, strict=True):
        assert np.array_equal(shared.xyxy, own.xyxy)


def test_detections_carry_names_version_key_and_original_pixels() -> None:
    detector = Detector("toy", BlobBackend(), CLASSES, "toy@2026.11.24-abc")
    image = noise(100, 80)
    draw_shape(image, 1, 10, 20, 30)
    (boxes,) = detector.predict([image], PredictParams())
    (found,) = detector.to_detections(
        boxes, frame_key="b1/DJI_0001.JPG", scale_xy=(4.0, 4.0), image_wh=(400, 320)
    )
    assert (found.detector, found.class_name, found.model_version, found.frame_key) == (
        "toy",
        "disc",
        "toy@2026.11.24-abc",
        "b1/DJI_0001.JPG",
    )
    assert found.bbox_xyxy == pytest.approx((40.0, 80.0, 164.0, 204.0))
    assert found.confidence == pytest.approx(0.9)


def test_a_class_list_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    backend = OnnxBackend(write_toy_onnx(tmp_path / "toy.onnx", names=None))
    with pytest.raises(DetectorError, match=r"predicts 3 classes, expected 2 \(a, b\)") as caught:
        Detector("toy", backend, ("a", "b"), "v")
    assert "toy.onnx" in str(caught.value)


def test_detector_set_names_are_unique() -> None:
    one = Detector("toy", BlobBackend(), CLASSES, "v")
    with pytest.raises(ValueError, match="unique detector names, got toy twice"):
        DetectorSet([one, one])
    assert DetectorSet([one])["toy"] is one


# ---- registry


def _ship(
    weights: Path, detector: str, *, nc: int | None = None, card: dict[str, object] | None = None
) -> Path:
    classes = classes_of(DetectorName(detector))
    path = weights / detector / "model.onnx"
    write_toy_onnx(path, nc=nc or len(classes), names=classes)
    if card is not None:
        (path.parent / "card.json").write_text(json.dumps(card), encoding="utf-8")
    return path


def test_no_shipped_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="no shipped model for detector road_damage: "):
        registry.load_default_set(weights_dir=tmp_path / "weights")


def test_default_set_loads_the_shipped_models_with_their_cards(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    _ship(weights, "road_damage", card={"detector": "road_damage", "version": "rd@1", "imgsz": 64})
    path = _ship(weights, "illegal_dumping")  # no card: version from the file's hash
    _ship(weights, "spoil_truck", card={"detector": "spoil_truck", "classes": ["x", "y"]})
    detectors = registry.load_default_set(weights_dir=weights)
    assert detectors.names == ("road_damage", "illegal_dumping", "spoil_truck")
    assert detectors["road_damage"].version == "rd@1"
    assert detectors["road_damage"].class_names == classes_of(DetectorName.ROAD_DAMAGE)
    digest = registry._sha256(path)
    assert detectors["illegal_dumping"].version == f"illegal_dumping@{digest[:12]}"
    assert detectors["spoil_truck"].class_names == ("x", "y")


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ({"detector": "spoil_truck"}, "card is for detector 'spoil_truck', found under"),
        ({"detector": "road_damage", "classes": ["a", "b"]}, "predicts 4 classes, expected 2"),
        ({"detector": "road_damage", "imgsz": "big"}, "imgsz: expected an integer"),
        ("not json", "unreadable model card"),
    ],
)
def test_bad_cards_are_detector_errors(tmp_path: Path, card: object, reason: str) -> None:
    weights = tmp_path / "weights"
    path = _ship(weights, "road_damage")
    text = card if isinstance(card, str) else json.dumps(card)
    (path.parent / "card.json").write_text(text, encoding="utf-8")
    with pytest.raises(DetectorError, match=reason):
        registry.load_default_set(["road_damage"], weights_dir=weights)


def test_a_model_with_the_wrong_class_count_is_refused(tmp_path: Path) -> None:
    path = _ship(tmp_path / "weights", "road_damage", nc=3)
    with pytest.raises(DetectorError, match="predicts 3 classes, expected 4") as caught:
        registry.load_detector(path, detector="road_damage")
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing", "not_onnx"])
def test_unreadable_model_files_are_detector_errors_naming_the_path(
    tmp_path: Path, damage: str
) -> None:
    path = _ship(tmp_path / "weights", "road_damage")
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "missing":
        path.unlink()
    else:
        path = path.rename(path.with_suffix(".pt"))
    with pytest.raises(DetectorError) as caught:
        registry.load_detector(path, detector="road_damage")
    assert str(path) in str(caught.value)


def test_a_model_outside_the_taxonomy_uses_its_stored_names(tmp_path: Path) -> None:
    path = write_toy_onnx(tmp_path / "custom.onnx", names=("cat", "dog", "cow"))
    detector = registry.load_detector(path, detector="pets")
    assert detector.class_names == ("cat", "dog", "cow")
    unnamed = write_toy_onnx(tmp_path / "unnamed.onnx", names=None)
    with pytest.raises(DetectorError, match="not in the taxonomy and the model stores no names"):
        registry.load_detector(unnamed, detector="pets")
