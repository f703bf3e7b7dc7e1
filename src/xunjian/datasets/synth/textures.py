"""Surface materials of the test range: seamless periodic textures and large-scale variation.

Each material (asphalt, pavers, grass, roofs…) is a periodic RGB texture of ``PERIOD_M``
metres at the finest texel size, built from FFT-filtered noise (periodic by construction) and
simple patterns (paver joints, roof corrugation). Coarser levels are area-averaged copies, so
a frame far away shows the mean colour without aliasing. Large-scale variation (wear, stains,
patchy grass) comes from smooth world-fixed noise fields, so the periodic pattern never shows.

May import: numpy, OpenCV, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np
from numpy.random import PCG64, Generator
from numpy.typing import NDArray

BASE_TEXEL_M = 0.02
"""Texel size of level 0 (m). Level L has texels of BASE_TEXEL_M · 2^L."""
PERIOD_PX = 256
PERIOD_M = PERIOD_PX * BASE_TEXEL_M
U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

MATERIALS = (
    "background",
    "asphalt",
    "asphalt_main",
    "patch",
    "sidewalk",
    "plaza",
    "green",
    "lot",
    "swept",
    "roof_concrete",
    "roof_tile",
    "roof_metal",
    "roof_green",
    "canopy",
)
MATERIAL_INDEX = {m: i for i, m in enumerate(MATERIALS)}


def periodic_noise(rng: Generator, size: int, sigma_px: float) -> F32:
    """Zero-mean, unit-std noise of ``size``², periodic, with features of about ``sigma_px``."""
    white = rng.standard_normal((size, size))
    f = np.fft.fftfreq(size)
    fx, fy = np.meshgrid(f, f)
    spectrum = np.fft.fft2(white) * np.exp(-2.0 * (np.pi * sigma_px) ** 2 * (fx**2 + fy**2))
    field = np.real(np.fft.ifft2(spectrum))
    field -= field.mean()
    std = field.std()
    out: F32 = (field / (std if std > 0 else 1.0)).astype(np.float32)
    return out


def _fbm(rng: Generator, size: int, octaves: tuple[tuple[float, float], ...]) -> F32:
    out = np.zeros((size, size), np.float32)
    for sigma, amp in octaves:
        out += amp * periodic_noise(rng, size, sigma)
    return out


def _colorize(base: tuple[int, int, int], shade: F32, tint: F32 | None = None) -> U8:
    rgb = np.array(base, np.float32)[None, None, :] + shade[..., None]
    if tint is not None:
        rgb += tint[..., None] * np.array([-0.4, 0.6, -0.5], np.float32)
    out: U8 = np.clip(rgb, 0, 255).astype(np.uint8)
    return out


def _speckles(rng: Generator, size: int, fraction: float, amp: float) -> F32:
    pick = rng.random((size, size)) < fraction
    return (pick * rng.uniform(-amp, amp, (size, size))).astype(np.float32)


def _pavers(rng: Generator, size: int, w: int, h: int, bond: bool, joint: float) -> F32:
    rows = np.arange(size)[:, None]
    cols = np.arange(size)[None, :]
    shift = ((rows // h) % 2) * (w // 2) if bond else 0
    cell_id = (rows // h) * 1000 + (cols + shift) // w
    per_cell = rng.normal(0.0, 7.0, 1000 * (size // h + 1) + size // w + 2)
    shade = per_cell[cell_id % len(per_cell)].astype(np.float32)
    joints = ((rows % h) == 0) | (((cols + shift) % w) == 0)
    out: F32 = shade - joint * joints.astype(np.float32)
    return out


def _stripes(size: int, period: int, amp: float) -> F32:
    cols = np.arange(size, dtype=np.float32)
    wave = amp * np.sin(2 * np.pi * cols / period)
    return np.broadcast_to(wave[None, :], (size, size)).astype(np.float32)


@cache
def material_texture(name: str, seed: int, level: int = 0) -> U8:
    """The periodic texture of ``name`` at ``level`` (PERIOD_M metres, 256 >> level pixels)."""
    if level > 0:
        src = material_texture(name, seed, 0)
        size = max(1, PERIOD_PX >> level)
        small = cv2.resize(src, (size, size), interpolation=cv2.INTER_AREA)
        out: U8 = np.asarray(small, np.uint8).reshape(size, size, 3)
        return out
    rng = Generator(PCG64([seed, 101, MATERIAL_INDEX[name]]))
    n = PERIOD_PX
    if name in ("asphalt", "asphalt_main", "patch"):
        base = {"asphalt": (92, 92, 90), "asphalt_main": (74, 75, 77), "patch": (52, 52, 54)}[name]
        shade = _fbm(rng, n, ((0.7, 9.0), (2.5, 5.0), (8.0, 2.5)))
        shade += _speckles(rng, n, 0.06, 38.0)
        return _colorize(base, shade)
    if name == "sidewalk":
        shade = _pavers(rng, n, 16, 8, True, 28.0) + _fbm(rng, n, ((0.8, 6.0), (10.0, 5.0)))
        return _colorize((168, 152, 142), shade)
    if name == "plaza":
        shade = _pavers(rng, n, 32, 32, False, 22.0) + _fbm(rng, n, ((0.8, 5.0), (14.0, 6.0)))
        return _colorize((188, 184, 176), shade)
    if name in ("green", "canopy"):
        fine = _fbm(rng, n, ((0.6, 14.0), (2.0, 10.0), (8.0, 8.0)))
        tint = _fbm(rng, n, ((16.0, 10.0),))
        base = (84, 116, 56) if name == "green" else (52, 84, 40)
        if name == "canopy":
            fine = _fbm(rng, n, ((1.2, 16.0), (4.0, 18.0)))
        return _colorize(base, fine, tint)
    if name == "lot":
        shade = _fbm(rng, n, ((0.6, 12.0), (3.0, 8.0), (10.0, 5.0))) + _speckles(rng, n, 0.03, 50)
        return _colorize((146, 120, 90), shade)
    if name in ("background", "swept"):
        shade = _fbm(rng, n, ((0.7, 7.0), (3.0, 4.0)))
        return _colorize((150, 147, 138) if name == "background" else (160, 158, 152), shade)
    if name == "roof_concrete":
        shade = _fbm(rng, n, ((0.7, 6.0), (10.0, 9.0))) + _pavers(rng, n, 64, 64, False, 10.0)
        return _colorize((176, 174, 166), shade)
    if name == "roof_tile":
        shade = _stripes(n, 16, 14.0).T.copy() + _fbm(rng, n, ((0.7, 8.0), (8.0, 6.0)))
        return _colorize((158, 78, 58), shade)
    if name == "roof_metal":
        shade = _stripes(n, 8, 16.0) + _fbm(rng, n, ((16.0, 6.0),))
        return _colorize((96, 124, 152), shade)
    if name == "roof_green":
        shade = _fbm(rng, n, ((0.7, 12.0), (4.0, 10.0)))
        return _colorize((92, 122, 72), shade)
    raise KeyError(f"unknown material {name!r}; expected one of {', '.join(MATERIALS)}")


def tiled(texture: U8, rows: int, cols: int, row0: int = 0, col0: int = 0) -> U8:
    """``rows`` × ``cols`` of a periodic texture, starting at texel (row0, col0)."""
    p = texture.shape[0]
    ridx = (np.arange(rows) + row0) % p
    cidx = (np.arange(cols) + col0) % p
    out: U8 = texture[ridx[:, None], cidx[None, :]]
    return out


class NoiseFields:
    """Smooth world-fixed noise (values about −1…1) sampled at 1 m over a square: fields
    WEAR and SPOTS, and GAIN = 1 + 0.06·wear + 0.035·spots in three channels."""

    WEAR, SPOTS, GAIN = 0, 1, 2

    def __init__(self, seed: int, size_m: float, margin_m: float = 200.0) -> None:
        self.half = size_m / 2 + margin_m
        n = int(2 * self.half) + 1
        rng = Generator(PCG64([seed, 202]))
        self.fields: list[F32] = []
        for sigma in (9.0, 2.5):
            white = rng.standard_normal((n, n)).astype(np.float32)
            f = np.asarray(cv2.GaussianBlur(white, (0, 0), sigma), np.float32)
            self.fields.append(f / np.float32(max(float(f.std()), 1e-6)))
        # Field GAIN: the brightness variation of the ground (wear and spots), per channel, so
        # a tile samples it once and multiplies in one pass.
        gain = cv2.addWeighted(self.fields[0], 0.06, self.fields[1], 0.035, 1.0)
        self.fields.append(np.ascontiguousarray(np.repeat(gain[..., None], 3, axis=2)))

    def sample(self, index: int, e0: float, n1: float, texel: float, rows: int, cols: int) -> F32:
        """Field ``index`` on a grid whose pixel centres are (e0 + (c+½)t, n1 − (r+½)t)."""
        # Field cell (i, j) lies at E = −half + j, N = half − i.
        m = np.array(
            [
                [texel, 0.0, e0 + 0.5 * texel + self.half],
                [0.0, texel, self.half - n1 + 0.5 * texel],
            ],
            np.float64,
        )
        warped = cv2.warpAffine(
            self.fields[index],
            m,
            (cols, rows),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        out: F32 = np.asarray(warped, np.float32)
        return out

    def gain(self, e0: float, n1: float, texel: float, size: int) -> F32:
        """Field GAIN over a ``size``² tile (as ``sample``), sampled about every 16 cm and
        interpolated up: the field is smooth at 1 m, and resizing is much cheaper than warping.
        The coarse grid reaches one cell beyond the tile, so tiles meet without a seam."""
        f = 1 << max(0, math.floor(math.log2(0.16 / texel)))
        if f == 1 or size % f:
            return self.sample(self.GAIN, e0, n1, texel, size, size)
        n = size // f + 2
        coarse = self.sample(self.GAIN, e0 - f * texel, n1 + f * texel, f * texel, n, n)
        fine = cv2.resize(coarse, (n * f, n * f), interpolation=cv2.INTER_LINEAR)
        out: F32 = np.ascontiguousarray(fine[f : f + size, f : f + size])
        return out
