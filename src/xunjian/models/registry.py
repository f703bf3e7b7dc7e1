"""Loading detectors: the shipped default set, or any model file with its class list.

Shipped defaults live in the package, one folder per detector::

    src/xunjian/models/weights/<detector>/model.onnx
    src/xunjian/models/weights/<detector>/card.json   {"detector", "version", "classes", "imgsz"}

``classes`` (model index order) defaults to the taxonomy's list for the detector; ``version``
defaults to ``<detector>@<sha256 of the file, 12 hex digits>``. Every failure is a
:class:`~xunjian.errors.DetectorError` naming the file and the reason: missing, unreadable,
corrupt, or predicting a different number of classes than its class list. Registered versions,
promotion, rollback and hot reload live in :mod:`xunjian.models.versions` and
:mod:`xunjian.models.reload`; :func:`list_models` is re-exported from there.

Loading never touches the network: onnxruntime reads a local file; the ultralytics backend is
imported through :mod:`xunjian.models.mlruntime` (offline mode).

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.models`` backends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.core.taxonomy import classes_of
from xunjian.errors import DetectorError
from xunjian.models.backends import Backend
from xunjian.models.detector import Detector, DetectorSet

if TYPE_CHECKING:
    from xunjian.storage.objectstore import ObjectStore

__all__ = [
    "WEIGHTS_DIR",
    "BackendName",
    "ModelCard",
    "list_models",
    "load_default_set",
    "load_detector",
    "read_card",
    "shipped_model_path",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
BackendName = Literal["onnxruntime", "ultralytics"]


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What ``card.json`` says about a shipped model; every field optional but ``detector``."""

    detector: str
    version: str | None = None
    classes: tuple[str, ...] | None = None
    imgsz: int | None = None
    gsd_m: float | None = None  # the ground sampling (m/px) the model was trained at


def check_gsd(value: Any, where: str) -> float | None:
    """A card's ``gsd_m``: None, or a positive number of metres per pixel (≤ 10)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
        raise DetectorError(f"{where}: gsd_m: expected metres per pixel in (0, 10], got {value!r}")
    return float(value)


def read_card(path: Path) -> ModelCard:
    """Parses a model card; a DetectorError names the file and the bad field."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DetectorError(f"{path}: unreadable model card: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("detector"), str):
        raise DetectorError(f'{path}: expected a JSON object with a "detector" name')
    classes = raw.get("classes")
    if classes is not None and (
        not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
    ):
        raise DetectorError(f"{path}: classes: expected a list of names, got {classes!r}")
    imgsz = raw.get("imgsz")
    if imgsz is not None and (not isinstance(imgsz, int) or imgsz < 32):
        raise DetectorError(f"{path}: imgsz: expected an integer ≥ 32, got {imgsz!r}")
    version = raw.get("version")
    if version is not None and not isinstance(version, str):
        raise DetectorError(f"{path}: version: expected a string, got {version!r}")
    gsd_m = check_gsd(raw.get("gsd_m"), str(path))
    return ModelCard(raw["detector"], version, tuple(classes) if classes else None, imgsz, gsd_m)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_classes(detector: str) -> tuple[str, ...] | None:
    try:
        return classes_of(DetectorName(detector))
    except ValueError:
        return None


def _open_backend(
    path: Path, backend: BackendName, imgsz: int | None, threads: int | None
) -> Backend:
    if backend == "onnxruntime":
        from xunjian.models.onnx_backend import OnnxBackend

        if path.suffix.lower() != ".onnx":
            raise DetectorError(
                f"{path}: the onnxruntime backend reads .onnx files; use the ultralytics "
                "backend for other formats"
            )
        return OnnxBackend(path, imgsz=imgsz, threads=threads)
    if backend == "ultralytics":
        from xunjian.models.ultralytics_backend import UltralyticsBackend

        return UltralyticsBackend(path, imgsz=imgsz)
    raise DetectorError(f"unknown backend {backend!r}; expected onnxruntime or ultralytics")


def load_detector(
    path: Path | str,
    *,
    detector: str,
    classes: Sequence[str] | None = None,
    version: str | None = None,
    backend: BackendName = "onnxruntime",
    imgsz: int | None = None,
    threads: int | None = None,
    gsd_m: float | None = None,
) -> Detector:
    """A detector from a model file.

    ``classes`` default to the taxonomy's for ``detector``, else the names the model stores.
    ``gsd_m`` (from the card) is the ground sampling the model was trained at: the detect
    stage decodes near-nadir frames at it unless told otherwise.

    Raises DetectorError when the file is missing, unreadable or corrupt, or when the model's
    class count differs from ``classes``.
    """
    path = Path(path)
    if not path.is_file() and not (backend == "ultralytics" and path.is_dir()):
        raise DetectorError(f"{path}: model file not found")
    try:
        digest = _sha256(path) if path.is_file() else "dir"
    except OSError as exc:
        raise DetectorError(f"{path}: cannot read model file: {exc}") from exc
    opened = _open_backend(path, backend, imgsz, threads)
    names = tuple(classes) if classes else _default_classes(detector) or opened.class_names
    if not names:
        raise DetectorError(
            f"{path}: no class list for detector {detector!r}: it is not in the taxonomy and "
            "the model stores no names; give the classes"
        )
    return Detector(detector, opened, names, version or f"{detector}@{digest[:12]}", gsd_m)


def shipped_model_path(detector: str, weights_dir: Path | None = None) -> Path:
    """Where the shipped default model of ``detector`` lives (it may not exist yet)."""
    return (weights_dir or WEIGHTS_DIR) / detector / "model.onnx"


def load_default_set(
    detectors: Sequence[str] | None = None,
    *,
    weights_dir: Path | None = None,
    backend: BackendName = "onnxruntime",
    threads: int | None = None,
) -> DetectorSet:
    """The shipped default models of ``detectors`` (default: all three) as one set."""
    names = list(detectors) if detectors else [d.value for d in DetectorName]
    loaded: list[Detector] = []
    for name in names:
        path = shipped_model_path(name, weights_dir)
        if not path.is_file():
            raise DetectorError(
                f"no shipped model for detector {name}: {path} does not exist "
                "(train and export one, or pass --model PATH --detector NAME)"
            )
        card_path = path.with_name("card.json")
        card = read_card(card_path) if card_path.is_file() else ModelCard(name)
        if card.detector != name:
            raise DetectorError(
                f"{card_path}: card is for detector {card.detector!r}, found under {name!r}"
            )
        loaded.append(
            load_detector(
                path,
                detector=name,
                classes=card.classes,
                version=card.version,
                backend=backend,
                imgsz=card.imgsz,
                threads=threads,
                gsd_m=card.gsd_m,
            )
        )
    return DetectorSet(loaded)


def list_models(store: ObjectStore, *, weights_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every detector's registered versions, the one in service and its source (``store`` or
    ``shipped``), JSON-ready: see :func:`xunjian.models.versions.list_models`."""
    from xunjian.models.versions import list_models as listed  # versions imports this module

    return listed(store, weights_dir=weights_dir)
