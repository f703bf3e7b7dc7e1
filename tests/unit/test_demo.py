"""The embedded-default main job, end to end on a test-range flight with the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xunjian.demo import run_demo
from xunjian.settings import Settings
from xunjian.storage.catalog import Catalog

pytestmark = pytest.mark.slow


def test_demo_runs_every_stage_and_scores_against_truth(settings: Settings) -> None:
    result = run_demo(settings, seed=3)
    summary = result.summary
    frames = summary["truth"]["frames"]
    assert frames >= 20
    assert summary["frames"] == frames
    assert summary["frames_with_pose"] == frames
    assert summary["frames_failed"] == 0
    assert summary["detectors"], "at least one shipped detector must run"
    assert set(summary["detectors"]) | set(summary["detectors_missing"]) == {
        "road_damage",
        "illegal_dumping",
        "spoil_truck",
    }
    scored = summary["issues_vs_truth"]
    assert scored["targets_visible"] > 10
    assert scored["issues"] == summary["issues_new"] - summary["events_vs_truth"]["issues"]
    for key in ("precision", "recall"):
        assert scored[key] is None or 0.0 <= scored[key] <= 1.0

    errors = summary["metadata_vs_truth"]
    assert errors["compared_frames"] == frames
    sigma = summary["injected_noise"]["gps_sigma_m"]
    # per-axis σ: the 2-D error's median is about 1.18 σ; far above that means a broken pose
    assert 0.3 * sigma < errors["position_error_m_median"] < 2.5 * sigma

    outputs = summary["outputs"]
    footprints = json.loads(Path(outputs["frames.geojson"]).read_text())
    assert len(footprints["features"]) == frames
    assert all(f["geometry"]["type"] == "Polygon" for f in footprints["features"])
    issues = json.loads(Path(outputs["issues.geojson"]).read_text())
    assert len(issues["features"]) == summary["issues_new"]
    assert "<svg" in Path(outputs["report.html"]).read_text(encoding="utf-8")
    assert json.loads((result.out_dir / "summary.json").read_text()) == summary

    with Catalog.from_settings(settings) as catalog:
        assert len(catalog.frames(summary["batch_id"])) == frames

    again = run_demo(settings, seed=3)  # idempotent: same batch, nothing new anywhere
    assert again.upload.stored == []
    assert again.summary["issues_new"] == 0
