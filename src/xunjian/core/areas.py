"""Named areas of the city (districts 区, streets 街道, grid cells 网格) for 评价 figures.

An :class:`AreaMap` is read from a GeoJSON FeatureCollection whose features are Polygons or
MultiPolygons (holes allowed) with a ``name`` property (else ``id``). :meth:`AreaMap.locate`
names the area a point lies in: the first feature in file order that contains it, so a finer
layer listed before a coarser one wins. Points on an edge count as inside. A point outside
every area is :data:`OUTSIDE`.

Pure: no I/O beyond :func:`load_areas` reading the file. Point-in-polygon is vectorised with
numpy (one pass per ring edge over all points), so 评价 over 100k issues stays cheap.
May import: numpy, ``xunjian.errors``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from xunjian.errors import InputError

OUTSIDE = "(outside every area)"

Ring = tuple[tuple[float, float], ...]  # (lon, lat), closed or not
Coords = ArrayLike
Mask = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Area:
    """One named area: polygons of (outer ring, holes...), and their bounding box."""

    name: str
    polygons: tuple[tuple[Ring, ...], ...]
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

    def contains(self, lons: Coords, lats: Coords) -> Mask:
        """Which of the points (arrays of lon, lat) lie in the area, edges included."""
        x, y = np.asarray(lons, np.float64), np.asarray(lats, np.float64)
        lon0, lat0, lon1, lat1 = self.bbox
        near = (x >= lon0) & (x <= lon1) & (y >= lat0) & (y <= lat1)
        found = np.zeros(x.shape, dtype=bool)
        if not near.any():
            return found
        xs, ys = x[near], y[near]
        hit = np.zeros(xs.shape, dtype=bool)
        for outer, *holes in self.polygons:
            edge, inside = _crossings(xs, ys, outer)
            part = edge | inside
            for hole in holes:
                hole_edge, in_hole = _crossings(xs, ys, hole)
                part &= ~(in_hole & ~hole_edge)
            hit |= part
        found[near] = hit
        return found


@dataclass(frozen=True, slots=True)
class AreaMap:
    """The configured areas, in file order."""

    areas: tuple[Area, ...]
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.areas]

    def locate(self, lon: float, lat: float) -> str:
        """The name of the first area containing the point, else :data:`OUTSIDE`."""
        return self.locate_many([lon], [lat])[0]

    def locate_many(self, lons: Coords, lats: Coords) -> list[str]:
        """:meth:`locate` for many points at once (vectorised: 评价 over 100k issues)."""
        x, y = np.asarray(lons, np.float64), np.asarray(lats, np.float64)
        which = np.full(x.shape, -1, dtype=np.int64)
        for n, area in enumerate(self.areas):
            free = which < 0
            if not free.any():
                break
            which[free & area.contains(x, y)] = n
        names = [*self.names, OUTSIDE]
        return [names[int(k)] for k in which]


def load_areas(path: Path) -> AreaMap:
    """Reads a GeoJSON file of named areas; :class:`InputError` naming the file and the fault."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(
            f"cannot read the areas file: {error.strerror}", source=str(path)
        ) from None
    except ValueError as error:
        raise InputError(f"areas file is not JSON: {error}", source=str(path)) from None
    return parse_areas(raw, source=str(path))


def parse_areas(raw: Any, *, source: str = "areas") -> AreaMap:
    """An :class:`AreaMap` from a parsed GeoJSON FeatureCollection (see the module doc)."""
    if not isinstance(raw, dict) or raw.get("type") != "FeatureCollection":
        raise InputError("expected a GeoJSON FeatureCollection of areas", source=source)
    features = raw.get("features")
    if not isinstance(features, list) or not features:
        raise InputError("expected at least one area feature", source=source)
    areas: list[Area] = []
    seen: set[str] = set()
    for n, feature in enumerate(features):
        where = f"{source}: feature {n}"
        if not isinstance(feature, dict):
            raise InputError("expected a GeoJSON Feature object", source=where)
        props = feature.get("properties") or {}
        name = props.get("name", props.get("id", feature.get("id")))
        if not isinstance(name, str | int) or not str(name).strip():
            raise InputError("expected a 'name' property naming the area", source=where)
        name = str(name).strip()
        if name in seen:
            raise InputError(f"area name {name!r} is used twice", source=where)
        seen.add(name)
        polygons = _polygons(feature.get("geometry"), f"{where} ({name})")
        points = [p for polygon in polygons for p in polygon[0]]
        lons, lats = [p[0] for p in points], [p[1] for p in points]
        areas.append(Area(name, polygons, (min(lons), min(lats), max(lons), max(lats))))
    return AreaMap(tuple(areas), source)


def _polygons(geometry: Any, where: str) -> tuple[tuple[Ring, ...], ...]:
    if not isinstance(geometry, dict):
        raise InputError("expected a Polygon or MultiPolygon geometry", source=where)
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        return (_polygon(coords, where),)
    if kind == "MultiPolygon" and isinstance(coords, list) and coords:
        return tuple(_polygon(c, where) for c in coords)
    raise InputError(f"expected a Polygon or MultiPolygon, got {kind!r}", source=where)


def _polygon(coords: Any, where: str) -> tuple[Ring, ...]:
    if not isinstance(coords, list) or not coords:
        raise InputError("a polygon needs at least its outer ring", source=where)
    rings: list[Ring] = []
    for ring in coords:
        try:
            points = tuple((float(p[0]), float(p[1])) for p in ring)
        except (TypeError, ValueError, IndexError):
            raise InputError("ring positions must be [lon, lat] numbers", source=where) from None
        if len(set(points)) < 3:
            raise InputError("a ring needs at least three distinct positions", source=where)
        for lon, lat in points:
            if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                raise InputError(
                    f"position ({lon}, {lat}) is not [lon, lat] in degrees", source=where
                )
        rings.append(points)
    return tuple(rings)


def _crossings(x: NDArray[np.float64], y: NDArray[np.float64], ring: Ring) -> tuple[Mask, Mask]:
    """(on an edge, inside by the even-odd rule) for every point, one pass per edge."""
    edge = np.zeros(x.shape, dtype=bool)
    inside = np.zeros(x.shape, dtype=bool)
    n = len(ring)
    for i in range(n):
        (x0, y0), (x1, y1) = ring[i], ring[(i + 1) % n]
        cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
        scale = max(abs(x1 - x0), abs(y1 - y0), 1e-12)
        edge |= (
            (np.abs(cross) <= 1e-12 * scale)
            & (x >= min(x0, x1)) & (x <= max(x0, x1))
            & (y >= min(y0, y1)) & (y <= max(y0, y1))
        )  # fmt: skip
        if y0 == y1:
            continue  # a horizontal edge crosses no horizontal ray
        straddle = (y0 > y) != (y1 > y)
        inside ^= straddle & (x < x0 + (y - y0) / (y1 - y0) * (x1 - x0))
    return edge, inside
