"""Tiling: the plan covers the frame, tiles batch, and a target cut by a tile edge is one box."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.models import CLASSES, BlobBackend, draw_shape, noise
from xunjian.models.backends import Boxes, PredictParams, box_iou
from xunjian.models.detector import Detector, DetectorSet
from xunjian.models.tiling import (
    TileConfig,
    merge_tile_boxes,
    plan_passes,
    plan_tiles,
    predict_tiled,
)


@pytest.mark.parametrize(
    ("width", "height", "tile", "overlap"),
    [(1000, 700, 256, 0.2), (640, 640, 640, 0.2), (641, 300, 640, 0.25), (5280, 3956, 640, 0.2)],
)
def test_tiles_cover_the_image_with_the_overlap_and_end_flush(
    width: int, height: int, tile: int, overlap: float
) -> None:
    rects = plan_tiles(width, height, tile, overlap)
    covered = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in rects:
        assert x1 - x0 == min(tile, width) and y1 - y0 == min(tile, height)
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    xs = sorted({r[0] for r in rects})
    ys = sorted({r[1] for r in rects})
    assert xs[0] == 0 and max(r[2] for r in rects) == width  # last tile flush with the edge
    assert ys[0] == 0 and max(r[3] for r in rects) == height
    for starts in (xs, ys):
        steps = np.diff(starts)
        assert (steps <= tile * (1 - overlap) + 1e-9).all()  # neighbours overlap enough


def test_plan_counts_and_edge_cases() -> None:
    assert len(plan_tiles(5280, 3956, 640, 0.2)) == 88  # as SAHI slices the benchmark frame
    assert plan_tiles(100, 50, 640, 0.2) == [(0, 0, 100, 50)]
    assert plan_tiles(300, 200, (200, 100), 0.0) == [
        (0, 0, 200, 100), (100, 0, 300, 100), (0, 100, 200, 200), (100, 100, 300, 200),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="overlap: expected a fraction"):
        plan_tiles(100, 100, 64, 1.0)


def test_auto_mode_tiles_only_frames_much_larger_than_the_input() -> None:
    auto = TileConfig()
    assert plan_passes(800, 600, (640, 640), auto) == ([(0, 0, 800, 600)], False)
    rects, tiled = plan_passes(4000, 3000, (640, 640), auto)
    assert tiled and len(rects) > 1 and rects[0] == (0, 0, 640, 640)
    assert plan_passes(4000, 3000, (640, 640), TileConfig(mode="full"))[1] is False
    assert len(plan_passes(800, 600, (640, 640), TileConfig(mode="tiles", tile=320))[0]) == 9


def _boxes(*rows: tuple[float, float, float, float, int, float]) -> Boxes:
    arr = np.array(rows, np.float32).reshape(-1, 6)
    return Boxes(arr[:, :4], arr[:, 5].copy(), arr[:, 4].astype(np.int64))


TWO = [(0, 0, 100, 100), (80, 0, 180, 100)]  # two tiles overlapping in x ∈ [80, 100)


def test_a_target_cut_in_both_tiles_fuses_into_its_full_box() -> None:
    left = _boxes((60, 20, 100, 60, 0, 0.8))  # ends on the left tile's right edge
    right = _boxes((80, 22, 130, 61, 0, 0.9))  # starts on the right tile's left edge
    merged = merge_tile_boxes([left, right], TWO, (180, 100))
    assert len(merged) == 1
    assert np.allclose(merged.xyxy[0], [60, 20, 130, 61]) and merged.conf[0] == pytest.approx(0.9)


def test_a_target_whole_in_one_tile_and_cut_in_the_other_keeps_the_whole_box() -> None:
    left = _boxes((85, 30, 100, 50, 1, 0.6))  # the cut piece: IoU with the whole box is 0.5
    right = _boxes((85, 30, 115, 50, 1, 0.9))
    merged = merge_tile_boxes([left, right], TWO, (180, 100))
    assert len(merged) == 1 and np.allclose(merged.xyxy[0], [85, 30, 115, 50])


def test_four_pieces_on_a_tile_corner_fuse_into_one() -> None:
    rects = [(0, 0, 100, 100), (80, 0, 180, 100), (0, 80, 100, 180), (80, 80, 180, 180)]
    pieces = [
        _boxes((70, 70, 100, 100, 0, 0.7)),
        _boxes((80, 70, 110, 100, 0, 0.8)),
        _boxes((70, 80, 100, 110, 0, 0.6)),
        _boxes((80, 80, 110, 110, 0, 0.9)),
    ]
    merged = merge_tile_boxes(pieces, rects, (180, 180))
    assert len(merged) == 1 and np.allclose(merged.xyxy[0], [70, 70, 110, 110])


def test_neighbours_that_do_not_cross_the_edge_or_differ_in_class_stay_apart() -> None:
    left = _boxes((60, 20, 100, 60, 0, 0.8), (60, 70, 100, 90, 2, 0.8))
    right = _boxes(
        (100, 20, 140, 60, 0, 0.9),  # starts where the left box ends: no overlap across the edge
        (80, 70, 130, 90, 1, 0.9),  # crosses, but another class
    )
    merged = merge_tile_boxes([left, right], TWO, (180, 100))
    assert len(merged) == 4


def test_boxes_on_the_image_border_are_not_cut_pieces() -> None:
    rects = [(0, 0, 100, 100), (0, 0, 100, 100)]  # e.g. two passes over the same region
    a = _boxes((0, 10, 30, 40, 0, 0.9))
    b = _boxes((0, 12, 20, 40, 0, 0.8))  # IoU < 0.7, both on the image's left border
    assert len(merge_tile_boxes([a, b], rects, (100, 100))) == 2


def test_duplicates_from_the_overlap_are_removed_by_nms() -> None:
    left = _boxes((82, 40, 95, 55, 0, 0.8))
    right = _boxes((82.5, 40, 95, 55.5, 0, 0.85))
    merged = merge_tile_boxes([left, right], TWO, (180, 100))
    assert len(merged) == 1 and merged.conf[0] == pytest.approx(0.85)


# ---- end to end with the blob test double: the drawn truth is known to the pixel


def _frame_with_targets() -> tuple[np.ndarray, list[tuple[int, ...]], list[int]]:
    image = noise(700, 500, seed=3)
    truth = [  # tiles of 160 px at 0.2 overlap start every 128 px: 0, 128, 256, …
        draw_shape(image, 0, 110, 20, 40),  # whole in tile x=0, cut at tile x=128's left edge
        draw_shape(image, 0, 115, 200, 60),  # wider than the overlap: cut in both tiles
        draw_shape(image, 1, 300, 300, 30),
        draw_shape(image, 2, 640, 440, 50),  # on the flush last column
        draw_shape(image, 0, 250, 110, 36),  # on a four-tile corner
    ]
    return image, truth, [0, 0, 1, 2, 0]


@pytest.mark.parametrize("batch_size", [1, 8])
def test_targets_cut_by_tile_edges_come_out_once_with_their_true_boxes(batch_size: int) -> None:
    image, truth, classes = _frame_with_targets()
    backend = BlobBackend(input_size=(160, 160))
    detectors = DetectorSet([Detector("toy", backend, CLASSES, "toy@1")])
    config = TileConfig(tile=160, overlap=0.2, batch_size=batch_size)
    rects, tiled = plan_passes(700, 500, (160, 160), config)
    assert tiled
    found = predict_tiled(detectors, image, rects, params=PredictParams(), config=config)["toy"]
    assert len(found) == len(truth)
    iou = box_iou(found.xyxy, np.array(truth, np.float32))
    assert (iou.max(axis=0) > 0.9).all()  # a drawn disc is one pixel wider
    assert sorted(found.cls[iou.argmax(axis=0)].tolist()) == sorted(classes)
    assert all(len(call) <= batch_size for call in backend.calls)
    assert sum(len(call) for call in backend.calls) == len(rects)


def test_tiled_and_full_image_passes_agree_on_the_blob_double() -> None:
    image, truth, _ = _frame_with_targets()
    detectors = DetectorSet([Detector("toy", BlobBackend(), CLASSES, "toy@1")])
    params = PredictParams()
    full = predict_tiled(detectors, image, [(0, 0, 700, 500)], params=params, config=TileConfig())
    config = TileConfig(tile=200, overlap=0.25)
    tiles = plan_tiles(700, 500, 200, 0.25)
    tiled = predict_tiled(detectors, image, tiles, params=params, config=config)
    assert len(full["toy"]) == len(tiled["toy"]) == len(truth)
    assert (box_iou(full["toy"].xyxy, tiled["toy"].xyxy).max(axis=1) > 0.99).all()
