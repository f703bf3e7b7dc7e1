"""The camera table (data in ``data/cameras.json``) and the three ways to a pinhole camera.

Sources, best first (specs/georef.md): DJI's calibrated focal length and optical centre in
pixels; EXIF focal length in mm with the sensor size from the table; the 35 mm equivalent
focal length over the image diagonal. All functions here work in the stored (unrotated)
image frame; :mod:`xunjian.inspect.metadata` applies resizing and EXIF orientation.

Images whose aspect ratio differs from the sensor's (a 16:9 still from a 4:3 sensor) are
crops of the sensor: the pixels stay square and the dimension that spans the sensor gives the
pixel pitch. ``fy = f / sensor_h · H`` would be 24 % wrong for a Mavic Pro 16:9 still.

May import: ``xunjian.core`` and the standard library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources

from xunjian.core.records import CameraIntrinsics

__all__ = [
    "CameraSpec",
    "FocalEvidence",
    "best_intrinsics",
    "camera_table",
    "intrinsics_from_35mm",
    "intrinsics_from_calibration",
    "intrinsics_from_sensor",
    "lookup_camera",
    "normalise_model",
    "oriented",
]

# Aspect ratios within this relative difference are "the same" (6.17×4.55 mm vs 4:3 px).
_ASPECT_TOLERANCE = 0.03
# A calibrated optical centre within this fraction of an image's centre refers to that image.
_CENTRE_TOLERANCE = 0.05


@dataclass(frozen=True, slots=True)
class CameraSpec:
    """One camera model: sensor size (mm, landscape) and native still resolution (px)."""

    model: str
    name: str
    sensor_width_mm: float
    sensor_height_mm: float
    native_width_px: int | None = None
    native_height_px: int | None = None


def normalise_model(model: str) -> str:
    """The lookup key of an EXIF ``Model``: NUL padding and spaces stripped, upper case."""
    return model.replace("\x00", "").strip().upper()


@cache
def camera_table() -> dict[str, CameraSpec]:
    """The packaged table, keyed by :func:`normalise_model`."""
    text = resources.files("xunjian.inspect").joinpath("data/cameras.json").read_text("utf-8")
    table: dict[str, CameraSpec] = {}
    for row in json.loads(text)["cameras"]:
        native = row.get("native_px") or (None, None)
        spec = CameraSpec(
            model=row["model"],
            name=row["name"],
            sensor_width_mm=float(row["sensor_mm"][0]),
            sensor_height_mm=float(row["sensor_mm"][1]),
            native_width_px=native[0],
            native_height_px=native[1],
        )
        table[normalise_model(spec.model)] = spec
    return table


def lookup_camera(model: str | None) -> CameraSpec | None:
    """The table row of an EXIF model string, or None when the model is not in the table."""
    if not model:
        return None
    return camera_table().get(normalise_model(model))


def _same_aspect(a: float, b: float) -> bool:
    return abs(a / b - 1.0) <= _ASPECT_TOLERANCE


def intrinsics_from_sensor(
    focal_mm: float, spec: CameraSpec, width: int, height: int
) -> CameraIntrinsics:
    """``fx = f / sensor_w · W``, ``fy = f / sensor_h · H``; crops keep square pixels."""
    sensor_w, sensor_h = spec.sensor_width_mm, spec.sensor_height_mm
    if (width >= height) != (sensor_w >= sensor_h):  # stored in portrait
        sensor_w, sensor_h = sensor_h, sensor_w
    if _same_aspect(width / height, sensor_w / sensor_h):
        fx = focal_mm / sensor_w * width
        fy = focal_mm / sensor_h * height
    else:
        pitch_mm = min(sensor_w / width, sensor_h / height)  # the dimension spanning the sensor
        fx = fy = focal_mm / pitch_mm
    return CameraIntrinsics(width, height, fx, fy, width / 2, height / 2, "exif_sensor_table")


def intrinsics_from_35mm(focal_35mm: float, width: int, height: int) -> CameraIntrinsics:
    """The 35 mm equivalent over the diagonal (equal to ``f35 / 36 · W`` for 3:2 images)."""
    f_px = focal_35mm * math.hypot(width, height) / math.hypot(36.0, 24.0)
    return CameraIntrinsics(width, height, f_px, f_px, width / 2, height / 2, "exif_35mm")


def intrinsics_from_calibration(
    focal_px: float,
    centre_x: float,
    centre_y: float,
    width: int,
    height: int,
    spec: CameraSpec | None = None,
) -> CameraIntrinsics:
    """DJI's calibrated values, moved from the resolution they refer to onto this image.

    DJI writes them for the full sensor. The reference resolution is, in this order: the
    image itself when the optical centre lies near its centre; the model's native resolution
    from the table; twice the optical centre. A different aspect ratio is a centred crop.
    """

    def near(centre: float, size: float) -> bool:
        return abs(2 * centre - size) <= _CENTRE_TOLERANCE * size

    if near(centre_x, width):
        ref_w = float(width)
    elif spec is not None and spec.native_width_px and near(centre_x, spec.native_width_px):
        ref_w = float(spec.native_width_px)
    else:
        ref_w = 2 * centre_x
    scale = width / ref_w
    # Rows: the reference height at this scale; a centred crop shifts the centre.
    ref_h_scaled = float(height) if near(centre_y * scale, height) else 2 * centre_y * scale
    fx = fy = focal_px * scale
    cx = centre_x * scale
    cy = centre_y * scale - (ref_h_scaled - height) / 2
    return CameraIntrinsics(width, height, fx, fy, cx, cy, "xmp_calibrated")


@dataclass(frozen=True, slots=True)
class FocalEvidence:
    """What a photo's metadata says about its camera (EXIF and DJI XMP values, or None)."""

    model: str | None
    calibrated_px: float | None = None
    centre_px: tuple[float | None, ...] = (None, None)
    focal_mm: float | None = None
    focal_35mm: float | None = None
    pixel_size: tuple[int, int] | None = None  # EXIF PixelX/YDimension


