"""Training, resuming, evaluating, exporting and shipping on a tiny generated dataset.

The dataset (coloured squares, discs and bars on grey noise, 96 px) is generated here; its
data.yaml lists all four road_damage classes while the images hold only the first three, so
the fourth must come back as "no instances", not as 0.0. One module-scoped run is interrupted
after its first epoch (as a killed process would be), resumed, and then reused by the
evaluate / export / ship tests.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from xunjian.core.taxonomy import Detector, classes_of
from xunjian.errors import ConfigurationError
from xunjian.models.train import TrainResult

pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

SIZE = 96
CLASSES = classes_of(Detector.ROAD_DAMAGE)
COLOURS = {0: (255, 255, 255), 1: (0, 0, 255), 2: (0, 200, 0)}  # BGR; class 3 never drawn
_network: list[str] = []
_guard_on = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    if _guard_on and event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
        _network.append(f"{event} {args!r}")


sys.addaudithook(_audit)


def _scene(seed: int) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    image = rng.integers(60, 110, size=(SIZE, SIZE, 3), dtype=np.uint8)
    labels = []
    for _ in range(int(rng.integers(1, 3))):
        cls = int(rng.integers(0, 3))
        s = int(rng.integers(SIZE // 5, SIZE // 2))
        x0, y0 = int(rng.integers(0, SIZE - s)), int(rng.integers(0, SIZE - s))
        if cls == 1:
            cv2.circle(image, (x0 + s // 2, y0 + s // 2), s // 2, COLOURS[cls], -1)
        else:
            cv2.rectangle(image, (x0, y0), (x0 + s - 1, y0 + s - 1), COLOURS[cls], -1)
        labels.append(
            f"{cls} {(x0 + s / 2) / SIZE:.6f} {(y0 + s / 2) / SIZE:.6f} "
            f"{s / SIZE:.6f} {s / SIZE:.6f}"
        )
    return image, labels


def write_tiny_dataset(
    root: Path, n_train: int = 16, n_val: int = 6, names: tuple[str, ...] = CLASSES
) -> Path:
    for split, count, offset in (("train", n_train, 0), ("val", n_val, 1000)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, labels = _scene(offset + i)
            cv2.imwrite(str(root / "images" / split / f"{i:03d}.png"), image)
            (root / "labels" / split / f"{i:03d}.txt").write_text("\n".join(labels) + "\n")
    data = {
        "path": str(root),
        "train": "images/train",
        "val": "images/val",
        "nc": len(names),
        "names": dict(enumerate(names)),
    }
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    manifest = {
        "detector": Detector.ROAD_DAMAGE.value,
        "classes": list(CLASSES),
        "val_is_real": True,
        "classes_without_real_val": [],
        "sources": [
            {
                "name": "tiny_real",
                "role": "real",
                "licence": "CC0 (generated)",
                "images": n_train + n_val,
            },
            {"name": "synthetic", "role": "synthetic", "licence": "unknown", "images": 0},
        ],
        "splits": {"train": {"images": n_train}, "val": {"images": n_val}},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root / "data.yaml"


@dataclass
class Run:
    data_yaml: Path
    out: Path
    lines: list[str]
    result: TrainResult


class InterruptedRunError(Exception):
    """Stands for the process being killed after an epoch."""


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def trained(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """2 epochs: killed after epoch 1, then resumed to the end."""
    global _guard_on
    from xunjian.models.train import EpochProgress, train_detector

    out = tmp_path_factory.mktemp("run") / "road_damage"
    lines: list[str] = []

    def stop_after_first(p: EpochProgress) -> None:
        lines.append(p.line())
        raise InterruptedRunError

    _guard_on = True
    try:
        with pytest.raises(InterruptedRunError):
            train_detector(
                tiny_data, out, detector="road_damage", epochs=2, imgsz=SIZE, batch=8,
                progress=stop_after_first,
            )  # fmt: skip
        assert (out / "weights" / "last.pt").is_file()
        result = train_detector(
            tiny_data, out, detector="road_damage", epochs=2, imgsz=SIZE, batch=8, resume=True,
            progress=lambda p: lines.append(p.line()),
        )  # fmt: skip
        yield Run(tiny_data, out, lines, result)
    finally:
        _guard_on = False


def test_class_names_must_match_the_detector(tmp_path: Path) -> None:
    from xunjian.models.train import train_detector

    data = write_tiny_dataset(tmp_path, 1, 1, names=("pothole", "crack", "x", "y"))
    with pytest.raises(ConfigurationError, match=r"expected .*longitudinal_crack.*got .*crack"):
        train_detector(
            data, tmp_path / "run", detector="road_damage", epochs=1, imgsz=SIZE, batch=2
        )


def test_resume_needs_a_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    from xunjian.models.train import train_detector

    with pytest.raises(ConfigurationError, match="no checkpoint"):
        train_detector(
            tiny_data,
            tmp_path / "none",
            detector="road_damage",
            epochs=1,
            imgsz=SIZE,
            batch=2,
            resume=True,
        )


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_end(trained: Run) -> None:
    result = trained.result
    assert result.epochs_done == 2
    assert result.best_pt.is_file() and result.last_pt.is_file()
    assert trained.lines[0].startswith("epoch 1/2 ") and "mAP50=" in trained.lines[0]
    assert trained.lines[-1].startswith("epoch 2/2 ")
    assert "metrics/mAP50(B)" in result.metrics
    assert _network == [], _network


@pytest.mark.slow
def test_evaluate_reports_every_class(trained: Run) -> None:
    from xunjian.models.evaluate import evaluate_model

    result = evaluate_model(trained.result.best_pt, trained.data_yaml, imgsz=SIZE)
    per = result.per_class()
    assert tuple(per) == CLASSES
    assert not per["pothole"].has_data and per["pothole"].map50 is None  # never drawn
    drawn = [per[name] for name in CLASSES[:3] if per[name].instances]
    assert drawn and all(c.has_data and c.map50 is not None and c.f1 is not None for c in drawn)
    assert 0.0 <= result.conf_threshold <= 1.0
    assert set(result.to_dict()["classes"]["pothole"]) >= {
        "images",
        "instances",
        "map50",
        "map50_95",
        "precision",
        "recall",
        "f1",
        "has_data",
    }
    assert "no instances" in result.table()


@pytest.mark.slow
def test_ship_exports_dynamic_onnx_with_a_valid_card(trained: Run, tmp_path: Path) -> None:
    import onnxruntime as ort

    from xunjian.models.card import validate_card
    from xunjian.models.export import ship_model

    card = ship_model(
        "road_damage",
        data_yaml=trained.data_yaml,
        run_dir=trained.out,
        imgsz=SIZE,
        weights_dir=tmp_path,
        gsd_m=0.08,
    )
    folder = tmp_path / "road_damage"
    assert card["gsd_m"] == 0.08
    assert validate_card(folder)["sha256"] == card["sha256"]
    assert card["classes"] == list(CLASSES) and card["imgsz"] == SIZE
    # the version names the weights: the same day's retrain is a new version
    assert card["version"].startswith("road_damage-") and card["version"].endswith(
        f"-yolo11n-{SIZE}-{card['sha256'][:8]}"
    )
    assert card["metrics"]["classes_without_real_val"] == ["pothole"]
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    batch_dim = session.get_inputs()[0].shape[0]
    assert isinstance(batch_dim, str)  # symbolic: dynamic batch
    for n, size in ((1, SIZE), (3, 128)):
        out = session.run(
            None, {session.get_inputs()[0].name: np.zeros((n, 3, size, size), np.float32)}
        )
        assert out[0].shape[0] == n and out[0].shape[1] == 4 + len(CLASSES)
    onnx_eval = card["metrics"]["real_val"]
    assert set(onnx_eval["classes"]) == set(CLASSES)
    markdown = (folder / "MODEL_CARD.md").read_text()
    assert (
        "No real validation data for: `pothole`" in markdown
        and "xunjian train road_damage" in markdown
        and "## Working scale" in markdown
        and "0.08 m/px" in markdown
    )
    assert _network == [], _network


@pytest.mark.slow
def test_resuming_a_finished_run_is_refused(trained: Run) -> None:
    from xunjian.models.train import train_detector

    with pytest.raises(ConfigurationError, match="finished"):
        train_detector(
            trained.data_yaml, trained.out, detector="road_damage", epochs=2, imgsz=SIZE, batch=8,
            resume=True,
        )  # fmt: skip


def test_default_version_differs_for_two_models_of_one_day() -> None:
    from datetime import UTC, datetime

    from xunjian.models.export import default_version

    day = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    a = default_version("road_damage", "yolo11n.yaml", 320, "b160ef40" + "0" * 56, day)
    b = default_version("road_damage", "yolo11n.yaml", 320, "0badf00d" + "0" * 56, day)
    assert a == "road_damage-20261124-yolo11n-320-b160ef40"
    assert a != b
    assert default_version("spoil_truck", "cfg/yolo11s.yaml", 640, "f" * 64, day) == (
        "spoil_truck-20261124-yolo11s-640-ffffffff"
    )
