"""Photo metadata: one JPEG in, a :class:`PhotoMetadata` out (size, time, camera, pose, problems).

The public entry point of the ingest stage's metadata step. A file that is not a usable image
(corrupt, truncated, not a JPEG, a decompression bomb) raises :class:`MetadataError` naming
the file and the reason; everything else — missing GPS, hostile XMP, absurd altitudes —
becomes a ``"field: reason"`` problem on the result, so no frame is dropped silently.

May import: Pillow, ``xunjian.core``, ``xunjian.errors`` and the sibling modules
``exif``, ``xmp`` and ``cameras``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Platform
from xunjian.errors import MetadataError
from xunjian.inspect import cameras
from xunjian.inspect.exif import ExifFields, read_exif
from xunjian.inspect.xmp import NotAJpegError, find_xmp_packet, parse_xmp, read_jpeg_header

__all__ = ["PhotoMetadata", "extract_metadata"]

RTK_FIXED = 50
REL_ALT_RANGE_M = (-100.0, 1500.0)
PITCH_RANGE_DEG = (-120.0, 30.0)
MAX_ABS_ROLL_DEG = 90.0
_DJI = "drone-dji:"
WARNINGS_LOCK = threading.Lock()
"""Held around ``warnings.catch_warnings`` (process-global) by every reader of Pillow EXIF."""


@dataclass(frozen=True)
class PhotoMetadata:
    """What one photo says about itself. ``width``/``height`` are after EXIF orientation.

    ``captured_at`` is tz-aware UTC when knowable; a naive value is local camera time and a
    problem says so. ``gps``, ``exif`` and ``xmp`` are JSON-safe.
    """

    source: str
    width: int
    height: int
    captured_at: datetime | None
    camera_make: str | None
    camera_model: str | None
    intrinsics: CameraIntrinsics | None
    pose: CameraPose | None
    gps: dict[str, Any] | None
    exif: dict[str, Any]
    xmp: dict[str, Any]
    problems: tuple[str, ...]
    orientation: int = 1

    def to_frame(
        self, *, batch_id: str, key: str, sha256: str, platform: Platform = Platform.DRONE
    ) -> Frame:
        return Frame(
            batch_id=batch_id,
            key=key,
            sha256=sha256,
            width=self.width,
            height=self.height,
            platform=platform,
            captured_at=self.captured_at,
            camera_make=self.camera_make,
            camera_model=self.camera_model,
            intrinsics=self.intrinsics,
            pose=self.pose,
            problems=self.problems,
        )

    def to_json(self) -> dict[str, Any]:
        """What ``xunjian metadata --json`` prints for this image."""
        when = self.captured_at
        return {
            "source": self.source,
            "width": self.width,
            "height": self.height,
            "orientation": self.orientation,
            "captured_at": when.isoformat() if when else None,
            "captured_at_is_utc": bool(when and when.tzinfo is not None),
            "camera_make": self.camera_make,
            "camera_model": self.camera_model,
            "intrinsics": dataclasses.asdict(self.intrinsics) if self.intrinsics else None,
            "pose": dataclasses.asdict(self.pose) if self.pose else None,
            "georeferenceable": self.pose is not None and self.intrinsics is not None,
            "gps": self.gps,
            "exif": self.exif,
            "xmp": self.xmp,
            "problems": list(self.problems),
        }


def extract_metadata(
    path: Path, *, max_pixels: int = 120_000_000, default_sigma_xy_m: float = 2.0
) -> PhotoMetadata:
    """Reads one JPEG's EXIF and XMP and checks that its pixels decode.

    Raises MetadataError when the file is not a usable JPEG; never for missing metadata.
    """
    source = str(path)
    problems: list[str] = []
    try:
        with path.open("rb") as fp:
            header = read_jpeg_header(fp)
            if header.width <= 0 or header.height <= 0:
                raise MetadataError("JPEG frame header gives no image size", source=source)
            if header.width * header.height > max_pixels:
                raise MetadataError(
                    f"decompression bomb refused: header claims {header.width}×{header.height}"
                    f" = {header.width * header.height} pixels, limit {max_pixels}",
                    source=source,
                )
            fp.seek(0)
            exif = _decode(fp, source, problems)
            fp.seek(-2, 2)
            if fp.read(2) != b"\xff\xd9":
                problems.append("jpeg: no end-of-image marker at the end of the file")
    except NotAJpegError as exc:
        raise MetadataError(str(exc), source=source) from exc
    except OSError as exc:
        raise MetadataError(f"cannot read file: {exc}", source=source) from exc
    xmp: dict[str, Any] = {}
    packet, reason = find_xmp_packet(header.app1)
    if packet is not None:
        xmp, reason = parse_xmp(packet)
    problems += exif.problems + ([reason] if reason else [])
    raw_size = (header.width, header.height)
    orientation = exif.orientation
    swapped = orientation >= 5
    make = exif.make or _text(xmp.get("tiff:Make"))
    model = exif.model or _text(xmp.get("tiff:Model"))
    centre = ("CalibratedOpticalCenterX", "CalibratedOpticalCenterY")
    evidence = cameras.FocalEvidence(
        model=model,
        calibrated_px=_float(xmp, "CalibratedFocalLength", problems, "intrinsics"),
        centre_px=tuple(_float(xmp, name, problems, "intrinsics") for name in centre),
        focal_mm=exif.focal_length_mm,
        focal_35mm=exif.focal_length_35mm,
        pixel_size=exif.pixel_size,
    )
    intrinsics = cameras.best_intrinsics(evidence, raw_size, orientation, problems)
    gps = _gps(exif, xmp)
    pose = _pose(gps, xmp, orientation, default_sigma_xy_m, problems)
    return PhotoMetadata(
        source=source,
        width=raw_size[1] if swapped else raw_size[0],
        height=raw_size[0] if swapped else raw_size[1],
        captured_at=_captured_at(exif, problems),
        camera_make=make,
        camera_model=model,
        intrinsics=intrinsics,
        pose=pose,
        gps=gps,
        exif=exif.raw,
        xmp=xmp,
        problems=tuple(problems),
        orientation=orientation,
    )


def _decode(fp: Any, source: str, problems: list[str]) -> ExifFields:
    """Opens with Pillow, reads EXIF, and decodes at 1/8 scale to prove the data is whole.

    Pillow reports corrupt EXIF with warnings; they become problems. ``catch_warnings`` is
    process-global, so the lock keeps the ingest's worker threads from interleaving it.
    """
    try:
        with WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked already
            # "JPEG" only: its factory opens MPO files too, and "MPO" is no open format in
            # Pillow 13 — naming it raised KeyError whenever the JPEG plugin gave up.
            image = Image.open(fp, formats=["JPEG"])
            exif = read_exif(image)
        problems.extend(f"exif: {w.message}" for w in caught)
        with image:
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
            image.load()  # LOAD_TRUNCATED_IMAGES stays False: truncation raises
    except UnidentifiedImageError as exc:
        raise MetadataError(
            "corrupt or unsupported JPEG: its frame header cannot be read", source=source
        ) from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MetadataError(f"corrupt or truncated JPEG: {exc}", source=source) from exc
    return exif


def _text(value: Any) -> str | None:
    return value.replace("\x00", "").strip() or None if isinstance(value, str) else None


def _float(xmp: dict[str, Any], name: str, problems: list[str], field: str) -> float | None:
    raw = xmp.get(_DJI + name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        problems.append(f"{field}: unreadable drone-dji:{name} {raw!r}")
        return None
    return value


def _captured_at(exif: ExifFields, problems: list[str]) -> datetime | None:
    if exif.gps_time is not None:
        return exif.gps_time
    moment = exif.datetime_original
    if moment is None:
        problems.append("captured_at: no GPS time and no DateTimeOriginal")
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    problems.append(
        "captured_at: DateTimeOriginal has no time zone (no OffsetTimeOriginal, no GPS time);"
        " kept as naive camera-local time"
    )
    return moment


def _gps(exif: ExifFields, xmp: dict[str, Any]) -> dict[str, Any] | None:
    lat, lon, source = exif.lat, exif.lon, "exif"
    if lat is None or lon is None:  # newer DJI models also write the fix into the XMP
        ignore: list[str] = []
        lat = _float(xmp, "GpsLatitude", ignore, "gps")
        lon = _float(xmp, "GpsLongitude", ignore, "gps")
        if lon is None:
            lon = _float(xmp, "GpsLongtitude", ignore, "gps")  # sic, some firmware
        source = "xmp"
    if lat is None or lon is None:
        return None
    return {
        "lat": lat,
        "lon": lon,
        "alt_m": exif.alt_m,
        "time_utc": exif.gps_time.isoformat() if exif.gps_time else None,
        "source": source,
    }


def _pose(
    gps: dict[str, Any] | None,
    xmp: dict[str, Any],
    orientation: int,
    default_sigma_xy_m: float,
    problems: list[str],
) -> CameraPose | None:
    refused: list[str] = []  # each one stops the pose; notes go straight to problems
    if gps is None:
        refused.append("no GPS position")
    elif not (-90 <= gps["lat"] <= 90 and -180 <= gps["lon"] <= 180):
        refused.append(f"GPS position {gps['lat']}, {gps['lon']} out of range; refused")
    elif gps["lat"] == 0 and gps["lon"] == 0:
        refused.append("GPS position is 0, 0 (no fix); refused")
    height = _float(xmp, "RelativeAltitude", problems, "pose")
    if height is None:
        refused.append("no drone-dji:RelativeAltitude, height above ground unknown")
    elif not REL_ALT_RANGE_M[0] <= height <= REL_ALT_RANGE_M[1]:
        refused.append(f"relative altitude {height} m outside {REL_ALT_RANGE_M}; refused")
    pitch = _float(xmp, "GimbalPitchDegree", problems, "pose")
    if pitch is None:
        refused.append("no drone-dji:GimbalPitchDegree, camera pitch unknown")
    elif not PITCH_RANGE_DEG[0] <= pitch <= PITCH_RANGE_DEG[1]:
        refused.append(f"gimbal pitch {pitch}° outside {PITCH_RANGE_DEG}; refused")
    yaw = _float(xmp, "GimbalYawDegree", problems, "pose")
    if yaw is None:
        yaw = _float(xmp, "FlightYawDegree", problems, "pose")
        if yaw is not None:
            problems.append("pose: no GimbalYawDegree; yaw taken from FlightYawDegree (body)")
    if yaw is None:
        refused.append("no GimbalYawDegree or FlightYawDegree, heading unknown")
    elif abs(yaw) > 360:
        refused.append(f"gimbal yaw {yaw}° is not a heading; refused")
    roll = _float(xmp, "GimbalRollDegree", problems, "pose")
    if roll is None:
        roll = 0.0
        if not refused:
            problems.append("pose: no drone-dji:GimbalRollDegree, roll assumed 0")
    elif abs(roll) > MAX_ABS_ROLL_DEG:
        refused.append(f"gimbal roll {roll}° beyond ±{MAX_ABS_ROLL_DEG}; refused")
    if orientation != 1:
        refused.append(f"EXIF orientation {orientation} turns the image off the gimbal frame")
    problems.extend(f"pose: {reason}" for reason in refused)
    if refused or gps is None or height is None or yaw is None or pitch is None:
        return None
    sigma_xy, sigma_h, source = _sigmas(xmp, default_sigma_xy_m, problems)
    abs_alt = _float(xmp, "AbsoluteAltitude", problems, "pose")
    return CameraPose(
        lat=gps["lat"],
        lon=gps["lon"],
        height_m=height,
        yaw_deg=yaw if -180.0 < yaw <= 180.0 else (yaw + 180.0) % 360.0 - 180.0,
        pitch_deg=pitch,
        roll_deg=roll,
        abs_alt_m=abs_alt if abs_alt is not None else gps["alt_m"],
        sigma_xy_m=sigma_xy,
        sigma_h_m=sigma_h,
        source=source,
    )


def _sigmas(
    xmp: dict[str, Any], default_sigma_xy_m: float, problems: list[str]
) -> tuple[float, float, str]:
    flag = _float(xmp, "RtkFlag", problems, "pose")
    if flag != RTK_FIXED:
        return default_sigma_xy_m, 1.0, "dji_xmp"
    stds = [_float(xmp, n, problems, "pose") for n in ("RtkStdLat", "RtkStdLon", "RtkStdHgt")]
    if any(s is None or s < 0 for s in stds):
        problems.append("pose: RTK fixed but RtkStdLat/Lon/Hgt missing; default σ used")
        return default_sigma_xy_m, 1.0, "dji_xmp"
    lat_s, lon_s, hgt_s = (float(s) for s in stds if s is not None)
    return max(lat_s, lon_s), hgt_s, "dji_xmp_rtk"
