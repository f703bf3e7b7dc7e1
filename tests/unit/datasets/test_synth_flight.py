"""Whole flights: deterministic files, the documented layout, metadata that decodes back to
the noisy pose, overlapping small surveys, vehicle runs with a GPX track."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from xunjian.core import camera
from xunjian.core.records import CameraPose
from xunjian.datasets.synth.flight import FlightTruth, make_small_flight, render_flight
from xunjian.datasets.synth.noise import EXACT, PoseNoise
from xunjian.datasets.synth.plans import CAMERAS, plan_survey, plan_vehicle_run
from xunjian.datasets.synth.world import World
from xunjian.inspect.metadata import extract_metadata


@cache
def world() -> World:
    """One world per module (generating one takes about half a second)."""
    return World.generate(11)


AREA = (-12.0, -12.0, 12.0, 12.0)


def tiny_plan() -> list:
    return plan_survey(world(), area=AREA, cam=CAMERAS["tiny"], height_m=30.0)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny_flight(tmp_path_factory: pytest.TempPathFactory) -> FlightTruth:
    out = tmp_path_factory.mktemp("flight")
    return render_flight(world(), tiny_plan(), out, seed=4)


def test_layout_is_as_documented(tiny_flight: FlightTruth) -> None:
    root = tiny_flight.out_dir
    assert root is not None
    names = set(files(root))
    assert {
        "flight.json",
        "truth/world.json",
        "truth/targets.geojson",
        "truth/frames.json",
    } <= names
    images = sorted(n for n in names if n.startswith("images/"))
    assert len(images) == len(tiny_flight.frames) >= 6
    assert all(n.endswith(".jpg") for n in images)
    doc = json.loads((root / "truth" / "frames.json").read_text())
    assert doc["format"] == "xunjian.synth.frames/1"
    frame = doc["frames"][0]
    assert {"image", "pose", "intrinsics", "tags", "targets", "captured_at", "t_s"} <= set(frame)
    assert {"lat", "lon", "height_m", "yaw_deg", "pitch_deg", "roll_deg"} <= set(frame["pose"])
    summary = json.loads((root / "flight.json").read_text())
    assert summary["frames"] == len(images)
    loaded = FlightTruth.load(root)
    assert loaded.world == tiny_flight.world
    assert [f.image for f in loaded.frames] == images


def test_same_seed_gives_byte_identical_files(tiny_flight: FlightTruth, tmp_path: Path) -> None:
    assert tiny_flight.out_dir is not None
    again = render_flight(world(), tiny_plan(), tmp_path / "again", seed=4)
    assert again.out_dir is not None
    assert files(again.out_dir) == files(tiny_flight.out_dir)
    other = render_flight(world(), tiny_plan()[:2], tmp_path / "other", seed=5)
    assert other.out_dir is not None
    a, b = files(other.out_dir), files(tiny_flight.out_dir)
    first = tiny_flight.frames[0].image
    assert a[first] != b[first]  # other seed: other noise, blur, exposure


def test_metadata_decodes_back_to_the_noisy_pose(tiny_flight: FlightTruth) -> None:
    assert tiny_flight.out_dir is not None
    errors = []
    for frame in tiny_flight.frames:
        meta = extract_metadata(tiny_flight.out_dir / frame.image)
        tags, exact = frame.tags, frame.pose
        assert meta.pose is not None and meta.intrinsics is not None, meta.problems
        assert meta.pose.lat == pytest.approx(tags["lat"], abs=1e-8)
        assert meta.pose.lon == pytest.approx(tags["lon"], abs=1e-8)
        assert meta.pose.height_m == pytest.approx(tags["rel_alt_m"], abs=0.01)
        assert meta.pose.yaw_deg == pytest.approx(tags["gimbal_yaw_deg"], abs=0.01)
        assert meta.pose.pitch_deg == pytest.approx(tags["gimbal_pitch_deg"], abs=0.01)
        assert meta.captured_at == datetime.fromisoformat(frame.captured_at)
        k = frame.intrinsics
        assert meta.intrinsics.fx == pytest.approx(k["fx"], rel=1e-6)
        assert meta.intrinsics.fy == pytest.approx(k["fy"], rel=1e-6)
        errors.append(camera_distance(exact, meta.pose))
    # Like a real GPS: off by a metre or two, never by tens of metres.
    assert 0.05 < float(np.median(errors)) < 6.0


def camera_distance(a: dict, b: CameraPose) -> float:
    from xunjian.core.geo import latlon_to_en

    e, n = latlon_to_en(b.lat, b.lon, a["lat"], a["lon"])
    return float(np.hypot(e, n))


def test_exact_noise_writes_the_exact_pose(tmp_path: Path) -> None:
    plan = tiny_plan()[:2]
    truth = render_flight(world(), plan, tmp_path, seed=1, noise=EXACT)
    for frame in truth.frames:
        meta = extract_metadata(tmp_path / frame.image)
        assert meta.pose is not None
        assert camera_distance(frame.pose, meta.pose) < 0.001
        assert meta.pose.yaw_deg == pytest.approx(frame.pose["yaw_deg"], abs=0.006)


def test_flipped_reverse_legs_reproduce_the_dji_yaw_fault(tmp_path: Path) -> None:
    noise = PoseNoise(flip_reverse_legs=True, yaw_sigma_deg=0.0)
    truth = render_flight(world(), tiny_plan(), tmp_path, seed=1, noise=noise)
    legs = {f.pose["yaw_deg"] for f in truth.frames}
    assert len(legs) == 2  # out and back
    for f in truth.frames:
        assert f.tags["gimbal_yaw_deg"] == pytest.approx(truth.frames[0].pose["yaw_deg"], abs=1e-6)


def _pose(p: dict) -> CameraPose:
    return CameraPose(p["lat"], p["lon"], p["height_m"], p["yaw_deg"], p["pitch_deg"])


def overlap(pose_a: dict, pose_b: dict, k) -> float:
    w = world()
    pa, pb = (
        CameraPose(**{f: p[f] for f in ("lat", "lon", "height_m", "yaw_deg", "pitch_deg")})
        for p in (pose_a, pose_b)
    )
    fa = w.to_en(camera.footprint_latlon(pa, k))
    fb = w.to_en(camera.footprint_latlon(pb, k))
    inter = camera.clip_convex(fa, fb)
    return camera.polygon_area(inter) / camera.polygon_area(fa)


@pytest.mark.slow
def test_small_flight_is_what_the_demo_needs(tmp_path: Path) -> None:
    """≥ 20 frames, ≥ 60 % overlap, several targets of every class; rendered in seconds."""
    truth = make_small_flight(tmp_path, seed=2)
    assert len(truth.frames) >= 20
    k = CAMERAS["small"].intrinsics()
    frames = truth.frames
    forward = [
        overlap(a.pose, b.pose, k)
        for a, b in itertools.pairwise(frames)
        if a.pose["yaw_deg"] == b.pose["yaw_deg"]
    ]
    assert min(forward) >= 0.6
    # Side overlap: each photo against the nearest photo of the next leg.
    side = []
    for a in frames:
        others = [b for b in frames if b.pose["yaw_deg"] != a.pose["yaw_deg"]]
        nearest = min(others, key=lambda b: camera_distance(a.pose, _pose(b.pose)))
        side.append(overlap(a.pose, nearest.pose, k))
    assert min(side) >= 0.59
    counts = truth.class_counts()
    assert len(counts) == 8 and min(counts.values()) >= 2, counts
    assert (tmp_path / "truth" / "frames.json").is_file()


def test_vehicle_run_writes_a_gpx_track_the_pipeline_reads(tmp_path: Path) -> None:
    from xunjian.inspect.tracks import VehicleMount, load_track

    w = world()
    plan = plan_vehicle_run(w, cam=CAMERAS["tiny"], every_m=10.0, length_m=40.0)
    truth = render_flight(w, plan, tmp_path, seed=3, kind="vehicle")
    assert all(f.platform == "vehicle" for f in truth.frames)
    assert any(f.targets for f in truth.frames)
    track = load_track(tmp_path / "track.gpx")
    mount = VehicleMount(height_m=1.6, pitch_deg=-10.0)
    for frame in truth.frames:
        pose = track.pose_at(datetime.fromisoformat(frame.captured_at), mount)
        assert camera_distance(frame.pose, pose) < 8.0
        turn = (pose.yaw_deg - frame.pose["yaw_deg"] + 180.0) % 360.0 - 180.0
        assert abs(turn) < 15.0
