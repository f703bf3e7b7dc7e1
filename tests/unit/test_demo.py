"""The embedded-default main job, end to end on a test-range flight."""

from __future__ import annotations

import json

import pytest

from xunjian.demo import run_demo
from xunjian.settings import Settings
from xunjian.storage.catalog import Catalog

pytestmark = pytest.mark.slow


def test_demo_processes_a_test_range_flight_and_compares_with_truth(settings: Settings) -> None:
    result = run_demo(settings, seed=3)
    summary = result.summary
    frames = summary["truth"]["frames"]
    assert frames >= 20
    assert summary["frames_ingested"] == frames
    assert summary["frames_with_pose"] == frames
    assert summary["frames_failed"] == []
    errors = summary["metadata_vs_truth"]
    assert errors["compared_frames"] == frames
    sigma = summary["injected_noise"]["gps_sigma_m"]
    # per-axis σ: the 2-D error's median is about 1.18 σ; far above that means a broken pose
    assert 0.3 * sigma < errors["position_error_m_median"] < 2.5 * sigma

    footprints = json.loads((result.out_dir / "frames.geojson").read_text())
    assert len(footprints["features"]) == frames
    assert all(f["geometry"]["type"] == "Polygon" for f in footprints["features"])
    assert json.loads((result.out_dir / "summary.json").read_text()) == summary

    with Catalog.from_settings(settings) as catalog:
        assert len(catalog.frames(summary["batch_id"])) == frames

    again = run_demo(settings, seed=3)  # idempotent: same batch, nothing new stored
    assert again.upload.stored == []
    assert again.summary["frames_ingested"] == frames
