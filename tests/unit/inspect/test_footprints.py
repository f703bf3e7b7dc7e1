"""Frame footprints as GeoJSON, checked against altitude and focal length."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from xunjian.core.geo import latlon_to_en
from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Platform
from xunjian.inspect.footprints import frame_feature, frames_geojson
from xunjian.inspect.metadata import extract_metadata


def _frame(pose: CameraPose | None, platform: Platform = Platform.DRONE) -> Frame:
    k = CameraIntrinsics(4000, 3000, 3000.0, 3000.0, 2000.0, 1500.0)
    return Frame("b", "raw/b/x.jpg", "0" * 64, 4000, 3000, platform, intrinsics=k, pose=pose)


def _extent_m(feature: dict) -> tuple[float, float]:
    ring = feature["geometry"]["coordinates"][0]
    lat0, lon0 = ring[0][1], ring[0][0]
    east, north = latlon_to_en([p[1] for p in ring], [p[0] for p in ring], lat0, lon0)
    return float(east.max() - east.min()), float(north.max() - north.min())


def test_nadir_footprint_matches_altitude_and_focal_length() -> None:
    pose = CameraPose(29.56, 106.55, height_m=100.0, yaw_deg=0.0, pitch_deg=-90.0)
    feature = frame_feature(_frame(pose))
    assert feature["geometry"]["type"] == "Polygon"
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1]
    width, depth = _extent_m(feature)
    assert width == pytest.approx(100.0 * 4000 / 3000, rel=1e-3)  # h · W / f
    assert depth == pytest.approx(100.0 * 3000 / 3000, rel=1e-3)


def test_oblique_and_vehicle_footprints_are_cut_at_their_usable_range() -> None:
    oblique = CameraPose(29.56, 106.55, height_m=50.0, yaw_deg=90.0, pitch_deg=-20.0)
    width, depth = _extent_m(frame_feature(_frame(oblique)))
    assert width <= 2 * 4 * 50.0 + 1.0
    vehicle = CameraPose(29.56, 106.55, height_m=1.6, yaw_deg=0.0, pitch_deg=-10.0)
    width, depth = _extent_m(frame_feature(_frame(vehicle, Platform.VEHICLE)))
    assert depth <= 60.0 + 0.5


def test_frames_without_pose_keep_their_problems_and_no_geometry() -> None:
    frame = Frame("b", "raw/b/y.jpg", "0" * 64, 10, 10, problems=("pose: no GPS",))
    collection = frames_geojson([frame])
    (feature,) = collection["features"]
    assert feature["geometry"] is None
    assert feature["properties"]["problems"] == ["pose: no GPS"]


@pytest.mark.realdata
def test_real_dji_nadir_footprint_size(shared_data: Path) -> None:
    meta = extract_metadata(shared_data / "aerial_vehicles_dji/images/DJI_0012.JPG")
    frame = meta.to_frame(batch_id="b", key="k", sha256="0" * 64)
    assert frame.pose is not None and frame.intrinsics is not None
    width, depth = _extent_m(frame_feature(frame))
    k, h = frame.intrinsics, frame.pose.height_m
    # gimbal yaw 37.1°: the footprint rectangle is rotated, so compare its diagonal
    expected = h * math.hypot(k.width / k.fx, k.height / k.fy)
    yaw = math.radians(frame.pose.yaw_deg)
    ground_w, ground_h = h * k.width / k.fx, h * k.height / k.fy
    assert width == pytest.approx(
        abs(ground_w * math.cos(yaw)) + abs(ground_h * math.sin(yaw)), rel=0.01
    )
    assert depth == pytest.approx(
        abs(ground_w * math.sin(yaw)) + abs(ground_h * math.cos(yaw)), rel=0.01
    )
    # independently: 99 m up, a 6.17 mm wide sensor behind a 4.73 mm lens
    assert ground_w == pytest.approx(99.0 * 6.17 / 4.73, rel=0.005)
    assert expected == pytest.approx(math.hypot(ground_w, ground_h))


def test_batch_bbox_covers_every_footprint_and_nothing_without_pose() -> None:
    from xunjian.inspect.pipeline import batch_bbox

    near = CameraPose(29.56, 106.55, height_m=100.0, yaw_deg=0.0, pitch_deg=-90.0)
    far = CameraPose(29.57, 106.56, height_m=100.0, yaw_deg=0.0, pitch_deg=-90.0)
    frames = [_frame(near), _frame(far)]
    bbox = batch_bbox(frames)
    assert bbox is not None
    for feature in frame_feature(frames[0]), frame_feature(frames[1]):
        for lon, lat in feature["geometry"]["coordinates"][0]:
            assert bbox[0] < lon < bbox[2] and bbox[1] < lat < bbox[3]
    assert bbox[2] - bbox[0] < 0.02  # tight: ~1 km of longitude, not the whole city
    assert batch_bbox([Frame("b", "k", "0" * 64, 10, 10)]) is None
