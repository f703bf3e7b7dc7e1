"""extract_metadata on generated photos: poses, intrinsics, times, and every bad input."""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.fixtures.badinput import (
    FATAL_IMAGES,
    NONFATAL_IMAGES,
    clean_tags,
    pixels,
)
from xunjian.core.records import Platform
from xunjian.datasets.flightgen import PhotoTags, encode_jpeg, xmp_packet
from xunjian.errors import InputError, MetadataError
from xunjian.inspect.metadata import PhotoMetadata, extract_metadata


def _photo(tmp_path: Path, tags: PhotoTags, *, size: tuple[int, int] = (64, 48), **kw) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode_jpeg(pixels(*size), tags, **kw))
    return path


def _json_roundtrip(meta: PhotoMetadata) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(meta.to_json(), allow_nan=False))
    return out


def test_dji_photo_gives_pose_intrinsics_and_utc_time(tmp_path: Path) -> None:
    tags = clean_tags(lat=-33.5, lon=-70.25, rel_alt_m=81.3, gimbal_yaw_deg=-150.2)
    meta = extract_metadata(_photo(tmp_path, tags))
    assert (meta.width, meta.height) == (64, 48)
    assert meta.captured_at == datetime(2024, 5, 1, 2, 0, 0, tzinfo=UTC)
    assert (meta.camera_make, meta.camera_model) == ("DJI", "FC220")
    pose = meta.pose
    assert pose is not None
    assert pose.lat == pytest.approx(-33.5, abs=1e-9)
    assert pose.lon == pytest.approx(-70.25, abs=1e-9)
    assert (pose.height_m, pose.yaw_deg, pose.pitch_deg, pose.roll_deg) == (81.3, -150.2, -90, 0)
    assert pose.abs_alt_m == 320.0
    assert pose.sigma_xy_m == 2.0
    assert pose.source == "dji_xmp"
    k = meta.intrinsics
    assert k is not None and k.source == "exif_sensor_table"
    assert k.fx == pytest.approx(4.73 / 6.17 * 64)  # 4:3 image on a 4:3 sensor
    assert k.fy == pytest.approx(4.73 / 4.55 * 48)
    assert (k.cx, k.cy) == (32, 24)
    assert meta.problems == ()
    frame = meta.to_frame(batch_id="b1", key="raw/b1/photo.jpg", sha256="00" * 32)
    assert frame.georeferenceable and frame.platform is Platform.DRONE
    assert frame.pose == pose and frame.width == 64
    assert _json_roundtrip(meta)["pose"]["height_m"] == 81.3


def test_gimbal_not_flight_attitude(tmp_path: Path) -> None:
    tags = clean_tags(gimbal_yaw_deg=10.0, flight_yaw_deg=95.0, flight_pitch_deg=-12.0)
    pose = extract_metadata(_photo(tmp_path, tags)).pose
    assert pose is not None and (pose.yaw_deg, pose.pitch_deg) == (10.0, -90.0)


def test_missing_gimbal_yaw_falls_back_to_flight_yaw_with_problem(tmp_path: Path) -> None:
    meta = extract_metadata(_photo(tmp_path, clean_tags(gimbal_yaw_deg=None, flight_yaw_deg=95.0)))
    assert meta.pose is not None and meta.pose.yaw_deg == 95.0
    assert any("yaw taken from FlightYawDegree" in p for p in meta.problems)


def test_missing_gimbal_pitch_refuses_pose(tmp_path: Path) -> None:
    meta = extract_metadata(_photo(tmp_path, clean_tags(gimbal_pitch_deg=None)))
    assert meta.pose is None
    assert "pose: no drone-dji:GimbalPitchDegree, camera pitch unknown" in meta.problems


def test_missing_roll_assumed_zero_with_problem(tmp_path: Path) -> None:
    meta = extract_metadata(_photo(tmp_path, clean_tags(gimbal_roll_deg=None)))
    assert meta.pose is not None and meta.pose.roll_deg == 0.0
    assert "pose: no drone-dji:GimbalRollDegree, roll assumed 0" in meta.problems


def test_rtk_fixed_gives_sigma_from_rtk_std(tmp_path: Path) -> None:
    tags = clean_tags(rtk_flag=50, rtk_std_lat=0.012, rtk_std_lon=0.02, rtk_std_hgt=0.03)
    pose = extract_metadata(_photo(tmp_path, tags)).pose
    assert pose is not None
    assert (pose.sigma_xy_m, pose.sigma_h_m, pose.source) == (0.02, 0.03, "dji_xmp_rtk")
    float_solution = clean_tags(rtk_flag=34, rtk_std_lat=0.3, rtk_std_lon=0.3, rtk_std_hgt=0.5)
    pose = extract_metadata(_photo(tmp_path, float_solution), default_sigma_xy_m=3.5).pose
    assert pose is not None and pose.sigma_xy_m == 3.5


