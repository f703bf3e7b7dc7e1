"""Exports a trained checkpoint to the ONNX file the inference engine loads.

The contract with ``xunjian.models.onnx_backend``: exported by ultralytics with
``format="onnx"``, ``dynamic=True`` (variable batch and image size), ``simplify=True``,
``nms=False`` (NMS runs in the backend), at the training image size, FP32. Ultralytics writes
the ONNX next to the checkpoint, so the checkpoint is first copied into a scratch folder: the
run folder stays as training left it.

May import: ``xunjian.errors``, ``xunjian.models.mlruntime``. Not ``xunjian.datasets``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from xunjian.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """The written file and what the engine needs to know about it."""

    path: Path
    sha256: str
    size_bytes: int
    imgsz: int
    opset: int | None
    input_name: str
    input_shape: tuple[str | int, ...]
    output_shape: tuple[str | int, ...]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _dims(value_info: object) -> tuple[str | int, ...]:
    dims = value_info.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return tuple(d.dim_param if d.dim_param else int(d.dim_value) for d in dims)


def export_onnx(
    best_pt: Path, out_path: Path, imgsz: int, *, opset: int | None = None
) -> OnnxExport:
    """Writes ``best_pt`` as ONNX to ``out_path`` (dynamic batch and size, no NMS)."""
    best_pt = Path(best_pt).resolve()
    out_path = Path(out_path).resolve()
    if not best_pt.is_file():
        raise ConfigurationError(f"{best_pt}: checkpoint not found")
    from xunjian.models.mlruntime import import_ultralytics

    ultralytics = import_ultralytics()
    with tempfile.TemporaryDirectory(prefix="xunjian-export-") as scratch:
        staged = Path(scratch) / "model.pt"
        shutil.copyfile(best_pt, staged)
        model = ultralytics.YOLO(str(staged), task="detect")
        with warnings.catch_warnings():
            # ultralytics deliberately uses torch's TorchScript-based exporter (dynamo=False);
            # torch announces that path's deprecation, and its internals use deprecated
            # helpers, on every call. Silenced here only, for the export call.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            written = _export(model, imgsz, opset)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(str(written)), out_path)
    return _describe(out_path, imgsz)


def _export(model: Any, imgsz: int, opset: int | None) -> Any:
    return model.export(
        format="onnx",
        dynamic=True,
        simplify=True,
        nms=False,
        imgsz=imgsz,
        half=False,
        device="cpu",
        opset=opset,
        verbose=False,
    )


def _describe(out_path: Path, imgsz: int) -> OnnxExport:
    import onnx

    graph = onnx.load(str(out_path), load_external_data=False)
    opset_found = next(
        (int(o.version) for o in graph.opset_import if o.domain in ("", "ai.onnx")), None
    )
    return OnnxExport(
        path=out_path,
        sha256=sha256_file(out_path),
        size_bytes=out_path.stat().st_size,
        imgsz=imgsz,
        opset=opset_found,
        input_name=graph.graph.input[0].name,
        input_shape=_dims(graph.graph.input[0]),
        output_shape=_dims(graph.graph.output[0]),
    )


def _run_args(run_dir: Path) -> dict[str, Any]:
    import yaml

    args_file = run_dir / "args.yaml"
    if not args_file.is_file():
        return {}
    loaded = yaml.safe_load(args_file.read_text(encoding="utf-8"))
    return dict(loaded) if isinstance(loaded, dict) else {}


def _model_config(args: dict[str, Any], best_pt: Path) -> str:
    """The config a run started from: a resumed run's args name its last.pt instead."""
    model = str(args.get("model", "yolo11n.yaml"))
    if model.endswith((".yaml", ".yml")) or not best_pt.is_file():
        return model
    from xunjian.models.mlruntime import import_ultralytics

    import_ultralytics()  # unpickling the checkpoint imports ultralytics and torchvision
    import torch

    ckpt = torch.load(best_pt, map_location="cpu", weights_only=False)
    net = ckpt.get("ema") or ckpt.get("model")
    return str(Path(str(getattr(net, "yaml", {}).get("yaml_file", model))).name)


def _epochs_done(run_dir: Path) -> int | None:
    results = run_dir / "results.csv"
    if not results.is_file():
        return None
    rows = [r for r in results.read_text(encoding="utf-8").splitlines()[1:] if r.strip()]
    return len(rows)


def _train_images(args: dict[str, Any], data_yaml: Path) -> int | None:
    from xunjian.models.train import count_split_images

    trained_on = Path(str(args.get("data") or data_yaml))
    return count_split_images(trained_on) if trained_on.is_file() else None


