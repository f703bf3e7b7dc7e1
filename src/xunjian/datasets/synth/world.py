"""The test range's world: a vector description of a city patch, in metres around an anchor.

A :class:`World` is plain frozen data — roads, buildings, areas and the *targets* the detectors
should find — and round-trips through JSON exactly. Everything random comes from one seed
(``numpy.random.Generator(PCG64(...))``), so the same seed gives the same world.
:meth:`World.generate` lays a world out (see ``layout``); :meth:`World.later_day` changes it
into a later day (repairs, new dumping, trucks gone) keeping target ids stable.

May import: numpy, the standard library, ``xunjian.core`` and sibling modules of ``synth``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.datasets.synth import geom
from xunjian.datasets.synth.geom import Point

DEFAULT_ANCHOR = (29.5630, 106.5516)
"""Jiefangbei, Yuzhong district, Chongqing."""
DEFAULT_GROUND_ALT_M = 250.0
"""Ground height above the WGS84 ellipsoid there, roughly (the range's ground is flat)."""
DEFAULT_EPOCH = "2025-05-12T10:00:00+08:00"
FORMAT = "xunjian.synth.world/1"
TRUCK_CLASSES = ("spoil_truck", "spoil_truck_uncovered")


@dataclass(frozen=True)
class Road:
    """A road: centreline polyline, carriageway width, lanes (both directions), pavements."""

    id: str
    centerline: tuple[Point, ...]
    width_m: float
    lanes: int
    sidewalk_m: float
    main: bool = False


@dataclass(frozen=True)
class Building:
    """A building: footprint polygon (counter-clockwise), height, roof and facade styles."""

    id: str
    footprint: tuple[Point, ...]
    height_m: float
    roof: str
    facade: int


@dataclass(frozen=True)
class Area:
    """A surface patch: ``green`` (park, lawn), ``plaza`` (paving) or ``lot`` (bare soil)."""

    id: str
    kind: str
    polygon: tuple[Point, ...]


@dataclass(frozen=True)
class Tree:
    center: Point
    radius_m: float


@dataclass(frozen=True)
class Route:
    """How a moving truck drives: along ``path`` (a road centreline) in the right-hand lane.

    At ``t`` seconds after the world's epoch it is ``start_m + speed·t`` metres along the path,
    turning back at the ends (and changing to the other lane), so it never leaves the world.
    """

    path: tuple[Point, ...]
    lane_offset_m: float
    start_m: float
    speed_mps: float


@dataclass(frozen=True)
class Target:
    """One thing a detector should find, with its true place and size.

    ``center`` and ``heading_deg`` are where it is at the epoch (a moving truck moves, see
    :meth:`placement_at`). ``length_m`` × ``width_m`` is its nominal size along and across its
    heading; ``outline`` is the exact polygon of what is drawn, in the target's local (along,
    right) metres; ``height_m`` > 0 for trucks, which are drawn as 3-D boxes.
    ``look_seed`` seeds how it looks. ``day`` is the day it appeared.
    """

    id: str
    cls: str
    center: Point
    heading_deg: float
    length_m: float
    width_m: float
    height_m: float
    look_seed: int
    outline: tuple[Point, ...]
    route: Route | None = None
    day: int = 0

    @property
    def is_truck(self) -> bool:
        return self.cls in TRUCK_CLASSES

    def placement_at(self, t_s: float) -> tuple[Point, float]:
        """Centre (E, N) and heading at ``t_s`` seconds after the world's epoch."""
        if self.route is None:
            return self.center, self.heading_deg
        path = geom.as_points(self.route.path)
        total = float(geom.cumulative_length(path)[-1])
        s = (self.route.start_m + self.route.speed_mps * t_s) % (2.0 * total)
        backwards = s > total
        pos, heading = geom.point_at(path, 2.0 * total - s if backwards else s)
        if backwards:
            heading = (heading + 180.0) % 360.0
        _, right = geom.heading_vectors(heading)
        pos = pos + right * self.route.lane_offset_m
        return (float(pos[0]), float(pos[1])), heading

    def outline_at(self, t_s: float = 0.0) -> geom.F64:
        """The outline polygon in world (E, N) metres at ``t_s``."""
        center, heading = self.placement_at(t_s)
        return geom.local_to_world(self.outline, center, heading)


@dataclass(frozen=True)
class Changes:
    """What changed since the previous day, by target id."""

    previous_day: int
    repaired: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


@dataclass(frozen=True)
class World:
    """A synthetic city patch: ``size_m`` square centred on the anchor, in local ENU metres."""

    seed: int
    anchor_lat: float
    anchor_lon: float
    ground_alt_m: float
    size_m: float
    epoch: str
    sun_azimuth_deg: float
    sun_elevation_deg: float
    focus: tuple[float, float, float, float]
    roads: tuple[Road, ...]
    buildings: tuple[Building, ...]
    areas: tuple[Area, ...]
    trees: tuple[Tree, ...]
    targets: tuple[Target, ...]
    day: int = 0
    next_id: int = 1
    changes: Changes | None = None
    format: str = field(default=FORMAT)

    @classmethod
    def generate(
        cls,
        seed: int,
        *,
        anchor: tuple[float, float] = DEFAULT_ANCHOR,
        size_m: float = 600.0,
        per_class: int = 3,
        focus_m: float = 70.0,
        ground_alt_m: float = DEFAULT_GROUND_ALT_M,
        epoch: str = DEFAULT_EPOCH,
    ) -> World:
        """A new world from ``seed``: same seed, same world.

        ``per_class`` targets of each taxonomy class are placed within the central
        ``focus_m`` square (what the small flight covers), and as many again elsewhere.
        """
        from xunjian.datasets.synth.layout import generate_world

        return generate_world(
            seed,
            anchor=anchor,
            size_m=size_m,
            per_class=per_class,
            focus_m=focus_m,
            ground_alt_m=ground_alt_m,
            epoch=epoch,
        )

    def later_day(
        self,
        seed: int,
        *,
        repair_fraction: float = 0.4,
        new_count: int = 6,
        truck_gone_fraction: float = 0.5,
        days: int = 7,
    ) -> World:
        """The same place ``days`` later: some problems repaired, new ones, trucks gone or moved.

        Target ids stay stable; :attr:`changes` records what happened to each.
        """
        from xunjian.datasets.synth.layout import later_day

        return later_day(
            self,
            seed,
            repair_fraction=repair_fraction,
            new_count=new_count,
            truck_gone_fraction=truck_gone_fraction,
            days=days,
        )

    @property
    def epoch_time(self) -> datetime:
        return datetime.fromisoformat(self.epoch)

    def seconds_since_epoch(self, moment: datetime) -> float:
        return (moment - self.epoch_time) / timedelta(seconds=1)

    def target(self, target_id: str) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(f"no target {target_id!r} in world (seed {self.seed}, day {self.day})")

    def to_latlon(self, en: geom.F64) -> geom.F64:
        """World (E, N) points (N, 2) → (lat, lon) degrees (N, 2)."""
        p = geom.as_points(en)
        lat, lon = en_to_latlon(p[:, 0], p[:, 1], self.anchor_lat, self.anchor_lon)
        return np.column_stack([lat, lon])

    def to_en(self, latlon: geom.F64) -> geom.F64:
        p = geom.as_points(latlon)
        e, n = latlon_to_en(p[:, 0], p[:, 1], self.anchor_lat, self.anchor_lon)
        return np.column_stack([e, n])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> World:
        if data.get("format") != FORMAT:
            raise ValueError(f"world: expected format {FORMAT!r}, got {data.get('format')!r}")
        d = dict(data)

        def pts(raw: Any) -> tuple[Point, ...]:
            return tuple((float(e), float(n)) for e, n in raw)

        d["focus"] = tuple(d["focus"])
        d["roads"] = tuple(Road(**{**r, "centerline": pts(r["centerline"])}) for r in d["roads"])
        d["buildings"] = tuple(
            Building(**{**b, "footprint": pts(b["footprint"])}) for b in d["buildings"]
        )
        d["areas"] = tuple(Area(**{**a, "polygon": pts(a["polygon"])}) for a in d["areas"])
        d["trees"] = tuple(
            Tree(center=tuple(t["center"]), radius_m=t["radius_m"]) for t in d["trees"]
        )
        targets = []
        for t in d["targets"]:
            route = t.get("route")
            if route is not None:
                route = Route(**{**route, "path": pts(route["path"])})
            targets.append(
                Target(
                    **{
                        **t,
                        "center": tuple(t["center"]),
                        "outline": pts(t["outline"]),
                        "route": route,
                    }
                )
            )
        d["targets"] = tuple(targets)
        if d.get("changes") is not None:
            c = d["changes"]
            d["changes"] = Changes(
                previous_day=int(c["previous_day"]),
                **{k: tuple(v) for k, v in c.items() if k != "previous_day"},
            )
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> World:
        return cls.from_dict(json.loads(text))

    def with_targets(self, targets: tuple[Target, ...], **changes: Any) -> World:
        return replace(self, targets=targets, **changes)

    def targets_geojson(self, t_s: float = 0.0) -> dict[str, Any]:
        """Every target as a GeoJSON Feature (polygon in lon, lat; where it is at ``t_s``)."""
        from xunjian.datasets.synth.truth import targets_geojson

        return targets_geojson(self, t_s)