def test_calibrated_intrinsics_preferred_and_used_as_is(tmp_path: Path) -> None:
    tags = clean_tags(calibrated_focal_px=500.0, optical_center_px=(33.0, 23.5))
    k = extract_metadata(_photo(tmp_path, tags)).intrinsics
    assert k is not None and k.source == "xmp_calibrated"
    assert (k.fx, k.fy, k.cx, k.cy) == (500.0, 500.0, 33.0, 23.5)


def test_calibrated_intrinsics_from_full_sensor_scaled_and_cropped(tmp_path: Path) -> None:
    # A Phantom 4 RTK calibration (5472×3648 sensor) on a 16:9 still shrunk to 96×54.
    tags = clean_tags(
        model="FC6310R", calibrated_focal_px=3666.666504, optical_center_px=(2736.0, 1824.0)
    )
    k = extract_metadata(_photo(tmp_path, tags, size=(96, 54))).intrinsics
    assert k is not None and k.source == "xmp_calibrated"
    scale = 96 / 5472
    assert k.fx == pytest.approx(3666.666504 * scale) and k.fy == k.fx
    assert (k.cx, k.cy) == pytest.approx((48.0, 27.0))


def test_sixteen_by_nine_crop_keeps_square_pixels(tmp_path: Path) -> None:
    k = extract_metadata(_photo(tmp_path, clean_tags(), size=(160, 90))).intrinsics
    assert k is not None
    assert k.fx == pytest.approx(4.73 / 6.17 * 160) and k.fy == pytest.approx(k.fx)


def test_unknown_model_uses_35mm_diagonal(tmp_path: Path) -> None:
    tags = clean_tags(model="SomePhone", focal_length_35mm=28)
    k = extract_metadata(_photo(tmp_path, tags, size=(60, 40))).intrinsics
    assert k is not None and k.source == "exif_35mm"
    assert k.fx == pytest.approx(28 / 36 * 60)  # 3:2: the diagonal rule equals f35/36·W
    tags = clean_tags(model="SomePhone", focal_length_35mm=None)
    meta = extract_metadata(_photo(tmp_path, tags))
    assert meta.intrinsics is None
    assert any("'SomePhone' not in the camera table" in p for p in meta.problems)


def test_resized_after_capture_scales_intrinsics(tmp_path: Path) -> None:
    tags = clean_tags()
    original = Image.open(io.BytesIO(encode_jpeg(pixels(128, 96), tags)))
    out = io.BytesIO()
    small = original.resize((64, 48))
    small.save(out, "JPEG", exif=original.getexif(), xmp=xmp_packet(tags))
    path = tmp_path / "resized.jpg"
    path.write_bytes(out.getvalue())
    meta = extract_metadata(path)
    assert meta.exif["PixelXDimension"] == 128 and meta.width == 64
    k = meta.intrinsics
    assert k is not None and k.fx == pytest.approx(4.73 / 6.17 * 64)


def test_orientation_six_swaps_axes_and_refuses_pose(tmp_path: Path) -> None:
    meta = extract_metadata(_photo(tmp_path, clean_tags(orientation=6), size=(64, 48)))
    assert (meta.width, meta.height, meta.orientation) == (48, 64, 6)
    k = meta.intrinsics
    assert k is not None and (k.width, k.height) == (48, 64)
    assert k.fx == pytest.approx(4.73 / 4.55 * 48) and k.fy == pytest.approx(4.73 / 6.17 * 64)
    assert meta.pose is None
    assert any("orientation 6" in p for p in meta.problems)


def test_naive_local_time_kept_and_reported(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0110] = "FC220\x00\x00\x00"
    exif.get_ifd(0x8769)[0x9003] = "2018:03:26 17:41:41"
    out = io.BytesIO()
    Image.fromarray(pixels()).save(out, "JPEG", exif=exif)
    path = tmp_path / "naive.jpg"
    path.write_bytes(out.getvalue())
    meta = extract_metadata(path)
    assert meta.captured_at == datetime(2018, 3, 26, 17, 41, 41)
    assert meta.camera_model == "FC220"
    assert any(
        p.startswith("captured_at: DateTimeOriginal has no time zone") for p in meta.problems
    )
    assert _json_roundtrip(meta)["captured_at_is_utc"] is False


def test_max_pixels_is_checked_before_decoding(tmp_path: Path) -> None:
    path = _photo(tmp_path, clean_tags())
    with pytest.raises(MetadataError, match="decompression bomb"):
        extract_metadata(path, max_pixels=64 * 48 - 1)
    assert extract_metadata(path, max_pixels=64 * 48).width == 64


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match=r"gone\.jpg: cannot read file"):
        extract_metadata(tmp_path / "gone.jpg")


@pytest.mark.parametrize("case", sorted(FATAL_IMAGES))
def test_unusable_images_raise_naming_file_and_reason(tmp_path: Path, case: str) -> None:
    writer, reason = FATAL_IMAGES[case]
    path = writer(tmp_path)
    with pytest.raises(MetadataError, match=reason) as caught:
        extract_metadata(path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, InputError)


