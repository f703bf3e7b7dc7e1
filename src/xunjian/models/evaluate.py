"""Evaluates a detector (``.pt`` or ``.onnx``) on a YOLO dataset split, per class.

``evaluate_model(model, data_yaml, imgsz=…)`` runs ultralytics' validator (offline, CPU) and
returns an :class:`EvalResult`: mAP50 and mAP50-95 overall and per class, precision, recall
and F1 per class at one operating confidence threshold — the one where the F1 averaged over
classes peaks, which is reported — plus image and instance counts per class. A class with no
instance in the split is reported with ``has_data=False`` and ``None`` figures, never as 0.0.

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.models.mlruntime``,
``xunjian.models.train`` (data.yaml helpers). Not ``xunjian.datasets``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xunjian.errors import ConfigurationError
from xunjian.models.train import (
    count_split_images,
    dataset_class_names,
    limit_threads,
    read_data_yaml,
)


@dataclass(frozen=True, slots=True)
class ClassEval:
    """One class's figures; all ``None`` when the split holds no instance of it."""

    name: str
    images: int
    instances: int
    has_data: bool
    map50: float | None
    map50_95: float | None
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Overall and per-class figures of one model on one split."""

    model: str
    data: str
    split: str
    imgsz: int
    images: int
    instances: int
    map50: float
    map50_95: float
    precision: float
    recall: float
    conf_threshold: float
    iou: float
    classes: tuple[ClassEval, ...]

    def per_class(self) -> dict[str, ClassEval]:
        """The per-class figures keyed by class name."""
        return {c.name: c for c in self.classes}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (per-class entries keyed by class name)."""
        out = asdict(self)
        out["classes"] = {
            c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.classes
        }
        return out

    def table(self) -> str:
        """A plain-text table: one row per class, then ``all``."""
        head = (
            f"{'class':<24}{'images':>7}{'inst':>6}{'mAP50':>8}{'mAP50-95':>9}"
            f"{'P':>7}{'R':>7}{'F1':>7}"
        )
        rows = [head]
        for c in self.classes:
            if not c.has_data:
                rows.append(
                    f"{c.name:<24}{c.images:>7}{c.instances:>6}   (no instances in this split)"
                )
                continue
            rows.append(
                f"{c.name:<24}{c.images:>7}{c.instances:>6}{_f(c.map50):>8}{_f(c.map50_95):>9}"
                f"{_f(c.precision):>7}{_f(c.recall):>7}{_f(c.f1):>7}"
            )
        rows.append(
            f"{'all':<24}{self.images:>7}{self.instances:>6}{_f(self.map50):>8}"
            f"{_f(self.map50_95):>9}{_f(self.precision):>7}{_f(self.recall):>7}"
        )
        rows.append(f"operating confidence (F1-max): {self.conf_threshold:.3f}; NMS IoU {self.iou}")
        return "\n".join(rows)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _split_images(data: dict[str, Any], data_yaml: Path, split: str) -> None:
    if split not in data:
        raise ConfigurationError(
            f"{data_yaml}: no {split!r} split; expected one of train, val, test"
        )


def evaluate_model(
    model_path: Path,
    data_yaml: Path,
    *,
    imgsz: int,
    split: str = "val",
    conf: float = 0.001,
    iou: float = 0.6,
    batch: int = 8,
    threads: int = 2,
) -> EvalResult:
    """Validates ``model_path`` on ``split`` of ``data_yaml``; figures per class.

    The model's class names must equal the dataset's (same order): a ConfigurationError
    otherwise.
    """
    model_path = Path(model_path).resolve()
    data_yaml = Path(data_yaml).resolve()
    if not model_path.is_file():
        raise ConfigurationError(f"{model_path}: model file not found")
    data = read_data_yaml(data_yaml)
    _split_images(data, data_yaml, split)
    names = dataset_class_names(data, data_yaml)
    limit_threads(threads)
    from xunjian.models.mlruntime import import_ultralytics

    ultralytics = import_ultralytics()
    model = ultralytics.YOLO(str(model_path), task="detect")
    model_names = tuple(str(n) for _, n in sorted(dict(model.names).items()))
    if model_names != names:
        raise ConfigurationError(
            f"{model_path}: model classes {list(model_names)} differ from "
            f"{data_yaml} classes {list(names)}"
        )
    metrics = model.val(
        data=str(data_yaml),
        imgsz=imgsz,
        split=split,
        conf=conf,
        iou=iou,
        batch=batch,
        device="cpu",
        plots=False,
        verbose=False,
        workers=0,
    )
    return _result(metrics, names, model_path, data_yaml, split, imgsz, iou)


def _result(
    metrics: Any,
    names: tuple[str, ...],
    model_path: Path,
    data_yaml: Path,
    split: str,
    imgsz: int,
    iou: float,
) -> EvalResult:
    import numpy as np

    box = metrics.box
    nt_class = metrics.nt_per_class if metrics.nt_per_class is not None else np.zeros(len(names))
    nt_image = metrics.nt_per_image if metrics.nt_per_image is not None else np.zeros(len(names))
    row_of = {int(c): i for i, c in enumerate(box.ap_class_index)}
    conf_threshold = 0.0
    if len(row_of) and len(box.f1_curve):
        from ultralytics.utils.metrics import smooth  # imported by evaluate_model first

        conf_threshold = float(box.px[int(smooth(box.f1_curve.mean(0), 0.1).argmax())])
    classes = []
    for index, name in enumerate(names):
        instances = int(nt_class[index]) if index < len(nt_class) else 0
        images = int(nt_image[index]) if index < len(nt_image) else 0
        row = row_of.get(index)
        if instances == 0 or row is None:
            classes.append(ClassEval(name, images, instances, False, None, None, None, None, None))
            continue
        classes.append(
            ClassEval(
                name,
                images,
                instances,
                True,
                float(box.ap50[row]),
                float(box.ap[row]),
                float(box.p[row]),
                float(box.r[row]),
                float(box.f1[row]),
            )
        )
    return EvalResult(
        model=str(model_path),
        data=str(data_yaml),
        split=split,
        imgsz=imgsz,
        images=count_split_images(data_yaml, split),
        instances=int(np.sum(nt_class)),
        map50=float(box.map50),
        map50_95=float(box.map),
        precision=float(box.mp),
        recall=float(box.mr),
        conf_threshold=conf_threshold,
        iou=iou,
        classes=tuple(classes),
    )
