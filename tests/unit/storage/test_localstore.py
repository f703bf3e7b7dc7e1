"""LocalStore beyond the shared contract: layout, path guards, sidecars, presigned URLs."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import stat
import urllib.parse
from pathlib import Path

import pytest

from xunjian.errors import InputError, StorageError, UnsafeKeyError
from xunjian.settings import Settings
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import open_store


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_layout_keeps_sidecars_and_temp_files_out_of_the_object_tree(store: LocalStore) -> None:
    store.put_bytes("raw/B1/a.jpg", b"a", metadata={"k": "v"})
    assert files_under(store.root / "objects") == ["raw/B1/a.jpg"]
    assert files_under(store.root / "meta") == ["raw/B1/a.jpg"]
    assert files_under(store.root / "tmp") == []


def test_failed_put_leaves_no_temp_files_and_no_object(store: LocalStore) -> None:
    with pytest.raises(InputError):
        store.put_stream("a", io.BytesIO(b"abc"), length=5)
    assert files_under(store.root) == ["signing.key"]


def test_symlink_out_of_the_store_is_refused(store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "objects" / "evil").symlink_to(outside)
    for call in (
        lambda: store.put_bytes("evil/x.txt", b"pwned"),
        lambda: store.stat("evil/x.txt"),
        lambda: store.get_bytes("evil/x.txt"),
        lambda: store.delete("evil/x.txt"),
    ):
        with pytest.raises(UnsafeKeyError, match="resolves outside the store"):
            call()
    assert list(outside.iterdir()) == []
    assert list(store.list()) == []  # symlinks are not followed when listing


def test_key_and_prefix_cannot_coexist(store: LocalStore) -> None:
    store.put_bytes("a", b"file")
    with pytest.raises(StorageError, match="a parent of this key is itself an object"):
        store.put_bytes("a/b", b"nested")
    store.put_bytes("c/d", b"nested")
    with pytest.raises(StorageError, match="a prefix of other objects"):
        store.put_bytes("c", b"file")
    assert [(o.key, store.get_bytes(o.key)) for o in store.list()] == [
        ("a", b"file"),
        ("c/d", b"nested"),
    ]
    assert files_under(store.root / "tmp") == []


def test_stale_sidecar_is_ignored(store: LocalStore) -> None:
    store.put_bytes("a.jpg", b"original", metadata={"k": "v"})
    (store.root / "objects" / "a.jpg").write_bytes(b"edited by hand")
    info = store.stat("a.jpg")
    assert (info.size, info.sha256, info.metadata) == (14, None, {})
    assert info.content_type == "image/jpeg"


def test_object_without_sidecar_is_listed(store: LocalStore) -> None:
    (store.root / "objects" / "raw").mkdir()
    (store.root / "objects" / "raw" / "copied.png").write_bytes(b"png")
    assert [o.key for o in store.list()] == ["raw/copied.png"]
    info = store.stat("raw/copied.png")
    assert (info.sha256, info.content_type, info.etag != "") == (None, "image/png", True)


def test_delete_prunes_empty_folders(store: LocalStore) -> None:
    store.put_bytes("raw/B1/deep/a.jpg", b"a")
    store.put_bytes("raw/keep.jpg", b"k")
    store.delete("raw/B1/deep/a.jpg")
    assert not (store.root / "objects" / "raw" / "B1").exists()
    assert not (store.root / "meta" / "raw" / "B1").exists()
    assert (store.root / "objects" / "raw" / "keep.jpg").exists()
    store.delete("raw")  # a prefix, not an object: nothing happens
    assert store.exists("raw/keep.jpg")


def test_signing_key_is_made_once_and_shared(tmp_path: Path) -> None:
    first = LocalStore(tmp_path / "s")
    second = LocalStore(tmp_path / "s")
    key_file = tmp_path / "s" / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 32
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first.presigned_get_url("a")).query))
    assert second.verify_presigned("a", query["expires"], query["signature"], "GET")
    other = LocalStore(tmp_path / "other")
    assert not other.verify_presigned("a", query["expires"], query["signature"], "GET")


def test_signature_format_for_the_service(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(
        tmp_path / "s", bucket="b", signing_key=b"k" * 32, base_url="https://x.test/", clock=clock
    )
    url = store.presigned_put_url("raw/桥 1.jpg")
    expires = int(clock.now) + 3600
    expected = hmac.new(b"k" * 32, f"PUT\nb\nraw/桥 1.jpg\n{expires}".encode(), hashlib.sha256)
    assert url == (
        "https://x.test/api/v1/objects/raw/%E6%A1%A5%201.jpg"
        f"?expires={expires}&signature={expected.hexdigest()}"
    )


def test_presigned_url_expires(tmp_path: Path) -> None:
    clock = FakeClock()
    store = LocalStore(tmp_path / "s", clock=clock)
    url = store.presigned_get_url("a", expires=__import__("datetime").timedelta(seconds=60))
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    assert store.verify_presigned("a", query["expires"], query["signature"])
    clock.now += 60
    assert store.verify_presigned("a", query["expires"], query["signature"])
    clock.now += 1
    assert not store.verify_presigned("a", query["expires"], query["signature"])


@pytest.mark.parametrize(
    ("key", "expires", "signature"),
    [
        ("a", "soon", "00"),
        ("a", None, "00"),
        ("../a", "9999999999", "00"),
        ("a", "9999999999", "not hex"),
        ("a", "9999999999", None),
    ],
)
def test_verify_presigned_never_raises(
    store: LocalStore, key: str, expires: object, signature: object
) -> None:
    assert store.verify_presigned(key, expires, signature) is False  # type: ignore[arg-type]


def test_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="cannot prepare"):
        LocalStore(tmp_path / "file" / "store")


def test_open_store_local(settings: Settings) -> None:
    store = open_store(settings)
    assert isinstance(store, LocalStore)
    assert store.root == settings.store_dir
    assert store.bucket == settings.bucket
    store.put_bytes("hello.txt", b"hi")
    assert (settings.store_dir / "objects" / "hello.txt").read_bytes() == b"hi"
    assert os.access(settings.store_dir / "signing.key", os.R_OK)
