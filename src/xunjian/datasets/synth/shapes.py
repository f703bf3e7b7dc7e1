"""What each target class is made of, as geometry in the target's local metres.

``build(cls, length, width, look_seed)`` returns a :class:`Shape`: strokes (crack lines),
blobs (polygons with a material and a height for shading) and an outline — the convex hull of
everything drawn, which is what the ground truth boxes are computed from. The same arguments
always give the same shape; the raster look (``sprites``) is drawn from it.

Local frame: ``a`` along the target's heading (for road damage: along the lane), ``b`` to its
right, metres, origin at the target's centre.

May import: numpy, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.random import PCG64, Generator

from xunjian.datasets.synth import geom
from xunjian.datasets.synth.geom import F64


@dataclass
class Stroke:
    """A crack line: polyline (M, 2) and its width in metres."""

    points: F64
    width_m: float


@dataclass
class Blob:
    """A filled polygon: ``material`` names its look, ``height_m`` its top (for shadows)."""

    polygon: F64
    material: str
    color: tuple[int, int, int]
    height_m: float = 0.0


@dataclass
class Shape:
    cls: str
    strokes: list[Stroke] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    outline: F64 = field(default_factory=lambda: np.zeros((0, 2)))


def rng_for(look_seed: int, stream: int = 0) -> Generator:
    return Generator(PCG64([look_seed, stream]))


def _wobbly(rng: Generator, n: int, amp: float, smooth: int = 3) -> F64:
    """A smooth random walk of ``n`` values, scaled to about ``amp``."""
    steps = rng.normal(0.0, 1.0, n + 2 * smooth)
    kernel = np.ones(2 * smooth + 1) / (2 * smooth + 1)
    walk = np.convolve(np.cumsum(steps), kernel, mode="valid")[:n]
    walk -= np.linspace(walk[0], walk[-1], n) if n > 1 else walk
    peak = float(np.max(np.abs(walk))) or 1.0
    out: F64 = walk / peak * amp
    return out


def _radial_polygon(rng: Generator, rx: float, ry: float, n: int, rough: float) -> F64:
    """An irregular closed polygon around the origin with radii about (rx, ry)."""
    ang = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 6):
        r += rough / k * rng.normal() * np.cos(k * ang + rng.uniform(0, 2 * math.pi))
    r *= 1.0 + rng.normal(0.0, rough * 0.15, n)
    r = np.clip(r, 0.45, 1.4)
    return np.column_stack([rx * r * np.cos(ang), ry * r * np.sin(ang)])


def _crack_line(rng: Generator, start: F64, end: F64, width: float, meander: float) -> Stroke:
    length = float(np.hypot(*(end - start)))
    n = max(6, int(length / 0.08))
    t = np.linspace(0.0, 1.0, n)
    direction = (end - start) / max(length, 1e-9)
    normal = np.array([-direction[1], direction[0]])
    pts = start + t[:, None] * (end - start) + _wobbly(rng, n, meander, 2)[:, None] * normal
    pts += rng.normal(0.0, meander * 0.08, pts.shape)  # small kinks of a real crack
    return Stroke(pts, width)


def _branches(
    rng: Generator, main: Stroke, count: int, length: float, width: float
) -> list[Stroke]:
    out = []
    for _ in range(count):
        i = int(rng.integers(2, len(main.points) - 2))
        p = main.points[i]
        tang = main.points[i + 1] - main.points[i - 1]
        ang = math.atan2(tang[1], tang[0]) + rng.choice([-1, 1]) * rng.uniform(0.4, 1.1)
        end = p + length * rng.uniform(0.4, 1.0) * np.array([math.cos(ang), math.sin(ang)])
        out.append(_crack_line(rng, p, end, width * rng.uniform(0.5, 0.8), length * 0.08))
    return out


def _cracks(cls: str, length: float, width: float, rng: Generator) -> Shape:
    w = rng.uniform(0.03, 0.055)  # open cracks a few centimetres wide: visible at drone GSD
    shape = Shape(cls)
    if cls == "longitudinal_crack":
        main = _crack_line(rng, np.array([-length / 2, 0.0]), np.array([length / 2, 0.0]), w, 0.12)
        shape.strokes = [main, *_branches(rng, main, int(rng.integers(1, 4)), 0.5, w)]
    elif cls == "transverse_crack":
        main = _crack_line(rng, np.array([0.0, -width / 2]), np.array([0.0, width / 2]), w, 0.1)
        shape.strokes = [main, *_branches(rng, main, int(rng.integers(1, 3)), 0.4, w)]
    else:  # alligator: a mesh of polygonal cells inside an irregular patch
        patch = _radial_polygon(rng, length / 2, width / 2, 40, 0.35)
        cell = rng.uniform(0.16, 0.26)
        na, nb = int(length / cell) + 3, int(width / cell) + 3
        ga = (np.arange(na) - (na - 1) / 2) * cell
        gb = (np.arange(nb) - (nb - 1) / 2) * cell
        nodes = np.stack(np.meshgrid(ga, gb, indexing="ij"), axis=-1)
        nodes += rng.uniform(-0.35, 0.35, nodes.shape) * cell
        inside = geom.point_in_polygon(nodes.reshape(-1, 2), patch).reshape(na, nb)
        for i in range(na):
            for j in range(nb):
                for di, dj in ((1, 0), (0, 1)):
                    i2, j2 = i + di, j + dj
                    inner = i2 < na and j2 < nb and inside[i, j] and inside[i2, j2]
                    if inner and rng.random() < 0.9:
                        s = _crack_line(rng, nodes[i, j], nodes[i2, j2], w * 0.8, cell * 0.1)
                        shape.strokes.append(s)
        shape.blobs = [Blob(patch * 0.95, "weathered", (0, 0, 0))]
    pts = np.concatenate([s.points for s in shape.strokes] + [b.polygon for b in shape.blobs])
    pad = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]]) * (w * 0.7)
    shape.outline = geom.convex_hull((pts[:, None, :] + pad[None]).reshape(-1, 2))
    return shape


def _pothole(length: float, width: float, rng: Generator) -> Shape:
    hole = _radial_polygon(rng, length / 2 * 0.82, width / 2 * 0.82, 48, 0.45)
    rim = hole * 1.18 + rng.normal(0.0, 0.015, hole.shape)
    shape = Shape(
        "pothole", blobs=[Blob(rim, "rim", (128, 122, 114)), Blob(hole, "hole", (40, 37, 34))]
    )
    shape.outline = geom.convex_hull(rim)
    return shape


# Mostly black and dark-grey bin bags, some blue/green/white, a few printed carrier bags.
_BAG_COLORS = [
    (22, 22, 24),
    (22, 22, 24),
    (30, 32, 36),
    (48, 50, 54),
    (40, 72, 140),
    (44, 110, 62),
    (226, 226, 220),
    (200, 200, 196),
    (170, 60, 50),
]
_BOX_COLORS = [(170, 130, 85), (190, 150, 100), (150, 110, 70), (215, 205, 185)]
_BULKY_COLORS = [(205, 195, 175), (120, 88, 60), (150, 150, 148), (95, 70, 50), (180, 170, 150)]
_LITTER_COLORS = [(235, 235, 230), (210, 200, 170), (60, 120, 190), (200, 60, 50), (90, 150, 70)]
_RUBBLE_COLORS = [
    (150, 145, 138),
    (170, 165, 155),
    (130, 110, 95),
    (165, 85, 60),
    (185, 180, 170),
    (120, 115, 110),
]


def _garbage(length: float, width: float, rng: Generator) -> Shape:
    shape = Shape("garbage_pile")
    base = _radial_polygon(rng, length / 2 * 0.8, width / 2 * 0.8, 36, 0.5)
    shape.blobs.append(Blob(base, "litter", (120, 110, 95), 0.02))
    count = int(np.clip(length * width * 5.0, 8, 45))
    for _ in range(count):
        c = np.array([rng.normal(0, length / 5), rng.normal(0, width / 5)])
        c = np.clip(c, [-length / 2 * 0.8, -width / 2 * 0.8], [length / 2 * 0.8, width / 2 * 0.8])
        kind = rng.choice(["bag", "bag", "bag", "box", "bulky"])
        if kind == "bag":
            r = rng.uniform(0.18, 0.38)
            poly = _radial_polygon(rng, r, r * rng.uniform(0.7, 1.0), 16, 0.3)
            color = _BAG_COLORS[int(rng.integers(len(_BAG_COLORS)))]
            height = r * 1.2
        elif kind == "box":
            poly = geom.rect(rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.5))
            color, height = _BOX_COLORS[int(rng.integers(len(_BOX_COLORS)))], 0.3
        else:  # a mattress, board or piece of furniture
            poly = geom.rect(rng.uniform(0.8, 1.8), rng.uniform(0.5, 0.9))
            color, height = _BULKY_COLORS[int(rng.integers(len(_BULKY_COLORS)))], 0.25
        rot = geom.local_to_world(poly, (0.0, 0.0), float(rng.uniform(0, 360)))
        shape.blobs.append(Blob(rot + c, str(kind), color, height))
    for _ in range(int(count * 1.5)):  # scattered litter: paper, bottles, cups
        c = geom.as_points(base[int(rng.integers(len(base)))] * rng.uniform(0.2, 0.95))[0]
        bit = geom.rect(rng.uniform(0.05, 0.18), rng.uniform(0.04, 0.1))
        bit = geom.local_to_world(bit, (0.0, 0.0), float(rng.uniform(0, 360))) + c
        colour = _LITTER_COLORS[int(rng.integers(len(_LITTER_COLORS)))]
        shape.blobs.append(Blob(bit, "litter_bit", colour, 0.02))
    shape.outline = geom.convex_hull(np.concatenate([b.polygon for b in shape.blobs]))
    return shape


def _rubble(length: float, width: float, rng: Generator) -> Shape:
    shape = Shape("construction_waste")
    heap = _radial_polygon(rng, length / 2 * 0.9, width / 2 * 0.9, 48, 0.35)
    shape.blobs.append(Blob(heap, "heap", (128, 118, 104), min(length, width) * 0.22))
    count = int(np.clip(length * width * 3.0, 20, 140))
    for _ in range(count):
        c = np.array(
            [rng.uniform(-0.5, 0.5) * length * 0.85, rng.uniform(-0.5, 0.5) * width * 0.85]
        )
        if not geom.point_in_polygon(c[None], heap * 0.95)[0]:
            continue
        r = rng.uniform(0.08, 0.35)
        poly = _radial_polygon(rng, r, r * rng.uniform(0.5, 1.0), 6, 0.6)
        color = _RUBBLE_COLORS[int(rng.integers(len(_RUBBLE_COLORS)))]
        shape.blobs.append(Blob(poly + c, "chunk", color, 0.0))
    shape.outline = geom.convex_hull(heap)
    return shape


TRUCK_CAB_M = 2.3
TRUCK_CAB_HEIGHT_M = 3.0
_TRUCK_PAINT = [(235, 190, 30), (40, 110, 190), (40, 150, 80), (225, 225, 220), (200, 60, 40)]
_TARP = [(40, 120, 60), (30, 70, 150), (60, 60, 60), (20, 100, 50)]
_LOAD = [(120, 90, 60), (140, 105, 70), (125, 120, 110), (105, 80, 55)]


def _truck(cls: str, length: float, width: float, rng: Generator) -> Shape:
    shape = Shape(cls)
    half_l, half_w = length / 2, width / 2
    paint = _TRUCK_PAINT[int(rng.integers(len(_TRUCK_PAINT)))]
    cab = geom.rect(TRUCK_CAB_M, width * 0.96) + np.array([half_l - TRUCK_CAB_M / 2, 0.0])
    body_len = length - TRUCK_CAB_M - 0.3
    body_center = np.array([-half_l + body_len / 2, 0.0])
    body = geom.rect(body_len, width) + body_center
    inner = geom.rect(body_len - 0.35, width - 0.35) + body_center
    shape.blobs = [
        Blob(cab, "cab", paint, TRUCK_CAB_HEIGHT_M),
        Blob(body, "body", paint, 0.0),
    ]
    if cls == "spoil_truck":
        tarp = _TARP[int(rng.integers(len(_TARP)))]
        shape.blobs.append(Blob(inner, "tarp", tarp, 0.0))
    else:
        load = _LOAD[int(rng.integers(len(_LOAD)))]
        shape.blobs.append(Blob(inner, "load", load, 0.0))
    shape.outline = geom.rect(length, width) if half_w > 0 else cab
    return shape


def build(cls: str, length: float, width: float, look_seed: int) -> Shape:
    """The geometry of one target; the same arguments give the same shape."""
    rng = rng_for(look_seed)
    if cls.endswith("crack"):
        return _cracks(cls, length, width, rng)
    if cls == "pothole":
        return _pothole(length, width, rng)
    if cls == "garbage_pile":
        return _garbage(length, width, rng)
    if cls == "construction_waste":
        return _rubble(length, width, rng)
    if cls in ("spoil_truck", "spoil_truck_uncovered"):
        return _truck(cls, length, width, rng)
    raise KeyError(f"no shape for class {cls!r}")
