"""detect-throughput and backends: xunjian's detect stage against plain ultralytics.

* **detect-throughput** — images/s of :func:`~xunjian.inspect.detect.detect_frame` (decode
  once, onnxruntime, numpy post-processing; ``full`` mode: one letterboxed pass per image, no
  tiling) vs a plain ``YOLO(path).predict(file)`` loop, the same JPEG files and the same
  ``.onnx`` (and the ``.pt`` when one sits next to it), per image size: the model's native
  size and typical drone/vehicle sizes. ``ratios`` = ultralytics s/img ÷ xunjian s/img.
* **backends** — ms/img of the onnxruntime and ultralytics backends on decoded native-size
  tiles, and their box agreement: the share of boxes (of the larger set) matched one-to-one
  by a box of the same class at IoU ≥ :data:`AGREE_IOU`.

Timings interleave the contenders (A, B, A, B…) and report medians: the machines are shared.
Which model: ``--model PATH`` (an ``.onnx``, or a ``.pt`` with its ``.onnx`` next to it), else
the shipped ``road_damage`` default, else a small road_damage model the bench trains on
test-range tiles and caches (:func:`train_range_model`) — every result names it.

May import anything in xunjian but service and cli; ultralytics only through mlruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xunjian.errors import DetectorError
from xunjian.models.backends import Boxes, PredictParams, box_iou

__all__ = [
    "AGREE_IOU",
    "BenchModel",
    "bench_backends",
    "bench_detect_throughput",
    "box_agreement",
    "resolve_model",
    "train_range_model",
]

AGREE_IOU = 0.9
RANGE_DETECTOR = "road_damage"
RANGE_RECIPE: dict[str, Any] = {
    "world_seed": 1, "camera": "M3E", "height_m": 80.0, "frames": 5, "tile": 320,
    "epochs": 40, "imgsz": 320, "batch": 8, "version": 2,
}  # fmt: skip


@dataclass(frozen=True)
class BenchModel:
    """The model a benchmark ran, and where it came from (``source``)."""

    onnx: Path
    pt: Path | None
    detector: str
    classes: tuple[str, ...]
    imgsz: int
    source: str
    conf: float = 0.25
    gsd_m: float | None = None  # the card's working ground sampling, when it has one

    def detector_set(self, backend: str) -> Any:
        from xunjian.models.detector import DetectorSet
        from xunjian.models.registry import load_detector

        path = self.pt if backend == "ultralytics" and self.pt is not None else self.onnx
        return DetectorSet(
            [
                load_detector(
                    path,
                    detector=self.detector,
                    classes=self.classes,
                    backend="ultralytics" if backend == "ultralytics" else "onnxruntime",
                    imgsz=self.imgsz,
                )
            ]
        )

    def describe(self) -> dict[str, Any]:
        return {
            "onnx": str(self.onnx),
            "pt": str(self.pt) if self.pt else None,
            "detector": self.detector,
            "classes": list(self.classes),
            "imgsz": self.imgsz,
            "gsd_m": self.gsd_m,
            "source": self.source,
        }

    def threads_info(self) -> dict[str, Any]:
        from xunjian.models.onnx_backend import default_threads

        return {
            "onnxruntime_xunjian_intra_op": default_threads(),
            "cores_usable": default_threads(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        }


def _model_from_file(path: Path, source: str) -> BenchModel:
    from xunjian.core.taxonomy import Detector as DetectorName
    from xunjian.core.taxonomy import classes_of
    from xunjian.models.onnx_backend import OnnxBackend

    path = Path(path)
    onnx = path if path.suffix.lower() == ".onnx" else path.with_suffix(".onnx")
    pt = path if path.suffix.lower() == ".pt" else path.with_suffix(".pt")
    if not onnx.is_file():
        raise DetectorError(f"{path}: the benchmarks need an .onnx model ({onnx} not found)")
    backend = OnnxBackend(onnx)
    names = backend.class_names or tuple(f"class{i}" for i in range(backend.num_classes))
    detector = "custom"
    for part in (onnx.parent.name, onnx.stem):
        if part in {d.value for d in DetectorName}:
            detector = part
            if len(classes_of(DetectorName(part))) == backend.num_classes:
                names = classes_of(DetectorName(part))
            break
    card = onnx.with_name("card.json")
    imgsz = backend.input_size[0]
    gsd_m = None
    if card.is_file():
        raw = json.loads(card.read_text(encoding="utf-8"))
        imgsz = int(raw.get("imgsz") or imgsz)
        gsd_m = float(raw["gsd_m"]) if raw.get("gsd_m") else None
    return BenchModel(
        onnx, pt if pt.is_file() else None, detector, names, imgsz, source, gsd_m=gsd_m
    )


def resolve_model(model: Path | None, *, data_dir: Path, quick: bool = False) -> BenchModel:
    """``--model``, else the shipped road_damage model, else the bench-trained range model."""
    from xunjian.models.registry import shipped_model_path

    if model is not None:
        return _model_from_file(model, "--model")
    shipped = shipped_model_path(RANGE_DETECTOR)
    if shipped.is_file():
        return _model_from_file(shipped, "shipped default")
    return train_range_model(data_dir)


def train_range_model(data_dir: Path, progress: Callable[[str], None] | None = None) -> BenchModel:
    """A small road_damage YOLO11n trained from scratch on test-range tiles, cached.

    Trained on another world (seed 1) than the frames the tiled benchmark measures (seed 0).
    Ultralytics is called directly (not :func:`~xunjian.models.train.train_detector`) for
    ``nbs = batch``: with a few dozen tiles the default accumulation to 64 images would step
    the optimiser once per epoch, and a from-scratch model learns nothing in 40 epochs.
    """
    from xunjian.bench.tiled import range_frames
    from xunjian.datasets.synth import export_yolo
    from xunjian.models.export import export_onnx
    from xunjian.models.mlruntime import import_ultralytics

    r = RANGE_RECIPE
    key = "-".join(f"{v}" for v in r.values())
    folder = data_dir / "bench" / f"range-model-{key}"
    if not (folder / "ok.json").is_file():
        flight = range_frames(
            data_dir, camera=str(r["camera"]), height_m=float(r["height_m"]),
            count=int(r["frames"]), world_seed=int(r["world_seed"]),
        )  # fmt: skip
        shutil.rmtree(folder / "data", ignore_errors=True)
        export_yolo(flight, folder / "data", tile=int(r["tile"]), detector=RANGE_DETECTOR,
                    keep_empty=False)  # fmt: skip
        yolo = import_ultralytics().YOLO("yolo11n.yaml", task="detect")
        if progress is not None:
            yolo.add_callback("on_train_epoch_end", lambda t: progress(f"epoch {t.epoch + 1}"))
        b = int(r["batch"])
        yolo.train(
            data=str(folder / "data" / "data.yaml"), epochs=int(r["epochs"]),
            imgsz=int(r["imgsz"]), batch=b, nbs=b, workers=0, device="cpu", optimizer="SGD",
            lr0=0.02, warmup_epochs=0, mosaic=0.0, close_mosaic=0, plots=False, val=False,
            amp=False, seed=0, deterministic=True, verbose=False, pretrained=False,
            cache="ram", project=str(folder.resolve()), name="run", exist_ok=True,
        )  # fmt: skip
        shutil.copyfile(folder / "run" / "weights" / "last.pt", folder / "model.pt")
        export_onnx(folder / "model.pt", folder / "model.onnx", int(r["imgsz"]))
        (folder / "ok.json").write_text(json.dumps({"recipe": r}))
    model = _model_from_file(folder / "model.onnx", "bench-trained")
    return BenchModel(model.onnx, model.pt, RANGE_DETECTOR, model.classes, model.imgsz,
                      f"bench-trained on test-range tiles (world 1), recipe {r}")  # fmt: skip


def _sample_images(data_dir: Path, sizes: Sequence[tuple[int, int]], count: int) -> dict[str, Any]:
    """``count`` JPEGs per size, from test-range frames (resized), cached: {"WxH": [paths]}."""
    import cv2

    from xunjian.bench.tiled import range_frames

    flight = range_frames(data_dir, camera="small", height_m=30.0, count=count)
    frames = [
        np.asarray(cv2.imread(str(flight.out_dir / f.image)), np.uint8) for f in flight.frames
    ]
    out: dict[str, Any] = {}
    for w, h in sizes:
        folder = data_dir / "bench" / "throughput" / f"{w}x{h}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, frame in enumerate(frames):
            path = folder / f"{i:03d}.jpg"
            if not path.is_file():
                cv2.imwrite(str(path), cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA))
            paths.append(path)
        out[f"{w}x{h}"] = paths
    return out


def _interleaved(
    runners: dict[str, Callable[[Any], Any]], items: Sequence[Any], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[Any]]]:
    """Seconds per item of each runner per repeat, interleaved; the last repeat's outputs."""
    for run in runners.values():
        run(items[0])  # warm-up
    seconds: dict[str, list[float]] = {n: [] for n in runners}
    outputs: dict[str, list[Any]] = {}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            outputs[name] = [run(item) for item in items]
            seconds[name].append((time.perf_counter() - start) / len(items))
    return seconds, outputs


