"""Uploading a flight batch: manifest last, resumable, idempotent, nothing lost silently."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.fixtures.flights import make_flight
from xunjian.errors import InputError
from xunjian.inspect.manifest import Manifest, manifest_key
from xunjian.inspect.upload import check_batch_id, slug, upload_batch
from xunjian.storage.localstore import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_upload_writes_every_file_and_a_manifest_last(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=6)
    shutil.copy(folder / "DJI_0001.JPG", folder / "copy_of_first.JPG")
    (folder / "notes.txt").write_text("pilot notes")
    (folder / ".hidden.JPG").write_bytes(b"x")

    report = upload_batch(folder, store)

    assert report.platform == "drone"
    assert report.batch_id.startswith("flight-")
    assert sorted(report.stored) == [f"DJI_{i:04d}.JPG" for i in range(1, 7)]
    assert report.duplicates == ["copy_of_first.JPG"]
    assert [(r.name, r.reason) for r in report.rejected] == [
        ("notes.txt", "not an image, video or GPS track")
    ]
    manifest = Manifest.from_json_bytes(store.get_bytes(manifest_key(report.batch_id)))
    assert len(manifest.files) == 7
    for entry in manifest.files:
        data = (folder / entry.name).read_bytes()
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.size == len(data)
        assert entry.captured_at is not None
        assert datetime.fromisoformat(entry.captured_at).tzinfo is not None
        if entry.duplicate_of is None:
            assert store.get_bytes(entry.key) == data
    dup = next(e for e in manifest.files if e.name == "copy_of_first.JPG")
    assert dup.duplicate_of == "DJI_0001.JPG"
    assert not store.exists(dup.key)
    # the manifest is written after every file it lists
    manifest_time = store.stat(manifest_key(report.batch_id)).last_modified
    assert all(store.stat(e.key).last_modified <= manifest_time for e in manifest.of_kind("image"))


def test_second_upload_stores_nothing_new(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=4)
    first = upload_batch(folder, store)
    manifest_before = store.get_bytes(first.manifest_key)
    second = upload_batch(folder, store)
    assert second.batch_id == first.batch_id
    assert second.stored == []
    assert second.bytes_sent == 0
    assert sorted(second.already_there) == sorted(first.stored)
    assert second.manifest_stored is False
    assert store.get_bytes(first.manifest_key) == manifest_before


def test_interrupted_upload_resumes_with_only_the_missing_files(
    tmp_path: Path, store: LocalStore
) -> None:
    folder = make_flight(tmp_path / "flight", n=4)
    first = upload_batch(folder, store)
    store.delete(f"raw/{first.batch_id}/DJI_0003.JPG")
    store.delete(first.manifest_key)
    again = upload_batch(folder, store)
    assert again.stored == ["DJI_0003.JPG"]
    assert again.manifest_stored is True


def test_changed_content_gets_a_new_batch_id(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=3)
    first = upload_batch(folder, store)
    (folder / "DJI_0002.JPG").write_bytes((folder / "DJI_0001.JPG").read_bytes() + b"\0")
    second = upload_batch(folder, store)
    assert second.batch_id != first.batch_id


def test_explicit_batch_id_and_platform(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=2)
    report = upload_batch(folder, store, batch_id="cq-2026-11-24", platform="drone")
    assert report.batch_id == "cq-2026-11-24"
    with pytest.raises(InputError, match="batch id"):
        upload_batch(folder, store, batch_id="../escape")
    with pytest.raises(InputError, match="platform"):
        upload_batch(folder, store, platform="boat")


def test_hostile_file_names_are_left_out_with_a_reason(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=2)
    (folder / "bad\nname.JPG").write_bytes((folder / "DJI_0001.JPG").read_bytes() + b"1")
    (folder / "back\\slash.JPG").write_bytes((folder / "DJI_0001.JPG").read_bytes() + b"2")
    (folder / "link.JPG").symlink_to("/etc/passwd")
    report = upload_batch(folder, store)
    reasons = {r.name: r.reason for r in report.rejected}
    assert set(reasons) == {"bad\nname.JPG", "back\\slash.JPG", "link.JPG"}
    assert "symbolic" in reasons["link.JPG"]
    assert sorted(report.stored) == ["DJI_0001.JPG", "DJI_0002.JPG"]
    manifest = json.loads(store.get_bytes(report.manifest_key))
    assert {r["name"] for r in manifest["rejected"]} == set(reasons)


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path, store: LocalStore) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image, video or track"):
        upload_batch(tmp_path / "empty", store)
    with pytest.raises(InputError, match="expected a folder"):
        upload_batch(tmp_path / "missing", store)


def test_batch_ids_and_slugs() -> None:
    assert slug("重庆 渝中 2026") == "2026"
    assert slug("航拍") == "batch"
    assert slug("Flight 12 / north") == "Flight-12-north"
    assert check_batch_id("a.b_c-1") == "a.b_c-1"
    for bad in ["", "-x", "a/b", "x" * 129, "a b"]:
        with pytest.raises(InputError):
            check_batch_id(bad)


def test_manifest_parsing_rejects_malformed_documents() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        Manifest.from_json_bytes(b"{nope")
    with pytest.raises(InputError, match="version"):
        Manifest.from_json_bytes(b'{"version": 99}')
    doc = {
        "version": 1,
        "batch_id": "b1",
        "platform": "drone",
        "files": [
            {"name": "a.jpg", "kind": "image", "size": 1, "sha256": "0", "key": "raw/b2/a.jpg"}
        ],
    }
    with pytest.raises(InputError, match="outside"):
        Manifest.from_json_bytes(json.dumps(doc).encode())
    for hostile in ["raw/b1/../../etc/passwd", "/raw/b1/a.jpg", "raw/b1/a\x00.jpg"]:
        doc["files"] = [
            {"name": "a.jpg", "kind": "image", "size": 1, "sha256": "0", "key": hostile}
        ]
        doc["batch_id"] = "b1"
        with pytest.raises(InputError, match="unsafe object key"):
            Manifest.from_json_bytes(json.dumps(doc).encode())
    doc["files"] = [{"name": "a.jpg"}]
    with pytest.raises(InputError, match="missing or unexpected"):
        Manifest.from_json_bytes(json.dumps(doc).encode())


def test_capture_times_are_utc_from_gps(tmp_path: Path, store: LocalStore) -> None:
    folder = make_flight(tmp_path / "flight", n=2, start=datetime(2026, 5, 1, 2, 0, tzinfo=UTC))
    report = upload_batch(folder, store)
    manifest = Manifest.from_json_bytes(store.get_bytes(report.manifest_key))
    times = [datetime.fromisoformat(str(e.captured_at)) for e in manifest.files]
    assert times[0] == datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    assert times[1] > times[0]


def test_reading_the_manifest_of_an_unfinished_batch_says_so(store: LocalStore) -> None:
    from xunjian.inspect.upload import read_manifest

    with pytest.raises(InputError, match="has no manifest"):
        read_manifest(store, "never-uploaded")
