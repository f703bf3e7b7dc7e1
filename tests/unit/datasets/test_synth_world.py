"""The test range's world: seeded, JSON round trip, targets where they belong, later days."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest

from xunjian.core.taxonomy import CLASSES
from xunjian.datasets import synth
from xunjian.datasets.synth import geom
from xunjian.datasets.synth.world import World


@cache
def world() -> World:
    """One world per module (generating one takes about half a second)."""
    return World.generate(11)


ROAD_DAMAGE = ("longitudinal_crack", "transverse_crack", "alligator_crack", "pothole")


def test_public_api_names_resolve() -> None:
    for name in synth.__all__:
        assert getattr(synth, name) is not None, name


def test_same_seed_same_world_different_seed_different() -> None:
    a = world()
    assert World.generate(a.seed).to_json() == a.to_json()
    assert World.generate(a.seed + 1).to_json() != a.to_json()


def test_json_round_trip_is_exact() -> None:
    w = world()
    assert World.from_json(w.to_json()) == w
    later = w.later_day(3)
    assert World.from_json(later.to_json()) == later


def test_wrong_format_is_refused() -> None:
    data = json.loads(world().to_json())
    data["format"] = "something/else"
    with pytest.raises(ValueError, match="expected format"):
        World.from_dict(data)


def test_every_class_several_times_in_the_focus_area() -> None:
    w = world()
    e0, n0, e1, n1 = w.focus
    for info in CLASSES:
        inside = [
            t
            for t in w.targets
            if t.cls == info.name and e0 <= t.center[0] <= e1 and n0 <= t.center[1] <= n1
        ]
        assert len(inside) >= 3, info.name


def test_road_damage_lies_on_a_carriageway_and_trucks_on_roads() -> None:
    w = world()
    for t in w.targets:
        if t.cls not in ROAD_DAMAGE and not t.is_truck:
            continue
        c = np.array([t.center])
        gaps = [
            float(geom.distance_to_polyline(c, r.centerline)[0]) - r.width_m / 2 for r in w.roads
        ]
        assert min(gaps) <= 0.0, (t.id, t.cls, min(gaps))


def test_targets_have_plausible_sizes_and_outlines_around_their_centre() -> None:
    w = world()
    for t in w.targets:
        outline = geom.as_points(t.outline)
        assert geom.point_in_polygon(np.zeros((1, 2)), outline)[0], t.id
        extent = np.ptp(outline, axis=0)
        assert extent.min() > 0.02 and extent.max() < 12.0, (t.id, extent)
        if t.is_truck:
            assert 3.0 < t.height_m < 4.0


def test_static_targets_do_not_overlap() -> None:
    static = [t for t in world().targets if t.route is None and not t.is_truck]
    for i, a in enumerate(static):
        pa = a.outline_at()
        for b in static[i + 1 :]:
            pb = b.outline_at()
            d = np.hypot(*(np.mean(pa, axis=0) - np.mean(pb, axis=0)))
            ra = np.max(np.hypot(*(pa - np.mean(pa, axis=0)).T))
            rb = np.max(np.hypot(*(pb - np.mean(pb, axis=0)).T))
            assert d > 0.8 * (ra + rb), (a.id, b.id)


def test_moving_trucks_move_along_their_road_at_their_speed() -> None:
    moving = [t for t in world().targets if t.route is not None]
    assert moving, "expected some trucks driving"
    for t in moving:
        assert t.route is not None
        (e0, n0), h0 = t.placement_at(0.0)
        (e1, n1), _ = t.placement_at(2.0)
        assert np.hypot(e1 - e0, n1 - n0) == pytest.approx(2.0 * t.route.speed_mps, rel=0.05)
        # Heading points the way it drives.
        fwd, _ = geom.heading_vectors(h0)
        assert np.dot(fwd, [e1 - e0, n1 - n0]) > 0


def test_later_day_keeps_ids_and_records_what_changed() -> None:
    before = world()
    after = before.later_day(5, repair_fraction=0.4, new_count=6)
    assert after == before.later_day(5, repair_fraction=0.4, new_count=6)
    assert after.day == before.day + 1
    assert after.epoch_time > before.epoch_time
    c = after.changes
    assert c is not None and c.previous_day == 0
    old = {t.id: t for t in before.targets}
    new = {t.id: t for t in after.targets}
    assert c.repaired and c.new and c.gone
    assert set(c.repaired) | set(c.gone) | set(c.moved) | set(c.unchanged) == set(old)
    assert not set(c.repaired) & set(new)
    assert not set(c.gone) & set(new)
    assert all(not old[i].is_truck for i in c.repaired)
    assert all(old[i].is_truck for i in c.gone)
    assert all(new[i] == old[i] for i in c.unchanged)
    assert all(i not in old and new[i].day == 1 for i in c.new)
    assert len(set(c.new)) == len(c.new)
    patches = [a for a in after.areas if a.kind in ("patch", "swept")]
    assert len(patches) == len(c.repaired)
    assert after.roads == before.roads and after.buildings == before.buildings


def test_targets_geojson() -> None:
    w = world()
    doc = w.targets_geojson()
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == len(w.targets)
    f = doc["features"][0]
    ring = f["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    lon, lat = ring[0]
    assert abs(lat - w.anchor_lat) < 0.01 and abs(lon - w.anchor_lon) < 0.01
    assert {"id", "class", "lat", "lon", "length_m", "width_m"} <= set(f["properties"])
