"""What a real camera does to a clean rendering: exposure, white balance, vignetting, blur,
sensor noise — and the JPEG quality it is saved at. All seeded; all fast on 20 Mpx frames
(OpenCV saturating arithmetic on uint8, noise from a tile repeated with a random offset).

May import: numpy, OpenCV and the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.random import Generator

from xunjian.datasets.synth.textures import U8

_NOISE_TILE = 256


@dataclass(frozen=True)
class Effects:
    """Ranges the per-frame values are drawn from (uniformly)."""

    exposure: tuple[float, float] = (0.85, 1.15)
    white_balance: float = 0.03
    vignette: float = 0.22
    blur_sigma_px: tuple[float, float] = (0.0, 0.9)
    motion_px: tuple[float, float] = (0.0, 1.8)
    noise_sigma: tuple[float, float] = (1.5, 4.0)
    jpeg_quality: tuple[int, int] = (82, 95)


NO_EFFECTS = Effects(
    exposure=(1.0, 1.0),
    white_balance=0.0,
    vignette=0.0,
    blur_sigma_px=(0.0, 0.0),
    motion_px=(0.0, 0.0),
    noise_sigma=(0.0, 0.0),
    jpeg_quality=(95, 95),
)


def jpeg_quality(effects: Effects, rng: Generator) -> int:
    lo, hi = effects.jpeg_quality
    return int(rng.integers(lo, hi + 1))


def apply(img: U8, effects: Effects, rng: Generator) -> U8:
    """``img`` (H, W, 3 uint8) as a camera would have recorded it."""
    h, w = img.shape[:2]
    gain = rng.uniform(*effects.exposure)
    balance = 1.0 + rng.uniform(-effects.white_balance, effects.white_balance, 3)
    per_channel = gain * balance
    if effects.vignette > 0:
        small_w, small_h = 64, max(2, round(64 * h / w))
        y, x = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
        r2 = ((x + 0.5) / small_w - 0.5) ** 2 + ((y + 0.5) / small_h - 0.5) ** 2 * (h / w) ** 2
        fall = 1.0 - effects.vignette * r2 / 0.25
        # uint8 gains in 1/128 steps: saturating integer arithmetic, fast on 20 Mpx frames.
        small = np.dstack([fall * float(c) * 128.0 for c in per_channel])
        gains = np.clip(np.round(small), 0, 255).astype(np.uint8)
        gmap = cv2.resize(gains, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.multiply(img, gmap, scale=1.0 / 128.0)
    else:
        lut = np.clip(np.arange(256)[:, None] * per_channel[None, :], 0, 255).astype(np.uint8)
        out = cv2.merge([cv2.LUT(img[..., c], lut[:, c]) for c in range(3)])
    sigma = rng.uniform(*effects.blur_sigma_px)
    if sigma > 0.3:
        size = 2 * math.ceil(2 * sigma) + 1
        out = cv2.GaussianBlur(out, (size, size), sigma)
    length = rng.uniform(*effects.motion_px)
    angle = rng.uniform(0.0, math.pi)
    if length >= 1.0:
        size = math.ceil(length) * 2 + 1
        kernel = np.zeros((size, size), np.float32)
        c = size // 2
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        cv2.line(
            kernel,
            (round(c - dx), round(c - dy)),
            (round(c + dx), round(c + dy)),
            1.0,
            1,
            cv2.LINE_AA,
        )
        # Only the kernel's non-zero box (same sums, same border pixels): fewer taps per pixel.
        ys, xs = np.nonzero(kernel)
        box = kernel[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] / kernel.sum()
        out = cv2.filter2D(out, -1, box, anchor=(c - int(xs.min()), c - int(ys.min())))
    noise = rng.uniform(*effects.noise_sigma)
    if noise > 0:
        tile = np.round(rng.normal(0.0, noise, (_NOISE_TILE, _NOISE_TILE, 3)))
        oy, ox = (int(v) for v in rng.integers(0, _NOISE_TILE, 2))
        up = np.roll(np.clip(tile, 0, 255).astype(np.uint8), (oy, ox), axis=(0, 1))
        down = np.roll(np.clip(-tile, 0, 255).astype(np.uint8), (oy, ox), axis=(0, 1))
        # Band by band on views: no frame-sized noise array (63 MB at 20 Mpx) is built.
        reps = (1, -(-w // _NOISE_TILE), 1)
        up_band = np.ascontiguousarray(np.tile(up, reps)[:, :w])
        down_band = np.ascontiguousarray(np.tile(down, reps)[:, :w])
        for y in range(0, h, _NOISE_TILE):
            block = out[y : y + _NOISE_TILE]
            bh = block.shape[0]
            cv2.add(block, up_band[:bh], dst=block)
            cv2.subtract(block, down_band[:bh], dst=block)
    result: U8 = np.asarray(out, np.uint8)
    return result
