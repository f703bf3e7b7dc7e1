"""The detector backend interface and the pre/post-processing every YOLO backend shares.

A backend turns images (BGR uint8, H×W×3, OpenCV's convention) into :class:`Boxes` in each
image's own pixels. Two implement it: :mod:`xunjian.models.onnx_backend` (onnxruntime, lean,
the serving default) and :mod:`xunjian.models.ultralytics_backend` (the reference; any format
ultralytics loads). Backends that expose the raw network (:class:`TensorBackend`) let a
:class:`~xunjian.models.detector.DetectorSet` letterbox a batch of tiles once and feed the same
tensor to every model.

Pre/post-processing matches ultralytics' predict path exactly, so both backends give the same
boxes on the same model: letterbox (scale to fit, up-scaling allowed, centred, pad colour 114,
bilinear resize), BGR→RGB, /255; decode (B, 4+nc, A) YOLO heads as centre-xywh + per-class
scores, confidence threshold, per-class greedy NMS (IoU 0.7 by default), ``max_det``, then
undo the letterbox and clip to the image.

May import: numpy, cv2 (lazily), the standard library, ``xunjian.errors``. Never torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PAD_VALUE",
    "Backend",
    "Boxes",
    "Letterbox",
    "PredictParams",
    "TensorBackend",
    "batched_nms",
    "box_iou",
    "decode_yolo_output",
    "letterbox_batch",
    "letterbox_geometry",
    "nms",
    "predict_tensor_backend",
    "unletterbox",
]

Image = NDArray[np.uint8]
F32 = NDArray[np.float32]

PAD_VALUE = 114
MAX_NMS = 30_000  # ultralytics: boxes considered by NMS at most
MAX_WH = 7680  # ultralytics: per-class offset that keeps classes apart in one NMS


@dataclass(frozen=True, slots=True)
class PredictParams:
    """What a prediction keeps: ultralytics' predict defaults."""

    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 300

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise ValueError(f"conf: expected a value in [0, 1], got {self.conf}")
        if not 0.0 <= self.iou <= 1.0:
            raise ValueError(f"iou: expected a value in [0, 1], got {self.iou}")
        if self.max_det < 1:
            raise ValueError(f"max_det: expected at least 1, got {self.max_det}")


@dataclass(frozen=True, slots=True)
class Boxes:
    """Detections of one image as arrays: ``xyxy`` (N, 4) float32, ``conf`` (N,), ``cls`` (N,)."""

    xyxy: F32
    conf: F32
    cls: NDArray[np.int64]

    @classmethod
    def empty(cls) -> Boxes:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    @classmethod
    def concat(cls, parts: Sequence[Boxes]) -> Boxes:
        if not parts:
            return cls.empty()
        return cls(
            np.concatenate([p.xyxy for p in parts]).astype(np.float32, copy=False),
            np.concatenate([p.conf for p in parts]).astype(np.float32, copy=False),
            np.concatenate([p.cls for p in parts]).astype(np.int64, copy=False),
        )

    def __len__(self) -> int:
        return len(self.conf)

    def take(self, index: NDArray[np.intp] | NDArray[np.bool_]) -> Boxes:
        return Boxes(self.xyxy[index], self.conf[index], self.cls[index])

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Boxes:
        """Boxes mapped by ``x·sx + dx``, ``y·sy + dy`` (tile → image, reduced → original)."""
        factor = np.array([sx, sy, sx, sy], np.float32)
        offset = np.array([dx, dy, dx, dy], np.float32)
        return Boxes(self.xyxy * factor + offset, self.conf, self.cls)


@runtime_checkable
class Backend(Protocol):
    """Runs one detection model. ``input_size`` is the network's (height, width)."""

    @property
    def name(self) -> str: ...

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def num_classes(self) -> int: ...

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The names stored in the model file, when it stores them."""
        ...

    def predict(self, images: Sequence[Image], params: PredictParams) -> list[Boxes]:
        """One :class:`Boxes` per image, in that image's pixels."""
        ...