@pytest.mark.parametrize("case", sorted(NONFATAL_IMAGES))
def test_bad_metadata_is_reported_not_raised(tmp_path: Path, case: str) -> None:
    writer, reason = NONFATAL_IMAGES[case]
    meta = extract_metadata(writer(tmp_path))
    assert any(re.search(reason, p) for p in meta.problems), meta.problems
    assert meta.pose is None
    assert all(": " in p for p in meta.problems)  # "field: reason"
    _json_roundtrip(meta)


def test_hostile_xmp_dropped_but_exif_kept(tmp_path: Path) -> None:
    writer, _ = NONFATAL_IMAGES["billion_laughs_xmp"]
    meta = extract_metadata(writer(tmp_path))
    assert meta.xmp == {}
    assert meta.gps is not None and math.isclose(meta.gps["lat"], 29.5630147, abs_tol=1e-9)


def test_phone_photo_reports_position_without_pose(tmp_path: Path) -> None:
    writer, _ = NONFATAL_IMAGES["gps_without_altitude"]
    meta = extract_metadata(writer(tmp_path))
    assert meta.gps is not None and meta.gps["alt_m"] is None
    assert meta.pose is None
    assert "pose: no drone-dji:GimbalPitchDegree, camera pitch unknown" in meta.problems


def test_xmp_child_elements_and_lists(tmp_path: Path) -> None:
    packet = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
        b' xmlns:dc="http://purl.org/dc/elements/1.1/" drone-dji:GimbalPitchDegree="-45.0">'
        b"<drone-dji:RelativeAltitude>+50.5</drone-dji:RelativeAltitude>"
        b"<drone-dji:GimbalYawDegree> -120.25 </drone-dji:GimbalYawDegree>"
        b"<dc:subject><rdf:Bag><rdf:li>road</rdf:li><rdf:li>patrol</rdf:li></rdf:Bag></dc:subject>"
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    meta = extract_metadata(_photo(tmp_path, clean_tags(), xmp=packet))
    assert meta.xmp["dc:subject"] == ["road", "patrol"]
    pose = meta.pose
    assert pose is not None, meta.problems
    assert (pose.height_m, pose.yaw_deg, pose.pitch_deg) == (50.5, -120.25, -45.0)


def test_xmp_parser_caps_size_and_reports_garbage() -> None:
    from xunjian.inspect.xmp import MAX_XMP_BYTES, parse_xmp

    fields, reason = parse_xmp(b"<x:xmpmeta " + b" " * MAX_XMP_BYTES + b"/>")
    assert fields == {} and reason is not None and "exceeds" in reason
    fields, reason = parse_xmp(b"\x00\x01 not xml")
    assert fields == {} and reason is not None and reason.startswith("xmp: malformed XML")


def test_camera_table_lookup_strips_nul_padding() -> None:
    from xunjian.inspect.cameras import lookup_camera

    spec = lookup_camera("FC220\x00\x00\x00\x00")
    assert spec is not None and (spec.sensor_width_mm, spec.sensor_height_mm) == (6.17, 4.55)
    m3e = lookup_camera(" m3e ")
    assert m3e is not None and m3e.sensor_width_mm == 17.3
    p4 = lookup_camera("FC6310")
    assert p4 is not None and (p4.sensor_width_mm, p4.sensor_height_mm) == (13.2, 8.8)
    assert lookup_camera("FC300S") is not None and lookup_camera("nope") is None


@settings(max_examples=40, deadline=None)
@given(
    lat=st.floats(-89.999, 89.999),
    lon=st.floats(-179.999, 179.999),
    height=st.floats(-99.0, 1499.0),
    yaw=st.floats(-179.99, 180.0),
    pitch=st.floats(-120.0, 30.0),
)
def test_any_plausible_pose_round_trips(
    lat: float, lon: float, height: float, yaw: float, pitch: float
) -> None:
    assume(abs(lat) > 1e-6 or abs(lon) > 1e-6)
    tags = clean_tags(
        lat=lat, lon=lon, rel_alt_m=height, gimbal_yaw_deg=yaw, gimbal_pitch_deg=pitch
    )
    with tempfile.TemporaryDirectory() as folder:
        pose = extract_metadata(_photo(Path(folder), tags)).pose
    assert pose is not None
    assert pose.lat == pytest.approx(lat, abs=1e-9) and pose.lon == pytest.approx(lon, abs=1e-9)
    # The XMP carries two decimals, as DJI writes it.
    assert pose.height_m == pytest.approx(height, abs=0.005 + 1e-9)
    assert pose.pitch_deg == pytest.approx(pitch, abs=0.005 + 1e-9)
    assert abs((pose.yaw_deg - yaw + 180) % 360 - 180) <= 0.005 + 1e-9
