"""Makes torch + torchvision + ultralytics usable on these CPU machines, offline.

Why this module exists:

* The PyPI torchvision wheel is built against CUDA torch. With the CPU build of torch its
  compiled extension (``torchvision._C``) does not load, and ``import torchvision`` then dies
  with ``operator torchvision::nms does not exist`` — so ultralytics cannot train or predict.
  Before torchvision is first imported, and only when its extension really cannot load, we
  define the ``torchvision::nms`` (and ``qnms``) operator schemas ourselves with a CPU kernel
  written in plain torch, and make torchvision report that its ops are available. On a
  machine where the extension loads (a GPU box with matching wheels) nothing is touched.
* Ultralytics phones home (settings sync, font downloads, pip auto-install of missing
  packages). xunjian runs with no network but its configured services, so every import of
  ultralytics goes through :func:`import_ultralytics`, which sets the offline switches, a
  project-owned config directory, and places a local TTF as the fonts it would download.

Use :func:`import_ultralytics` (or :func:`import_torchvision`) instead of importing those
packages directly anywhere in xunjian.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

_lock = threading.Lock()
_ops_state: str | None = None  # "native" | "fallback" once decided

OFFLINE_ENV = {
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "0",
    "YOLO_VERBOSE": "False",
    "ULTRALYTICS_PLATFORM_URL": "http://127.0.0.1:9",  # never reached; no default host
}
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def torchvision_ops_state() -> str | None:
    """``"native"``, ``"fallback"`` or None if :func:`ensure_torchvision_ops` has not run."""
    return _ops_state


def _native_extension_loads() -> bool:
    """Whether torchvision's compiled ops load with this torch, without importing torchvision."""
    torch: Any = importlib.import_module("torch")

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    for folder in spec.submodule_search_locations:
        for candidate in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(candidate))
            except (OSError, RuntimeError):
                return False
            return True
    return False


def _nms_cpu(dets: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression, same contract as ``torchvision.ops.nms``."""
    import torch

    if dets.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep: list[Any] = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        rest = order[1:]
        xx1 = torch.maximum(x1[i], x1[rest])
        yy1 = torch.maximum(y1[i], y1[rest])
        xx2 = torch.minimum(x2[i], x2[rest])
        yy2 = torch.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.int64)


# Kept alive for the life of the process: dropping a Library object unregisters its ops.
_libraries: list[Any] = []


def _register_fallback_ops() -> None:
    torch: Any = importlib.import_module("torch")

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms_cpu, "CPU")
    lib.impl("qnms", _nms_cpu, "CPU")
    _libraries.append(lib)


def ensure_torchvision_ops() -> str:
    """Makes ``torchvision.ops.nms`` work; returns ``"native"`` or ``"fallback"``.

    Must run before the first ``import torchvision`` in the process to take effect.
    """
    global _ops_state
    with _lock:
        if _ops_state is not None:
            return _ops_state
        import sys

        if "torchvision" in sys.modules:
            # Already imported (by someone bypassing this module): report what it has.
            ext = sys.modules["torchvision"].extension
            _ops_state = "native" if ext._has_ops() else "fallback-missing"
            return _ops_state
        if _native_extension_loads():
            _ops_state = "native"
        else:
            _register_fallback_ops()
            tv_ext = importlib.import_module("torchvision.extension")
            tv_ext._has_ops = lambda: True  # type: ignore[attr-defined]
            _ops_state = "fallback"
        return _ops_state


def import_torchvision() -> ModuleType:
    """``torchvision``, importable and with working NMS on a CPU-only torch."""
    ensure_torchvision_ops()
    return importlib.import_module("torchvision")


def default_config_dir() -> Path:
    from xunjian.settings import get_settings

    return (get_settings().data_dir / "ultralytics").resolve()


def configure_offline(config_dir: Path | None = None) -> Path:
    """Sets ultralytics' offline switches and its config directory; returns that directory.

    Must run before ultralytics is imported. Places a local TTF (matplotlib's DejaVuSans)
    under the names ultralytics would otherwise download at plot time — its font check
    ignores ``YOLO_OFFLINE``.
    """
    folder = (config_dir or default_config_dir()).resolve()
    user_dir = folder / "Ultralytics"
    user_dir.mkdir(parents=True, exist_ok=True)
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    os.environ["YOLO_CONFIG_DIR"] = str(folder)
    _place_fonts(user_dir)
    return folder


def _place_fonts(user_dir: Path) -> None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return
    font = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not font.is_file():
        return
    for name in FONT_NAMES:
        target = user_dir / name
        if not target.exists():
            shutil.copyfile(font, target)


def import_ultralytics(config_dir: Path | None = None) -> ModuleType:
    """``ultralytics``, imported offline with working torchvision ops and sync disabled."""
    if "ultralytics" not in sys.modules:
        configure_offline(config_dir)
        ensure_torchvision_ops()
    module = importlib.import_module("ultralytics")
    settings = importlib.import_module("ultralytics.utils").SETTINGS
    if settings.get("sync", True):
        settings.update(sync=False)
    _restore_pillow_open()
    return module


def _restore_pillow_open() -> None:
    """Undoes ultralytics' process-wide patch of ``PIL.Image.open``.

    The patch answers an unidentifiable file by trying to install and import ``pi_heif``: with
    auto-install off that raises ModuleNotFoundError instead of Pillow's
    UnidentifiedImageError, so a text file named .jpg would crash a batch instead of failing
    alone. xunjian reads no HEIF, so Pillow's own ``open`` is put back.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None)
    if original is None:
        return
    from PIL import Image

    if Image.open is not original:
        Image.open = original
