"""extract_metadata on the real DJI Mavic Pro and Amsterdam phone photos, checked against
independent readers: exifread for EXIF GPS, a plain regex over the file bytes for drone-dji."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import exifread
import pytest

from xunjian.inspect.metadata import extract_metadata

pytestmark = pytest.mark.realdata

DJI_PHOTOS = [f"DJI_00{n}.JPG" for n in (10, 12, 19, 20, 22, 28, 30, 31)]


def _exifread_degrees(tags: dict[str, Any], name: str) -> float:
    d, m, s = (float(v.num) / float(v.den) for v in tags[f"GPS GPS{name}"].values)
    value = d + m / 60 + s / 3600
    return -value if str(tags[f"GPS GPS{name}Ref"]) in ("S", "W") else value


def _drone_dji(data: bytes, name: str) -> float:
    match = re.search(rb"drone-dji:" + name.encode() + rb'="([-+0-9.]+)"', data)
    assert match, name
    return float(match.group(1))


@pytest.mark.parametrize("name", DJI_PHOTOS)
def test_dji_photo_matches_independent_readers(shared_data: Path, name: str) -> None:
    path = shared_data / "aerial_vehicles_dji" / "images" / name
    data = path.read_bytes()
    with path.open("rb") as fp:
        tags = exifread.process_file(fp, details=False)
    meta = extract_metadata(path)
    pose = meta.pose
    assert pose is not None, meta.problems
    assert pose.lat == pytest.approx(_exifread_degrees(tags, "Latitude"), abs=1e-9)
    assert pose.lon == pytest.approx(_exifread_degrees(tags, "Longitude"), abs=1e-9)
    assert pose.height_m == _drone_dji(data, "RelativeAltitude")
    assert pose.yaw_deg == _drone_dji(data, "GimbalYawDegree")
    assert pose.pitch_deg == _drone_dji(data, "GimbalPitchDegree")
    assert pose.roll_deg == _drone_dji(data, "GimbalRollDegree")
    assert pose.abs_alt_m == _drone_dji(data, "AbsoluteAltitude")
    assert -90.0 <= pose.pitch_deg <= -19.0
    assert (meta.width, meta.height) == (4000, 2250)
    assert (meta.camera_make, meta.camera_model) == ("DJI", "FC220")  # NULs stripped
    focal = tags["EXIF FocalLength"].values[0]
    focal_mm = float(focal.num) / float(focal.den)
    assert focal_mm == pytest.approx(4.73)
    k = meta.intrinsics
    assert k is not None and k.source == "exif_sensor_table"
    assert k.fx == pytest.approx(focal_mm / 6.17 * 4000)  # ≈ 3066 px
    assert k.fy == pytest.approx(k.fx)  # 16:9 still = crop of the 4:3 sensor, square pixels
    assert (k.cx, k.cy) == (2000, 1125)
    # The Mavic Pro writes local time without an offset and no GPS time: kept naive, said so.
    assert meta.captured_at is not None and meta.captured_at.tzinfo is None
    assert str(tags["EXIF DateTimeOriginal"]) == meta.captured_at.strftime("%Y:%m:%d %H:%M:%S")
    assert [p.split(":")[0] for p in meta.problems] == ["captured_at"]
    frame = meta.to_frame(batch_id="b", key=name, sha256="0" * 64)
    assert frame.georeferenceable


def test_amsterdam_phone_photos_give_position_and_say_why_no_pose(shared_data: Path) -> None:
    folder = shared_data / "amsterdam_dumping_unlabeled" / "images"
    with_gps = 0
    for path in sorted(folder.glob("*.jpg")):
        meta = extract_metadata(path)
        with path.open("rb") as fp:
            tags = exifread.process_file(fp, details=False)
        if "GPS GPSLatitude" not in tags:
            assert meta.gps is None
            continue
        with_gps += 1
        assert meta.gps is not None
        assert meta.gps["lat"] == pytest.approx(_exifread_degrees(tags, "Latitude"), abs=1e-9)
        assert meta.gps["lon"] == pytest.approx(_exifread_degrees(tags, "Longitude"), abs=1e-9)
        assert 52.3 <= meta.gps["lat"] <= 52.4 and 4.75 <= meta.gps["lon"] <= 5.0
        assert meta.pose is None
        assert "pose: no drone-dji:RelativeAltitude, height above ground unknown" in meta.problems
        assert "pose: no drone-dji:GimbalPitchDegree, camera pitch unknown" in meta.problems
    assert with_gps == 30