def best_intrinsics(
    evidence: FocalEvidence, stored: tuple[int, int], orientation: int, problems: list[str]
) -> CameraIntrinsics | None:
    """The best-sourced intrinsics for an image stored ``stored`` = (W, H) px, as displayed.

    Computed at the size the camera wrote, scaled to the stored size (images resized after
    capture), then turned by the EXIF orientation. None, with a reason, when nothing fits.
    """
    size = _capture_size(evidence.pixel_size, stored, problems)
    spec = lookup_camera(evidence.model)
    candidate: CameraIntrinsics | None = None
    if evidence.calibrated_px is not None and evidence.calibrated_px > 0:
        native = (spec.native_width_px, spec.native_height_px) if spec else (None, None)
        cx, cy = (
            c if c is not None and c > 0 else (n or s) / 2
            for c, n, s in zip(evidence.centre_px, native, size, strict=True)
        )
        candidate = intrinsics_from_calibration(evidence.calibrated_px, cx, cy, *size, spec=spec)
    elif evidence.focal_mm is not None and spec is not None:
        candidate = intrinsics_from_sensor(evidence.focal_mm, spec, *size)
    elif evidence.focal_35mm is not None:
        candidate = intrinsics_from_35mm(evidence.focal_35mm, *size)
    if candidate is None:
        why = "no CalibratedFocalLength in XMP"
        if evidence.focal_mm is None:
            why += ", no EXIF FocalLength"
        elif spec is None:
            why += f", camera model {evidence.model!r} not in the camera table"
        problems.append(f"intrinsics: {why}, no FocalLengthIn35mmFilm")
        return None
    if not 0.05 * candidate.width <= candidate.fx <= 50 * candidate.width:
        problems.append(f"intrinsics: absurd focal length {candidate.fx:.1f} px refused")
        return None
    if size != stored:
        candidate = candidate.scaled_to(*stored)
    return oriented(candidate, orientation)


def _capture_size(
    written: tuple[int, int] | None, stored: tuple[int, int], problems: list[str]
) -> tuple[int, int]:
    """The size the camera wrote, when it is the same picture as the stored one."""
    if written is None or written == stored:
        return stored
    w, h = written
    for cw, ch in ((w, h), (h, w)):
        if abs(cw / ch / (stored[0] / stored[1]) - 1) <= 0.01:
            return (cw, ch)
    problems.append(
        f"intrinsics: EXIF says {w}×{h} but the image is {stored[0]}×{stored[1]} (cropped?);"
        " computed for the image as it is"
    )
    return stored


def oriented(k: CameraIntrinsics, orientation: int) -> CameraIntrinsics:
    """The intrinsics of the displayed image: EXIF orientation applied to the stored one."""
    w, h, cx, cy = k.width, k.height, k.cx, k.cy
    mapping = {
        1: (w, h, k.fx, k.fy, cx, cy),
        2: (w, h, k.fx, k.fy, w - cx, cy),
        3: (w, h, k.fx, k.fy, w - cx, h - cy),
        4: (w, h, k.fx, k.fy, cx, h - cy),
        5: (h, w, k.fy, k.fx, cy, cx),
        6: (h, w, k.fy, k.fx, h - cy, cx),
        7: (h, w, k.fy, k.fx, h - cy, w - cx),
        8: (h, w, k.fy, k.fx, cy, w - cx),
    }
    nw, nh, fx, fy, ncx, ncy = mapping[orientation]
    return CameraIntrinsics(nw, nh, fx, fy, ncx, ncy, k.source)
