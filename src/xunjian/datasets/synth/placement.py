"""Where targets go: road damage in the lanes, dumping on pavements and lots, trucks on roads.

:class:`Placer` knows the roads, areas, trees and what is already placed; ``place`` draws a
target of one class at a free spot within a square around the anchor, or returns None after a
bounded number of tries. Sizes per class follow what is seen in real surveys.

May import: numpy, the standard library and sibling modules of ``synth``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.random import Generator

from xunjian.datasets.synth import geom, shapes
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.world import Area, Road, Route, Target, Tree

LANE_M = 3.5
_TRIES = 80


def _size(rng: Generator, cls: str) -> tuple[float, float, float]:
    """Nominal (length along, width across, height) in metres."""
    u = rng.uniform
    return {
        "longitudinal_crack": (u(2.0, 5.5), 0.4, 0.0),
        "transverse_crack": (0.4, u(2.2, 3.3), 0.0),
        "alligator_crack": (u(1.6, 3.4), u(1.3, 2.4), 0.0),
        "pothole": (u(0.55, 1.4), u(0.5, 1.1), 0.0),
        "garbage_pile": (u(1.4, 3.2), u(1.2, 2.4), 0.0),
        "construction_waste": (u(3.0, 6.5), u(2.5, 4.5), 0.0),
        "spoil_truck": (u(7.8, 9.4), u(2.45, 2.55), u(3.3, 3.6)),
        "spoil_truck_uncovered": (u(7.8, 9.4), u(2.45, 2.55), u(3.3, 3.6)),
    }[cls]


class Placer:
    """Places targets without overlaps, under no tree, where each class belongs."""

    def __init__(
        self,
        roads: Sequence[Road],
        areas: Sequence[Area],
        trees: Sequence[Tree],
        existing: Sequence[Target] = (),
    ) -> None:
        self.roads = list(roads)
        self.lines = [geom.as_points(r.centerline) for r in roads]
        self.areas = [a for a in areas if a.kind in ("lot", "plaza")]
        self.trees = np.array([[*t.center, t.radius_m] for t in trees]).reshape(-1, 3)
        self.discs: list[tuple[float, float, float]] = [
            (*t.center, self._radius(t)) for t in existing if t.route is None
        ]
        self._stations: dict[float, F64] = {}

    @staticmethod
    def _radius(t: Target) -> float:
        o = geom.as_points(t.outline)
        return float(np.max(np.hypot(o[:, 0], o[:, 1])))

    def _stations_inside(self, half: float) -> F64:
        """(road index, s) every metre along the roads, within the square of half-size ``half``."""
        if half not in self._stations:
            rows = []
            for i, line in enumerate(self.lines):
                cum = geom.cumulative_length(line)
                s = np.arange(0.0, cum[-1], 1.0)
                pts = np.column_stack(
                    [np.interp(s, cum, line[:, 0]), np.interp(s, cum, line[:, 1])]
                )
                ok = np.all(np.abs(pts) <= half, axis=1)
                rows.append(np.column_stack([np.full(ok.sum(), i), s[ok]]))
            self._stations[half] = np.concatenate(rows) if rows else np.zeros((0, 2))
        return self._stations[half]

    def _free(self, center: F64, radius: float, road_index: int | None, kind: str) -> bool:
        for e, n, r in self.discs:
            if np.hypot(center[0] - e, center[1] - n) < r + radius + 0.5:
                return False
        if len(self.trees) and np.any(
            np.hypot(*(self.trees[:, :2] - center).T) < self.trees[:, 2] + radius * 0.7
        ):
            return False
        for j, (road, line) in enumerate(zip(self.roads, self.lines, strict=True)):
            if j == road_index:
                continue
            d = float(geom.distance_to_polyline(center[None], line)[0])
            reach = road.width_m / 2 + (road.sidewalk_m if kind != "damage" else 2.0)
            if d < reach + radius:
                return False
        return True

    def place(
        self,
        rng: Generator,
        cls: str,
        half: float,
        target_id: str,
        day: int,
        like: Target | None = None,
    ) -> Target | None:
        """A new target of ``cls`` centred within |E|, |N| ≤ ``half``, or None if none fits."""
        length, width, height = (round(float(v), 3) for v in _size(rng, cls))
        look = int(rng.integers(2**31))
        if like is not None:
            length, width, height, look = like.length_m, like.width_m, like.height_m, like.look_seed
        shape = shapes.build(cls, length, width, look)
        outline = shape.outline
        radius = float(np.max(np.hypot(outline[:, 0], outline[:, 1])))
        stations = self._stations_inside(half)
        truck = cls.startswith("spoil_truck")
        moving = truck and rng.random() < 0.35
        for _ in range(_TRIES):
            spot = self._spot(rng, cls, stations, half)
            if spot is None:
                return None
            center, heading, road_index, lot = spot
            if np.any(np.abs(center) > half):
                continue
            kind = "damage" if cls.endswith(("crack", "pothole")) or truck else "side"
            if not moving and not self._free(center, radius, None if lot else road_index, kind):
                continue
            route = None
            if moving and road_index is not None:
                road = self.roads[road_index]
                lane = LANE_M * (0.5 + int(rng.integers(road.lanes // 2)))
                cum = geom.cumulative_length(self.lines[road_index])
                start = _station_of(self.lines[road_index], cum, center)
                forward = bool(rng.random() < 0.5)
                total = float(cum[-1])
                route = Route(
                    path=road.centerline,
                    lane_offset_m=lane,
                    start_m=round(start if forward else 2 * total - start, 3),
                    speed_mps=round(float(rng.uniform(6.0, 11.0)), 3),
                )
            target = Target(
                id=target_id,
                cls=cls,
                center=geom.to_tuple(center[None])[0],
                heading_deg=round(heading, 3),
                length_m=length,
                width_m=width,
                height_m=height,
                look_seed=look,
                outline=geom.to_tuple(outline, 4),
                route=route,
                day=day,
            )
            if route is not None:
                c, h = target.placement_at(0.0)
                target = replace(target, center=c, heading_deg=round(h, 3))
            else:
                self.discs.append((float(center[0]), float(center[1]), radius))
            return target
        return None

    def _spot(
        self, rng: Generator, cls: str, stations: F64, half: float
    ) -> tuple[F64, float, int | None, bool] | None:
        """A candidate (centre, heading, road index or None, in a lot?)."""
        lots = [a for a in self.areas if np.all(np.abs(geom.as_points(a.polygon)) <= half + 5.0)]
        if cls in ("garbage_pile", "construction_waste") and lots and rng.random() < 0.35:
            a = lots[int(rng.integers(len(lots)))]
            x0, y0, x1, y1 = geom.bbox(a.polygon)
            c = np.array([rng.uniform(x0 + 3, x1 - 3), rng.uniform(y0 + 3, y1 - 3)])
            return c, float(rng.uniform(0, 360)), None, True
        if len(stations) == 0:
            return None
        i, s = stations[int(rng.integers(len(stations)))]
        road = self.roads[int(i)]
        pos, heading = geom.point_at(self.lines[int(i)], float(s))
        if rng.random() < 0.5:
            heading = (heading + 180.0) % 360.0
        half_road = road.width_m / 2
        if cls == "transverse_crack" or cls.endswith(("crack", "pothole")):
            lane = int(rng.integers(road.lanes))
            lateral = (lane - road.lanes / 2 + 0.5) * LANE_M
            if cls != "transverse_crack":
                lateral += rng.uniform(-0.9, 0.9)
        elif cls.startswith("spoil_truck"):
            lateral = half_road - 1.5  # parked at the kerb, right-hand side
        elif cls == "garbage_pile":
            lateral = half_road + rng.uniform(0.4, road.sidewalk_m - 0.6)
        else:
            lateral = half_road + rng.uniform(-0.8, road.sidewalk_m * 0.5)
        if not cls.startswith("spoil_truck") and rng.random() < 0.5:
            lateral = -lateral
        _, right = geom.heading_vectors(heading)
        return pos + right * lateral, heading, int(i), False


def _station_of(line: F64, cum: F64, point: F64) -> float:
    """Distance along ``line`` of its nearest vertex-interpolated point to ``point``."""
    dense = np.arange(0.0, cum[-1], 0.5)
    pts = np.column_stack([np.interp(dense, cum, line[:, 0]), np.interp(dense, cum, line[:, 1])])
    return float(dense[int(np.argmin(np.hypot(*(pts - point).T)))])
