"""Named areas from GeoJSON: which area a point lies in, and clear errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xunjian.core.areas import OUTSIDE, load_areas, parse_areas
from xunjian.errors import InputError

SQUARE = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
HOLE = [[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]]


def collection(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


def area(name: str, geometry: dict) -> dict:
    return {"type": "Feature", "properties": {"name": name}, "geometry": geometry}


def test_points_fall_in_the_right_area_holes_and_edges_included() -> None:
    areas = parse_areas(
        collection(
            area("ring", {"type": "Polygon", "coordinates": [SQUARE, HOLE]}),
            area("pond", {"type": "Polygon", "coordinates": [HOLE]}),
            area(
                "islands",
                {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[20, 0], [22, 0], [22, 2], [20, 0]]],
                        [[[30, 0], [32, 0], [32, 2], [30, 2], [30, 0]]],
                    ],
                },
            ),
        )
    )
    assert areas.names == ["ring", "pond", "islands"]
    assert areas.locate(1.0, 1.0) == "ring"
    assert areas.locate(5.0, 5.0) == "pond"  # inside the hole: not the ring
    assert areas.locate(4.0, 5.0) == "ring"  # on the hole's edge: still the ring
    assert areas.locate(10.0, 5.0) == "ring"  # on the outer edge
    assert areas.locate(0.0, 0.0) == "ring"  # a corner
    assert areas.locate(21.5, 0.5) == "islands" and areas.locate(31.0, 1.0) == "islands"
    assert areas.locate(20.5, 1.5) == OUTSIDE  # beside the triangle's slope, in its bbox
    assert areas.locate(-0.001, 5.0) == OUTSIDE


def test_the_first_area_listed_wins_where_they_overlap() -> None:
    fine = area("网格 7", {"type": "Polygon", "coordinates": [HOLE]})
    coarse = area("渝中区", {"type": "Polygon", "coordinates": [SQUARE]})
    assert parse_areas(collection(fine, coarse)).locate(5.0, 5.0) == "网格 7"
    assert parse_areas(collection(coarse, fine)).locate(5.0, 5.0) == "渝中区"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ({"type": "Feature"}, "FeatureCollection"),
        (collection(), "at least one area"),
        (
            collection(
                {
                    "type": "Feature",
                    "properties": {},
                    "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
                }
            ),
            "'name'",
        ),
        (collection(area("a", {"type": "Point", "coordinates": [1, 2]})), "got 'Point'"),
        (collection(area("a", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})), "three"),
        (
            collection(area("a", {"type": "Polygon", "coordinates": [[[0, 0], ["x"], [1, 1]]]})),
            "numbers",
        ),
        (
            collection(area("a", {"type": "Polygon", "coordinates": [[[0, 0], [0, 95], [1, 1]]]})),
            "degrees",
        ),
        (
            collection(
                area("a", {"type": "Polygon", "coordinates": [SQUARE]}),
                area("a", {"type": "Polygon", "coordinates": [HOLE]}),
            ),
            "used twice",
        ),
    ],
)
def test_bad_area_files_are_refused_naming_the_fault(raw: dict, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_areas(raw, source="districts.geojson")


def test_load_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "districts.geojson"
    good.write_text(json.dumps(collection(area("渝中区", {"type": "Polygon",
                                                         "coordinates": [SQUARE]}))))  # fmt: skip
    assert load_areas(good).locate(3, 3) == "渝中区"
    (tmp_path / "broken.geojson").write_text("{")
    with pytest.raises(InputError, match=r"broken\.geojson: areas file is not JSON"):
        load_areas(tmp_path / "broken.geojson")
    with pytest.raises(InputError, match=r"missing\.geojson: cannot read"):
        load_areas(tmp_path / "missing.geojson")


def test_many_points_are_located_in_one_call() -> None:
    areas = parse_areas(
        collection(
            area("ring", {"type": "Polygon", "coordinates": [SQUARE, HOLE]}),
            area("pond", {"type": "Polygon", "coordinates": [HOLE]}),
        )
    )
    lons = [1.0, 5.0, 4.0, 10.0, 0.0, -0.001, 20.0]
    lats = [1.0, 5.0, 5.0, 5.0, 0.0, 5.0, 20.0]
    assert areas.locate_many(lons, lats) == [
        "ring", "pond", "ring", "ring", "ring", OUTSIDE, OUTSIDE,
    ]  # fmt: skip
    assert areas.locate_many([], []) == []
