"""What makes full-size frames fast: tiles only where the frame looks, at the level it needs,
painted in one pass per layer, optionally kept on disk. Functional checks only, no timings."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.datasets.synth import paint
from xunjian.datasets.synth.ground import TILE_PX, GroundTexture, texel_of
from xunjian.datasets.synth.plans import camera_preset
from xunjian.datasets.synth.render import Renderer
from xunjian.datasets.synth.tilestore import DiskTiles, touched, world_key
from xunjian.datasets.synth.world import World


@cache
def world() -> World:
    return World.generate(5)


def small_k() -> CameraIntrinsics:
    k = camera_preset("M3E").intrinsics()
    return k.scaled_to(528, 396)  # same field of view, a tenth of the size


def nadir(w: World, yaw: float = 30.0) -> CameraPose:
    return CameraPose(w.anchor_lat, w.anchor_lon, 100.0, yaw, -90.0)


def oblique(w: World) -> CameraPose:
    return CameraPose(w.anchor_lat, w.anchor_lon, 40.0, 120.0, -25.0)


def test_touched_keeps_every_tile_the_polygon_covers_and_drops_far_ones() -> None:
    span = 10.0
    # A thin diagonal strip across a 6 × 6 grid of tiles from (0, 0).
    poly = np.array([[1.0, 0.5], [59.0, 58.0], [59.0, 59.5], [0.5, 2.0]])
    need = touched(poly, span, 0, 0, 6, 6)
    assert need.shape == (6, 6)
    rng = np.random.default_rng(0)
    for _ in range(500):  # random points inside the strip: their tile is kept
        a, b = rng.uniform(0, 1, 2)
        p = poly[0] + a * (poly[1] - poly[0]) + b * (poly[3] - poly[0])
        assert need[int(p[1] // span), int(p[0] // span)]
    assert not need[5, 0] and not need[0, 5]  # the far corners are not
    assert need.sum() < 20


def test_touched_finds_a_polygon_smaller_than_a_grid_cell() -> None:
    poly = np.array([[25.0, 35.0], [25.1, 35.0], [25.1, 35.1]])
    need = touched(poly, 10.0, 0, 0, 6, 6)
    assert need[3, 2]
    assert need.sum() == 1


def test_mosaic_within_a_footprint_paints_only_the_tiles_it_touches() -> None:
    span = TILE_PX * texel_of(3)
    poly = np.array([[0.0, 0.0], [2.5 * span, 0.2 * span], [0.3 * span, 1.8 * span]])
    box = (-0.5 * span, -0.5 * span, 2.6 * span, 2.6 * span)
    full, m_full = GroundTexture(world()).mosaic(3, *box)
    part, m_part = GroundTexture(world()).mosaic(3, *box, within=poly)
    np.testing.assert_array_equal(m_full, m_part)
    rows, cols = full.shape[0] // TILE_PX, full.shape[1] // TILE_PX
    kept = 0
    for r in range(rows):
        for c in range(cols):
            sl = np.s_[r * TILE_PX : (r + 1) * TILE_PX, c * TILE_PX : (c + 1) * TILE_PX]
            if part[sl].any():
                np.testing.assert_array_equal(part[sl], full[sl])
                kept += 1
    assert 0 < kept < rows * cols


def test_far_part_of_an_oblique_frame_uses_coarse_tiles() -> None:
    r = Renderer(world())
    near_to_far = r._levels(r.view(oblique(world()), small_k()))[::-1]  # bottom rows first
    levels = [level for _, _, level in near_to_far]
    assert levels == sorted(levels) and levels[-1] > levels[0]
    (v0, v1, level), *_ = r._levels(r.view(nadir(world()), small_k()))
    # A nadir frame is one band, at the finest level not finer than its ground sample distance.
    assert (v0, v1) == (0, small_k().height)
    assert level == 3  # 10× smaller image: GSD ≈ 27 cm, level 3 has 16 cm texels


def test_frames_need_far_fewer_tiles_than_their_bounding_box() -> None:
    r = Renderer(world())
    r.render(nadir(world(), yaw=45.0), small_k())
    view = r.view(nadir(world(), yaw=45.0), small_k())
    fp = r.footprint(view)
    (_, _, level), *_ = r._levels(view)
    span = TILE_PX * texel_of(level)
    e0, n0 = np.floor(fp.min(axis=0) / span)
    e1, n1 = np.floor(fp.max(axis=0) / span)
    box = (e1 - e0 + 1) * (n1 - n0 + 1)
    assert len(r.ground._tiles) < box


def test_disk_store_gives_identical_frames_and_skips_painting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world()
    plain = Renderer(w).render(oblique(w), small_k())
    first = Renderer(w, cache_dir=tmp_path).render(oblique(w), small_k())
    np.testing.assert_array_equal(first, plain)
    stored = list((tmp_path / world_key(w)).rglob("*.npy"))
    assert stored

    def no_painting(*_: object) -> None:
        raise AssertionError("tile painted although stored")

    monkeypatch.setattr(paint, "tile", no_painting)
    second = Renderer(w, cache_dir=tmp_path).render(oblique(w), small_k())
    np.testing.assert_array_equal(second, plain)


def test_damaged_stored_tile_is_painted_again(tmp_path: Path) -> None:
    w = world()
    store = DiskTiles(tmp_path, w, TILE_PX)
    g = GroundTexture(w, cache_dir=tmp_path)
    good = g.tile(4, 0, 0)
    assert store.load((4, 0, 0)) is not None
    store.path((4, 0, 0)).write_bytes(b"not a tile")
    assert store.load((4, 0, 0)) is None
    again = GroundTexture(w, cache_dir=tmp_path).tile(4, 0, 0)
    np.testing.assert_array_equal(again, good)
    assert store.load((4, 0, 0)) is not None


def test_store_key_changes_with_the_world() -> None:
    w = world()
    assert world_key(w) == world_key(World.generate(5))
    assert world_key(w) != world_key(World.generate(6))
    assert world_key(w) != world_key(w.later_day(3))


def test_polygons_convert_in_one_pass_as_one_by_one() -> None:
    g = GroundTexture(world())
    ids = list(range(0, len(g.canopies.polys), 7))
    e0, n1, t = -40.0, 25.0, 0.04
    offset = np.array([1.5, -0.7])
    got = g.canopies.pixels(ids, e0, n1, t, 4, offset)
    for i, q in zip(ids, got, strict=True):
        p = g.canopies.polys[i] + offset
        xy = np.column_stack([(p[:, 0] - e0) / t - 0.5, (n1 - p[:, 1]) / t - 0.5])
        np.testing.assert_array_equal(q, np.round(xy * 16).astype(np.int32))


def test_coarse_gain_matches_the_directly_sampled_field() -> None:
    g = GroundTexture(world())
    for level, e0, n1 in ((0, 3.0, 7.0), (1, -20.48, 40.96), (2, -61.44, -20.48)):
        t = texel_of(level)
        fast = g.noise.gain(e0, n1, t, TILE_PX)
        exact = g.noise.sample(g.noise.GAIN, e0, n1, t, TILE_PX, TILE_PX)
        assert fast.shape == exact.shape
        assert float(np.abs(fast - exact).max()) < 2e-3


def test_canvas_reuses_placed_tiles_and_moves_with_the_frames() -> None:
    g = GroundTexture(world())
    span = TILE_PX * texel_of(4)
    first, m1 = g.mosaic(4, 0.0, 0.0, 1.5 * span, 1.5 * span)
    canvas = g._canvases[4]
    placed = set(canvas.placed)
    again, m2 = g.mosaic(4, 0.2 * span, 0.1 * span, 1.2 * span, 1.4 * span)
    assert g._canvases[4] is canvas and canvas.placed == placed  # nothing new to copy
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(m2, m1)
    far, _ = g.mosaic(4, 40 * span, 40 * span, 41 * span, 41 * span)  # outside: a new canvas
    assert g._canvases[4] is not canvas
    fresh, _ = GroundTexture(world()).mosaic(4, 40 * span, 40 * span, 41 * span, 41 * span)
    np.testing.assert_array_equal(far, fresh)


def test_frame_does_not_depend_on_the_frames_before_it() -> None:
    w = world()
    k = small_k()
    later = CameraPose(w.anchor_lat + 0.0002, w.anchor_lon - 0.0001, 40.0, 100.0, -20.0)
    alone = Renderer(w).render(later, k)
    r = Renderer(w)
    for pose in (nadir(w), oblique(w), nadir(w, yaw=80.0)):
        r.render(pose, k)
    np.testing.assert_array_equal(r.render(later, k), alone)
