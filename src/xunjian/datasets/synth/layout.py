"""Lays out a world from a seed: a road grid, pavements, parks, lots, buildings, trees, targets.

The grid is rotated by a seeded angle; two main roads cross at the anchor, so the central
``focus`` square (what the small flight covers) always holds an intersection, and most
targets are placed there, on and beside the roads. All randomness comes from one
``Generator(PCG64(seed))`` consumed in a fixed order.

May import: numpy, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import cv2
import numpy as np
from numpy.random import PCG64, Generator
from numpy.typing import NDArray

from xunjian.core.taxonomy import CLASSES
from xunjian.datasets.synth import geom
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.placement import Placer
from xunjian.datasets.synth.world import Area, Building, Changes, Road, Target, Tree, World

LANE_M = 3.5
ROOFS = ("concrete", "concrete", "concrete", "tile", "metal", "green")


def _roads(rng: Generator, size: float, angle: float) -> list[Road]:
    roads: list[Road] = []
    half = size * 0.75
    for family, heading in (("a", angle), ("b", angle + 90.0)):
        fwd, right = geom.heading_vectors(heading)
        offsets = [0.0]
        for sign in (1.0, -1.0):
            x = 0.0
            while True:
                x += sign * rng.uniform(85.0, 140.0)
                if abs(x) > size / 2 - 20.0:
                    break
                offsets.append(x)
        for k, off in enumerate(sorted(offsets)):
            main = off == 0.0
            t = np.linspace(-half, half, 13)
            bend = 0.0 if main else rng.uniform(-9.0, 9.0)
            lateral = off + bend * np.sin(np.pi * (t + half) / (2 * half) * rng.choice([1, 2]))
            pts = t[:, None] * fwd + lateral[:, None] * right
            lanes = 4 if main else 2
            roads.append(
                Road(
                    id=f"R{family}{k}",
                    centerline=geom.to_tuple(pts),
                    width_m=lanes * LANE_M,
                    lanes=lanes,
                    sidewalk_m=4.5 if main else 3.0,
                    main=main,
                )
            )
    return roads


class _Occupancy:
    """A 1 m raster of what is taken (roads with pavements, areas, buildings) for fast tests."""

    def __init__(self, size: float, roads: list[Road]) -> None:
        self.size = size
        self.n = int(size) + 1
        self.grid = np.zeros((self.n, self.n), np.uint8)
        self.carriageway = np.zeros_like(self.grid)
        for r in roads:
            line = self._px(geom.as_points(r.centerline))
            width = r.width_m + 2 * r.sidewalk_m
            cv2.polylines(self.grid, [line], False, 1, math.ceil(width) + 4)
            cv2.polylines(self.carriageway, [line], False, 1, math.ceil(r.width_m) + 1)

    def _px(self, pts: F64) -> NDArray[np.int32]:
        # Row 0 is the north edge: (E, N) → (col, row).
        col = pts[:, 0] + self.size / 2
        row = self.size / 2 - pts[:, 1]
        return np.round(np.column_stack([col, row])).astype(np.int32)

    def free(self, poly: F64) -> bool:
        px = self._px(poly)
        if px.min() < 0 or px.max() >= self.n:
            return False
        x0, y0 = px.min(axis=0)
        x1, y1 = px.max(axis=0) + 1
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [px - [x0, y0]], 1)
        return not np.any(mask & self.grid[y0:y1, x0:x1])

    def take(self, poly: F64) -> None:
        cv2.fillPoly(self.grid, [self._px(poly)], 1)

    def on_carriageway(self, p: F64) -> bool:
        c, r = self._px(p[None])[0]
        return 0 <= r < self.n and 0 <= c < self.n and bool(self.carriageway[r, c])


def _blocks(
    rng: Generator, size: float, angle: float, occ: _Occupancy, focus: float
) -> tuple[list[Area], list[Building]]:
    def place(length: float, width: float, inside: float, gap: float) -> F64 | None:
        for _ in range(12):
            c = rng.uniform(-inside, inside, 2)
            padded = geom.local_to_world(geom.rect(length + 2 * gap, width + 2 * gap), c, angle)
            if occ.free(padded):
                poly = geom.local_to_world(geom.rect(length, width), c, angle)
                occ.take(padded)
                return poly
        return None

    areas: list[Area] = []
    # Lots (building sites, bare soil) and a plaza near the centre first, then parks.
    for kind, count, lo, hi, inside in (
        ("lot", 2, 18.0, 32.0, focus * 0.7),
        ("plaza", 1, 20.0, 35.0, focus * 0.8),
        ("lot", 2, 20.0, 40.0, size / 2),
        ("green", 5, 30.0, 70.0, size / 2),
        ("plaza", 2, 20.0, 40.0, size / 2),
    ):
        for _ in range(count):
            poly = place(rng.uniform(lo, hi), rng.uniform(lo, hi) * 0.8, inside, 1.0)
            if poly is not None:
                areas.append(Area(f"A{len(areas):03d}", kind, geom.to_tuple(poly)))
    buildings: list[Building] = []
    for _ in range(450):
        length, width = rng.uniform(14.0, 42.0), rng.uniform(12.0, 28.0)
        poly = place(length, width, size / 2, 2.0)
        if poly is None:
            continue
        near = bool(np.all(np.abs(poly) < focus / 2 + 30.0))
        height = rng.uniform(6.0, 12.0) if near else rng.uniform(9.0, 45.0)
        buildings.append(
            Building(
                id=f"B{len(buildings):03d}",
                footprint=geom.to_tuple(poly),
                height_m=round(float(height), 2),
                roof=str(ROOFS[int(rng.integers(len(ROOFS)))]),
                facade=int(rng.integers(4)),
            )
        )
    return areas, buildings


def _trees(rng: Generator, roads: list[Road], areas: list[Area], occ: _Occupancy) -> list[Tree]:
    trees: list[Tree] = []
    for r in roads:
        for side in (-1.0, 1.0):
            line = geom.offset_polyline(r.centerline, side * (r.width_m / 2 + r.sidewalk_m - 1.0))
            cum = geom.cumulative_length(line)
            s = rng.uniform(0.0, 8.0)
            while s < cum[-1]:
                p, _ = geom.point_at(line, s)
                if not occ.on_carriageway(p) and rng.random() < 0.8:
                    trees.append(
                        Tree(geom.to_tuple(p[None])[0], round(float(rng.uniform(1.6, 2.8)), 2))
                    )
                s += rng.uniform(7.0, 11.0)
    for a in areas:
        if a.kind != "green":
            continue
        x0, y0, x1, y1 = geom.bbox(a.polygon)
        for _ in range(int((x1 - x0) * (y1 - y0) / 120.0)):
            p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if geom.point_in_polygon(p[None], a.polygon)[0]:
                trees.append(
                    Tree(geom.to_tuple(p[None])[0], round(float(rng.uniform(2.0, 4.5)), 2))
                )
    return trees


def generate_world(
    seed: int,
    *,
    anchor: tuple[float, float],
    size_m: float,
    per_class: int,
    focus_m: float,
    ground_alt_m: float,
    epoch: str,
) -> World:
    rng = Generator(PCG64(seed))
    angle = float(rng.uniform(-25.0, 25.0))
    roads = _roads(rng, size_m, angle)
    occ = _Occupancy(size_m, roads)
    areas, buildings = _blocks(rng, size_m, angle, occ, focus_m)
    trees = _trees(rng, roads, areas, occ)
    placer = Placer(roads, areas, trees)
    names = [c.name for c in CLASSES]
    # Focus first (so small flights always see every class), then the rest of the world.
    order = [n for n in names for _ in range(per_class)]
    targets: list[Target] = []
    for inside in (focus_m / 2, size_m / 2 - 15.0):
        for cls in order:
            t = placer.place(rng, cls, inside, f"T{len(targets) + 1:04d}", 0)
            if t is not None:
                targets.append(t)
    return World(
        seed=seed,
        anchor_lat=anchor[0],
        anchor_lon=anchor[1],
        ground_alt_m=ground_alt_m,
        size_m=size_m,
        epoch=epoch,
        sun_azimuth_deg=round(float(rng.uniform(110.0, 250.0)), 2),
        sun_elevation_deg=round(float(rng.uniform(40.0, 65.0)), 2),
        focus=(-focus_m / 2, -focus_m / 2, focus_m / 2, focus_m / 2),
        roads=tuple(roads),
        buildings=tuple(buildings),
        areas=tuple(areas),
        trees=tuple(trees),
        targets=tuple(targets),
        next_id=len(targets) + 1,
    )


def later_day(
    world: World,
    seed: int,
    *,
    repair_fraction: float,
    new_count: int,
    truck_gone_fraction: float,
    days: int,
) -> World:
    rng = Generator(PCG64([seed, world.seed, world.day + 1]))
    static = [t for t in world.targets if not t.is_truck]
    trucks = [t for t in world.targets if t.is_truck]
    n_fix = round(repair_fraction * len(static))
    fixed = (
        {static[int(i)].id for i in rng.choice(len(static), n_fix, replace=False)}
        if n_fix
        else set()
    )
    n_gone = round(truck_gone_fraction * len(trucks))
    gone = (
        {trucks[int(i)].id for i in rng.choice(len(trucks), n_gone, replace=False)}
        if n_gone
        else set()
    )
    kept = [t for t in world.targets if t.id not in fixed | gone]
    placer = Placer(world.roads, world.areas, world.trees, existing=kept)
    targets: list[Target] = []
    moved: list[str] = []
    for t in kept:
        if t.is_truck:  # a truck that stays is elsewhere on another day
            again = placer.place(rng, t.cls, world.focus[2], t.id, t.day, like=t)
            if again is not None:
                targets.append(again)
                moved.append(t.id)
                continue
        targets.append(t)
    new_ids: list[str] = []
    next_id = world.next_id
    names = [c.name for c in CLASSES]
    for k in range(new_count):
        cls = names[int(rng.integers(len(names)))]
        inside = world.focus[2] if k % 2 == 0 else world.size_m / 2 - 15.0
        t_new = placer.place(rng, cls, inside, f"T{next_id:04d}", world.day + 1)
        if t_new is not None:
            targets.append(t_new)
            new_ids.append(t_new.id)
            next_id += 1
    # A repaired problem leaves a patch of fresh asphalt or a swept surface.
    patches = [
        Area(
            f"P{t.id}",
            "patch" if not t.cls.endswith(("pile", "waste")) else "swept",
            geom.to_tuple(_patch_polygon(t, rng)),
        )
        for t in static
        if t.id in fixed
    ]
    changes = Changes(
        previous_day=world.day,
        repaired=tuple(sorted(fixed)),
        gone=tuple(sorted(gone)),
        new=tuple(new_ids),
        moved=tuple(moved),
        unchanged=tuple(t.id for t in targets if t.id not in set(new_ids) | set(moved)),
    )
    epoch = world.epoch_time + timedelta(days=days)
    return replace(
        world,
        day=world.day + 1,
        epoch=epoch.isoformat(),
        areas=world.areas + tuple(patches),
        targets=tuple(targets),
        next_id=next_id,
        changes=changes,
    )


def _patch_polygon(t: Target, rng: Generator) -> F64:
    x0, y0, x1, y1 = geom.bbox(t.outline)
    pad = float(rng.uniform(0.15, 0.4))
    local = geom.rect(x1 - x0 + 2 * pad, y1 - y0 + 2 * pad) + np.array(
        [(x0 + x1) / 2, (y0 + y1) / 2]
    )
    return geom.local_to_world(local, t.center, t.heading_deg)
