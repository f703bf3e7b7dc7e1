"""Trains one detector from scratch with ultralytics, on CPU, offline and resumably.

``train_detector(data_yaml, out_dir, detector=…, epochs=…, imgsz=…, batch=…)`` builds a YOLO
model from a shipped config (``yolo11n.yaml``; no pretrained weights can be downloaded), checks
that the dataset's class names are exactly the detector's taxonomy classes in model index
order, and trains with a fixed seed. ``last.pt`` in ``out_dir/weights`` is rewritten after
every epoch, so a killed run continues with ``resume=True``; ``save_period`` additionally
keeps a numbered copy every N epochs. A progress callback receives one :class:`EpochProgress`
per finished epoch (losses, mAP50).

May import: ``xunjian.core``, ``xunjian.errors``, ``xunjian.models.mlruntime`` (which is how
ultralytics is imported, offline). Must not import ``xunjian.datasets``: a dataset is read
through its ``data.yaml`` only.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xunjian.core.taxonomy import Detector, classes_of
from xunjian.errors import ConfigurationError

CACHE_RAM_LIMIT_BYTES = 2 * 1024**3  # decoded training images kept in memory up to this size


@dataclass(frozen=True, slots=True)
class EpochProgress:
    """One finished epoch: 1-based ``epoch`` of ``epochs``, mean train losses, val metrics."""

    epoch: int
    epochs: int
    losses: dict[str, float]
    map50: float | None
    map50_95: float | None
    seconds: float

    def line(self) -> str:
        """A one-line summary for logs and the CLI."""
        losses = " ".join(f"{k}={v:.3f}" for k, v in self.losses.items())
        m50 = "n/a" if self.map50 is None else f"{self.map50:.3f}"
        m5095 = "n/a" if self.map50_95 is None else f"{self.map50_95:.3f}"
        return (
            f"epoch {self.epoch}/{self.epochs} {losses} mAP50={m50} "
            f"mAP50-95={m5095} ({self.seconds:.1f} s)"
        )


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Where the checkpoints are and the last validation figures."""

    best_pt: Path
    last_pt: Path
    metrics: dict[str, float]
    epochs_done: int
    save_dir: Path
    args: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[EpochProgress], None]


def read_data_yaml(data_yaml: Path) -> dict[str, Any]:
    """The parsed ``data.yaml``; a ConfigurationError naming the file if it cannot be read."""
    try:
        loaded = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigurationError(f"{data_yaml}: cannot read dataset config: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{data_yaml}: expected a YAML mapping, got {type(loaded)}")
    return loaded


def dataset_class_names(data: dict[str, Any], source: Path) -> tuple[str, ...]:
    """``names`` of a YOLO data.yaml (list or index→name mapping) in index order."""
    names = data.get("names")
    if isinstance(names, dict):
        try:
            ordered = [names[i] for i in range(len(names))]
        except KeyError:
            raise ConfigurationError(
                f"{source}: names must be indexed 0..{len(names) - 1}, got {sorted(names)}"
            ) from None
        return tuple(str(n) for n in ordered)
    if isinstance(names, list):
        return tuple(str(n) for n in names)
    raise ConfigurationError(f"{source}: expected 'names' as a list or mapping, got {names!r}")


def check_classes(data_yaml: Path, detector: Detector | str) -> tuple[str, ...]:
    """The detector's classes, after checking the dataset lists exactly them, in order."""
    detector = Detector(detector)
    expected = classes_of(detector)
    data = read_data_yaml(data_yaml)
    found = dataset_class_names(data, data_yaml)
    if found != expected:
        raise ConfigurationError(
            f"{data_yaml}: class names do not match detector {detector.value}: "
            f"expected {list(expected)}, got {list(found)}"
        )
    nc = data.get("nc", len(found))
    if nc != len(expected):
        raise ConfigurationError(f"{data_yaml}: expected nc={len(expected)}, got nc={nc}")
    return expected


def limit_threads(threads: int) -> None:
    """Caps torch (and the OpenMP/BLAS pools it starts) at ``threads`` CPU threads."""
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[key] = str(threads)
    import torch

    torch.set_num_threads(threads)
    # set_num_interop_threads fails once parallel work has started in this process
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(threads)


def _count_images(data: dict[str, Any], data_yaml: Path, split: str = "train") -> int:
    root = Path(str(data.get("path") or data_yaml.parent))
    if not root.is_absolute():
        root = data_yaml.parent / root
    entry = data.get(split, f"images/{split}")
    folders = entry if isinstance(entry, list) else [entry]
    suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
    count = 0
    for entry in folders:
        place = Path(str(entry)) if Path(str(entry)).is_absolute() else root / str(entry)
        if place.is_file():  # a list file, one image path a line
            count += sum(
                1 for line in place.read_text(encoding="utf-8").splitlines() if line.strip()
            )
        else:
            count += sum(1 for p in place.rglob("*") if p.suffix.lower() in suffixes)
    return count


def count_split_images(data_yaml: Path, split: str = "train") -> int:
    """How many images a split of a data.yaml names (folders or list files)."""
    return _count_images(read_data_yaml(data_yaml), data_yaml, split)


def choose_cache(data_yaml: Path, imgsz: int) -> str | bool:
    """``"ram"`` when the decoded, resized train images fit comfortably, else no cache.

    Never ``"disk"``: that writes ``.npy`` files next to the dataset's images.
    """
    count = count_split_images(data_yaml)
    return "ram" if count * imgsz * imgsz * 3 <= CACHE_RAM_LIMIT_BYTES else False


