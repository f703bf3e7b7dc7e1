"""Exports a rendered flight as a YOLO detection dataset, cut into tiles of a chosen size.

Each frame is cut into ``tile`` × ``tile`` tiles overlapping by ``overlap`` (the last tile
of a row/column is aligned to the image edge; a frame smaller than a tile is one tile). A
truth box goes into a tile's labels when at least ``min_area_fraction`` of it lies inside
the tile, clipped to the tile; occluded targets (``visible_fraction`` < ``min_visible``) are
left out. Class indices follow the taxonomy order, of one detector (``detector``) or of all
classes. Frames are split train/val by frame (every ``val_every``-th frame is val), so tiles
of one frame never land on both sides.

May import: numpy, OpenCV, PyYAML, the standard library, ``xunjian.core`` and ``synth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import yaml

from xunjian.core.taxonomy import CLASSES, Detector, classes_of
from xunjian.datasets.synth.flight import FlightTruth


@dataclass
class YoloExport:
    out_dir: Path
    names: tuple[str, ...]
    images: dict[str, int] = field(default_factory=lambda: {"train": 0, "val": 0})
    labels: dict[str, int] = field(default_factory=dict)


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    return [*starts, size - tile]


def export_yolo(
    source: Path | FlightTruth,
    out_dir: Path,
    *,
    tile: int = 640,
    overlap: float = 0.2,
    detector: str | None = None,
    min_visible: float = 0.5,
    min_area_fraction: float = 0.4,
    val_every: int = 5,
    keep_empty: bool = True,
    jpeg_quality: int = 95,
) -> YoloExport:
    """Writes ``out_dir/images/{train,val}``, ``out_dir/labels/{train,val}`` and ``data.yaml``."""
    truth = source if isinstance(source, FlightTruth) else FlightTruth.load(Path(source))
    if truth.out_dir is None:
        raise ValueError("export_yolo: the flight has no directory to read its images from")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap: expected a fraction in [0, 1), got {overlap}")
    if tile < 32:
        raise ValueError(f"tile: expected at least 32 pixels, got {tile}")
    names = classes_of(Detector(detector)) if detector else tuple(c.name for c in CLASSES)
    index = {n: i for i, n in enumerate(names)}
    out = Path(out_dir)
    result = YoloExport(out, names, labels=dict.fromkeys(names, 0))
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    stride = max(1, round(tile * (1.0 - overlap)))
    for frame in truth.frames:
        img = cv2.imread(str(truth.out_dir / frame.image), cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"{truth.out_dir / frame.image}: cannot read the frame")
        h, w = img.shape[:2]
        split = "val" if val_every > 0 and frame.index % val_every == val_every - 1 else "train"
        stem = Path(frame.image).stem
        for y in _starts(h, tile, stride):
            for x in _starts(w, tile, stride):
                tw, th = min(tile, w), min(tile, h)
                lines = []
                for t in frame.targets:
                    if t["class"] not in index or t["visible_fraction"] < min_visible:
                        continue
                    x0, y0, x1, y1 = t["box"]
                    area = max((x1 - x0) * (y1 - y0), 1e-9)
                    cx0, cy0 = max(x0, x), max(y0, y)
                    cx1, cy1 = min(x1, x + tw), min(y1, y + th)
                    if (
                        cx1 - cx0 < 2
                        or cy1 - cy0 < 2
                        or (cx1 - cx0) * (cy1 - cy0) < min_area_fraction * area
                    ):
                        continue
                    u, v = ((cx0 + cx1) / 2 - x) / tw, ((cy0 + cy1) / 2 - y) / th
                    bw, bh = (cx1 - cx0) / tw, (cy1 - cy0) / th
                    lines.append(f"{index[t['class']]} {u:.6f} {v:.6f} {bw:.6f} {bh:.6f}")
                    result.labels[t["class"]] += 1
                if not lines and not keep_empty:
                    continue
                name = f"{stem}_{x:05d}_{y:05d}"
                crop = img[y : y + th, x : x + tw]
                cv2.imwrite(
                    str(out / "images" / split / f"{name}.jpg"),
                    crop,
                    [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality],
                )
                (out / "labels" / split / f"{name}.txt").write_text(
                    "".join(f"{line}\n" for line in lines)
                )
                result.images[split] += 1
    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "nc": len(names),
        "names": dict(enumerate(names)),
        "source": {
            "kind": "xunjian synthetic test range",
            "seed": truth.seed,
            "world_seed": truth.world.seed,
            "detector": detector or "all",
            "tile": tile,
            "overlap": overlap,
        },
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return result
