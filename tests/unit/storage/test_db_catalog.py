"""The catalog of batches, frames and failures, on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from xunjian.core.records import CameraIntrinsics, CameraPose, Frame, Platform
from xunjian.errors import DatabaseError, InputError
from xunjian.settings import Settings
from xunjian.storage.catalog import BatchInfo, Catalog, validate_batch_id
from xunjian.storage.tables import BATCHES, FRAME_FAILURES, FRAMES

CHONGQING = timezone(timedelta(hours=8))


class FixedClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 6, 1, 2, 30, 15, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def clocked(database_url: str, clock: FixedClock):
    with Catalog(database_url, clock=clock) as catalog:
        yield catalog


def full_frame(batch_id: str = "b1", key: str = "raw/b1/DJI_0001.JPG") -> Frame:
    return Frame(
        batch_id=batch_id,
        key=key,
        sha256="ab" * 32,
        width=5280,
        height=3956,
        platform=Platform.DRONE,
        captured_at=datetime(2025, 5, 20, 10, 15, 30, 250000, tzinfo=CHONGQING),
        camera_make="DJI",
        camera_model="M3E",
        intrinsics=CameraIntrinsics(
            5280, 3956, 3713.29, 3713.31, 2640.5, 1978.25, "xmp_calibrated"
        ),
        pose=CameraPose(
            lat=29.563009123456789,
            lon=106.551556987654321,
            height_m=80.125,
            yaw_deg=-12.3,
            pitch_deg=-90.0,
            roll_deg=0.1,
            abs_alt_m=412.7,
            sigma_xy_m=0.05,
            sigma_h_m=0.1,
            sigma_yaw_deg=0.5,
            source="dji_xmp_rtk",
        ),
        problems=("gimbal roll near limit",),
    )


def bare_frame(batch_id: str = "b1", key: str = "raw/b1/frame_0002.jpg") -> Frame:
    return Frame(
        batch_id=batch_id,
        key=key,
        sha256="cd" * 32,
        width=1920,
        height=1080,
        platform=Platform.VEHICLE,
        problems=("no GPS in EXIF", "no focal length in EXIF"),
    )


def count(catalog: Catalog, table, batch_id: str = "b1") -> int:
    query = select(func.count()).select_from(table).where(table.c.batch_id == batch_id)
    with catalog.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def stored_batch(catalog: Catalog, batch_id: str = "b1") -> BatchInfo:
    info = catalog.batch(batch_id)
    assert info is not None
    return info


def test_upsert_batch_creates_then_updates(clocked: Catalog, clock: FixedClock) -> None:
    created = clocked.upsert_batch(
        "flight-2025.05.20_A", "drone", manifest_key="raw/x/manifest.json", meta={"pilot": "李"}
    )
    assert created == BatchInfo(
        batch_id="flight-2025.05.20_A",
        platform="drone",
        status="uploaded",
        manifest_key="raw/x/manifest.json",
        created_at=clock.now,
        completed_at=None,
        frame_count=0,
        failed_count=0,
        meta={"pilot": "李"},
    )
    assert created.created_at.tzinfo == UTC
    clock.advance(60)
    again = clocked.upsert_batch("flight-2025.05.20_A", "vehicle", status="uploading")
    assert again.created_at == created.created_at  # the first sighting stays
    assert (again.platform, again.status) == ("vehicle", "uploading")
    assert again.manifest_key == "raw/x/manifest.json"  # None keeps what is stored
    assert again.meta == {"pilot": "李"}
    replaced = clocked.upsert_batch("flight-2025.05.20_A", "drone", meta={"n": [1, 2]})
    assert replaced.meta == {"n": [1, 2]}
    assert clocked.batch("flight-2025.05.20_A") == replaced
    assert clocked.batch("unknown") is None


def test_batches_are_listed_oldest_first(clocked: Catalog, clock: FixedClock) -> None:
    clocked.upsert_batch("zeta", "drone")
    clock.advance(1)
    clocked.upsert_batch("alpha", "vehicle")
    assert [b.batch_id for b in clocked.batches()] == ["zeta", "alpha"]


def test_status_and_counts(clocked: Catalog, clock: FixedClock) -> None:
    clocked.upsert_batch("b1", "drone", status="uploading")
    for key in ("a", "b", "c", "d"):
        clocked.upsert_frame(full_frame(key=key))
    clocked.record_failure("b1", "d", "detector crashed")  # a frame that later failed
    clocked.record_failure("b1", "e", "corrupt JPEG")  # never became a frame
    assert stored_batch(clocked).frame_count == 0  # counts move with the status only

    clocked.set_batch_status("b1", "processing")
    info = stored_batch(clocked)
    assert (info.status, info.frame_count, info.failed_count) == ("processing", 3, 2)
    assert info.completed_at is None

    done_at = clock.advance(3600)
    clocked.set_batch_status("b1", "processed")
    info = stored_batch(clocked)
    assert (info.status, info.completed_at) == ("processed", done_at)

    clocked.upsert_frame(full_frame(key="d"))  # the re-run fixed it
    clocked.set_batch_status("b1", "processing")
    info = stored_batch(clocked)
    assert (info.frame_count, info.failed_count, info.completed_at) == (4, 1, None)


def test_set_batch_status_refuses_unknown_status_and_batch(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    with pytest.raises(InputError, match="expected one of uploading, uploaded"):
        catalog.set_batch_status("b1", "done")
    with pytest.raises(InputError, match="no such batch: 'b2'"):
        catalog.set_batch_status("b2", "processed")
    with pytest.raises(InputError, match="platform: expected one of drone, vehicle, got 'boat'"):
        catalog.upsert_batch("b1", "boat")


def test_frames_round_trip_every_field(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    frames = [full_frame(), bare_frame()]
    for frame in frames:
        catalog.upsert_frame(frame)
    stored = catalog.frames("b1")
    assert stored == frames
    assert stored[0].captured_at == frames[0].captured_at
    assert stored[0].captured_at is not None and stored[0].captured_at.tzinfo == UTC
    assert stored[0].pose == frames[0].pose  # floats exact, abs_alt_m kept
    assert stored[1].pose is None and stored[1].intrinsics is None
    assert isinstance(stored[1].problems, tuple)
    assert stored[1].platform is Platform.VEHICLE
    assert catalog.frames("other") == []


def test_a_pose_without_absolute_altitude_round_trips(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    frame = full_frame()
    assert frame.pose is not None
    frame = replace(frame, pose=replace(frame.pose, abs_alt_m=None), problems=())
    catalog.upsert_frame(frame)
    assert catalog.frames("b1") == [frame]


def test_upsert_frame_is_idempotent_and_updates(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    catalog.upsert_frame(full_frame())
    catalog.upsert_frame(full_frame())
    assert count(catalog, FRAMES) == 1
    changed = replace(full_frame(), sha256="ef" * 32, pose=None, problems=("no GPS",))
    catalog.upsert_frame(changed)
    assert catalog.frames("b1") == [changed]
    assert count(catalog, FRAMES) == 1


def test_concurrent_upserts_of_one_frame_keep_one_row(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: catalog.upsert_frame(full_frame()), range(16)))
    assert count(catalog, FRAMES) == 1


def test_failures_are_recorded_once_and_cleared_by_success(
    clocked: Catalog, clock: FixedClock
) -> None:
    clocked.upsert_batch("b1", "drone")
    clocked.upsert_frame(full_frame(key="k1"))
    clocked.record_failure("b1", "k1", "decode failed")
    later = clock.advance(5)
    clocked.record_failure("b1", "k1", "decode failed twice")
    clocked.record_failure("b1", "k2", "not a JPEG")
    failures = clocked.failures("b1")
    assert [(f.key, f.reason, f.recorded_at) for f in failures] == [
        ("k1", "decode failed twice", later),
        ("k2", "not a JPEG", later),
    ]
    assert count(clocked, FRAME_FAILURES) == 2
    assert [f.key for f in clocked.frames("b1", status="failed")] == ["k1"]
    assert clocked.frames("b1", status="ok") == []

    clocked.upsert_frame(full_frame(key="k1"))
    assert [f.key for f in clocked.failures("b1")] == ["k2"]
    assert [f.key for f in clocked.frames("b1", status="ok")] == ["k1"]
    with pytest.raises(InputError, match="frame status"):
        clocked.frames("b1", status="broken")


def test_deleting_a_batch_cascades(catalog: Catalog) -> None:
    for batch_id in ("b1", "b2"):
        catalog.upsert_batch(batch_id, "drone")
        catalog.upsert_frame(full_frame(batch_id=batch_id))
        catalog.record_failure(batch_id, "bad.jpg", "corrupt")
    with catalog.engine.begin() as conn:  # a plain SQL delete: the database cascades
        conn.execute(delete(BATCHES).where(BATCHES.c.id == "b1"))
    assert (count(catalog, FRAMES), count(catalog, FRAME_FAILURES)) == (0, 0)
    assert catalog.delete_batch("b2") is True
    assert catalog.delete_batch("b2") is False
    assert (count(catalog, FRAMES, "b2"), count(catalog, FRAME_FAILURES, "b2")) == (0, 0)
    assert catalog.batches() == []


def test_frames_of_an_unknown_batch_are_refused(catalog: Catalog) -> None:
    with pytest.raises(DatabaseError, match=r"saving frame 'raw/b1/DJI_0001\.JPG' of 'b1'"):
        catalog.upsert_frame(full_frame())
    with pytest.raises(DatabaseError, match="recording the failure"):
        catalog.record_failure("b1", "x.jpg", "corrupt")


def test_naive_capture_times_are_refused(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    naive = replace(full_frame(), captured_at=datetime(2025, 5, 20, 10, 15))
    with pytest.raises(InputError, match="timezone-aware captured_at"):
        catalog.upsert_frame(naive)


INVALID_BATCH_IDS = [
    "",
    "-flight",
    ".hidden",
    "_x",
    "a/b",
    "../etc",
    "a b",
    "abc\n",
    "批次1",
    "x" * 129,
    "a;drop table batches",
]


def test_invalid_batch_ids_are_refused(catalog: Catalog) -> None:
    # One test looping over the ids, not one per id: each PostgreSQL case costs a database.
    for batch_id in INVALID_BATCH_IDS:
        with pytest.raises(InputError, match="batch id: expected 1-128 characters"):
            catalog.upsert_batch(batch_id, "drone")
        with pytest.raises(InputError):
            catalog.upsert_frame(full_frame(batch_id=batch_id))
        with pytest.raises(InputError):
            catalog.record_failure(batch_id, "k", "r")
        with pytest.raises(InputError):
            catalog.set_batch_status(batch_id, "processed")
        with pytest.raises(InputError):
            catalog.batch(batch_id)
    assert catalog.batches() == []


@pytest.mark.parametrize("batch_id", ["a", "0", "x" * 128, "2025-05-20_flight.3", "B-7.x_y"])
def test_valid_batch_ids(batch_id: str) -> None:
    assert validate_batch_id(batch_id) == batch_id


def test_invalid_frame_keys_are_refused(catalog: Catalog) -> None:
    catalog.upsert_batch("b1", "drone")
    for key in ("", "k" * 1025, "a\x00b"):
        with pytest.raises(InputError, match="frame key"):
            catalog.record_failure("b1", key, "r")
        with pytest.raises(InputError, match="frame key"):
            catalog.upsert_frame(full_frame(key=key))
    assert catalog.failures("b1") == []


def test_from_settings_uses_the_sqlite_file_in_the_data_dir(settings: Settings) -> None:
    with Catalog.from_settings(settings) as catalog:
        catalog.upsert_batch("b1", "drone")
        assert "***" not in repr(catalog)
    assert (Path(settings.data_dir) / "xunjian.db").is_file()
