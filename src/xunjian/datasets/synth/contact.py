"""Contact sheets: a PNG grid of sample frames with their truth boxes and class labels, and a
row of close-up crops, one per class — for checking by eye that the range looks right.

Frames are picked deterministically to show as many classes as possible. Labels use OpenCV's
built-in Hershey font (no font files, no downloads).

May import: numpy, OpenCV, the standard library, ``xunjian.core`` and sibling modules.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from xunjian.core.taxonomy import CLASSES
from xunjian.datasets.synth.flight import FlightTruth, FrameTruth

# BGR, one per class in taxonomy order.
COLORS = [
    (0, 0, 255),
    (0, 140, 255),
    (0, 215, 255),
    (255, 0, 255),
    (0, 200, 0),
    (255, 160, 0),
    (255, 0, 0),
    (128, 0, 255),
]
_INDEX = {c.name: i for i, c in enumerate(CLASSES)}
_SHORT = {
    "longitudinal_crack": "long.crack",
    "transverse_crack": "trans.crack",
    "alligator_crack": "alligator",
    "pothole": "pothole",
    "garbage_pile": "garbage",
    "construction_waste": "c.waste",
    "spoil_truck": "truck",
    "spoil_truck_uncovered": "truck-open",
}


def pick_frames(frames: list[FrameTruth], n: int) -> list[FrameTruth]:
    """Up to ``n`` frames that together show the most classes, then the busiest."""
    chosen: list[FrameTruth] = []
    covered: set[str] = set()
    pool = list(frames)

    def classes(f: FrameTruth) -> set[str]:
        return {t["class"] for t in f.targets if not t["occluded"]}

    while pool and len(chosen) < n:
        best = max(pool, key=lambda f: (len(classes(f) - covered), len(f.targets), -f.index))
        chosen.append(best)
        covered |= classes(best)
        pool.remove(best)
    return sorted(chosen, key=lambda f: f.index)


def _label(
    img: np.ndarray, text: str, org: tuple[int, int], color: tuple[int, int, int], scale: float
) -> None:
    thick = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = org
    y = max(y, h + 2)
    cv2.rectangle(img, (x, y - h - 3), (x + w + 2, y + base - 1), color, -1)
    cv2.putText(
        img,
        text,
        (x + 1, y - 1),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thick,
        cv2.LINE_AA,
    )


def annotated(flight_dir: Path, frame: FrameTruth, width: int) -> np.ndarray:
    """The frame scaled to ``width`` with its truth boxes drawn (occluded ones thin, grey)."""
    img = cv2.imread(str(Path(flight_dir) / frame.image), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{Path(flight_dir) / frame.image}: cannot read the frame")
    s = width / img.shape[1]
    out = cv2.resize(img, (width, round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    for t in frame.targets:
        x0, y0, x1, y1 = (round(v * s) for v in t["box"])
        color = (150, 150, 150) if t["occluded"] else COLORS[_INDEX[t["class"]]]
        cv2.rectangle(out, (x0, y0), (x1, y1), color, 1 if t["occluded"] else 2, cv2.LINE_AA)
        _label(out, _SHORT[t["class"]], (x0, y0 - 2), color, 0.4)
    _label(out, Path(frame.image).name, (4, 16), (40, 40, 40), 0.45)
    return out


def class_crops(flight_dir: Path, truth: FlightTruth, size: int) -> np.ndarray:
    """One close-up per class: the largest unoccluded instance with some context around it."""
    tiles = []
    for info in CLASSES:
        best: tuple[float, FrameTruth, dict[str, Any]] | None = None
        for f in truth.frames:
            for t in f.targets:
                if t["class"] == info.name and not t["occluded"] and t["in_image_fraction"] > 0.99:
                    x0, y0, x1, y1 = t["box"]
                    area = (x1 - x0) * (y1 - y0)
                    if best is None or area > best[0]:
                        best = (area, f, t)
        tile = np.full((size, size, 3), 235, np.uint8)
        if best is not None:
            _, f, t = best
            img = cv2.imread(str(Path(flight_dir) / f.image), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"{Path(flight_dir) / f.image}: cannot read the frame")
            x0, y0, x1, y1 = t["box"]
            half = max(x1 - x0, y1 - y0) * 0.75 + 8
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            a, b = int(max(0, cx - half)), int(max(0, cy - half))
            c, d = int(min(img.shape[1], cx + half)), int(min(img.shape[0], cy + half))
            crop = img[b:d, a:c]
            scale = size / max(crop.shape[:2])
            crop = cv2.resize(
                crop,
                (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA,
            )
            tile[: crop.shape[0], : crop.shape[1]] = crop
            bx = [
                round((x0 - a) * scale),
                round((y0 - b) * scale),
                round((x1 - a) * scale),
                round((y1 - b) * scale),
            ]
            cv2.rectangle(
                tile, (bx[0], bx[1]), (bx[2], bx[3]), COLORS[_INDEX[info.name]], 1, cv2.LINE_AA
            )
        _label(tile, _SHORT[info.name], (2, size - 4), COLORS[_INDEX[info.name]], 0.45)
        tiles.append(tile)
    return np.hstack(tiles)


def contact_sheet(
    flight_dir: Path, out_png: Path, n: int = 9, *, width: int = 640, crops: bool = True
) -> Path:
    """Writes the contact sheet of a rendered flight to ``out_png`` and returns its path."""
    truth = FlightTruth.load(Path(flight_dir))
    frames = pick_frames(truth.frames, n)
    if not frames:
        raise ValueError(f"{flight_dir}: the flight has no frames")
    cells = [annotated(Path(flight_dir), f, width) for f in frames]
    cols = math.ceil(math.sqrt(len(cells)))
    rows = math.ceil(len(cells) / cols)
    cell_h = max(c.shape[0] for c in cells)
    sheet = np.full((rows * (cell_h + 4), cols * (width + 4), 3), 255, np.uint8)
    for i, c in enumerate(cells):
        r, q = divmod(i, cols)
        sheet[
            r * (cell_h + 4) : r * (cell_h + 4) + c.shape[0],
            q * (width + 4) : q * (width + 4) + width,
        ] = c
    if crops:
        strip = class_crops(Path(flight_dir), truth, (cols * (width + 4)) // len(CLASSES))
        pad = np.full((strip.shape[0], sheet.shape[1] - strip.shape[1], 3), 255, np.uint8)
        sheet = np.vstack([sheet, np.hstack([strip, pad])])
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_png), sheet):
        raise OSError(f"{out_png}: could not write the contact sheet")
    return out_png
