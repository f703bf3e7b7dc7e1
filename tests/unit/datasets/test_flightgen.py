"""The test-flight generator writes what DJI cameras write, checked with independent readers."""

from __future__ import annotations

import io
import itertools
import math
import re
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import exifread
import numpy as np
import pymap3d
import pytest
from PIL import Image

from xunjian.datasets.flightgen import (
    PhotoTags,
    encode_jpeg,
    generate_flight,
    lawnmower_poses,
)
from xunjian.errors import InputError

CST = timezone(timedelta(hours=8))


def _tags(**changes: object) -> PhotoTags:
    base: dict[str, object] = {
        "lat": 29.5630147,
        "lon": 106.5515281,
        "abs_alt_m": 336.66,
        "rel_alt_m": 98.9,
        "gimbal_yaw_deg": 37.1,
        "gimbal_pitch_deg": -89.9,
        "gimbal_roll_deg": 0.0,
        "flight_yaw_deg": 37.9,
        "flight_pitch_deg": 3.3,
        "flight_roll_deg": -1.8,
        "captured_at": datetime(2024, 5, 1, 10, 30, 15, tzinfo=CST),
    }
    base.update(changes)
    return PhotoTags(**base)  # type: ignore[arg-type]


def _rgb(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def _dms_to_deg(tag, ref: str) -> float:
    d, m, s = (float(v.num) / float(v.den) for v in tag.values)
    value = d + m / 60 + s / 3600
    return -value if ref in ("S", "W") else value


def _xmp_field(data: bytes, name: str) -> str | None:
    match = re.search(rb"drone-dji:" + name.encode() + rb'="([^"]*)"', data)
    return match.group(1).decode() if match else None


def test_round_trip_through_independent_readers() -> None:
    tags = _tags(lat=-33.8567844, lon=-70.6482, abs_alt_m=-12.5)
    data = encode_jpeg(_rgb(), tags)
    exif = exifread.process_file(io.BytesIO(data), details=False)
    lat = _dms_to_deg(exif["GPS GPSLatitude"], str(exif["GPS GPSLatitudeRef"]))
    lon = _dms_to_deg(exif["GPS GPSLongitude"], str(exif["GPS GPSLongitudeRef"]))
    assert lat == pytest.approx(-33.8567844, abs=1e-9)
    assert lon == pytest.approx(-70.6482, abs=1e-9)
    altitude = exif["GPS GPSAltitude"].values[0]
    assert float(altitude.num) / float(altitude.den) == pytest.approx(12.5)
    assert exif["GPS GPSAltitudeRef"].values[0] == 1  # below sea level
    assert str(exif["GPS GPSDate"]) == "2024:05:01"
    hms = [float(v.num) / float(v.den) for v in exif["GPS GPSTimeStamp"].values]
    assert hms == [2.0, 30.0, 15.0]  # 10:30:15 +08:00 is 02:30:15 UTC
    assert str(exif["EXIF DateTimeOriginal"]) == "2024:05:01 10:30:15"
    assert str(exif["EXIF OffsetTimeOriginal"]) == "+08:00"
    assert str(exif["Image Make"]) == "DJI"
    assert str(exif["Image Model"]) == "FC220"
    assert str(exif["EXIF FocalLength"]) == "473/100"
    assert str(exif["EXIF FocalLengthIn35mmFilm"]) == "26"
    assert str(exif["EXIF ExifImageWidth"]) == "64"
    assert str(exif["EXIF ExifImageLength"]) == "48"
    assert _xmp_field(data, "RelativeAltitude") == "+98.90"
    assert _xmp_field(data, "AbsoluteAltitude") == "-12.50"
    assert _xmp_field(data, "GimbalYawDegree") == "+37.10"
    assert _xmp_field(data, "GimbalPitchDegree") == "-89.90"
    assert _xmp_field(data, "GimbalRollDegree") == "+0.00"
    assert _xmp_field(data, "FlightYawDegree") == "+37.90"
    assert _xmp_field(data, "FlightPitchDegree") == "+3.30"
    assert _xmp_field(data, "FlightRollDegree") == "-1.80"
    assert _xmp_field(data, "RtkFlag") is None
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert image.size == (64, 48)


def test_rtk_and_calibration_written_like_dji() -> None:
    tags = _tags(
        model="FC6310R",
        calibrated_focal_px=3666.666504,
        optical_center_px=(2736.0, 1824.0),
        rtk_flag=50,
        rtk_std_lat=0.01132,
        rtk_std_lon=0.01117,
        rtk_std_hgt=0.02493,
    )
    data = encode_jpeg(_rgb(), tags)
    assert _xmp_field(data, "CalibratedFocalLength") == "3666.666504"
    assert _xmp_field(data, "CalibratedOpticalCenterX") == "2736.000000"
    assert _xmp_field(data, "CalibratedOpticalCenterY") == "1824.000000"
    assert _xmp_field(data, "RtkFlag") == "50"
    assert _xmp_field(data, "RtkStdLon") == "0.01117"
    assert _xmp_field(data, "RtkStdLat") == "0.01132"
    assert _xmp_field(data, "RtkStdHgt") == "0.02493"


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 2
    while data[i + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        out.append((data[i + 1], data[i + 4 : i + 2 + length]))
        i += 2 + length
    return out


def test_xmp_segment_padded_to_dji_length() -> None:
    data = encode_jpeg(_rgb(), _tags())
    xmp = [p for m, p in _segments(data) if m == 0xE1 and p.startswith(b"http://ns.adobe.com")]
    assert len(xmp) == 1
    assert len(xmp[0]) + 2 == 8190  # the length field DJI cameras write
    assert xmp[0].rstrip().endswith(b'<?xpacket end="w"?>')


def test_deterministic_bytes(tmp_path: Path) -> None:
    assert encode_jpeg(_rgb(), _tags()) == encode_jpeg(_rgb(), _tags())
    poses = [_tags(), _tags(lat=29.6)]
    first = [p.read_bytes() for p in generate_flight(tmp_path / "a", poses, width=80, height=60)]
    second = [p.read_bytes() for p in generate_flight(tmp_path / "b", poses, width=80, height=60)]
    assert first == second
    assert first[0] != first[1]  # each frame has its own texture


def test_bare_jpeg_without_tags() -> None:
    data = encode_jpeg(_rgb(), None)
    assert b"Exif" not in data and b"xmpmeta" not in data


def test_naive_time_refused() -> None:
    with pytest.raises(InputError, match="tz-aware"):
        encode_jpeg(_rgb(), _tags(captured_at=datetime(2024, 5, 1, 10, 0)))


def test_bad_array_refused() -> None:
    with pytest.raises(InputError, match="uint8"):
        encode_jpeg(np.zeros((4, 4), dtype=np.float32), None)


def test_lawnmower_geometry() -> None:
    start = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
    poses = lawnmower_poses(
        29.5, 106.5, rows=3, cols=4, spacing_m=20.0, height_m=60.0, start=start, heading_deg=90
    )
    assert len(poses) == 12
    enu = [pymap3d.geodetic2enu(p.lat, p.lon, 0.0, 29.5, 106.5, 0.0)[:2] for p in poses]
    assert enu[0] == pytest.approx((0.0, 0.0), abs=1e-6)
    assert enu[3] == pytest.approx((60.0, 0.0), abs=1e-3)  # first leg heads east
    assert enu[4] == pytest.approx((60.0, -20.0), abs=1e-3)  # next leg one spacing south
    steps = [math.dist(a, b) for a, b in itertools.pairwise(enu)]
    assert steps == pytest.approx([20.0] * 11, abs=1e-3)
    assert [p.gimbal_yaw_deg for p in poses[3:5]] == [90.0, -90.0]
    assert poses[5].captured_at - poses[4].captured_at == timedelta(seconds=2)
    assert all(p.rel_alt_m == 60.0 and p.gimbal_pitch_deg == -90.0 for p in poses)


def test_segment_order_like_dji() -> None:
    markers = [(m, p[:4]) for m, p in _segments(encode_jpeg(_rgb(), _tags()))]
    assert markers[0] == (0xE1, b"Exif")  # no JFIF APP0, EXIF first, then the XMP
    assert markers[1] == (0xE1, b"http")