def train_command_line(detector: str, args: dict[str, Any], run_dir: Path) -> str:
    """The ``xunjian train`` command that reproduces a run from its saved arguments."""
    import shlex

    parts = [
        "xunjian", "train", detector,
        "--data", str(args.get("data", "DATA_YAML")),
        "--out", str(run_dir),
        "--epochs", str(args.get("epochs")),
        "--imgsz", str(args.get("imgsz")),
        "--batch", str(args.get("batch")),
        "--seed", str(args.get("seed", 0)),
        "--model-cfg", str(args.get("model", "yolo11n.yaml")),
        "--ship",
    ]  # fmt: skip
    return shlex.join(parts)


def _limitations(
    detector: str, args: dict[str, Any], real: Any, without_real: list[str]
) -> list[str]:
    items = [
        f"Trained from scratch (no pretrained weights) for {args.get('epochs')} epochs at "
        f"{args.get('imgsz')} px on 2 CPU threads, on small public sample sets: a baseline for "
        "the pipeline, far below a production detector.",
        "Boxes come from ultralytics' raw head output: the engine applies NMS itself.",
    ]
    for name in without_real:
        items.append(
            f"No real validation data for {name}: its real-world accuracy is unmeasured "
            "(its training data is synthetic or mostly synthetic where no real labels exist)."
        )
    if real is not None:
        for c in real.classes:
            if c.has_data and c.instances < 30:
                items.append(
                    f"Only {c.instances} real validation instances of {c.name}: its figures are "
                    "very uncertain."
                )
    return items


def default_version(detector: str, model_cfg: str, imgsz: int, sha256: str, when: datetime) -> str:
    """``<detector>-<yyyymmdd>-<arch>-<imgsz>-<sha256[:8]>``, e.g.
    ``road_damage-20261124-yolo11n-320-b160ef40``.

    The digest makes two models shipped on the same day distinct versions: the detection
    ledger reuses boxes per (frame, detector, version), so a retrained model under an old
    name would silently be served the old model's boxes.
    """
    arch = Path(model_cfg).stem or "yolo"
    return f"{detector}-{when:%Y%m%d}-{arch}-{imgsz}-{sha256[:8]}"


def ship_model(
    detector: str,
    *,
    data_yaml: Path,
    run_dir: Path,
    imgsz: int | None = None,
    weights_dir: Path,
    version: str | None = None,
    synthetic_val: Path | None = None,
    reproduce: str | None = None,
    gsd_m: float | None = None,
    limitations: list[str] | None = None,
) -> dict[str, Any]:
    """Exports ``run_dir/weights/best.pt``, evaluates the ONNX, writes the card; returns it.

    Validation on the build's val split counts as real only when its manifest says
    ``val_is_real``; otherwise those figures go to the card's synthetic section.
    ``synthetic_val`` (a data.yaml of synthetic val tiles) adds figures for the classes that
    have no real val data.
    """
    from xunjian.core.taxonomy import Detector
    from xunjian.models.card import build_card, read_manifest, write_model_card
    from xunjian.models.evaluate import evaluate_model

    det = Detector(detector)
    run_dir, data_yaml = Path(run_dir).resolve(), Path(data_yaml).resolve()
    args = _run_args(run_dir)
    args["model"] = _model_config(args, run_dir / "weights" / "best.pt")
    size = int(imgsz or args.get("imgsz") or 640)
    manifest = read_manifest(data_yaml.parent / "manifest.json")
    target = Path(weights_dir) / det.value
    exported = export_onnx(run_dir / "weights" / "best.pt", target / "model.onnx", size)
    val = evaluate_model(exported.path, data_yaml, imgsz=size)
    real, synthetic = (val, None) if manifest.get("val_is_real") else (None, val)
    if synthetic_val is not None:
        synthetic = evaluate_model(exported.path, Path(synthetic_val), imgsz=size)
    without_real = (
        [c.name for c in real.classes if not c.has_data] if real else list(val.per_class())
    )
    import torch
    import ultralytics

    training = {
        "model_cfg": args.get("model", "yolo11n.yaml"),
        "epochs": args.get("epochs"),
        "epochs_done": _epochs_done(run_dir),
        "data": Path(str(args.get("data", data_yaml))).name,
        "train_images": _train_images(args, data_yaml),
        "imgsz": size,
        "batch": args.get("batch"),
        "seed": args.get("seed"),
        "optimizer": args.get("optimizer"),
        "device": "cpu",
        "amp": False,
        "pretrained": False,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
    }
    now = datetime.now(UTC)
    card = build_card(
        detector=det,
        version=version
        or default_version(det.value, str(training["model_cfg"]), size, exported.sha256, now),
        imgsz=size,
        onnx_path=exported.path,
        manifest=manifest,
        training=training,
        reproduce=reproduce or train_command_line(det.value, args, run_dir),
        real_eval=real,
        synthetic_eval=synthetic,
        limitations=[*_limitations(det.value, args, real, without_real), *(limitations or [])],
        created_at=now,
        gsd_m=gsd_m,
    )
    card["onnx"].update(
        opset=exported.opset,
        input=exported.input_name,
        input_shape=list(exported.input_shape),
        output_shape=list(exported.output_shape),
    )
    write_model_card(target, card)
    return card
