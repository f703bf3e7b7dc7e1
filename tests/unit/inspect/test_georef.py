"""The georef stage on exact, hand-made frames: ground points project back, rejections say why."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from xunjian.core.camera import ground_enu_to_pixel, project_enu
from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.records import CameraIntrinsics, CameraPose, Detection, Frame, Platform
from xunjian.errors import GeoreferenceError
from xunjian.inspect.georef import anchor_pixels, frame_footprint, georeference, pixel_points

LAT, LON = 29.563, 106.5516
K = CameraIntrinsics(1024, 768, 900.0, 900.0, 512.0, 384.0)


def _frame(
    yaw: float, pitch: float, height: float, platform: Platform = Platform.DRONE, **pose_kw: float
) -> Frame:
    if platform is Platform.VEHICLE:
        pose_kw.setdefault("sigma_h_m", 0.2)  # a fixed mount height, as tracks.pose_at gives
    pose = CameraPose(LAT, LON, height, yaw, pitch, **pose_kw)  # type: ignore[arg-type]
    return Frame("b", f"f{yaw}{pitch}", "", 1024, 768, platform, intrinsics=K, pose=pose)


def _ok(result: tuple[float, float, float] | str) -> tuple[float, float, float]:
    assert not isinstance(result, str), result
    return result


def _pose(yaw: float, pitch: float, height: float) -> CameraPose:
    pose = _frame(yaw, pitch, height).pose
    assert pose is not None
    return pose


def _det(box: tuple[float, float, float, float], cls: str = "pothole") -> Detection:
    return Detection("road_damage", cls, 0.9, box, "m@1")


def _box_around(frame: Frame, e: float, n: float, half: float) -> tuple[float, ...]:
    """Pixel box of a flat square of ground (2·half metres) centred on (e, n)."""
    assert frame.pose is not None
    sq = np.array(
        [[e - half, n - half], [e + half, n - half], [e + half, n + half], [e - half, n + half]]
    )
    uv, _ = ground_enu_to_pixel(frame.pose, K, sq)
    return (uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max())


CASES = [
    (yaw, pitch, height, platform)
    for yaw in (0.0, 90.0, 180.0, -90.0, 37.0)
    for pitch, height, platform in (
        (-90.0, 30.0, Platform.DRONE),
        (-45.0, 30.0, Platform.DRONE),
        (-10.0, 1.6, Platform.VEHICLE),
    )
]


@pytest.mark.parametrize(("yaw", "pitch", "height", "platform"), CASES)
def test_pixels_of_known_ground_points_come_back(
    yaw: float, pitch: float, height: float, platform: Platform
) -> None:
    frame = _frame(yaw, pitch, height, platform)
    assert frame.pose is not None
    psi = math.radians(yaw)
    ahead = 0.0 if pitch == -90.0 else height / math.tan(math.radians(-pitch))
    rng = np.random.default_rng(0)
    for _ in range(5):
        fwd, side = ahead * rng.uniform(0.6, 1.4), rng.uniform(-0.2, 0.2) * max(ahead, height)
        e = fwd * math.sin(psi) + side * math.cos(psi)
        n = fwd * math.cos(psi) - side * math.sin(psi)
        uv, _ = ground_enu_to_pixel(frame.pose, K, [e, n])
        lat, lon, sigma = _ok(pixel_points(frame, [(float(uv[0]), float(uv[1]))])[0])
        ge, gn = latlon_to_en(lat, lon, LAT, LON)
        gsd = math.hypot(math.hypot(e, n), height) / K.fx
        assert math.hypot(ge - e, gn - n) < 0.01 * gsd
        assert sigma >= frame.pose.sigma_xy_m
        # A flat square's box lands on its centre (within a small share of its size).
        obs, rejected = georeference(frame, [_det(_box_around(frame, e, n, 0.4))])  # type: ignore[arg-type]
        assert not rejected
        oe, on = latlon_to_en(obs[0].lat, obs[0].lon, LAT, LON)
        assert math.hypot(oe - e, on - n) < 0.1
        assert obs[0].range_m == pytest.approx(math.hypot(e, n), abs=0.1)


def test_image_top_is_north_and_right_is_east_at_nadir() -> None:
    frame = _frame(0.0, -90.0, 30.0)
    (top, right) = pixel_points(frame, [(512.0, 0.0), (1024.0, 384.0)])
    assert isinstance(top, tuple) and isinstance(right, tuple)
    te, tn = latlon_to_en(top[0], top[1], LAT, LON)
    re_, rn = latlon_to_en(right[0], right[1], LAT, LON)
    assert tn == pytest.approx(384 / 900 * 30, abs=1e-3) and abs(te) < 1e-3
    assert re_ == pytest.approx(512 / 900 * 30, abs=1e-3) and abs(rn) < 1e-3


def test_which_pixel_of_a_box() -> None:
    box = (100.0, 200.0, 140.0, 300.0)
    assert anchor_pixels(_pose(0, -90, 30), box) == [(120.0, 250.0)]
    assert anchor_pixels(_pose(0, -30, 30), box, "spoil_truck") == [(120.0, 300.0)]
    assert anchor_pixels(_pose(0, -30, 30), box, "garbage_pile") == [(120.0, 300.0)]
    assert anchor_pixels(_pose(0, -30, 30), box, "pothole") == [
        (120.0, 300.0),
        (120.0, 200.0),
    ]


def test_truck_in_a_vehicle_view_is_placed_where_it_meets_the_ground() -> None:
    frame = _frame(0.0, -10.0, 1.6, Platform.VEHICLE)
    assert frame.pose is not None
    # A 3 m tall, 2.5 m wide box standing 20 m ahead: its bottom edge is on the ground.
    uv, _ = ground_enu_to_pixel(frame.pose, K, [[-1.25, 20.0], [1.25, 20.0]])
    top = 384.0 - 900.0 * math.tan(math.atan2(3.0 - 1.6, 20.0) + math.radians(10.0))
    obs, _ = georeference(frame, [_det((uv[0, 0], top, uv[1, 0], uv[0, 1]), "spoil_truck")])
    e, n = latlon_to_en(obs[0].lat, obs[0].lon, LAT, LON)
    assert abs(e) < 0.01 and n == pytest.approx(20.0, abs=0.01)
    assert obs[0].sigma_m < 5.0  # its image height is not a ground extent


def test_heap_in_a_vehicle_view_is_placed_at_its_centre_not_its_near_edge() -> None:
    frame = _frame(0.0, -10.0, 1.6, Platform.VEHICLE)
    assert frame.pose is not None
    # A round garbage pile 2 m across and 1 m high, centred 15 m ahead: its box spans from the
    # near edge on the ground to the top of the far side (higher in the image than the ground).
    ring = np.array(
        [[math.cos(a), 15.0 + math.sin(a), z] for a in np.linspace(0, 6.28, 64) for z in (0, 1)]
    )
    uv, _ = project_enu(frame.pose, K, ring)
    box = (uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max())
    (obs,), _ = georeference(frame, [_det(box, "garbage_pile")])
    e, n = latlon_to_en(obs.lat, obs.lon, LAT, LON)
    assert abs(e) < 0.05 and n == pytest.approx(15.0, abs=0.1)
    # As a flat object its top edge would be cast metres behind it.
    (flat,), _ = georeference(frame, [_det(box, "pothole")])
    assert latlon_to_en(flat.lat, flat.lon, LAT, LON)[1] > 17.0


def test_above_horizon_beyond_range_and_sigma_rejected_with_reason() -> None:
    frame = _frame(0.0, -10.0, 1.6, Platform.VEHICLE)
    sky = _det((500.0, 10.0, 520.0, 30.0))
    far = _det((500.0, 300.0, 520.0, 320.0))  # ≈ 22 m ahead
    near = _det((500.0, 500.0, 520.0, 520.0))
    obs, rejected = georeference(frame, [sky, far, near], max_range_m=15.0)
    assert [o.detection for o in obs] == [near]
    reasons = {d.bbox_xyxy: r for d, r in rejected}
    assert reasons[sky.bbox_xyxy].startswith("above the horizon")
    assert reasons[far.bbox_xyxy].startswith("beyond the usable range")
    _, rejected = georeference(frame, [near], max_sigma_m=0.5)
    assert rejected[0][1].startswith("σ too large") and "(mostly " in rejected[0][1]


def test_default_range_cap_is_sixty_metres_for_vehicles() -> None:
    frame = _frame(0.0, -10.0, 1.6, Platform.VEHICLE)
    (point,) = pixel_points(frame, [(512.0, 384.0 - 900.0 * math.tan(math.radians(8.9)))])
    assert isinstance(point, str) and "60.0 m" in point


def test_sigma_grows_with_range_and_yaw_sigma() -> None:
    frame = _frame(0.0, -45.0, 30.0, sigma_yaw_deg=1.0)
    near, far = pixel_points(frame, [(512.0, 700.0), (512.0, 100.0)])
    assert isinstance(near, tuple) and isinstance(far, tuple) and far[2] > near[2]
    loose = replace(frame, pose=replace(frame.pose, sigma_yaw_deg=5.0))  # type: ignore[type-var]
    assert _ok(pixel_points(loose, [(512.0, 100.0)])[0])[2] > far[2]


def test_frame_without_pose_raises_with_reason() -> None:
    frame = Frame("b", "DJI_0001.JPG", "", 1024, 768, problems=("pose: no GPS",))
    with pytest.raises(GeoreferenceError, match=r"DJI_0001.JPG.*no pose and no intrinsics.*no GPS"):
        georeference(frame, [_det((0, 0, 1, 1))])
    with pytest.raises(GeoreferenceError, match="no pose"):
        pixel_points(replace(frame, intrinsics=K), [(1.0, 1.0)])


def test_pixel_outside_the_image_is_refused() -> None:
    (result,) = pixel_points(_frame(0.0, -90.0, 30.0), [(2000.0, 10.0)])
    assert isinstance(result, str) and result.startswith("outside the image")


def test_intrinsics_follow_a_resized_frame() -> None:
    frame = _frame(0.0, -90.0, 30.0)
    half = replace(frame, width=512, height=384)
    full = pixel_points(frame, [(1024.0, 384.0)])[0]
    small = pixel_points(half, [(512.0, 192.0)])[0]
    assert isinstance(full, tuple) and isinstance(small, tuple)
    assert small[:2] == pytest.approx(full[:2], abs=1e-9)


def test_observation_carries_frame_fields() -> None:
    frame = _frame(0.0, -90.0, 30.0)
    (obs,), _ = georeference(frame, [_det((500.0, 370.0, 524.0, 398.0))])
    assert (obs.batch_id, obs.frame_key) == ("b", frame.key)
    assert obs.gsd_m == pytest.approx(30.0 / 900.0, rel=0.01)
    lat, lon = en_to_latlon(0.0, 0.0, LAT, LON)
    assert (obs.lat, obs.lon) == pytest.approx((float(lat), float(lon)), abs=1e-6)


def test_footprint_of_nadir_and_vehicle_frames() -> None:
    ring = frame_footprint(_frame(0.0, -90.0, 30.0))
    en = np.array([latlon_to_en(lat, lon, LAT, LON) for lat, lon in ring])
    assert len(ring) == 4
    assert np.ptp(en[:, 0]) == pytest.approx(1024 / 900 * 30, rel=1e-6)
    assert np.ptp(en[:, 1]) == pytest.approx(768 / 900 * 30, rel=1e-6)
    ahead = frame_footprint(_frame(90.0, -10.0, 1.6, Platform.VEHICLE))
    en = np.array([latlon_to_en(lat, lon, LAT, LON) for lat, lon in ahead])
    assert en[:, 0].min() > 0.0 and np.hypot(en[:, 0], en[:, 1]).max() <= 60.0 * 1.001
    with pytest.raises(GeoreferenceError):
        frame_footprint(Frame("b", "k", "", 10, 10))
