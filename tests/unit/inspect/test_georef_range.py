"""Georef on the synthetic test range: exact metadata ≪ GSD, noisy metadata ≈ the injected σ.

Each frame's metadata is read back from its JPEG (vehicle frames: GPX track + mount), each
flat target's truth box goes through ``georeference`` and lands next to its true centre.
"""

from __future__ import annotations

from typing import Any

import pytest

from xunjian.bench.georef import flight_errors, pipeline_frames, render_case
from xunjian.datasets.synth import EXACT, PoseNoise, World

pytestmark = pytest.mark.slow

NOISE = PoseNoise()


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    world = World.generate(11)
    root = tmp_path_factory.mktemp("georef-range")
    out = {}
    for kind in ("nadir", "oblique", "vehicle"):
        for label, noise in (("exact", EXACT), ("noisy", NOISE)):
            truth = render_case(
                kind, root / f"{kind}-{label}", seed=11, noise=noise, world=world, quick=True
            )
            out[kind, label] = flight_errors(truth, pipeline_frames(truth, NOISE.gps_sigma_m))
    return out


@pytest.mark.parametrize("kind", ["nadir", "oblique", "vehicle"])
def test_exact_metadata_projects_back_far_below_the_gsd(
    figures: dict[tuple[str, str], dict[str, Any]], kind: str
) -> None:
    f = figures[kind, "exact"]
    assert f["n"] >= 10 and f["rejected"] == 0
    # The truth's centre pixel comes back to the centre: pure geometry, ≪ 1 px on the ground.
    assert f["point_median_m"] < 0.05 * f["median_gsd_m"]
    # A box stands for its object within a few pixels (box centre ≠ outline centre).
    assert f["median_m"] < 3.0 * f["median_gsd_m"]


@pytest.mark.parametrize("kind", ["nadir", "oblique", "vehicle"])
def test_noisy_metadata_error_is_near_the_injected_sigma(
    figures: dict[tuple[str, str], dict[str, Any]], kind: str
) -> None:
    f = figures[kind, "noisy"]
    assert 0.3 * NOISE.gps_sigma_m <= f["median_m"] <= 2.5 * NOISE.gps_sigma_m
    assert f["within_2sigma"] >= 0.8  # σ is calibrated (or conservative)
    assert f["median_sigma_m"] >= NOISE.gps_sigma_m
