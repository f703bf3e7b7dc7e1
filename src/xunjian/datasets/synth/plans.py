"""Where the cameras go: real camera presets, drone survey plans, vehicle runs, pose lists.

A :class:`ShotPlan` is one photo to take: the exact pose (the truth), the time, the camera.
:func:`plan_survey` flies a lawn-mower pattern over an area at a height with forward/side
overlap and a speed (nadir or oblique; the gimbal faces the direction of travel, so reverse
legs have yaw + 180° as on DJI surveys); :func:`plan_vehicle_run` drives a road's right-hand
lane with a forward camera; :func:`plan_from_poses` takes explicit poses.

May import: numpy, the standard library, ``xunjian.core`` and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from xunjian.core import camera
from xunjian.core.records import CameraIntrinsics, CameraPose, Platform
from xunjian.datasets.synth import geom
from xunjian.datasets.synth.world import World

LANE_M = 3.5


@dataclass(frozen=True)
class CameraModel:
    """A camera as its EXIF describes it. ``calibrated``: DJI writes CalibratedFocalLength
    (then fx = fy = that); otherwise the pipeline derives fx, fy from the sensor size."""

    name: str
    make: str
    model: str
    width: int
    height: int
    sensor_w_mm: float
    sensor_h_mm: float
    focal_mm: float
    focal_35mm: int
    calibrated: bool = False

    def intrinsics(self) -> CameraIntrinsics:
        fx = self.focal_mm / self.sensor_w_mm * self.width
        fy = fx if self.calibrated else self.focal_mm / self.sensor_h_mm * self.height
        source = "xmp_calibrated" if self.calibrated else "exif_sensor_table"
        return CameraIntrinsics(
            self.width, self.height, fx, fy, self.width / 2, self.height / 2, source
        )

    def resized(self, width: int, height: int, name: str) -> CameraModel:
        """The same camera saving smaller images (same sensor, lens and EXIF model)."""
        return replace(self, name=name, width=width, height=height, calibrated=False)


M3E = CameraModel("M3E", "DJI", "M3E", 5280, 3956, 17.3, 13.0, 12.29, 24, calibrated=True)
FC220 = CameraModel("FC220", "DJI", "FC220", 4000, 3000, 6.17, 4.55, 4.73, 26)
CAMERAS: dict[str, CameraModel] = {
    "M3E": M3E,
    "FC220": FC220,
    "small": M3E.resized(1024, 768, "small"),
    "tiny": M3E.resized(320, 240, "tiny"),
    "dashcam": CameraModel("dashcam", "XUNJIAN", "PATROL-CAM", 1024, 768, 6.17, 4.55, 3.6, 20),
}


def camera_preset(name: str) -> CameraModel:
    try:
        return CAMERAS[name]
    except KeyError:
        raise KeyError(f"unknown camera {name!r}; expected one of {', '.join(CAMERAS)}") from None


@dataclass(frozen=True)
class ShotPlan:
    """One photo: exact pose (truth), capture time, camera; ``course_deg`` is the platform's
    heading (FlightYawDegree for drones); ``leg`` counts survey legs (or 0)."""

    name: str
    pose: CameraPose
    captured_at: datetime
    camera: CameraModel
    platform: Platform
    course_deg: float
    leg: int = 0


def _wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0


def exact_pose(
    lat: float, lon: float, height_m: float, yaw_deg: float, pitch_deg: float, ground_alt_m: float
) -> CameraPose:
    """Where the camera really was: the truth, so its σ fields are zero."""
    return CameraPose(
        float(lat),
        float(lon),
        height_m,
        _wrap(yaw_deg),
        pitch_deg,
        0.0,
        abs_alt_m=ground_alt_m + height_m,
        sigma_xy_m=0.0,
        sigma_h_m=0.0,
        sigma_yaw_deg=0.0,
        source="synthetic_exact",
    )


def _ms(moment: datetime) -> datetime:
    """Rounded to the millisecond, as cameras record it (EXIF SubSecTime)."""
    micro = round(moment.microsecond / 1000) * 1000
    return moment.replace(microsecond=0) + timedelta(microseconds=micro)


def _extent(cam: CameraModel, height_m: float, pitch_deg: float) -> tuple[float, float]:
    """Ground extent (along the view direction, across it) of one photo, clipped at 4 h."""
    fp = camera.footprint_enu(CameraPose(0.0, 0.0, height_m, 0.0, pitch_deg), cam.intrinsics())
    return float(np.ptp(fp[:, 1])), float(np.ptp(fp[:, 0]))


def plan_survey(
    world: World,
    *,
    area: tuple[float, float, float, float] | None = None,
    cam: CameraModel = CAMERAS["small"],
    height_m: float = 35.0,
    forward_overlap: float = 0.7,
    side_overlap: float = 0.65,
    speed_mps: float = 5.0,
    pitch_deg: float = -90.0,
    heading_deg: float = 0.0,
    start: datetime | None = None,
    turn_s: float = 8.0,
) -> list[ShotPlan]:
    """A lawn-mower survey over ``area`` (E0, N0, E1, N1 world metres; default the focus)."""
    if not (0.0 <= forward_overlap < 1.0 and 0.0 <= side_overlap < 1.0):
        raise ValueError(f"overlaps must lie in [0, 1), got {forward_overlap}, {side_overlap}")
    e0, n0, e1, n1 = area if area is not None else world.focus
    along, across = _extent(cam, height_m, pitch_deg)
    step_a, step_b = along * (1 - forward_overlap), across * (1 - side_overlap)
    corners = np.array([[e0, n0], [e1, n0], [e1, n1], [e0, n1]])
    local = geom.world_to_local(corners, (0.0, 0.0), heading_deg)
    a0, b0 = local.min(axis=0)
    a1, b1 = local.max(axis=0)
    n_a = max(1, math.ceil((a1 - a0) / step_a)) + 1
    n_b = max(1, math.ceil((b1 - b0) / step_b)) + 1
    a_pos = a0 + (np.arange(n_a) - (n_a - 1) / 2) * step_a + (a1 - a0) / 2
    b_pos = b0 + (np.arange(n_b) - (n_b - 1) / 2) * step_b + (b1 - b0) / 2
    moment = start if start is not None else world.epoch_time + timedelta(minutes=30)
    plans: list[ShotPlan] = []
    previous: np.ndarray | None = None
    for leg, b in enumerate(b_pos):
        order = a_pos if leg % 2 == 0 else a_pos[::-1]
        course = heading_deg if leg % 2 == 0 else heading_deg + 180.0
        for a in order:
            en = geom.local_to_world(np.array([[a, b]]), (0.0, 0.0), heading_deg)[0]
            if previous is not None:
                moment += timedelta(seconds=float(np.hypot(*(en - previous))) / speed_mps)
                if plans and plans[-1].leg != leg:
                    moment += timedelta(seconds=turn_s)
            previous = en
            lat, lon = world.to_latlon(en[None])[0]
            pose = exact_pose(lat, lon, height_m, course, pitch_deg, world.ground_alt_m)
            plans.append(
                ShotPlan(
                    f"DJI_{len(plans) + 1:04d}.jpg",
                    pose,
                    _ms(moment),
                    cam,
                    Platform.DRONE,
                    _wrap(course),
                    leg,
                )
            )
    return plans


def plan_from_poses(
    world: World,
    poses: Sequence[CameraPose],
    *,
    cam: CameraModel = CAMERAS["small"],
    start: datetime | None = None,
    interval_s: float = 2.0,
    platform: Platform = Platform.DRONE,
) -> list[ShotPlan]:
    """Explicit poses, one photo each, ``interval_s`` apart."""
    moment = start if start is not None else world.epoch_time + timedelta(minutes=30)
    prefix = "DJI" if platform is Platform.DRONE else "CAM"
    return [
        ShotPlan(
            f"{prefix}_{i + 1:04d}.jpg",
            p,
            _ms(moment + timedelta(seconds=i * interval_s)),
            cam,
            platform,
            p.yaw_deg,
        )
        for i, p in enumerate(poses)
    ]


def vehicle_path(world: World, road_id: str | None = None) -> tuple[np.ndarray, float]:
    """The right-hand outer lane of a road (default the first main road) and its length."""
    roads = (
        [r for r in world.roads if r.id == road_id]
        if road_id
        else [r for r in world.roads if r.main]
    )
    if not roads:
        raise KeyError(
            f"no road {road_id!r}; expected one of {', '.join(r.id for r in world.roads)}"
        )
    road = roads[0]
    lane = (road.lanes / 2 - 0.5) * LANE_M
    path = geom.offset_polyline(road.centerline, lane)
    return path, float(geom.cumulative_length(path)[-1])


def plan_vehicle_run(
    world: World,
    *,
    road_id: str | None = None,
    cam: CameraModel = CAMERAS["dashcam"],
    every_m: float = 5.0,
    length_m: float = 160.0,
    start_m: float | None = None,
    height_m: float = 1.6,
    pitch_deg: float = -10.0,
    yaw_offset_deg: float = 0.0,
    speed_mps: float = 8.0,
    start: datetime | None = None,
) -> list[ShotPlan]:
    """A patrol vehicle driving a road's right-hand lane, a photo every ``every_m`` metres.

    By default the run is centred on the world's anchor, so it passes through the focus area.
    """
    path, total = vehicle_path(world, road_id)
    if start_m is None:
        cum = geom.cumulative_length(path)
        dense = np.linspace(0.0, total, 2000)
        pts = np.column_stack(
            [np.interp(dense, cum, path[:, 0]), np.interp(dense, cum, path[:, 1])]
        )
        start_m = float(dense[int(np.argmin(np.hypot(pts[:, 0], pts[:, 1])))]) - length_m / 2
    moment = start if start is not None else world.epoch_time + timedelta(minutes=45)
    plans = []
    for i, s in enumerate(np.arange(start_m, start_m + length_m + 1e-9, every_m)):
        pos, heading = geom.point_at(path, float(s))
        lat, lon = world.to_latlon(pos[None])[0]
        pose = exact_pose(
            lat, lon, height_m, heading + yaw_offset_deg, pitch_deg, world.ground_alt_m
        )
        when = _ms(moment + timedelta(seconds=float(s - start_m) / speed_mps))
        plans.append(
            ShotPlan(f"CAM_{i + 1:04d}.jpg", pose, when, cam, Platform.VEHICLE, _wrap(heading))
        )
    return plans
