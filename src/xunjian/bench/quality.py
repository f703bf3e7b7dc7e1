"""detector-quality: how well each detector's model in service finds real targets.

For every detector, the model in service (the registry's active version, else the shipped
one) is evaluated on the REAL validation split of the sample sets (``XUNJIAN_REAL_DATA_DIR``,
default ``../shared/data``) — the same split the model cards report: ``datasets build`` with
``--resize tile --imgsz 640``, seed 0, real sources only — and reported as mAP50, mAP50-95,
precision, recall and F1 per class. The peer, measured in the same run on the same images,
is the previous model in the registry: the version the history says was in service before
the current one (the shipped model when the first promotion is the current one). Without a
history there is no earlier model to compare with, and the document says so. ``--model
PATH`` compares that file (a candidate) against the model in service of its detector instead.

A detector without real validation images (``spoil_truck`` so far) is reported as such.
``quick``: the first 24 validation images per detector.

May import anything in xunjian but service and cli.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.errors import InputError

QUICK_IMAGES = 24
BUILD_IMGSZ, BUILD_SEED, BUILD_VAL_FRACTION = 640, 0, 0.2
BUILD: dict[str, Any] = {"imgsz": BUILD_IMGSZ, "resize": "tile", "seed": BUILD_SEED,
                         "val_fraction": BUILD_VAL_FRACTION}  # fmt: skip


def real_data_root() -> Path:
    """``$XUNJIAN_REAL_DATA_DIR``, else ``../shared/data`` (from the working directory)."""
    return Path(os.environ.get("XUNJIAN_REAL_DATA_DIR", "../shared/data"))


def real_val_set(detector: str, data_dir: Path, *, quick: bool = False) -> Path | None:
    """data.yaml of the real validation split for ``detector`` (cached), or None without any."""
    from xunjian.datasets.build import BuildOptions, build_training_set

    root = real_data_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: the real sample sets are not there (set XUNJIAN_REAL_DATA_DIR)"
        )
    key = "-".join(f"{v}" for v in BUILD.values())
    folder = data_dir / "bench" / f"quality-{detector}-{key}"
    done = folder / "ok.json"
    if not done.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        options = BuildOptions(
            imgsz=BUILD_IMGSZ, seed=BUILD_SEED, val_fraction=BUILD_VAL_FRACTION, resize="tile"
        )
        try:
            result = build_training_set(detector, folder / "data", data_root=root, options=options)
            real_val = int(result.manifest["splits"]["val"]["real_images"])
        except InputError:  # no real source maps onto this detector's classes
            real_val = 0
        folder.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps({"real_val_images": real_val, "data_root": str(root)}))
    if json.loads(done.read_text())["real_val_images"] == 0:
        return None
    data_yaml = folder / "data" / "data.yaml"
    if not quick:
        return data_yaml
    import yaml

    data = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    val_dir = Path(str(data["path"])) / str(data["val"])
    images = sorted(p for p in val_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    listing = folder / "quick_val.txt"
    listing.write_text("".join(f"{p}\n" for p in images[:QUICK_IMAGES]))
    quick_yaml = folder / "quick.yaml"
    quick_yaml.write_text(yaml.safe_dump({**data, "val": str(listing)}, allow_unicode=True))
    return quick_yaml


def _figures(result: Any) -> dict[str, Any]:
    out = result.to_dict()
    return {
        "images": out["images"],
        "instances": out["instances"],
        "map50": round(out["map50"], 4),
        "map50_95": round(out["map50_95"], 4),
        "precision": round(out["precision"], 4),
        "recall": round(out["recall"], 4),
        "operating_conf": round(out["conf_threshold"], 4),
        "per_class": {
            name: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()}
            for name, c in out["classes"].items()
        },
    }


def _in_service(registry: Any, detector: str) -> tuple[str | None, Path, int]:
    """(version or None for shipped, model file, imgsz) of the model in service."""
    version = registry.active_version(detector)
    if version is None:
        card = registry.shipped_card(detector) or {}
        return None, registry.model_file(detector, None), int(card.get("imgsz") or 320)
    card = registry.card(detector, version)
    return version, registry.model_file(detector, version), int(card["imgsz"])


def _previous(registry: Any, detector: str, current: str | None) -> tuple[str | None, bool]:
    """(the version before ``current`` — None for shipped —, whether there is one at all)."""
    from xunjian.models.promotion import rollback_target

    history = registry.pointer(detector).history
    if current is None:
        return None, False
    try:
        return rollback_target(history, current), True
    except LookupError:
        return None, False


def bench_detector_quality(
    *, quick: bool = False, data_dir: Path | None = None, model: Path | None = None
) -> dict[str, Any]:
    """Per detector: the in-service model's real-val figures and the previous model's."""
    from xunjian.models.evaluate import evaluate_model
    from xunjian.models.versions import ModelRegistry
    from xunjian.settings import get_settings

    settings = get_settings()
    data_dir = data_dir or settings.data_dir
    registry = ModelRegistry.from_settings(settings)
    candidate: tuple[str, Path, int] | None = None
    if model is not None:
        from xunjian.bench.detect import _model_from_file

        bm = _model_from_file(Path(model), "--model")
        if bm.detector not in {d.value for d in DetectorName}:
            raise ValueError(f"{model}: cannot tell which detector it is for (put it in a "
                             "folder named after the detector, with its card.json)")  # fmt: skip
        candidate = (bm.detector, bm.onnx, bm.imgsz)
    detectors = [candidate[0]] if candidate else [d.value for d in DetectorName]
    figures: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    inputs: dict[str, Any] = {"real_data": str(real_data_root()), "build": BUILD, "quick": quick}
    for name in detectors:
        data_yaml = real_val_set(name, data_dir, quick=quick)
        if data_yaml is None:
            figures[name] = {"status": "no real validation images"}
            continue
        version, path, imgsz = _in_service(registry, name)
        label = version or "shipped"
        current: dict[str, Any]
        if candidate is not None:
            current = {"model": str(candidate[1]), "role": "candidate (--model)"}
            current.update(_figures(evaluate_model(candidate[1], data_yaml, imgsz=candidate[2])))
            peer_label, peer_path, peer_imgsz = label, path, imgsz
            has_peer = True
        else:
            current = {"model": label, "role": "in service"}
            current.update(_figures(evaluate_model(path, data_yaml, imgsz=imgsz)))
            previous, has_peer = _previous(registry, name, version)
            peer_label = previous or "shipped"
            peer_path = registry.model_file(name, previous)
            peer_imgsz = imgsz if previous is None else int(registry.card(name, previous)["imgsz"])
        entry: dict[str, Any] = {"current": current, "peer": None}
        if has_peer:
            peer: dict[str, Any] = {
                "model": peer_label,
                "role": "previous" if candidate is None else "in service",
            }
            peer.update(_figures(evaluate_model(peer_path, data_yaml, imgsz=peer_imgsz)))
            entry["peer"] = peer
            ratios[name] = {
                "map50_minus_peer": round(current["map50"] - peer["map50"], 4),
                "map50_95_minus_peer": round(current["map50_95"] - peer["map50_95"], 4),
            }
        else:
            entry["peer_reason"] = "no earlier model in the registry's history"
        figures[name] = entry
    return {"inputs": inputs, "figures": figures, "ratios": ratios}