def epochs_finished(out_dir: Path) -> tuple[int, int | None]:
    """(epochs recorded in ``results.csv``, epochs asked for in ``args.yaml``) of a run."""
    results, args_file = out_dir / "results.csv", out_dir / "args.yaml"
    done = 0
    if results.is_file():
        done = sum(1 for row in results.read_text(encoding="utf-8").splitlines()[1:] if row.strip())
    asked = None
    if args_file.is_file():
        loaded = yaml.safe_load(args_file.read_text(encoding="utf-8"))
        if isinstance(loaded, dict) and isinstance(loaded.get("epochs"), int):
            asked = loaded["epochs"]
    return done, asked


def _float_metrics(raw: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in dict(raw or {}).items():
        try:
            out[str(key)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _losses(trainer: Any) -> dict[str, float]:
    """Mean train losses of the epoch: ultralytics keeps a dict (8.4) or a tensor (older)."""
    tloss = getattr(trainer, "tloss", None)
    if tloss is None:
        return {}
    if isinstance(tloss, dict):
        return {str(k).removeprefix("train/"): float(v) for k, v in tloss.items()}
    names = list(getattr(trainer, "loss_names", []))
    values = [float(v) for v in tloss.reshape(-1).tolist()]
    return dict(zip(names, values, strict=False))


def _progress_hook(progress: ProgressCallback, clock: dict[str, float]) -> Callable[[Any], None]:
    # on_model_save fires once per finished epoch, after validation and after last.pt is
    # written; on_fit_epoch_end also fires for the final best.pt validation.
    def on_model_save(trainer: Any) -> None:
        now = time.monotonic()
        seconds, clock["t"] = now - clock["t"], now
        metrics = _float_metrics(getattr(trainer, "metrics", {}))
        progress(
            EpochProgress(
                epoch=int(trainer.epoch) + 1,
                epochs=int(trainer.epochs),
                losses=_losses(trainer),
                map50=metrics.get("metrics/mAP50(B)"),
                map50_95=metrics.get("metrics/mAP50-95(B)"),
                seconds=seconds,
            )
        )

    return on_model_save


def train_detector(
    data_yaml: Path,
    out_dir: Path,
    *,
    detector: Detector | str,
    epochs: int,
    imgsz: int,
    batch: int,
    model_cfg: str = "yolo11n.yaml",
    seed: int = 0,
    resume: bool = False,
    workers: int = 0,
    threads: int = 2,
    patience: int = 100,
    cache: str | bool | None = None,
    save_period: int = -1,
    plots: bool = False,
    fraction: float = 1.0,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Trains ``detector`` on ``data_yaml`` into ``out_dir`` (``weights/best.pt``, ``last.pt``).

    ``resume=True`` continues from ``out_dir/weights/last.pt`` with the arguments saved in it
    (the epoch count included). ``cache=None`` picks :func:`choose_cache`. Exceptions raised by
    ``progress`` propagate, leaving ``last.pt`` of the last finished epoch behind.
    """
    data_yaml = Path(data_yaml).resolve()
    out_dir = Path(out_dir).resolve()
    check_classes(data_yaml, detector)
    if epochs < 1 or imgsz < 32 or batch < 1 or threads < 1:
        raise ConfigurationError(
            f"expected epochs>=1, imgsz>=32, batch>=1, threads>=1; "
            f"got {epochs}, {imgsz}, {batch}, {threads}"
        )
    limit_threads(threads)
    from xunjian.models.mlruntime import import_ultralytics

    ultralytics = import_ultralytics()
    last = out_dir / "weights" / "last.pt"
    if resume and not last.is_file():
        raise ConfigurationError(f"{last}: no checkpoint to resume from")
    if resume:
        done, asked = epochs_finished(out_dir)
        if asked is not None and done >= asked:
            raise ConfigurationError(f"{out_dir}: training to {asked} epochs is finished")
    if cache is None:
        cache = choose_cache(data_yaml, imgsz)
    model = ultralytics.YOLO(str(last) if resume else model_cfg, task="detect")
    clock = {"t": time.monotonic()}
    if progress is not None:
        model.add_callback("on_model_save", _progress_hook(progress, clock))
    common: dict[str, Any] = {
        "data": str(data_yaml),
        "device": "cpu",
        "workers": workers,
        "cache": cache,
        "plots": plots,
        "save_period": save_period,
        "patience": patience,
        "save_dir": str(out_dir),
        "verbose": False,
    }
    if resume:
        model.train(resume=str(last), **common)
    else:
        model.train(
            epochs=epochs,
            imgsz=imgsz,
            batch=batch,
            seed=seed,
            deterministic=True,
            amp=False,
            pretrained=False,
            fraction=fraction,
            project=str(out_dir.parent),
            name=out_dir.name,
            exist_ok=True,
            **common,
        )
    trainer = model.trainer
    save_dir = Path(trainer.save_dir)
    return TrainResult(
        best_pt=save_dir / "weights" / "best.pt",
        last_pt=save_dir / "weights" / "last.pt",
        metrics=_float_metrics(getattr(trainer, "metrics", {})),
        epochs_done=int(trainer.epoch) + 1,
        save_dir=save_dir,
        args={k: v for k, v in vars(trainer.args).items() if isinstance(v, str | int | float)},
    )
