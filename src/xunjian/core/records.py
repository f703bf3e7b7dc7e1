"""The typed records that flow between the pipeline stages.

Frames carry where the camera was and how it sees; later stages add detections and issues.
Records are frozen dataclasses: plain data, cheap to copy, easy to serialise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Platform(StrEnum):
    """What carried the camera."""

    DRONE = "drone"
    VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels of the image as decoded (after EXIF orientation).

    ``source`` says where the focal length came from: ``xmp_calibrated``,
    ``exif_sensor_table``, ``exif_35mm`` or ``synthetic``.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    source: str = "synthetic"

    def scaled_to(self, width: int, height: int) -> CameraIntrinsics:
        """The same camera for an image resized to ``width`` × ``height``."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(
            width, height, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, self.source
        )


@dataclass(frozen=True, slots=True)
class CameraPose:
    """Where the camera was and where it looked.

    ``yaw_deg`` is the camera (gimbal) heading, clockwise from north; ``pitch_deg`` is −90 for
    straight down and 0 at the horizon; ``height_m`` is above the ground it looks at.
    The σ fields are one standard deviation of the metadata's error.
    """

    lat: float
    lon: float
    height_m: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float = 0.0
    abs_alt_m: float | None = None
    sigma_xy_m: float = 2.0
    sigma_h_m: float = 1.0
    sigma_yaw_deg: float = 1.0
    source: str = "synthetic"


@dataclass(frozen=True, slots=True)
class Frame:
    """One image of a batch, with everything needed to place its pixels on the ground.

    ``pose`` or ``intrinsics`` is None when the metadata could not give it; ``problems`` then
    says why, one reason per missing field, so a frame is never dropped silently.
    """

    batch_id: str
    key: str
    sha256: str
    width: int
    height: int
    platform: Platform = Platform.DRONE
    captured_at: datetime | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    intrinsics: CameraIntrinsics | None = None
    pose: CameraPose | None = None
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def georeferenceable(self) -> bool:
        return self.pose is not None and self.intrinsics is not None


@dataclass(frozen=True, slots=True)
class Detection:
    """One box a detector found in one frame, in the frame's original pixels.

    ``model_version`` identifies the exact weights (e.g. ``road_damage@2026.11.24-ab12cd34``) so
    every stage stays idempotent on (batch, image, model version).
    """

    detector: str
    class_name: str
    confidence: float
    bbox_xyxy: tuple[float, float, float, float]
    model_version: str
    frame_key: str = ""

    def __post_init__(self) -> None:
        x1, y1, x2, y2 = self.bbox_xyxy
        if not (x2 >= x1 and y2 >= y1):
            raise ValueError(f"expected x1 <= x2 and y1 <= y2, got {self.bbox_xyxy}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"expected confidence in [0, 1], got {self.confidence}")

    @property
    def width(self) -> float:
        return self.bbox_xyxy[2] - self.bbox_xyxy[0]

    @property
    def height(self) -> float:
        return self.bbox_xyxy[3] - self.bbox_xyxy[1]


@dataclass(frozen=True, slots=True)
class Observation:
    """A detection placed on the ground: where, how sure of the place, seen from where.

    ``sigma_m`` is one standard deviation of the horizontal position error (GPS / RTK,
    yaw and height error projected over the range, box size); ``range_m`` is the horizontal
    distance from the camera's ground point, ``gsd_m`` the ground size of one pixel there.
    """

    detection: Detection
    batch_id: str
    frame_key: str
    lat: float
    lon: float
    sigma_m: float
    range_m: float
    gsd_m: float
    captured_at: datetime | None = None

    @property
    def class_name(self) -> str:
        return self.detection.class_name

    @property
    def confidence(self) -> float:
        return self.detection.confidence
