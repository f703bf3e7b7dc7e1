"""Ingest: every uploaded file becomes a catalogued frame or a failure with its reason."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.flights import CHONGQING, make_flight
from xunjian.core.records import Platform
from xunjian.datasets.flightgen import encode_jpeg, lawnmower_poses
from xunjian.inspect.ingest import ingest_batch
from xunjian.inspect.upload import upload_batch
from xunjian.storage.catalog import Catalog
from xunjian.storage.localstore import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def sqlite_catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield catalog
    catalog.close()


def test_drone_batch_gives_one_frame_per_image_with_pose(
    tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog
) -> None:
    folder = make_flight(tmp_path / "flight", n=6, height_m=55.0)
    batch = upload_batch(folder, store).batch_id
    report = ingest_batch(batch, store, sqlite_catalog)
    assert report.failures == []
    assert len(report.frames) == 6
    assert report.georeferenceable == 6
    stored = sqlite_catalog.frames(batch)
    assert sorted(f.key for f in stored) == sorted(f.key for f in report.frames)
    first = next(f for f in stored if f.key.endswith("DJI_0001.JPG"))
    assert first.pose is not None
    assert first.pose.lat == pytest.approx(CHONGQING[0], abs=1e-6)
    assert first.pose.lon == pytest.approx(CHONGQING[1], abs=1e-6)
    assert first.pose.height_m == pytest.approx(55.0, abs=0.01)
    assert first.pose.pitch_deg == pytest.approx(-90.0)
    info = sqlite_catalog.batch(batch)
    assert info is not None
    assert info.status == "processed"
    assert info.frame_count == 6


def test_reingest_is_idempotent(tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog) -> None:
    folder = make_flight(tmp_path / "flight", n=3)
    batch = upload_batch(folder, store).batch_id
    ingest_batch(batch, store, sqlite_catalog)
    ingest_batch(batch, store, sqlite_catalog)
    assert len(sqlite_catalog.frames(batch)) == 3
    assert sqlite_catalog.failures(batch) == []


def test_bad_files_fail_alone_with_their_reason(
    tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog
) -> None:
    folder = make_flight(tmp_path / "flight", n=3)
    good = (folder / "DJI_0001.JPG").read_bytes()
    (folder / "truncated.JPG").write_bytes(good[: len(good) // 2])
    (folder / "text.jpg").write_text("this is not a photo")
    (folder / "png.jpg").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    (folder / "no_exif.jpg").write_bytes(encode_jpeg(np.zeros((48, 64, 3), np.uint8), None))
    (folder / "copy.JPG").write_bytes(good)
    batch = upload_batch(folder, store).batch_id

    report = ingest_batch(batch, store, sqlite_catalog)

    reasons = dict(report.failures)
    failed_names = {key.rsplit("/", 1)[-1] for key in reasons}
    assert failed_names == {"truncated.JPG", "text.jpg", "png.jpg", "copy.JPG"}
    for key, reason in reasons.items():
        assert reason, key
    assert "duplicate of DJI_0001.JPG" in reasons[f"raw/{batch}/copy.JPG"]
    assert {k.rsplit("/", 1)[-1] for k, _ in [(f.key, 0) for f in report.frames]} == {
        "DJI_0001.JPG",
        "DJI_0002.JPG",
        "DJI_0003.JPG",
        "no_exif.jpg",
    }
    no_exif = next(f for f in report.frames if f.key.endswith("no_exif.jpg"))
    assert no_exif.pose is None
    assert any(p.startswith("pose") or "gps" in p.lower() for p in no_exif.problems)
    assert {f.key for f in sqlite_catalog.failures(batch)} == set(reasons)


def test_object_changed_after_upload_is_detected(
    tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog
) -> None:
    folder = make_flight(tmp_path / "flight", n=2)
    batch = upload_batch(folder, store).batch_id
    key = f"raw/{batch}/DJI_0002.JPG"
    store.put_bytes(key, (folder / "DJI_0001.JPG").read_bytes())
    report = ingest_batch(batch, store, sqlite_catalog)
    assert [k for k, _ in report.failures] == [key]
    assert "content changed since upload" in report.failures[0][1]


def _gpx(points: list[tuple[datetime, float, float]]) -> str:
    rows = "".join(
        f'<trkpt lat="{lat:.8f}" lon="{lon:.8f}"><ele>240</ele>'
        f"<time>{t.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}</time></trkpt>"
        for t, lat, lon in points
    )
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="test" '
        'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        f"{rows}</trkseg></trk></gpx>"
    )


def test_vehicle_frames_take_their_pose_from_the_track(
    tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog
) -> None:
    import pymap3d

    folder = tmp_path / "run"
    folder.mkdir()
    start = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    points = []
    for second in range(0, 61):  # 10 m/s due east for a minute
        lat, lon, _ = pymap3d.enu2geodetic(10.0 * second, 0.0, 0.0, *CHONGQING, 0.0)
        points.append((start + timedelta(seconds=second), float(lat), float(lon)))
    (folder / "track.gpx").write_text(_gpx(points))
    for index, second in enumerate([5.0, 20.5, 40.0, 90.0]):  # the last is after the track
        tags = lawnmower_poses(
            *CHONGQING,
            rows=1,
            cols=1,
            spacing_m=1,
            height_m=1.6,
            start=start + timedelta(seconds=second),
        )[0]
        (folder / f"cam_{index}.jpg").write_bytes(
            encode_jpeg(np.full((60, 80, 3), 90, np.uint8), tags)
        )

    batch = upload_batch(folder, store).batch_id
    report = ingest_batch(batch, store, sqlite_catalog)

    assert report.platform == "vehicle"
    frames = {f.key.rsplit("/", 1)[-1]: f for f in report.frames}
    assert all(f.platform is Platform.VEHICLE for f in frames.values())
    second_frame = frames["cam_1.jpg"].pose
    assert second_frame is not None
    east, north, _ = pymap3d.geodetic2enu(second_frame.lat, second_frame.lon, 0.0, *CHONGQING, 0.0)
    assert east == pytest.approx(205.0, abs=0.05)
    assert north == pytest.approx(0.0, abs=0.05)
    assert second_frame.yaw_deg == pytest.approx(90.0, abs=1.0)
    assert math.isclose(second_frame.height_m, 1.6)
    late = frames["cam_3.jpg"]
    assert late.pose is None
    assert any("track" in p for p in late.problems)


def test_capture_time_without_zone_is_read_in_the_camera_zone(
    tmp_path: Path, store: LocalStore, sqlite_catalog: Catalog
) -> None:
    from PIL import Image

    folder = tmp_path / "phone"
    folder.mkdir()
    image = Image.new("RGB", (64, 48), (120, 120, 120))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2026:11:24 10:30:00"  # DateTimeOriginal, no offset
    image.save(folder / "IMG_0001.jpg", exif=exif)
    batch = upload_batch(folder, store).batch_id
    report = ingest_batch(batch, store, sqlite_catalog, camera_timezone="Asia/Shanghai")
    assert report.failures == []
    (frame,) = sqlite_catalog.frames(batch)
    assert frame.captured_at == datetime(2026, 11, 24, 2, 30, tzinfo=UTC)
    assert any("read as Asia/Shanghai" in p for p in frame.problems)
