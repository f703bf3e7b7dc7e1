"""The ultralytics backend: the reference, and the way to run any format ultralytics loads.

``.pt`` checkpoints, ``.onnx``, OpenVINO folders… all go through ``YOLO(path).predict`` with
ultralytics' own pre/post-processing, so this backend is what the onnxruntime backend is
checked against (same model → same boxes). It imports torch and ultralytics, through
:func:`xunjian.models.mlruntime.import_ultralytics` (offline, CPU torchvision fix), and only
when a model is loaded.

May import: numpy, ``xunjian.models.mlruntime``, ``xunjian.models.backends``, ``xunjian.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xunjian.errors import DetectorError
from xunjian.models.backends import Boxes, Image, PredictParams

__all__ = ["UltralyticsBackend"]


def _as_hw(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and value > 0:
        return (value, value)
    if isinstance(value, list | tuple) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    return None


class UltralyticsBackend:
    """A model loaded by ``ultralytics.YOLO`` and run on the CPU (or ``device``)."""

    name = "ultralytics"

    def __init__(
        self,
        path: Path | str,
        *,
        imgsz: int | tuple[int, int] | None = None,
        device: str = "cpu",
    ) -> None:
        from xunjian.models.mlruntime import import_ultralytics

        self.source = str(path)
        self._device = device
        if not Path(path).exists():
            raise DetectorError(f"{self.source}: model file not found")
        try:
            ultralytics = import_ultralytics()
            self._model = ultralytics.YOLO(str(path), task="detect")
            # Non-.pt formats load lazily on the first predict: load now so a bad file fails
            # here, with its name, not in the middle of a batch.
            self._model.predict(
                np.zeros((32, 32, 3), np.uint8),
                imgsz=_as_hw(imgsz) or 64,
                verbose=False,
                device=device,
            )
        except DetectorError:
            raise
        except Exception as exc:  # torch, pickle, onnx and protobuf all raise their own types
            raise DetectorError(
                f"{self.source}: cannot load model with ultralytics: {type(exc).__name__}: {exc}"
            ) from exc
        names = self._model.names
        self._names = tuple(str(names[k]) for k in sorted(names))
        self._input_size = _as_hw(imgsz) or self._stored_imgsz() or (640, 640)

    def _stored_imgsz(self) -> tuple[int, int] | None:
        train_args = getattr(self._model, "ckpt", None) or {}
        size = _as_hw(train_args.get("train_args", {}).get("imgsz"))
        if size is None:
            predictor = getattr(self._model, "predictor", None)
            size = _as_hw(getattr(getattr(predictor, "model", None), "imgsz", None))
        return size

    @property
    def input_size(self) -> tuple[int, int]:
        return self._input_size

    @property
    def num_classes(self) -> int:
        return len(self._names)

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self._names

    def predict(self, images: Sequence[Image], params: PredictParams) -> list[Boxes]:
        if not images:
            return []
        try:
            results = self._model.predict(
                list(images),
                imgsz=list(self._input_size),
                conf=params.conf,
                iou=params.iou,
                max_det=params.max_det,
                verbose=False,
                device=self._device,
            )
        except Exception as exc:
            raise DetectorError(f"{self.source}: inference failed: {exc}") from exc
        out: list[Boxes] = []
        for result in results:
            boxes = result.boxes
            out.append(
                Boxes(
                    boxes.xyxy.cpu().numpy().astype(np.float32),
                    boxes.conf.cpu().numpy().astype(np.float32),
                    boxes.cls.cpu().numpy().astype(np.int64),
                )
            )
        return out
