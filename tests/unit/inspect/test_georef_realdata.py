"""Georef on real DJI FC220 photos: footprint size, cross-frame consistency, oblique geometry."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from xunjian.core.camera import footprint_enu
from xunjian.core.geo import latlon_to_en
from xunjian.core.records import Detection, Frame
from xunjian.inspect.georef import georeference, pixel_points
from xunjian.inspect.metadata import extract_metadata
from xunjian.inspect.refine import features, match_pair, refine_flight

pytestmark = pytest.mark.realdata

FC220_SENSOR_W_MM = 6.17  # DJI Mavic Pro 1/2.3" sensor
FC220_FOCAL_MM = 4.73


def _frame(data: Path, name: str) -> Frame:
    path = data / "aerial_vehicles_dji" / "images" / name
    return extract_metadata(path).to_frame(batch_id="real", key=str(path), sha256="")


def _read(frame: Frame) -> np.ndarray:
    pixels = cv2.imread(frame.key)
    assert pixels is not None
    return np.asarray(pixels)


def _spread(a: Frame, b: Frame) -> np.ndarray:
    """Distances (m) between the ground points of features matched in both frames."""
    fa = features(_read(a), a.width)
    fb = features(_read(b), b.width)
    found = match_pair(fa, fb)
    assert found is not None
    pa = pixel_points(a, [(float(u), float(v)) for u, v in found[0]])
    pb = pixel_points(b, [(float(u), float(v)) for u, v in found[1]])
    out = []
    for p, q in zip(pa, pb, strict=True):
        assert not isinstance(p, str) and not isinstance(q, str)
        out.append(math.hypot(*(float(x) for x in latlon_to_en(p[0], p[1], q[0], q[1]))))
    return np.array(out)


@pytest.mark.parametrize("name", ["DJI_0010.JPG", "DJI_0012.JPG"])
def test_nadir_footprint_is_altitude_times_sensor_over_focal(shared_data: Path, name: str) -> None:
    frame = _frame(shared_data, name)
    assert frame.pose is not None and frame.intrinsics is not None
    assert frame.pose.pitch_deg < -89.0
    h = frame.pose.height_m
    across = h * FC220_SENSOR_W_MM / FC220_FOCAL_MM  # ground width of the 4000 px side
    along = across * frame.height / frame.width  # 16:9 crop of the 4:3 sensor
    poly = footprint_enu(frame.pose, frame.intrinsics)
    assert len(poly) == 4
    sides = sorted(np.hypot(*(np.roll(poly, -1, axis=0) - poly).T))
    assert sides[0] == pytest.approx(along, rel=0.01) and sides[1] == pytest.approx(along, rel=0.01)
    assert sides[2] == pytest.approx(across, rel=0.01)
    assert sides[3] == pytest.approx(across, rel=0.01)
    assert 120.0 < across < 140.0  # ≈ 129 m at ≈ 99 m


def test_overlapping_nadir_shots_agree_on_the_ground(shared_data: Path) -> None:
    a, b = _frame(shared_data, "DJI_0010.JPG"), _frame(shared_data, "DJI_0012.JPG")
    spread = _spread(a, b)
    assert len(spread) >= 30
    # Measured: median ≈ 2.0 m, p95 ≈ 2.3 m — within the GPS σ of two fixes (2 m each).
    assert np.median(spread) < 2 * math.hypot(2.0, 2.0)
    report = refine_flight([a, b], _read)
    assert report.pairs_used == 1 and not report.corrections
    assert report.residuals["after_m"] < 0.5  # measured ≈ 0.2 m


def test_oblique_centre_lands_ahead_at_height_over_tan_pitch(shared_data: Path) -> None:
    frame = _frame(shared_data, "DJI_0019.JPG")
    pose = frame.pose
    assert pose is not None and -45.0 < pose.pitch_deg < -35.0
    (point,) = pixel_points(frame, [(frame.width / 2, frame.height / 2)])
    assert not isinstance(point, str)
    lat, lon, sigma = point
    e, n = latlon_to_en(lat, lon, pose.lat, pose.lon)
    ahead = pose.height_m / math.tan(math.radians(-pose.pitch_deg))
    assert math.hypot(e, n) == pytest.approx(ahead, rel=1e-3)
    assert math.degrees(math.atan2(e, n)) == pytest.approx(pose.yaw_deg, abs=0.01)
    assert 2.0 < sigma < 10.0


def test_low_oblique_shot_sees_to_the_range_cap_and_rejects_the_sky(shared_data: Path) -> None:
    frame = _frame(shared_data, "DJI_0030.JPG")  # pitch −19°: the top rows see the horizon
    assert frame.pose is not None and frame.intrinsics is not None
    cap = 4.0 * frame.pose.height_m
    poly = footprint_enu(frame.pose, frame.intrinsics, cap)
    assert np.hypot(*poly.T).max() == pytest.approx(cap, rel=0.01)
    sky = Detection("x", "pothole", 0.5, (1900.0, 0.0, 2100.0, 10.0), "m@1")
    ground = Detection("x", "pothole", 0.5, (1900.0, 2000.0, 2000.0, 2100.0), "m@1")
    obs, rejected = georeference(frame, [sky, ground])
    assert [o.detection for o in obs] == [ground]
    assert rejected[0][0] is sky and rejected[0][1].startswith(("above the horizon", "beyond"))


def test_same_spot_oblique_series_agree_after_refinement(shared_data: Path) -> None:
    names = ["DJI_0019.JPG", "DJI_0020.JPG", "DJI_0031.JPG"]
    frames = [_frame(shared_data, n) for n in names]
    spread = _spread(frames[0], frames[1])
    assert np.median(spread) < 10.0  # measured ≈ 3.3 m (gimbal pitch/yaw and flat ground)
    report = refine_flight(frames, _read)
    assert report.pairs_used >= 2 and not report.corrections
    assert report.residuals["after_m"] < report.residuals["before_m"]
