"""The pipeline benchmark: replicated surveys, both runs in subprocesses, ratios."""

from __future__ import annotations

import pytest

from xunjian.bench.pipeline import bench_pipeline

pytestmark = pytest.mark.slow


def test_pipeline_and_detect_alone_see_the_same_frames_and_boxes() -> None:
    result = bench_pipeline(sizes=(3,))
    batch = result["batches"]["3"]
    pipe, alone = batch["pipeline"], batch["detect_alone"]
    assert pipe["frames"] == alone["frames"] == 3
    assert pipe["frames_failed"] == 0
    # the same detect work inside the pipeline as alone: same boxes
    assert pipe["detections"] == alone["detections"]
    assert pipe["observations"] <= pipe["detections"]
    assert batch["overhead_ratio"] == pytest.approx(pipe["wall_s"] / alone["wall_s"], rel=0.01)
    assert pipe["peak_rss_mb"] > 50 and alone["peak_rss_mb"] > 50
    assert result["survey_frames"] >= 20
