"""A detector (backend + class names + version + name) and the set run on every frame.

"One flight, every check": each frame goes through all three detectors (road_damage,
illegal_dumping, spoil_truck). A :class:`DetectorSet` takes one batch of images (tiles of one
decoded frame) and gives it to every detector; detectors whose backend exposes its network
(:class:`~xunjian.models.backends.TensorBackend`) and share an input size get ONE letterbox pass
per batch, the same tensor fed to each model.

May import: numpy, ``xunjian.core``, ``xunjian.models.backends``, ``xunjian.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from xunjian.core.records import Detection
from xunjian.errors import DetectorError
from xunjian.models.backends import (
    Backend,
    Boxes,
    Image,
    PredictParams,
    TensorBackend,
    decode_yolo_output,
    letterbox_batch,
)

__all__ = ["Detector", "DetectorSet"]


@dataclass(frozen=True)
class Detector:
    """One model with what its outputs mean: ``class_names`` in the model's index order."""

    name: str
    backend: Backend
    class_names: tuple[str, ...]
    version: str
    gsd_m: float | None = None  # trained at this ground sampling (m/px); None: unknown

    def __post_init__(self) -> None:
        source = getattr(self.backend, "source", self.name)
        if self.backend.num_classes != len(self.class_names):
            raise DetectorError(
                f"{source}: model for detector {self.name!r} predicts "
                f"{self.backend.num_classes} classes, expected {len(self.class_names)} "
                f"({', '.join(self.class_names)})"
            )
        stored = self.backend.class_names
        if stored is not None and len(stored) != len(self.class_names):
            raise DetectorError(
                f"{source}: model stores {len(stored)} class names {stored}, "
                f"expected {len(self.class_names)}"
            )

    def predict(self, images: Sequence[Image], params: PredictParams) -> list[Boxes]:
        return self.backend.predict(images, params)

    def to_detections(
        self,
        boxes: Boxes,
        *,
        frame_key: str = "",
        scale_xy: tuple[float, float] = (1.0, 1.0),
        image_wh: tuple[int, int] | None = None,
    ) -> list[Detection]:
        """The project's records, boxes scaled by ``scale_xy`` and clipped to ``image_wh``."""
        scaled = boxes.scaled(*scale_xy)
        xyxy = scaled.xyxy.astype(np.float64)
        if image_wh is not None:
            xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, image_wh[0])
            xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, image_wh[1])
        out: list[Detection] = []
        for (x1, y1, x2, y2), conf, cls in zip(xyxy, scaled.conf, scaled.cls, strict=True):
            out.append(
                Detection(
                    detector=self.name,
                    class_name=self.class_names[int(cls)],
                    confidence=float(min(max(float(conf), 0.0), 1.0)),
                    bbox_xyxy=(float(x1), float(y1), float(max(x2, x1)), float(max(y2, y1))),
                    model_version=self.version,
                    frame_key=frame_key,
                )
            )
        return out


class DetectorSet:
    """The detectors run together on every frame; names are unique."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        if not detectors:
            raise ValueError("expected at least one detector, got none")
        names = [d.name for d in detectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"expected unique detector names, got {', '.join(duplicates)} twice")
        self._detectors = tuple(detectors)

    def __iter__(self) -> Iterator[Detector]:
        return iter(self._detectors)

    def __len__(self) -> int:
        return len(self._detectors)

    def __getitem__(self, name: str) -> Detector:
        for detector in self._detectors:
            if detector.name == name:
                return detector
        raise KeyError(f"no detector {name!r}; have {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self._detectors)

    @property
    def gsd_m(self) -> float | None:
        """The ground sampling to decode at for all of them: the finest any was trained at,
        or None (full resolution) when one of them does not say."""
        known = [d.gsd_m for d in self._detectors]
        if any(g is None for g in known):
            return None
        return min(g for g in known if g is not None)

    @property
    def input_size(self) -> tuple[int, int]:
        """The largest network input (height, width) among the detectors."""
        return (
            max(d.backend.input_size[0] for d in self._detectors),
            max(d.backend.input_size[1] for d in self._detectors),
        )

    def predict(self, images: Sequence[Image], params: PredictParams) -> dict[str, list[Boxes]]:
        """Every detector's boxes for every image, in each image's pixels."""
        results: dict[str, list[Boxes]] = {}
        shared: dict[tuple[int, int], list[Detector]] = {}
        for detector in self._detectors:
            if isinstance(detector.backend, TensorBackend):
                shared.setdefault(detector.backend.input_size, []).append(detector)
            else:
                results[detector.name] = detector.predict(images, params)
        for input_hw, group in shared.items():
            if not images:
                results.update({d.name: [] for d in group})
                continue
            tensor, geometry = letterbox_batch(images, input_hw)  # once for the whole group
            for detector in group:
                backend = detector.backend
                assert isinstance(backend, TensorBackend)
                raw = backend.run_tensor(tensor)
                results[detector.name] = decode_yolo_output(
                    raw, geometry, backend.num_classes, params
                )
        return {d.name: results[d.name] for d in self._detectors}
