"""Road surfaces and markings as polygons, worked out once per world for the tile renderer.

Carriageways and pavements are unions of segment quads and joint discs; markings (centre
lines, lane dividers, edge lines, stop lines, zebra crossings) are small quads with a paint
colour. Markings stop short of intersections, where the zebra crossings are, as on real roads.
Pure function of the road geometry: no randomness.

May import: numpy, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from xunjian.datasets.synth import geom
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.world import Road

WHITE, YELLOW = 0, 1
PAINT = {WHITE: (236, 236, 230), YELLOW: (232, 186, 42)}
_STEP = 0.5
_LINE_W = 0.15


@dataclass
class Polys:
    """Polygons with their bounding boxes, for fast culling against a tile."""

    polys: list[F64]
    boxes: F64  # (K, 4): e0, n0, e1, n1
    kinds: list[int]
    flat: F64 = field(default_factory=lambda: np.zeros((0, 2)))
    """All vertices, polygon after polygon (for converting many polygons at once)."""
    starts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(1, np.int64))

    @classmethod
    def of(cls, polys: list[F64], kinds: list[int]) -> Polys:
        boxes = np.array([[*p.min(axis=0), *p.max(axis=0)] for p in polys]).reshape(-1, 4)
        flat = np.concatenate(polys).reshape(-1, 2) if polys else np.zeros((0, 2))
        starts = np.concatenate([[0], np.cumsum([len(p) for p in polys])]).astype(np.int64)
        return cls(polys, boxes, kinds, flat, starts)

    def pixels(
        self,
        ids: list[int],
        e0: float,
        n1: float,
        texel: float,
        shift: int,
        offset: F64 | None = None,
    ) -> list[NDArray[np.int32]]:
        """Polygons ``ids``, moved by ``offset`` (E, N), as fixed-point pixels (``shift``
        fractional bits) of a grid whose pixel (0, 0) is centred at (e0 + ½t, n1 − ½t); all
        vertices in one pass."""
        if not ids:
            return []
        sel = np.asarray(ids, np.int64)
        lens = self.starts[sel + 1] - self.starts[sel]
        first = np.repeat(self.starts[sel] - np.cumsum(lens) + lens, lens)
        pts = self.flat[first + np.arange(int(lens.sum()))]
        if offset is not None:
            pts = pts + offset
        xy = np.column_stack([(pts[:, 0] - e0) / texel - 0.5, (n1 - pts[:, 1]) / texel - 0.5])
        q = np.round(xy * (1 << shift)).astype(np.int32)
        return np.split(q, np.cumsum(lens)[:-1])

    def within(self, e0: float, n0: float, e1: float, n1: float) -> list[int]:
        b = self.boxes
        hit = (b[:, 2] >= e0) & (b[:, 0] <= e1) & (b[:, 3] >= n0) & (b[:, 1] <= n1)
        return [int(i) for i in np.flatnonzero(hit)]


def buffered(line: F64, half_width: float) -> list[F64]:
    """Quads along each segment plus a disc at each inner vertex: the line widened."""
    out = []
    for p, q in itertools.pairwise(line):
        d = q - p
        n = np.array([-d[1], d[0]]) / max(float(np.hypot(*d)), 1e-9) * half_width
        out.append(np.array([p + n, q + n, q - n, p - n]))
    ang = np.linspace(0.0, 2 * np.pi, 20, endpoint=False)
    disc = np.column_stack([np.cos(ang), np.sin(ang)]) * half_width
    out.extend(v + disc for v in line[1:-1])
    return out


def _stations(road: Road) -> tuple[F64, F64, F64]:
    """Samples along a road: points, tangents (unit) and right normals."""
    line = geom.as_points(road.centerline)
    cum = geom.cumulative_length(line)
    s = np.arange(0.0, cum[-1], _STEP)
    pts = np.column_stack([np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])])
    tang = np.gradient(pts, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    right = np.column_stack([tang[:, 1], -tang[:, 0]])
    return pts, tang, right


def _strip(pts: F64, right: F64, offset: float, width: float, on: np.ndarray) -> list[F64]:
    """Polygons of a painted line at lateral ``offset``, one per run of samples where ``on``."""
    centre = pts + right * offset
    half = right * (width / 2)
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < 2:
            continue
        c, h = centre[start:stop], half[start:stop]
        out.append(np.concatenate([c + h, (c - h)[::-1]]))
    return out


def markings(roads: tuple[Road, ...]) -> Polys:
    polys: list[F64] = []
    kinds: list[int] = []
    samples = [_stations(r) for r in roads]
    for i, road in enumerate(roads):
        pts, _, right = samples[i]
        s = np.arange(len(pts)) * _STEP
        clear = np.ones(len(pts), bool)
        crossings: list[tuple[float, float]] = []  # (s at the crossing, other half width)
        for j, other in enumerate(roads):
            if j == i:
                continue
            d = geom.distance_to_polyline(pts, other.centerline)
            clear &= d > other.width_m / 2 + 6.5
            k = int(np.argmin(d))
            if d[k] < 1.0:
                crossings.append((float(s[k]), other.width_m / 2))
        half = road.width_m / 2
        lines: list[tuple[float, int, float, float]] = []  # offset, colour, dash, gap
        if road.lanes >= 4:
            lines += [(-0.15, YELLOW, 0, 0), (0.15, YELLOW, 0, 0)]
            for k in range(1, road.lanes // 2):
                lines += [(k * 3.5, WHITE, 6.0, 9.0), (-k * 3.5, WHITE, 6.0, 9.0)]
        else:
            lines += [(0.0, YELLOW, 4.0, 6.0)]
        lines += [(half - 0.35, WHITE, 0, 0), (-(half - 0.35), WHITE, 0, 0)]
        for offset, colour, dash, gap in lines:
            on = clear if dash == 0 else clear & ((s % (dash + gap)) < dash)
            quads = _strip(pts, right, offset, _LINE_W, on)
            polys += quads
            kinds += [colour] * len(quads)
        for s_x, other_half in crossings:
            for sign in (-1.0, 1.0):
                near = other_half + 1.0
                pos, heading = geom.point_at(road.centerline, s_x + sign * (near + 2.0))
                # Zebra: stripes 0.45 m wide, 4 m long along the road, 1.05 m apart.
                for b in np.arange(-half + 0.6, half - 0.5, 1.05):
                    local = geom.rect(4.0, 0.45) + np.array([0.0, b + 0.225])
                    polys.append(geom.local_to_world(local, pos, heading))
                    kinds.append(WHITE)
                # Stop line across the lanes that approach the crossing.
                stop, _ = geom.point_at(road.centerline, s_x + sign * (near + 4.6))
                side = -sign  # traffic keeps right: approaching lanes lie on this side
                local = geom.rect(0.3, half) + np.array([0.0, side * half / 2])
                polys.append(geom.local_to_world(local, stop, heading))
                kinds.append(WHITE)
    return Polys.of(polys, kinds)


def surfaces(roads: tuple[Road, ...]) -> tuple[Polys, Polys]:
    """(pavement polygons, carriageway polygons); kind 1 marks main roads."""
    walk: list[F64] = []
    walk_kind: list[int] = []
    carriage: list[F64] = []
    carriage_kind: list[int] = []
    for r in roads:
        line = geom.as_points(r.centerline)
        w = buffered(line, r.width_m / 2 + r.sidewalk_m)
        c = buffered(line, r.width_m / 2)
        walk += w
        walk_kind += [int(r.main)] * len(w)
        carriage += c
        carriage_kind += [int(r.main)] * len(c)
    return Polys.of(walk, walk_kind), Polys.of(carriage, carriage_kind)
