"""EXIF of a photo, read with Pillow: camera, times, focal lengths, GPS.

Everything is read defensively: a missing or malformed tag becomes a ``"field: reason"``
problem, never an exception. Values come out as plain, JSON-safe Python (str, int, float).

May import: Pillow and the standard library. Nothing from the package.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from PIL import Image

__all__ = ["ExifFields", "read_exif"]

GPS_IFD = 0x8825
EXIF_IFD = 0x8769

# Tags kept in the JSON output: what matters for georeferencing and for a human checking a file.
_IFD0_TAGS = {0x010F: "Make", 0x0110: "Model", 0x0112: "Orientation", 0x0131: "Software"}
_EXIF_TAGS = {
    0x9003: "DateTimeOriginal",
    0x9011: "OffsetTimeOriginal",
    0x9010: "OffsetTime",
    0x9291: "SubSecTimeOriginal",
    0x920A: "FocalLength",
    0xA405: "FocalLengthIn35mmFilm",
    0xA002: "PixelXDimension",
    0xA003: "PixelYDimension",
}
_GPS_TAGS = {
    0x01: "GPSLatitudeRef",
    0x02: "GPSLatitude",
    0x03: "GPSLongitudeRef",
    0x04: "GPSLongitude",
    0x05: "GPSAltitudeRef",
    0x06: "GPSAltitude",
    0x07: "GPSTimeStamp",
    0x1D: "GPSDateStamp",
}


@dataclass
class ExifFields:
    """The EXIF fields xunjian uses, parsed; ``raw`` holds them JSON-safe for output."""

    make: str | None = None
    model: str | None = None
    orientation: int = 1
    datetime_original: datetime | None = None  # naive unless an offset was recorded
    focal_length_mm: float | None = None
    focal_length_35mm: float | None = None
    pixel_size: tuple[int, int] | None = None  # PixelX/YDimension as written
    lat: float | None = None
    lon: float | None = None
    alt_m: float | None = None
    gps_time: datetime | None = None  # UTC
    raw: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _json_safe(value: Any) -> Any:
    if isinstance(value, bytes):
        text = value.rstrip(b"\x00")
        if text and all(32 <= b < 127 for b in text):
            return text.decode("ascii")
        return value[0] if len(value) == 1 else value.hex()
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return str(value)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()  # DJI pads strings with NULs
    return text or None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(dms: Any, ref: Any, negative: str) -> float | None:
    if isinstance(dms, tuple | list) and len(dms) == 3:
        parts = [_number(v) for v in dms]
        if any(p is None or p < 0 for p in parts):
            return None
        d, m, s = (float(p) for p in parts if p is not None)
        value = d + m / 60.0 + s / 3600.0
    else:
        single = _number(dms)  # a few writers store decimal degrees as one rational
        if single is None:
            return None
        value = abs(single)
    ref_text = _text(ref)
    return -value if ref_text is not None and ref_text.upper().startswith(negative) else value


def _shown(value: Any) -> str:
    """A rational as written (``1/0``, where ``float`` would say nan), else its repr."""
    if isinstance(getattr(value, "denominator", None), int):
        return f"{value.numerator}/{value.denominator}"
    return repr(value)


def _parse_offset(text: str | None) -> timezone | None:
    if text is None or len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def _parse_datetime(text: str | None, subsec: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if subsec and subsec.isascii() and subsec.isdigit():  # "²".isdigit() is True too
        moment = moment.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    return moment


def _gps_time(date: Any, hms: Any) -> datetime | None:
    date_text = _text(date)
    if date_text is None or not isinstance(hms, tuple | list) or len(hms) != 3:
        return None
    parts = [_number(v) for v in hms]
    if any(p is None or p < 0 for p in parts):
        return None
    h, m, s = (float(p) for p in parts if p is not None)
    try:
        day = datetime.strptime(date_text[:10].replace("-", ":"), "%Y:%m:%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    if h >= 24 or m >= 60 or s >= 61:
        return None
    return day + timedelta(hours=h, minutes=m, seconds=s)


def _read_ifds(image: Image.Image, out: ExifFields) -> tuple[Mapping[int, Any], ...]:
    try:
        exif = image.getexif()
        return (exif, exif.get_ifd(EXIF_IFD), exif.get_ifd(GPS_IFD))
    except Exception as exc:  # Pillow raises many types on malformed TIFF structures
        out.problems.append(f"exif: unreadable ({type(exc).__name__}: {exc})")
        return ({}, {}, {})


def read_exif(image: Image.Image) -> ExifFields:
    """Parses the EXIF of an opened (not necessarily decoded) image.

    Pillow warns about some malformed EXIF; catching those is the caller's choice.
    """
    out = ExifFields()
    ifd0, sub, gps = _read_ifds(image, out)
    if not ifd0:
        out.problems.append("exif: the file has no EXIF")
        return out
    for ifd, names in ((ifd0, _IFD0_TAGS), (sub, _EXIF_TAGS), (gps, _GPS_TAGS)):
        for tag, name in names.items():
            if tag in ifd:
                out.raw[name] = _json_safe(ifd[tag])
    out.make, out.model = _text(ifd0.get(0x010F)), _text(ifd0.get(0x0110))
    orientation = ifd0.get(0x0112, 1)
    if isinstance(orientation, int) and 1 <= orientation <= 8:
        out.orientation = orientation
    else:
        out.problems.append(f"orientation: expected 1…8, got {orientation!r}; assumed 1")
    _read_times(ifd0, sub, out)
    out.focal_length_mm = _positive(sub.get(0x920A))
    out.focal_length_35mm = _positive(sub.get(0xA405))
    width, height = sub.get(0xA002), sub.get(0xA003)
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        out.pixel_size = (width, height)
    _read_gps(gps, out)
    return out


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _read_times(ifd0: Mapping[int, Any], sub: Mapping[int, Any], out: ExifFields) -> None:
    original = _text(sub.get(0x9003)) or _text(ifd0.get(0x0132))
    moment = _parse_datetime(original, _text(sub.get(0x9291)))
    if original is not None and moment is None:
        out.problems.append(f"captured_at: unreadable DateTimeOriginal {original!r}")
    offset_text = _text(sub.get(0x9011)) or _text(sub.get(0x9010))
    offset = _parse_offset(offset_text)
    if offset_text is not None and offset is None:
        out.problems.append(f"captured_at: unreadable OffsetTimeOriginal {offset_text!r}")
    if moment is not None and offset is not None:
        moment = moment.replace(tzinfo=offset)
    out.datetime_original = moment


def _read_gps(gps: Mapping[int, Any], out: ExifFields) -> None:
    if not gps:
        out.problems.append("gps: no EXIF GPS")
        return
    out.gps_time = _gps_time(gps.get(0x1D), gps.get(0x07))
    if 0x02 not in gps or 0x04 not in gps:
        out.problems.append("gps: EXIF GPS has no latitude/longitude")
        return
    out.lat = _degrees(gps.get(0x02), gps.get(0x01), "S")
    out.lon = _degrees(gps.get(0x04), gps.get(0x03), "W")
    if out.lat is None or out.lon is None:
        out.problems.append("gps: malformed GPSLatitude/GPSLongitude")
        out.lat = out.lon = None
        return
    altitude = _number(gps.get(0x06))
    if altitude is None and 0x06 in gps:
        out.problems.append(f"gps: unreadable GPSAltitude {_shown(gps[0x06])}; ignored")
    if altitude is not None:
        ref = gps.get(0x05, 0)
        below = ref in (1, b"\x01", "1") or (isinstance(ref, bytes) and ref[:1] == b"\x01")
        out.alt_m = -altitude if below else altitude
