"""Renders one frame of the test range through the pipeline's own camera model.

Flat ground ⇒ one homography per frame: the image is split into horizontal bands whose
ground sample distance calls for the same pyramid level, and each band is warped from a
mosaic of ground tiles (``ground``) with ``cv2.warpPerspective``. Beyond the usable range the
ground fades into haze and above the horizon into sky. Trucks' shadows are laid on the ground,
then buildings and trucks are drawn as boxes with a z-buffer (``solids``); camera effects
(``effects``) come last. Nothing here is random except the effects, drawn from the generator
passed in.

May import: numpy, OpenCV, the standard library, ``xunjian.core`` and sibling modules.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np
from numpy.random import Generator

from xunjian.core import camera
from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.datasets.synth import effects as fx
from xunjian.datasets.synth import geom, solids
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.ground import MAX_LEVEL, GroundTexture, texel_of
from xunjian.datasets.synth.textures import BASE_TEXEL_M, F32, U8
from xunjian.datasets.synth.view import View
from xunjian.datasets.synth.world import World

HAZE = np.array([206.0, 212.0, 218.0], np.float32)
ZENITH = np.array([118.0, 160.0, 214.0], np.float32)
VISIBILITY_M = 2500.0
_BAND_STEP_PX = 16
_SEEN_RANGE = 20.0


class Renderer:
    """Draws frames of one world; keeps that world's ground tiles cached between frames."""

    def __init__(
        self,
        world: World,
        *,
        max_range_m: float = 300.0,
        cache_mb: int = 768,
        cache_dir: Path | None = None,
    ) -> None:
        self.world = world
        self.max_range_m = max_range_m
        self.ground = GroundTexture(world, cache_mb=cache_mb, cache_dir=cache_dir)
        """Ground tiles; ``cache_dir`` keeps them on disk for later runs (``tilestore``)."""
        self.timings: dict[str, float] = {}
        """Seconds spent in each stage of the last frame (for ``xunjian synth bench-render``)."""

    def view(self, pose: CameraPose, k: CameraIntrinsics) -> View:
        return View.of(self.world, pose, k)

    def render(
        self,
        pose: CameraPose,
        k: CameraIntrinsics,
        t_s: float = 0.0,
        *,
        rng: Generator | None = None,
        effects: fx.Effects = fx.NO_EFFECTS,
    ) -> U8:
        """The frame (H, W, 3 RGB uint8) seen from ``pose`` at ``t_s`` s after the epoch."""
        clock = time.perf_counter
        t0 = clock()
        view = self.view(pose, k)
        img = np.empty((k.height, k.width, 3), np.uint8)
        self._ground(view, img)
        t1 = clock()
        self._sky(view, img)
        self._truck_shadows(view, img, t_s)
        zbuf = np.full((k.height, k.width), np.inf, np.float32)
        ids = np.full((k.height, k.width), -1, np.int32)
        solids.draw(view, self.standing(view, t_s), zbuf, ids, img)
        t2 = clock()
        if rng is not None and effects is not fx.NO_EFFECTS:
            img = fx.apply(img, effects, rng)
        t3 = clock()
        self.timings = {"ground": t1 - t0, "standing": t2 - t1, "effects": t3 - t2}
        return img

    # -- what is in view --------------------------------------------------------------------

    def footprint(self, view: View) -> F64:
        """The frame's ground polygon in world (E, N), clipped to the usable range."""
        fp = camera.footprint_enu(view.pose, view.k, self.max_range_m)
        if len(fp) == 0:
            return fp
        out: F64 = (view.cam_to_world_en @ np.column_stack([fp, np.ones(len(fp))]).T).T[:, :2]
        return out

    def standing(self, view: View, t_s: float, *, textured: bool = True) -> list[solids.Solid]:
        """Buildings and trucks that may show in the frame, as solids."""
        ground = self.ground if textured else None
        return solids.in_view(self.world, view, t_s, self.footprint(view), self.max_range_m, ground)

    # -- layers -----------------------------------------------------------------------------

    def _levels(self, view: View) -> list[tuple[int, int, int]]:
        """Bands (v0, v1, level) of rows that need the same pyramid level; sky rows left out."""
        k = view.k
        vs = np.append(np.arange(0, k.height, _BAND_STEP_PX, dtype=np.float64), k.height)
        us = np.linspace(0.0, k.width, 9)
        uu, vv = np.meshgrid(us, vs)
        base = np.stack([uu, vv], axis=-1)
        g0, ok0 = camera.pixel_to_ground_enu(view.pose, k, base, max_range_m=self.max_range_m * 1.2)
        g1, ok1 = camera.pixel_to_ground_enu(view.pose, k, base + np.array([1.0, 0.0]))
        g2, ok2 = camera.pixel_to_ground_enu(view.pose, k, base + np.array([0.0, 1.0]))
        ok = ok0 & ok1 & ok2
        d1, d2 = g1 - g0, g2 - g0
        area = np.abs(d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0])
        gsd = np.where(ok, np.sqrt(area), np.inf)
        row_gsd = gsd.min(axis=1)
        bands: list[tuple[int, int, int]] = []
        for i in range(len(vs) - 1):
            g = min(row_gsd[i], row_gsd[i + 1])
            if not math.isfinite(g):
                continue
            level = int(np.clip(math.floor(math.log2(max(g / BASE_TEXEL_M, 1.0))), 0, MAX_LEVEL))
            v0, v1 = int(vs[i]), int(vs[i + 1])
            if bands and bands[-1][2] == level and bands[-1][1] == v0:
                bands[-1] = (bands[-1][0], v1, level)
            else:
                bands.append((v0, v1, level))
        return bands

    def _ground(self, view: View, img: U8) -> None:
        k = view.k
        hom = view.ground_homography()
        covered = np.zeros(k.height, bool)
        for v0, v1, level in self._levels(view):
            region = np.array([[0.0, v0], [k.width, v0], [k.width, v1], [0.0, v1]], np.float64)
            fp = camera.footprint_enu(view.pose, k, self.max_range_m, region=region)
            if len(fp) < 3:
                continue
            pad = 2 * texel_of(level)
            e0, n0, e1, n1 = geom.bbox(self._to_world(view, fp))
            box = (e0 - pad, n0 - pad, e1 + pad, n1 + pad)
            # Tiles under every pixel of the band that lands in the box, beyond the usable range
            # too (hazed, but not always fully): what the warp samples never depends on what
            # earlier frames left in the ground's canvas.
            seen = camera.footprint_enu(view.pose, k, _SEEN_RANGE * self.max_range_m, region=region)
            mosaic, m = self.ground.mosaic(level, *box, within=self._to_world(view, seen))
            shift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5 - v0], [0.0, 0.0, 1.0]])
            warp = shift @ hom @ np.linalg.inv(m)
            cv2.warpPerspective(
                mosaic,
                warp,
                (k.width, v1 - v0),
                dst=img[v0:v1],
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=tuple(float(c) for c in HAZE),
            )
            covered[v0:v1] = True
        img[~covered] = HAZE.astype(np.uint8)

    @staticmethod
    def _to_world(view: View, fp: F64) -> F64:
        out: F64 = (view.cam_to_world_en @ np.column_stack([fp, np.ones(len(fp))]).T).T[:, :2]
        return out

    def _sky(self, view: View, img: U8) -> None:
        """Haze with distance, full haze beyond the usable range, sky above the horizon."""
        k = view.k
        if self._far_corner_m(view) < 0.5 * self.max_range_m:
            return  # nadir and low oblique views: no haze worth drawing
        sw, sh = 96, max(2, round(96 * k.height / k.width))
        u = (np.arange(sw) + 0.5) * k.width / sw
        v = (np.arange(sh) + 0.5) * k.height / sh
        rays = camera.pixel_rays(view.pose, k, np.stack(np.meshgrid(u, v), axis=-1))
        rz = rays[..., 2]
        norm = np.linalg.norm(rays, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(
                rz < 0, view.pose.height_m * np.hypot(rays[..., 0], rays[..., 1]) / -rz, np.inf
            )
        r = self.max_range_m
        ramp = np.clip((dist - 0.7 * r) / (0.3 * r), 0.0, 1.0)
        alpha = np.maximum(1.0 - np.exp(-dist / VISIBILITY_M), ramp * ramp * (3 - 2 * ramp))
        alpha = np.where(rz < 0, alpha, 1.0).astype(np.float32)
        if float(alpha.max()) < 2e-3:
            return
        elev = np.clip(np.arcsin(np.clip(rz / norm, -1, 1)) / 0.6, 0.0, 1.0)[..., None]
        colour = np.clip(HAZE * (1 - elev) + ZENITH * elev, 0, 255).astype(np.uint8)
        # Blended from the first row that needs it, in 8 bits (one OpenCV pass, no float copy
        # of the frame): a uint8 colour is within half a level of the float one.
        coarse_rows = np.flatnonzero(alpha.max(axis=1) > 1e-3)
        if len(coarse_rows) == 0:
            return
        r0 = max(0, math.floor((coarse_rows[0] - 1) * k.height / sh))
        size = (k.width, k.height)
        a_full = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)[r0:]
        c_full = cv2.resize(colour, size, interpolation=cv2.INTER_LINEAR)[r0:]
        img[r0:] = cv2.blendLinear(img[r0:], c_full, 1.0 - a_full, a_full)

    def _far_corner_m(self, view: View) -> float:
        k = view.k
        corners = np.array([[0.0, 0.0], [k.width, 0.0], [0.0, k.height], [k.width, k.height]])
        en, ok = camera.pixel_to_ground_enu(view.pose, k, corners)
        return float(np.max(np.hypot(en[:, 0], en[:, 1]))) if ok.all() else math.inf

    def _truck_shadows(self, view: View, img: U8, t_s: float) -> None:
        h, w = img.shape[:2]
        for t in self.world.targets:
            if not t.is_truck:
                continue
            poly = solids.truck_shadow(t, t_s, self.ground)
            uv = view.project_polygon(np.column_stack([poly, np.zeros(len(poly))]))
            if len(uv) < 3:
                continue
            uv = uv - 0.5
            x0, y0 = np.floor(uv.min(axis=0)).astype(int) - 2
            x1, y1 = np.ceil(uv.max(axis=0)).astype(int) + 3
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            pts = np.round((uv - [x0, y0]) * 16).astype(np.int32)
            cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, 4)
            part = img[y0:y1, x0:x1].astype(np.float32)
            shade: F32 = 1.0 - 0.5 * mask.astype(np.float32)[..., None] / 255.0
            img[y0:y1, x0:x1] = (part * shade).astype(np.uint8)
