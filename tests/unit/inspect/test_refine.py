"""Pose refinement from overlap on synthetic surveys: 180° yaw flips fixed, frames tightened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from xunjian.bench.georef import flight_errors, pipeline_frames, render_case
from xunjian.core.records import Frame
from xunjian.datasets.synth import FlightTruth, PoseNoise, World
from xunjian.inspect.refine import refine_flight

pytestmark = pytest.mark.slow


def _loader(root: Path) -> Callable[[Frame], np.ndarray]:
    def image(frame: Frame) -> np.ndarray:
        pixels = cv2.imread(str(root / frame.key))
        assert pixels is not None
        return pixels

    return image


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(11)


@pytest.fixture(scope="module")
def flipped(world: World, tmp_path_factory: pytest.TempPathFactory) -> FlightTruth:
    out = tmp_path_factory.mktemp("flip")
    return render_case(
        "nadir", out, seed=11, noise=PoseNoise(flip_reverse_legs=True), world=world, quick=True
    )


@pytest.fixture(scope="module")
def plain(world: World, tmp_path_factory: pytest.TempPathFactory) -> FlightTruth:
    out = tmp_path_factory.mktemp("plain")
    return render_case("nadir", out, seed=12, noise=PoseNoise(), world=world, quick=True)


def test_reverse_legs_with_yaw_off_by_180_are_corrected_and_reported(flipped: FlightTruth) -> None:
    assert flipped.out_dir is not None
    frames = pipeline_frames(flipped, 1.5)
    bad = {
        ft.image
        for ft in flipped.frames
        if abs((ft.tags["gimbal_yaw_deg"] - ft.pose["yaw_deg"] + 180) % 360 - 180) > 90
    }
    assert bad and len(bad) < len(frames)
    report = refine_flight(frames, _loader(flipped.out_dir))
    fixed = {key for key, what, _ in report.corrections if what == "yaw +180°"}
    assert fixed == bad
    assert all("180°" in why for _, what, why in report.corrections if what == "yaw +180°")
    assert report.pairs_used >= len(frames) - 1
    assert report.residuals["after_m"] < 0.2 < 5.0 < report.residuals["before_m"]
    for frame, ft in zip(report.frames, flipped.frames, strict=True):
        assert frame.pose is not None
        assert abs((frame.pose.yaw_deg - ft.pose["yaw_deg"] + 180) % 360 - 180) < 2.0
    before, after = flight_errors(flipped, frames), flight_errors(flipped, report.frames)
    assert after["median_m"] <= before["median_m"] and after["p95_m"] <= before["p95_m"]
    assert after["p95_m"] < 4.0 < 10.0 < before["p95_m"]
    assert after["spread_median_m"] < 0.1


def test_plain_noise_is_tightened_without_false_corrections(plain: FlightTruth) -> None:
    assert plain.out_dir is not None
    frames = pipeline_frames(plain, 1.5)
    report = refine_flight(frames, _loader(plain.out_dir))
    assert not [c for c in report.corrections if c[1] == "yaw +180°"]
    assert report.residuals["after_m"] < 0.5 * report.residuals["before_m"]
    before, after = flight_errors(plain, frames), flight_errors(plain, report.frames)
    assert after["spread_median_m"] < before["spread_median_m"]
    # Absolute accuracy stays that of the GPS mean: no worse than before (small tolerance).
    assert after["median_m"] <= 1.2 * before["median_m"]


def test_a_single_flipped_frame_is_found(plain: FlightTruth) -> None:
    assert plain.out_dir is not None
    frames = pipeline_frames(plain, 1.5)
    pose = frames[2].pose
    assert pose is not None
    frames[2] = replace(frames[2], pose=replace(pose, yaw_deg=pose.yaw_deg + 180.0))
    report = refine_flight(frames, _loader(plain.out_dir), adjust=False)
    assert [(k, w) for k, w, _ in report.corrections] == [(frames[2].key, "yaw +180°")]


def test_frames_without_pose_pass_through(plain: FlightTruth) -> None:
    assert plain.out_dir is not None
    frames = pipeline_frames(plain, 1.5)[:3]
    frames[1] = replace(frames[1], pose=None)
    report = refine_flight(frames, _loader(plain.out_dir))
    assert report.frames[1] is frames[1]
    lone = refine_flight(frames[:1], _loader(plain.out_dir))
    assert lone.frames == frames[:1] and lone.pairs_used == 0 and not lone.corrections