def bench_detect_throughput(
    *, model: Path | None = None, quick: bool = False, data_dir: Path | None = None,
    repeats: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """images/s of xunjian's detect stage vs plain ultralytics predict, per image size."""
    from xunjian.inspect.detect import DetectOptions, detect_frame
    from xunjian.models.mlruntime import import_ultralytics
    from xunjian.models.tiling import TileConfig
    from xunjian.settings import get_settings

    data_dir = data_dir or get_settings().data_dir
    bm = resolve_model(model, data_dir=data_dir, quick=quick)
    sizes = [(bm.imgsz, bm.imgsz), (1024, 768)] + ([] if quick else [(4000, 3000)])
    count, repeats = (2, repeats or 1) if quick else (8, repeats or 5)
    images = _sample_images(data_dir, sizes, count)
    detectors = bm.detector_set("onnxruntime")
    options = DetectOptions(
        params=PredictParams(conf=bm.conf), tiling=TileConfig(mode="full"), skip_tiles=False
    )
    ultralytics = import_ultralytics()
    yolos = {"ultralytics_onnx": ultralytics.YOLO(str(bm.onnx), task="detect")}
    if bm.pt is not None:
        yolos["ultralytics_pt"] = ultralytics.YOLO(str(bm.pt), task="detect")

    def plain(yolo: Any) -> Callable[[Path], int]:
        return lambda p: len(
            yolo.predict(str(p), imgsz=bm.imgsz, conf=bm.conf, verbose=False)[0].boxes
        )

    runners: dict[str, Callable[[Path], int]] = {
        "xunjian": lambda p: len(detect_frame(detectors, p, options=options).detections),
        **{name: plain(yolo) for name, yolo in yolos.items()},
    }
    figures: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    for size, paths in images.items():
        seconds, outputs = _interleaved(runners, paths, repeats)
        med = {n: statistics.median(s) for n, s in seconds.items()}
        figures[size] = {
            n: {"images_per_s": round(1.0 / med[n], 3), "ms_per_img": round(1e3 * med[n], 2),
                "ms_per_img_runs": [round(1e3 * v, 2) for v in s], "boxes": sum(outputs[n])}
            for n, s in seconds.items()
        }  # fmt: skip
        ratios[size] = {f"xunjian_vs_{n}": round(med[n] / med["xunjian"], 3) for n in yolos}
    return {
        "inputs": {
            "model": bm.describe(), "image_sizes": list(images), "images_per_size": count,
            "repeats": repeats, "conf": bm.conf, "xunjian_mode": "full (no tiling)",
            "source_images": "test-range frames (camera 'small', 30 m) resized, JPEG",
            "threads": bm.threads_info(),
        },
        "figures": figures,
        "ratios": ratios,
    }  # fmt: skip


def box_agreement(a: Sequence[Boxes], b: Sequence[Boxes], iou: float = AGREE_IOU) -> float:
    """Share of boxes matched one-to-one (same class, IoU ≥ ``iou``) of the larger set."""
    matched = total = 0
    for x, y in zip(a, b, strict=True):
        total += max(len(x), len(y))
        if not len(x) or not len(y):
            continue
        overlap = box_iou(x.xyxy, y.xyxy) * (x.cls[:, None] == y.cls[None, :])
        used: set[int] = set()
        for i in np.argsort(-x.conf, kind="stable"):
            row = overlap[i].copy()
            row[list(used)] = -1.0
            j = int(np.argmax(row))
            if row[j] >= iou:
                used.add(j)
                matched += 1
    return 1.0 if total == 0 else matched / total


def bench_backends(
    *, model: Path | None = None, quick: bool = False, data_dir: Path | None = None,
    images: Sequence[Path] | None = None, repeats: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """ms/img and box agreement of the onnxruntime and ultralytics backends (same model)."""
    import cv2

    from xunjian.settings import get_settings

    data_dir = data_dir or get_settings().data_dir
    bm = resolve_model(model, data_dir=data_dir, quick=quick)
    if images is None:
        images = _sample_images(data_dir, [(bm.imgsz, bm.imgsz)], 2 if quick else 16)[
            f"{bm.imgsz}x{bm.imgsz}"
        ]
    pixels = [np.asarray(cv2.imread(str(p)), np.uint8) for p in images]
    params = PredictParams(conf=bm.conf)
    onnx, ult = bm.detector_set("onnxruntime"), bm.detector_set("ultralytics")
    runners = {
        "onnxruntime": lambda im: onnx.predict([im], params)[bm.detector][0],
        "ultralytics": lambda im: ult.predict([im], params)[bm.detector][0],
    }
    repeats = repeats or (1 if quick else 5)
    seconds, outputs = _interleaved(runners, pixels, repeats)
    med = {n: statistics.median(s) for n, s in seconds.items()}
    return {
        "inputs": {
            "model": bm.describe(), "images": len(pixels),
            "image_size": [int(pixels[0].shape[1]), int(pixels[0].shape[0])],
            "ultralytics_weights": str(bm.pt or bm.onnx), "repeats": repeats,
            "conf": bm.conf, "agree_iou": AGREE_IOU, "threads": bm.threads_info(),
        },
        "figures": {
            **{n: {"ms_per_img": round(1e3 * med[n], 2),
                   "ms_per_img_runs": [round(1e3 * v, 2) for v in s],
                   "boxes": sum(len(b) for b in outputs[n])} for n, s in seconds.items()},
            "agreement": round(box_agreement(outputs["onnxruntime"], outputs["ultralytics"]), 4),
        },
        "ratios": {"ultralytics_vs_onnxruntime": round(med["ultralytics"] / med["onnxruntime"], 3)},
    }  # fmt: skip
