"""Textures for the upright faces of standing objects: building facades and truck sides.

Each texture is an RGB image at a fixed texel size whose x runs left to right as seen from
outside and whose y runs down from the top edge. Pure functions of their arguments, cached.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from xunjian.datasets.synth.textures import U8

FACADE_TEXEL_M = 0.1
TRUCK_TEXEL_M = 0.04

# (wall colour, window colour, window width m, window height m, bay m, floor m)
_FACADES = (
    ((196, 190, 178), (70, 86, 104), 1.6, 1.5, 3.2, 3.0),
    ((222, 214, 196), (60, 72, 84), 1.2, 1.6, 2.6, 3.0),
    ((150, 154, 160), (96, 130, 160), 2.6, 2.2, 3.0, 3.2),
    ((182, 120, 96), (58, 62, 70), 1.4, 1.4, 3.0, 2.9),
)


@cache
def facade(style: int, length_m: int, height_m: int) -> U8:
    """A building wall ``length_m`` × ``height_m``: bays of windows, a darker ground floor."""
    wall, glass, win_w, win_h, bay, floor = _FACADES[style % len(_FACADES)]
    t = FACADE_TEXEL_M
    w, h = max(2, int(length_m / t)), max(2, int(height_m / t))
    img = np.empty((h, w, 3), np.uint8)
    img[:] = wall
    rng = np.random.Generator(np.random.PCG64([style, length_m, height_m]))
    img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, (h, w, 1)), 0, 255).astype(np.uint8)
    n_floors = int(height_m // floor)
    margin = (length_m - bay * int(length_m // bay)) / 2
    for f in range(1, n_floors):
        top = height_m - (f + 1) * floor + (floor - win_h) * 0.6
        for k in range(int(length_m // bay)):
            left = margin + k * bay + (bay - win_w) / 2
            x0, x1 = int(left / t), int((left + win_w) / t)
            y0, y1 = int((height_m - top - win_h) / t), int((height_m - top) / t)
            lit = rng.uniform(0.8, 1.25)
            img[y0:y1, x0:x1] = np.clip(np.array(glass) * lit, 0, 255)
            img[y1 : y1 + 1, x0:x1] = (235, 235, 235)  # sill
    shop = int(floor / t)
    img[h - shop : h - int(0.3 / t)] = (64, 70, 76)  # shop fronts
    img[h - shop : h - shop + int(0.5 / t)] = (170, 50, 40) if style % 2 else (40, 90, 160)
    img[: max(1, int(0.4 / t))] = np.clip(np.array(wall) * 0.8, 0, 255)  # parapet
    out: U8 = img
    return out


def _wheel(img: U8, cx: float, t: float, radius: float = 0.5) -> None:
    h = img.shape[0]
    centre = (int(cx / t), int(h - radius / t))
    cv2.circle(img, centre, int(radius / t), (22, 22, 22), -1, cv2.LINE_AA)
    cv2.circle(img, centre, int(radius * 0.45 / t), (120, 120, 118), -1, cv2.LINE_AA)


@cache
def truck_face(part: str, length_m: float, height_m: float, paint: tuple[int, int, int]) -> U8:
    """One face of a truck: ``cab_side``, ``cab_front``, ``body_side``, ``body_back``, ``plain``."""
    t = TRUCK_TEXEL_M
    w, h = max(2, round(length_m / t)), max(2, round(height_m / t))
    p = np.array(paint, np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.clip(p * 0.78, 0, 255)
    chassis = int(1.15 / t)
    if part == "body_side":
        img[h - chassis :] = (40, 40, 42)
        img[: max(1, int(0.12 / t))] = np.clip(p * 0.6, 0, 255)
        for frac in (0.28, 0.52):
            _wheel(img, length_m * frac, t)
        for x in np.arange(0.6, length_m, 0.9):  # stiffening ribs
            img[: h - chassis, int(x / t) : int(x / t) + 2] = np.clip(p * 0.6, 0, 255)
    elif part == "cab_side":
        img[:] = np.clip(p, 0, 255)
        img[int(0.3 / t) : int(1.1 / t), int(0.15 * w) :] = (48, 58, 70)  # side window
        img[h - int(0.55 / t) :] = (40, 40, 42)
        _wheel(img, length_m * 0.55, t)
    elif part == "cab_front":
        img[:] = np.clip(p, 0, 255)
        img[int(0.25 / t) : int(1.15 / t), int(0.06 * w) : int(0.94 * w)] = (44, 54, 66)
        img[int(1.7 / t) : int(2.3 / t), int(0.2 * w) : int(0.8 * w)] = (30, 30, 30)  # grille
        for x in (0.12, 0.88):
            cv2.circle(img, (int(x * w), int(2.05 / t)), int(0.12 / t), (240, 235, 210), -1)
        img[h - int(0.45 / t) :] = (40, 40, 42)
    elif part == "body_back":
        img[h - chassis :] = (40, 40, 42)
        for x in (0.1, 0.9):
            img[h - chassis - int(0.25 / t) : h - chassis, int(x * w) - 4 : int(x * w) + 4] = (
                200,
                30,
                30,
            )
    return img
