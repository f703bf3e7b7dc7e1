"""The detection benchmarks in --quick mode: documented keys and sane values, no timings.

The tiny fixture model (squares, discs, triangles) stands in for a real detector; test-range
frames are rendered once per session into a shared data directory.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures.models import TinyModel, scene
from xunjian.bench.detect import (
    bench_backends,
    bench_detect_throughput,
    box_agreement,
    resolve_model,
)
from xunjian.bench.tiled import bench_tiled_detect, recall_of
from xunjian.errors import DetectorError
from xunjian.models.backends import Boxes


@pytest.fixture(scope="session")
def bench_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-data")


def _boxes(rows: list[tuple[float, float, float, float, int]], conf: float = 0.9) -> Boxes:
    arr = np.array(rows, np.float32).reshape(-1, 5)
    return Boxes(arr[:, :4], np.full(len(arr), conf, np.float32), arr[:, 4].astype(np.int64))


def test_box_agreement_counts_one_to_one_same_class_matches() -> None:
    a = _boxes([(0, 0, 10, 10, 0), (20, 20, 30, 30, 1)])
    assert box_agreement([a], [a]) == 1.0
    assert box_agreement([a], [_boxes([(0, 0, 10, 10, 1)])]) == 0.0  # other class
    assert box_agreement([a], [_boxes([(0, 0, 10, 10, 0)])]) == 0.5  # one of two boxes
    shifted = _boxes([(2, 0, 12, 10, 0), (20, 20, 30, 30, 1)])  # IoU 0.67 < 0.9
    assert box_agreement([a], [shifted]) == 0.5
    twice = _boxes([(0, 0, 10, 10, 0), (0, 0, 10, 10, 0)])
    assert box_agreement([twice], [_boxes([(0, 0, 10, 10, 0)])]) == 0.5  # no double use
    assert box_agreement([Boxes.empty()], [Boxes.empty()]) == 1.0


def test_recall_matches_same_class_at_iou_03() -> None:
    truth = {"a.jpg": [("pothole", (0.0, 0.0, 10.0, 10.0)), ("pothole", (50.0, 50, 60, 60))]}
    found = {"a.jpg": [("pothole", (1.0, 1.0, 11.0, 11.0)), ("garbage_pile", (50.0, 50, 60, 60))]}
    r = recall_of(truth, found)
    assert (r["targets"], r["found"], r["recall"]) == (2, 1, 0.5)
    assert r["per_class"] == {"pothole": 0.5}
    assert recall_of({"a.jpg": []}, {})["recall"] is None


def test_resolve_model_needs_an_onnx(tmp_path: Path) -> None:
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(DetectorError, match=r"need an \.onnx model"):
        resolve_model(tmp_path / "m.pt", data_dir=tmp_path)


@pytest.mark.slow
def test_detect_throughput_quick(tiny_yolo: TinyModel, bench_data: Path) -> None:
    result = bench_detect_throughput(model=tiny_yolo.onnx, quick=True, data_dir=bench_data)
    inputs = result["inputs"]
    assert inputs["model"]["source"] == "--model"
    assert inputs["model"]["pt"] == str(tiny_yolo.pt)
    assert inputs["image_sizes"] == ["160x160", "1024x768"]
    assert inputs["images_per_size"] > 0 and inputs["repeats"] >= 1
    assert inputs["threads"]["onnxruntime_xunjian_intra_op"] >= 1
    for size in inputs["image_sizes"]:
        runners = result["figures"][size]
        assert set(runners) == {"xunjian", "ultralytics_onnx", "ultralytics_pt"}
        for figures in runners.values():
            assert figures["images_per_s"] > 0 and figures["ms_per_img"] > 0
            assert figures["boxes"] >= 0
        ratios = result["ratios"][size]
        assert set(ratios) == {"xunjian_vs_ultralytics_onnx", "xunjian_vs_ultralytics_pt"}
        assert all(v > 0 for v in ratios.values())


@pytest.mark.slow
def test_backends_quick_agree_on_the_tiny_model(
    tiny_yolo: TinyModel, bench_data: Path, tmp_path: Path
) -> None:
    images = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), scene(20_000 + i)[0])
        images.append(path)
    result = bench_backends(model=tiny_yolo.onnx, quick=True, data_dir=bench_data, images=images)
    figures = result["figures"]
    assert result["inputs"]["images"] == 6 and result["inputs"]["agree_iou"] == 0.9
    assert result["inputs"]["ultralytics_weights"] == str(tiny_yolo.pt)
    assert figures["onnxruntime"]["boxes"] > 0 and figures["ultralytics"]["boxes"] > 0
    assert figures["onnxruntime"]["ms_per_img"] > 0 and figures["ultralytics"]["ms_per_img"] > 0
    assert figures["agreement"] >= 0.9
    assert result["ratios"]["ultralytics_vs_onnxruntime"] > 0


@pytest.mark.slow
def test_tiled_detect_quick(tiny_yolo: TinyModel, bench_data: Path) -> None:
    # the toy model renamed to road-damage classes: recall is a number (of no meaning)
    classes = ("longitudinal_crack", "transverse_crack", "alligator_crack")
    result = bench_tiled_detect(
        model=tiny_yolo.onnx, quick=True, data_dir=bench_data, classes=classes, reduced_gsd_m=0.05
    )
    inputs, figures = result["inputs"], result["figures"]
    assert inputs["frames"] >= 1 and inputs["image_size"] == [1024, 768]
    assert inputs["slice"] == 160 and inputs["overlap"] == 0.2 and inputs["match_iou"] == 0.3
    tiles = inputs["tiles_per_frame"]
    assert tiles["xunjian"]["run"] > 0
    assert 0 < tiles["xunjian_reduced"]["run"] < tiles["xunjian"]["run"]  # fewer at 5 cm/px
    assert 0 < inputs["frame_gsd_m"] < 0.05
    assert inputs["model"]["classes"] == list(classes)
    for side in ("xunjian", "xunjian_reduced", "sahi"):
        assert figures[side]["images_per_s"] > 0
        assert figures[side]["targets"] > 0
        assert 0.0 <= figures[side]["recall"] <= 1.0
        assert figures[side]["detections"] >= 0
    for suffix in ("", "_reduced"):
        assert result["ratios"][f"speedup_vs_sahi{suffix}"] > 0
        assert -1.0 <= result["ratios"][f"recall_minus_sahi{suffix}"] <= 1.0
