"""The flat-ground pinhole model of specs/georef.md: orientation, round trips, footprints."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xunjian.core import camera
from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.errors import GeoreferenceError

LAT0, LON0 = 29.5630, 106.5516
M3E = CameraIntrinsics(5280, 3956, 12.29 / 17.3 * 5280, 12.29 / 13.0 * 3956, 2640.0, 1978.0)
SMALL = CameraIntrinsics(800, 600, 560.0, 560.0, 401.3, 298.7)


def pose(yaw=0.0, pitch=-90.0, roll=0.0, h=100.0) -> CameraPose:
    return CameraPose(LAT0, LON0, h, yaw, pitch, roll)


def grid(k: CameraIntrinsics, n: int = 9) -> np.ndarray:
    u = np.linspace(0, k.width, n)
    v = np.linspace(0, k.height, n)
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv], axis=-1)


def test_nadir_north_up_orientation() -> None:
    p = pose()
    f, r, d = camera.camera_axes(p)
    np.testing.assert_allclose(f, [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(r, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(d, [0, -1, 0], atol=1e-12)
    k = SMALL
    en, valid = camera.pixel_to_ground_enu(p, k, [[k.cx, 0.0], [k.width, k.cy], [k.cx, k.cy]])
    assert valid.all()
    top, right, centre = en
    assert top[1] > 0 and abs(top[0]) < 1e-9  # image-top = north
    assert right[0] > 0 and abs(right[1]) < 1e-9  # image-right = east
    np.testing.assert_allclose(centre, [0, 0], atol=1e-9)


@pytest.mark.parametrize("yaw", [0.0, 90.0, 180.0, 270.0, 37.5, -123.0])
def test_yaw_turns_image_top_to_heading(yaw: float) -> None:
    k = SMALL
    en, valid = camera.pixel_to_ground_enu(pose(yaw=yaw), k, [k.cx, 0.0])
    assert valid
    heading = math.degrees(math.atan2(en[0], en[1])) % 360
    assert heading == pytest.approx(yaw % 360, abs=1e-9)


def test_oblique_forward_is_along_yaw() -> None:
    k = SMALL
    p = pose(yaw=90.0, pitch=-30.0, h=50.0)
    en, valid = camera.pixel_to_ground_enu(p, k, [k.cx, k.cy])
    assert valid
    assert en[0] == pytest.approx(50.0 / math.tan(math.radians(30.0)))
    assert en[1] == pytest.approx(0.0, abs=1e-9)


CASES = [
    (yaw, pitch, roll, h)
    for yaw in (0.0, 90.0, 180.0, 270.0, 213.7)
    for (pitch, h) in ((-90.0, 100.0), (-45.0, 80.0), (-30.0, 60.0), (-10.0, 1.6))
    for roll in (0.0, 4.0)
]


@pytest.mark.parametrize(("yaw", "pitch", "roll", "h"), CASES)
def test_pixel_ground_pixel_round_trip(yaw: float, pitch: float, roll: float, h: float) -> None:
    for k in (SMALL, M3E):
        p = pose(yaw, pitch, roll, h)
        uv = grid(k).reshape(-1, 2)
        en, valid = camera.pixel_to_ground_enu(p, k, uv)
        assert valid.any()
        back, front = camera.ground_enu_to_pixel(p, k, en[valid])
        assert front.all()
        assert np.max(np.abs(back - uv[valid])) < 1e-6
        # The homography agrees with the point projection.
        hmat = camera.ground_homography(p, k)
        w = (hmat @ np.column_stack([en[valid], np.ones(valid.sum())]).T).T
        assert (w[:, 2] > 0).all()
        assert np.max(np.abs(w[:, :2] / w[:, 2:] - uv[valid])) < 1e-6


@pytest.mark.parametrize("yaw", [0.0, 90.0, 180.0, 270.0, 311.0])
def test_latlon_round_trip(yaw: float) -> None:
    k = SMALL
    p = pose(yaw=yaw, pitch=-40.0, h=70.0)
    uv = grid(k, 7).reshape(-1, 2)[20:]  # lower part: below the horizon
    ll, valid = camera.pixel_to_latlon(p, k, uv)
    assert valid.all()
    back, front = camera.latlon_to_pixel(p, k, ll)
    assert front.all()
    assert np.max(np.abs(back - uv)) < 1e-5


def test_rays_above_horizon_are_invalid() -> None:
    k = SMALL
    p = pose(pitch=-10.0, h=1.6)
    en, valid = camera.pixel_to_ground_enu(p, k, [[k.cx, 0.0], [k.cx, k.height]])
    assert not valid[0] and np.isnan(en[0]).all()
    assert valid[1]
    # A ground point behind the camera is flagged, not projected.
    uv, front = camera.ground_enu_to_pixel(p, k, [[0.0, -5.0], [0.0, 5.0]])
    assert not front[0] and np.isnan(uv[0]).all()
    assert front[1]


def test_max_range_marks_far_pixels_invalid() -> None:
    k = SMALL
    p = pose(pitch=-5.0, h=1.6)
    _en, valid = camera.pixel_to_ground_enu(p, k, [k.cx, k.cy + 5], max_range_m=10.0)
    assert not valid


def test_roll_rotates_about_forward_axis() -> None:
    f0, r0, d0 = camera.camera_axes(pose(yaw=30, pitch=-60))
    f1, r1, d1 = camera.camera_axes(pose(yaw=30, pitch=-60, roll=90))
    np.testing.assert_allclose(f1, f0, atol=1e-12)
    np.testing.assert_allclose(r1, d0, atol=1e-12)
    np.testing.assert_allclose(d1, -r0, atol=1e-12)
    rot = camera.camera_rotation(pose(yaw=30, pitch=-60, roll=7))
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)


@pytest.mark.parametrize("h", [30.0, 100.0])
def test_nadir_footprint_width(h: float) -> None:
    k = M3E
    fp = camera.footprint_enu(pose(h=h), k)
    hfov = 2 * math.atan(k.width / 2 / k.fx)
    vfov = 2 * math.atan(k.height / 2 / k.fy)
    assert np.ptp(fp[:, 0]) == pytest.approx(2 * h * math.tan(hfov / 2), rel=1e-9)
    assert np.ptp(fp[:, 1]) == pytest.approx(2 * h * math.tan(vfov / 2), rel=1e-9)
    assert camera.polygon_area(fp) == pytest.approx(np.ptp(fp[:, 0]) * np.ptp(fp[:, 1]))


def test_oblique_footprint_is_clipped_to_range() -> None:
    k = SMALL
    p = pose(yaw=90.0, pitch=-10.0, h=1.6)
    fp = camera.footprint_enu(p, k, max_range_m=60.0)
    assert len(fp) >= 3
    dist = np.hypot(fp[:, 0], fp[:, 1])
    assert dist.max() <= 60.0 / math.cos(math.pi / 72) + 1e-9
    assert dist.max() > 55.0
    assert fp[:, 0].min() > 0  # everything lies ahead (east)
    ll = camera.footprint_latlon(p, k, 60.0)
    assert ll.shape == fp.shape


def test_footprint_empty_when_looking_up() -> None:
    assert camera.footprint_enu(pose(pitch=30.0, h=10.0), SMALL).shape == (0, 2)


def test_bad_height_is_a_clear_error() -> None:
    with pytest.raises(GeoreferenceError, match="height"):
        camera.pixel_to_ground_enu(pose(h=0.0), SMALL, [1.0, 2.0])


def test_bad_shape_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        camera.pixel_to_ground_enu(pose(), SMALL, [1.0, 2.0, 3.0])


def test_footprint_of_a_pixel_region() -> None:
    """The lower half of a north-up nadir image sees the ground south of the camera."""
    k = SMALL
    half = [[0.0, k.cy], [k.width, k.cy], [k.width, k.height], [0.0, k.height]]
    fp = camera.footprint_enu(pose(h=50.0), k, region=half)
    full = camera.footprint_enu(pose(h=50.0), k)
    assert fp[:, 1].max() == pytest.approx(0.0, abs=1e-9)
    assert camera.polygon_area(fp) == pytest.approx(camera.polygon_area(full) / 2, rel=1e-2)
