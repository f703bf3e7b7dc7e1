"""The onnxruntime backend: the lean serving default (no torch, no ultralytics import).

It reads a YOLO detect model exported by ultralytics to ONNX: input ``(B, 3, H, W)`` float32
RGB in [0, 1], output ``(B, 4+nc, A)``. Ultralytics' metadata (``imgsz``, ``names``) is read
when present.

Batching: xunjian's models are exported with ``dynamic=True`` so a batch of tiles of any size
goes through one ``session.run``. A model exported with a fixed batch B still works: tiles go
through in chunks of B, the last chunk padded with blank images whose outputs are dropped.
Threads: ``threads`` intra-op threads (default: every core this process may use), graph
optimisation ``ORT_ENABLE_ALL``, no spin-waiting between runs unless ``spinning`` is set.
Spatial size: a fixed H×W in the graph wins; for a dynamic one, ``imgsz`` given here, else the
metadata's ``imgsz``, else 640.

May import: numpy, onnxruntime (lazily), ``xunjian.models.backends``, ``xunjian.errors``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xunjian.errors import DetectorError
from xunjian.models.backends import F32, Boxes, Image, PredictParams, predict_tensor_backend

__all__ = ["OnnxBackend", "default_threads"]

DEFAULT_IMGSZ = 640


def default_threads() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parse_literal(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None


def _metadata_names(meta: dict[str, str]) -> tuple[str, ...] | None:
    names = _parse_literal(meta.get("names"))
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        return tuple(str(names[k]) for k in sorted(names))
    if isinstance(names, list | tuple):
        return tuple(str(n) for n in names)
    return None


def _metadata_imgsz(meta: dict[str, str]) -> tuple[int, int] | None:
    size = _parse_literal(meta.get("imgsz"))
    if isinstance(size, int) and size > 0:
        return (size, size)
    if isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return (int(size[0]), int(size[1]))
    return None


def _as_hw(imgsz: int | tuple[int, int]) -> tuple[int, int]:
    return (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))


class OnnxBackend:
    """A YOLO ``.onnx`` model run by onnxruntime on the CPU (or the given providers)."""

    name = "onnxruntime"

    def __init__(
        self,
        model: Path | str | bytes,
        *,
        imgsz: int | tuple[int, int] | None = None,
        threads: int | None = None,
        spinning: bool = False,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        source: str | None = None,
    ) -> None:
        import onnxruntime as ort

        self.source = source or (str(model) if not isinstance(model, bytes) else "<bytes>")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads if threads is not None else default_threads()
        # ORT's worker threads spin-wait after each run by default. The three detectors' sessions
        # run one after another on a few shared cores, so one session's spinning threads steal
        # the cores the next one needs (seen here: a 3-detector frame 1.2-1.4x slower with it).
        options.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if spinning else "0"
        )
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings go to stderr otherwise
        data = model if isinstance(model, bytes) else str(model)
        try:
            self._session = ort.InferenceSession(data, options, providers=list(providers))
        except Exception as exc:  # ORT raises its own pybind types, all plain Exceptions
            raise DetectorError(
                f"{self.source}: cannot load ONNX model: {type(exc).__name__}: {exc}"
            ) from exc
        meta = dict(self._session.get_modelmeta().custom_metadata_map)
        self._names = _metadata_names(meta)
        self._check_io(imgsz, meta)

    def _check_io(self, imgsz: int | tuple[int, int] | None, meta: dict[str, str]) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [i.shape for i in inputs]
            raise DetectorError(
                f"{self.source}: expected one (B, 3, H, W) input, got inputs {shapes}"
            )
        if not outputs or len(outputs[0].shape) != 3:
            raise DetectorError(
                f"{self.source}: expected a YOLO detect output (B, 4+nc, A), "
                f"got {[o.shape for o in outputs]}"
            )
        self._input_name = inputs[0].name
        batch, channels, height, width = inputs[0].shape
        if isinstance(channels, int) and channels != 3:
            raise DetectorError(f"{self.source}: expected 3 input channels, got {channels}")
        self._fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        if isinstance(height, int) and isinstance(width, int):
            self._input_size = (height, width)
        elif imgsz is not None:
            self._input_size = _as_hw(imgsz)
        else:
            self._input_size = _metadata_imgsz(meta) or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
        out_channels = outputs[0].shape[1]
        if isinstance(out_channels, int):
            if out_channels < 5:
                raise DetectorError(
                    f"{self.source}: expected a YOLO detect output with 4 box channels and at "
                    f"least one class, got {out_channels} channels"
                )
            self._num_classes = out_channels - 4
        elif self._names is not None:
            self._num_classes = len(self._names)
        else:
            raise DetectorError(
                f"{self.source}: the output's channel count is dynamic and the model stores "
                "no class names, so its class count cannot be known"
            )

    @property
    def input_size(self) -> tuple[int, int]:
        return self._input_size

    @property
    def num_classes(self) -> int:
        return self._num_classes

    @property
    def class_names(self) -> tuple[str, ...] | None:
        return self._names

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph was exported with, or None when it is dynamic."""
        return self._fixed_batch

    def run_tensor(self, batch: F32) -> F32:
        chunk = self._fixed_batch or len(batch)
        outputs: list[F32] = []
        for start in range(0, len(batch), chunk):
            part = batch[start : start + chunk]
            real = len(part)
            if real < chunk:
                pad = np.zeros((chunk - real, *part.shape[1:]), np.float32)
                part = np.concatenate([part, pad])
            try:
                (out, *_) = self._session.run(None, {self._input_name: part})
            except Exception as exc:
                raise DetectorError(f"{self.source}: inference failed: {exc}") from exc
            outputs.append(np.asarray(out, dtype=np.float32)[:real])
        result = np.concatenate(outputs) if outputs else np.zeros((0, 4 + self._num_classes, 0))
        if result.shape[1] != 4 + self._num_classes:
            raise DetectorError(
                f"{self.source}: expected {4 + self._num_classes} output channels "
                f"(4 box + {self._num_classes} classes), got {result.shape[1]}"
            )
        return result.astype(np.float32, copy=False)

    def predict(self, images: Sequence[Image], params: PredictParams) -> list[Boxes]:
        return predict_tensor_backend(self, images, params)