@runtime_checkable
class TensorBackend(Backend, Protocol):
    """A backend whose network can be fed a letterboxed NCHW float32 batch directly."""

    def run_tensor(self, batch: F32) -> F32:
        """The raw head output (B, 4+nc, A) for a (B, 3, H, W) batch in [0, 1], RGB."""
        ...


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How one image was placed in the network input: resized size and padding offsets."""

    image_hw: tuple[int, int]
    resized_wh: tuple[int, int]
    left: int
    top: int


def letterbox_geometry(
    image_hw: tuple[int, int], input_hw: tuple[int, int], *, scaleup: bool = True
) -> Letterbox:
    """Ultralytics' ``LetterBox`` arithmetic (centred, ``auto=False``), to the pixel."""
    h, w = image_hw
    r = min(input_hw[0] / h, input_hw[1] / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (input_hw[1] - new_w) / 2, (input_hw[0] - new_h) / 2
    return Letterbox((h, w), (new_w, new_h), round(dw - 0.1), round(dh - 0.1))


def letterbox_batch(
    images: Sequence[Image], input_hw: tuple[int, int]
) -> tuple[F32, list[Letterbox]]:
    """The (B, 3, H, W) float32 RGB tensor in [0, 1] and each image's placement.

    Resizing is per image (cv2, bilinear as ultralytics); padding, channel flip, transpose and
    scaling are one vectorised pass over the whole batch.
    """
    import cv2

    canvas = np.full((len(images), input_hw[0], input_hw[1], 3), PAD_VALUE, np.uint8)
    geometry: list[Letterbox] = []
    for i, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected a BGR uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}"
            )
        g = letterbox_geometry((image.shape[0], image.shape[1]), input_hw)
        placed = image
        if (image.shape[1], image.shape[0]) != g.resized_wh:
            placed = np.asarray(
                cv2.resize(image, g.resized_wh, interpolation=cv2.INTER_LINEAR), np.uint8
            )
        canvas[i, g.top : g.top + g.resized_wh[1], g.left : g.left + g.resized_wh[0]] = placed
        geometry.append(g)
    tensor = np.ascontiguousarray(canvas[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    np.divide(tensor, 255.0, out=tensor)
    return tensor, geometry


def unletterbox(xyxy: F32, g: Letterbox) -> F32:
    """Network-input pixels → image pixels, clipped to the image (ultralytics ``scale_boxes``)."""
    h, w = g.image_hw
    gain_x, gain_y = g.resized_wh[0] / w, g.resized_wh[1] / h
    out = xyxy.copy()
    out[:, [0, 2]] = (out[:, [0, 2]] - g.left) / gain_x
    out[:, [1, 3]] = (out[:, [1, 3]] - g.top) / gain_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out


def box_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU matrix (len(a), len(b)) of xyxy boxes."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    lt = np.maximum(a64[:, None, :2], b64[None, :, :2])
    rb = np.minimum(a64[:, None, 2:], b64[None, :, 2:])
    inter = np.prod((rb - lt).clip(min=0), axis=2)
    area_a = np.prod((a64[:, 2:] - a64[:, :2]).clip(min=0), axis=1)
    area_b = np.prod((b64[:, 2:] - b64[:, :2]).clip(min=0), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    result: NDArray[np.float64] = inter / np.maximum(union, 1e-12)
    return result


def nms(xyxy: F32, scores: F32, iou: float) -> NDArray[np.intp]:
    """Greedy NMS (torchvision's contract): indices kept, by descending score."""
    order = np.argsort(-scores, kind="stable")
    boxes = xyxy.astype(np.float32)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(min=0) * (boxes[:, 3] - boxes[:, 1]).clip(min=0)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = (xx2 - xx1).clip(min=0) * (yy2 - yy1).clip(min=0)
        overlap = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.intp)


def batched_nms(boxes: Boxes, iou: float) -> NDArray[np.intp]:
    """Per-class NMS in one pass: classes are offset apart as ultralytics does."""
    if len(boxes) == 0:
        return np.zeros(0, np.intp)
    offset = (boxes.cls.astype(np.float32) * MAX_WH)[:, None]
    return nms(boxes.xyxy + offset, boxes.conf, iou)


def decode_yolo_output(
    output: F32, geometry: Sequence[Letterbox], num_classes: int, params: PredictParams
) -> list[Boxes]:
    """YOLO detect head (B, 4+nc, A) → one :class:`Boxes` per image, in image pixels."""
    if output.ndim != 3 or output.shape[1] != 4 + num_classes:
        raise ValueError(
            f"expected a YOLO head output of shape (B, {4 + num_classes}, A), got {output.shape}"
        )
    results: list[Boxes] = []
    for pred, g in zip(output, geometry, strict=True):
        scores = pred[4:]
        best = scores.max(axis=0)
        keep = np.flatnonzero(best > params.conf)
        if keep.size == 0:
            results.append(Boxes.empty())
            continue
        if keep.size > MAX_NMS:
            keep = keep[np.argsort(-best[keep], kind="stable")[:MAX_NMS]]
        cx, cy, bw, bh = pred[0, keep], pred[1, keep], pred[2, keep], pred[3, keep]
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        found = Boxes(
            xyxy.astype(np.float32),
            best[keep].astype(np.float32),
            scores[:, keep].argmax(axis=0).astype(np.int64),
        )
        found = found.take(batched_nms(found, params.iou)[: params.max_det])
        results.append(Boxes(unletterbox(found.xyxy, g), found.conf, found.cls))
    return results


def predict_tensor_backend(
    backend: TensorBackend, images: Sequence[Image], params: PredictParams
) -> list[Boxes]:
    """The whole predict path of a :class:`TensorBackend`: letterbox, run, decode."""
    if not images:
        return []
    tensor, geometry = letterbox_batch(images, backend.input_size)
    return decode_yolo_output(backend.run_tensor(tensor), geometry, backend.num_classes, params)
