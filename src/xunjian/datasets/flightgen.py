"""Test flights: JPEGs that carry EXIF GPS and a DJI-style XMP packet, byte for byte reproducible.

:func:`encode_jpeg` writes what a DJI camera writes (EXIF GPS IFD, Make/Model, times, focal
lengths; an XMP packet with the ``drone-dji:`` attributes laid out and padded as in real DJI
files). The synthetic test range renders real scenes and calls it; :func:`generate_flight` and
:func:`lawnmower_poses` make simple textured flights for tests and demos.

May import: numpy, Pillow, pymap3d, ``xunjian.errors``. Nothing else from the package.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pymap3d
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from xunjian.errors import InputError

__all__ = ["PhotoTags", "encode_jpeg", "generate_flight", "lawnmower_poses", "xmp_packet"]

_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
# DJI pads its XMP APP1 segment to this length field value (payload + 2 length bytes).
_DJI_XMP_SEGMENT_LENGTH = 8190
_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


@dataclass(frozen=True, kw_only=True)
class PhotoTags:
    """What a drone camera records about one photo. Angles in degrees, altitudes in metres.

    ``gimbal_*`` and ``rel_alt_m`` / ``abs_alt_m`` may be None to leave a field out (as
    phones and some cameras do). ``calibrated_*`` are in pixels of the full sensor
    resolution, as DJI writes them; ``rtk_flag`` 50 means an RTK fixed solution.
    """

    lat: float
    lon: float
    abs_alt_m: float | None
    rel_alt_m: float | None
    gimbal_yaw_deg: float | None
    gimbal_pitch_deg: float | None
    gimbal_roll_deg: float | None = 0.0
    flight_yaw_deg: float | None = None
    flight_pitch_deg: float | None = 0.0
    flight_roll_deg: float | None = 0.0
    captured_at: datetime
    make: str = "DJI"
    model: str = "FC220"
    focal_length_mm: float | None = 4.73
    focal_length_35mm: int | None = 26
    calibrated_focal_px: float | None = None
    optical_center_px: tuple[float, float] | None = None
    rtk_flag: int | None = None
    rtk_std_lat: float | None = None
    rtk_std_lon: float | None = None
    rtk_std_hgt: float | None = None
    orientation: int = 1


def _rational(value: float, denominator: int) -> IFDRational:
    frac = Fraction(round(abs(value) * denominator), denominator)
    return IFDRational(frac.numerator, frac.denominator)


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    # Seconds to 1e-6 s (≈ 0.03 mm): the file must not be the precision limit of a test.
    total_us = round(abs(value) * 3600 * 1_000_000)
    degrees, rest = divmod(total_us, 3600 * 1_000_000)
    minutes, micro_seconds = divmod(rest, 60 * 1_000_000)
    return (
        IFDRational(degrees, 1),
        IFDRational(minutes, 1),
        _rational(micro_seconds / 1_000_000, 1_000_000),
    )


def _offset_text(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = int(abs(offset).total_seconds()) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _exif(tags: PhotoTags, width: int, height: int) -> Image.Exif:
    if tags.captured_at.tzinfo is None or tags.captured_at.utcoffset() is None:
        raise InputError(f"captured_at: expected a tz-aware datetime, got {tags.captured_at!r}")
    exif = Image.Exif()
    exif[0x010F] = tags.make
    exif[0x0110] = tags.model
    exif[0x0112] = tags.orientation
    local = tags.captured_at
    exif[0x0132] = local.strftime("%Y:%m:%d %H:%M:%S")
    sub = exif.get_ifd(_EXIF_IFD)
    sub[0x9003] = local.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    sub[0x9004] = local.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeDigitized
    sub[0x9011] = _offset_text(local)  # OffsetTimeOriginal
    if local.microsecond:
        sub[0x9291] = f"{local.microsecond // 1000:03d}"  # SubSecTimeOriginal
    if tags.focal_length_mm is not None:
        sub[0x920A] = _rational(tags.focal_length_mm, 100)
    if tags.focal_length_35mm is not None:
        sub[0xA405] = int(tags.focal_length_35mm)
    # Pixel dimensions are those of the stored (unrotated) image, as cameras write them.
    sub[0xA002] = width
    sub[0xA003] = height
    gps = exif.get_ifd(_GPS_IFD)
    gps[0x00] = b"\x02\x03\x00\x00"
    gps[0x01] = "N" if tags.lat >= 0 else "S"
    gps[0x02] = _dms(tags.lat)
    gps[0x03] = "E" if tags.lon >= 0 else "W"
    gps[0x04] = _dms(tags.lon)
    if tags.abs_alt_m is not None:
        gps[0x05] = b"\x01" if tags.abs_alt_m < 0 else b"\x00"
        gps[0x06] = _rational(tags.abs_alt_m, 1000)
    utc = tags.captured_at.astimezone(UTC)
    seconds = utc.second + utc.microsecond / 1_000_000
    gps[0x07] = (IFDRational(utc.hour, 1), IFDRational(utc.minute, 1), _rational(seconds, 1000))
    gps[0x1D] = utc.strftime("%Y:%m:%d")
    return exif


def _signed(value: float, decimals: int = 2) -> str:
    return f"{value:+.{decimals}f}"


def xmp_packet(tags: PhotoTags) -> bytes:
    """The DJI XMP packet for ``tags``: attributes on one rdf:Description, padded like DJI's."""
    attrs: list[tuple[str, str]] = [
        ("xmp:ModifyDate", tags.captured_at.strftime("%Y-%m-%d")),
        ("xmp:CreateDate", tags.captured_at.strftime("%Y-%m-%d")),
        ("tiff:Make", tags.make),
        ("tiff:Model", tags.model),
        ("dc:format", "image/jpg"),
    ]
    optional: list[tuple[str, float | None, str]] = [
        ("AbsoluteAltitude", tags.abs_alt_m, "+.2f"),
        ("RelativeAltitude", tags.rel_alt_m, "+.2f"),
        ("GimbalRollDegree", tags.gimbal_roll_deg, "+.2f"),
        ("GimbalYawDegree", tags.gimbal_yaw_deg, "+.2f"),
        ("GimbalPitchDegree", tags.gimbal_pitch_deg, "+.2f"),
        ("FlightRollDegree", tags.flight_roll_deg, "+.2f"),
        ("FlightYawDegree", tags.flight_yaw_deg, "+.2f"),
        ("FlightPitchDegree", tags.flight_pitch_deg, "+.2f"),
        ("CalibratedFocalLength", tags.calibrated_focal_px, ".6f"),
    ]
    if tags.optical_center_px is not None:
        optional += [
            ("CalibratedOpticalCenterX", tags.optical_center_px[0], ".6f"),
            ("CalibratedOpticalCenterY", tags.optical_center_px[1], ".6f"),
        ]
    optional += [
        ("RtkFlag", tags.rtk_flag, "d"),
        ("RtkStdLon", tags.rtk_std_lon, ".5f"),
        ("RtkStdLat", tags.rtk_std_lat, ".5f"),
        ("RtkStdHgt", tags.rtk_std_hgt, ".5f"),
    ]
    attrs += [(f"drone-dji:{name}", format(v, spec)) for name, v, spec in optional if v is not None]
    attrs += [("crs:Version", "7.0"), ("crs:HasSettings", "False")]
    body = "".join(f'\n   {name}="{_xml_escape(value)}"' for name, value in attrs)
    text = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        '    xmlns:tiff="http://ns.adobe.com/tiff/1.0/"\n'
        '    xmlns:exif="http://ns.adobe.com/exif/1.0/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        '    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"\n'
        f'    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"{body}>\n'
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
    ).encode()
    trailer = b'\n<?xpacket end="w"?>\n'
    room = _DJI_XMP_SEGMENT_LENGTH - 2 - len(_XMP_HEADER) - len(text) - len(trailer)
    if room < 0:  # more attributes than DJI's fixed segment holds: no padding
        return text + trailer
    lines = [b" " * 100] * (room // 101)
    padding = b"\n".join(lines) + (b"\n" if lines else b"")
    last = room - len(padding)
    return text + padding + b" " * last + trailer


def _xml_escape(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(">", "&gt;")
    )


def encode_jpeg(
    rgb: np.ndarray, tags: PhotoTags | None, *, quality: int = 90, xmp: bool | bytes = True
) -> bytes:
    """A JPEG of ``rgb`` (H×W×3 uint8) carrying ``tags`` as EXIF and DJI XMP.

    Deterministic: the same input gives byte-identical output. ``tags=None`` writes a bare
    JPEG without EXIF. ``xmp=False`` leaves the XMP out (as phones do); ``xmp=b"…"`` writes
    that packet verbatim instead of the DJI one (for bad-input tests).
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"expected an H×W×3 uint8 array, got {array.dtype} {array.shape}")
    image = Image.fromarray(array, "RGB")
    out = io.BytesIO()
    options: dict[str, Any] = {"quality": quality}
    if tags is not None:
        options["exif"] = _exif(tags, image.width, image.height).tobytes()
    if isinstance(xmp, bytes):
        options["xmp"] = xmp
    elif xmp and tags is not None:
        options["xmp"] = xmp_packet(tags)
    image.save(out, "JPEG", **options)
    data = out.getvalue()
    if tags is not None and data[2:4] == b"\xff\xe0":  # DJI files have no JFIF segment
        data = data[:2] + data[4 + int.from_bytes(data[4:6], "big") :]
    return data


def _texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth colour fields plus sharp blobs and lines, enough for feature matching."""
    coarse = rng.integers(40, 216, size=(max(2, height // 32), max(2, width // 32), 3))
    base = Image.fromarray(coarse.astype(np.uint8), "RGB").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    img = np.asarray(base).astype(np.int16)
    for _ in range(max(8, width * height // 8000)):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(3, 24)), int(rng.integers(3, 24))
        img[y : y + h, x : x + w] = rng.integers(0, 256, size=3)
    noise = rng.integers(-12, 13, size=img.shape)
    out: np.ndarray = np.clip(img + noise, 0, 255).astype(np.uint8)
    return out


def generate_flight(
    out_dir: Path,
    poses: Sequence[PhotoTags],
    *,
    width: int = 640,
    height: int = 480,
    seed: int = 0,
) -> list[Path]:
    """Writes one textured JPEG per pose as ``out_dir/DJI_0001.JPG`` …; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for index, tags in enumerate(poses, start=1):
        rng = np.random.default_rng([seed, index])
        path = out_dir / f"DJI_{index:04d}.JPG"
        path.write_bytes(encode_jpeg(_texture(width, height, rng), tags))
        paths.append(path)
    return paths


def lawnmower_poses(
    origin_lat: float,
    origin_lon: float,
    *,
    rows: int,
    cols: int,
    spacing_m: float,
    height_m: float,
    start: datetime,
    interval_s: float = 2.0,
    heading_deg: float = 0.0,
    ground_alt_m: float = 0.0,
    pitch_deg: float = -90.0,
    model: str = "FC220",
) -> list[PhotoTags]:
    """A serpentine survey: ``rows`` legs of ``cols`` photos, legs along ``heading_deg``.

    The first photo is at the origin; legs step to the right of the heading. The gimbal
    faces the direction of travel, so reverse legs have yaw + 180°.
    """
    if start.tzinfo is None:
        raise InputError(f"start: expected a tz-aware datetime, got {start!r}")
    heading = math.radians(heading_deg)
    along = np.array([math.sin(heading), math.cos(heading)])
    across = np.array([math.cos(heading), -math.sin(heading)])
    poses: list[PhotoTags] = []
    for row in range(rows):
        order = range(cols) if row % 2 == 0 else range(cols - 1, -1, -1)
        yaw = (heading_deg + (0.0 if row % 2 == 0 else 180.0) + 180.0) % 360.0 - 180.0
        for col in order:
            east, north = along * col * spacing_m + across * row * spacing_m
            lat, lon, _ = pymap3d.enu2geodetic(east, north, 0.0, origin_lat, origin_lon, 0.0)
            when = start + timedelta(seconds=interval_s * len(poses))
            poses.append(
                PhotoTags(
                    lat=float(lat),
                    lon=float(lon),
                    abs_alt_m=ground_alt_m + height_m,
                    rel_alt_m=height_m,
                    gimbal_yaw_deg=yaw,
                    gimbal_pitch_deg=pitch_deg,
                    flight_yaw_deg=yaw,
                    captured_at=when,
                    model=model,
                )
            )
    return poses
