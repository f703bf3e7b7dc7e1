"""One camera looking at one world: the transforms the renderer and the truth share.

The world is described around its anchor; the camera model (``xunjian.core.camera``) works
around the camera's own ground point. :class:`View` holds the exact affine between the two
tangent planes (see ``core.geo.en_transform``) and composes it with the camera, so a world
point projects to exactly the pixel that ``latlon_to_pixel`` gives for its latitude/longitude.

May import: numpy, the standard library, ``xunjian.core`` and sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xunjian.core import camera
from xunjian.core.geo import en_transform, latlon_to_en
from xunjian.core.records import CameraIntrinsics, CameraPose
from xunjian.datasets.synth.geom import F64
from xunjian.datasets.synth.world import World

NEAR_M = 0.05


@dataclass(frozen=True)
class View:
    pose: CameraPose
    k: CameraIntrinsics
    world_to_cam_en: F64
    """3×3 affine: world (E, N, 1) → camera-ground-point (E, N, 1)."""
    cam_to_world_en: F64
    rot: F64
    """ENU → camera axes (x right, y down, z forward)."""
    kmat: F64
    camera_en: tuple[float, float]
    """The camera's ground point in world (E, N)."""

    @classmethod
    def of(cls, world: World, pose: CameraPose, k: CameraIntrinsics) -> View:
        a = en_transform(world.anchor_lat, world.anchor_lon, pose.lat, pose.lon)
        e, n = latlon_to_en(pose.lat, pose.lon, world.anchor_lat, world.anchor_lon)
        return cls(
            pose=pose,
            k=k,
            world_to_cam_en=a,
            cam_to_world_en=np.asarray(np.linalg.inv(a), np.float64),
            rot=camera.camera_rotation(pose),
            kmat=camera.intrinsic_matrix(k),
            camera_en=(float(e), float(n)),
        )

    def scaled(self, factor: float) -> View:
        """The same view for an image ``factor`` times the size (for low-resolution passes)."""
        w, h = max(1, round(self.k.width * factor)), max(1, round(self.k.height * factor))
        k = self.k.scaled_to(w, h)
        return View(
            self.pose,
            k,
            self.world_to_cam_en,
            self.cam_to_world_en,
            self.rot,
            camera.intrinsic_matrix(k),
            self.camera_en,
        )

    def ground_homography(self, plane_height_m: float = 0.0) -> F64:
        """3×3: world (E, N, 1) on a horizontal plane that high → pixel (homogeneous)."""
        g = camera.ground_homography(self.pose, self.k, plane_height_m=plane_height_m)
        out: F64 = g @ self.world_to_cam_en
        return out

    def to_camera(self, pts: F64) -> F64:
        """World (E, N, U) points (N, 3) → camera coordinates (x right, y down, z forward)."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        en = p[:, :2] @ self.world_to_cam_en[:2, :2].T + self.world_to_cam_en[:2, 2]
        rel = np.column_stack([en, p[:, 2] - self.pose.height_m])
        out: F64 = rel @ self.rot.T
        return out

    def project_camera(self, cam: F64) -> F64:
        """Camera coordinates (N, 3), all in front → pixels (N, 2)."""
        z = cam[:, 2:3]
        out: F64 = np.column_stack(
            [
                self.k.fx * cam[:, 0] / z[:, 0] + self.k.cx,
                self.k.fy * cam[:, 1] / z[:, 0] + self.k.cy,
            ]
        )
        return out

    def project_polygon(self, pts: F64) -> F64:
        """A planar world polygon (N, 3) clipped to in front of the camera, as pixels (M, 2)."""
        cam = clip_near(self.to_camera(pts))
        return self.project_camera(cam) if len(cam) >= 3 else np.zeros((0, 2))

    def ground_distance(self, en_world: F64) -> F64:
        p = np.asarray(en_world, dtype=np.float64).reshape(-1, 2)
        out: F64 = np.hypot(p[:, 0] - self.camera_en[0], p[:, 1] - self.camera_en[1])
        return out

    @property
    def is_nadir(self) -> bool:
        return self.pose.pitch_deg <= -80.0

    def gsd_at(self, distance_m: float) -> float:
        """Metres per pixel at a slant distance."""
        return distance_m / math.sqrt(self.k.fx * self.k.fy)


def clip_near(cam: F64, near: float = NEAR_M) -> F64:
    """Sutherland–Hodgman against the plane z = ``near`` in camera coordinates."""
    if len(cam) == 0:
        return cam
    out: list[F64] = []
    n = len(cam)
    for i in range(n):
        p, q = cam[i], cam[(i + 1) % n]
        pin, qin = p[2] >= near, q[2] >= near
        if pin:
            out.append(p)
        if pin != qin:
            t = (near - p[2]) / (q[2] - p[2])
            out.append(p + t * (q - p))
    return np.array(out).reshape(-1, 3)
