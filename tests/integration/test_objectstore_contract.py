"""The ObjectStore contract: every test runs on the local store and on S3 (moto's server).

Code written against ObjectStore may rely on exactly what passes here on both.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import time
import tracemalloc
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from xunjian.errors import InputError, ObjectNotFoundError, StorageError, UnsafeKeyError
from xunjian.settings import Settings
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import ObjectStore, open_store
from xunjian.storage.s3store import MIN_PART_SIZE, S3Store

MiB = 1024 * 1024


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store", bucket="contract")
    return cast(S3Store, request.getfixturevalue("s3_store"))


class GeneratedStream:
    """A non-seekable stream of ``size`` pseudo-random bytes that never holds them all."""

    @classmethod
    def of(cls, size: int) -> BinaryIO:
        return cast(BinaryIO, cls(size))

    def __init__(self, size: int, seed: int = 7) -> None:
        self.size = size
        self.sent = 0
        self._block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.sent if n < 0 else min(n, self.size - self.sent)
        n = min(n, 256 * 1024)  # short reads, as sockets give
        offset = self.sent % len(self._block)
        chunk = (self._block[offset:] + self._block)[:n]
        self.sent += len(chunk)
        return chunk

    @staticmethod
    def expected(size: int, seed: int = 7) -> tuple[str, int]:
        stream, digest = GeneratedStream(size, seed), hashlib.sha256()
        while chunk := stream.read(MiB):
            digest.update(chunk)
        return digest.hexdigest(), size


# --------------------------------------------------------------------- round trips


def test_put_bytes_round_trip(store: ObjectStore) -> None:
    data = os.urandom(3 * MiB + 7)  # crosses chunk boundaries
    info = store.put_bytes("raw/B1/a.bin", data)
    assert (info.key, info.size) == ("raw/B1/a.bin", len(data))
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.etag
    assert info.last_modified.tzinfo is not None
    assert store.get_bytes("raw/B1/a.bin") == data
    stat = store.stat("raw/B1/a.bin")
    assert (stat.size, stat.sha256, stat.etag) == (len(data), info.sha256, info.etag)
    assert store.exists("raw/B1/a.bin")


def test_empty_object(store: ObjectStore) -> None:
    info = store.put_bytes("empty", b"")
    assert info.size == 0
    assert info.sha256 == hashlib.sha256(b"").hexdigest()
    assert store.get_bytes("empty") == b""
    assert store.stat("empty").size == 0


def test_put_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "DJI_0001.JPG"
    source.write_bytes(b"\xff\xd8" + os.urandom(MiB) + b"\xff\xd9")
    info = store.put_file("raw/B1/DJI_0001.JPG", source)
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert info.content_type == "image/jpeg"  # guessed from the key
    assert store.stat("raw/B1/DJI_0001.JPG").content_type == "image/jpeg"
    assert store.get_bytes("raw/B1/DJI_0001.JPG") == source.read_bytes()


def test_put_file_missing_source_is_a_storage_error(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=re.escape("nope.jpg")):
        store.put_file("raw/nope.jpg", tmp_path / "nope.jpg")


@pytest.mark.parametrize("length", [None, 5 * MiB + 3])
def test_put_stream_round_trip(store: ObjectStore, length: int | None) -> None:
    size = 5 * MiB + 3
    info = store.put_stream("raw/stream.bin", GeneratedStream.of(size), length=length)
    sha256, _ = GeneratedStream.expected(size)
    assert (info.size, info.sha256) == (size, sha256)
    assert store.stat("raw/stream.bin").sha256 == sha256
    with store.open("raw/stream.bin") as reader:
        digest = hashlib.sha256()
        while chunk := reader.read(MiB):
            digest.update(chunk)
    assert digest.hexdigest() == sha256


def test_put_stream_reads_only_length_bytes(store: ObjectStore) -> None:
    stream = io.BytesIO(b"0123456789")
    store.put_stream("k", stream, length=4)
    assert store.get_bytes("k") == b"0123"
    assert stream.read() == b"456789"


def test_short_stream_is_refused_and_nothing_stored(store: ObjectStore) -> None:
    with pytest.raises(InputError, match="stream ended after 3 bytes, expected 10"):
        store.put_stream("short", io.BytesIO(b"abc"), length=10)
    assert not store.exists("short")


def test_metadata_round_trip(store: ObjectStore) -> None:
    metadata = {
        "Batch": "B20240601",
        "original-name": "桥梁 裂缝.jpg",
        "note": "  spaced  out  ",
        "looks_encoded": "=?UTF-8?B?eA==?=",
        "camera.model": "FC6310",
    }
    info = store.put_bytes("m.jpg", b"x", content_type="image/x-test", metadata=metadata)
    expected = {name.lower(): value for name, value in metadata.items()}
    assert info.metadata == expected
    stat = store.stat("m.jpg")
    assert stat.metadata == expected  # sha256 is its own field, not user metadata
    assert stat.sha256 == hashlib.sha256(b"x").hexdigest()
    assert stat.content_type == "image/x-test"


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"sha256": "0" * 64}, "reserved"),
        ({"bad name": "x"}, "metadata name 'bad name'"),
        ({"名字": "x"}, "metadata name"),
        ({"big": "x" * 3000}, "expected at most 2048 bytes"),
        ({"name": "桥" * 600}, "expected at most 2048 bytes"),  # 1800 bytes, longer encoded
    ],
)
def test_bad_metadata_is_refused(store: ObjectStore, metadata: dict[str, str], reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        store.put_bytes("m", b"x", metadata=metadata)
    assert not store.exists("m")


def test_overwrite_replaces_bytes_and_metadata(store: ObjectStore) -> None:
    store.put_bytes("k.txt", b"first", metadata={"v": "1"})
    info = store.put_bytes("k.txt", b"second!")
    assert store.get_bytes("k.txt") == b"second!"
    stat = store.stat("k.txt")
    assert (stat.size, stat.metadata, stat.sha256) == (7, {}, info.sha256)
    assert [o.key for o in store.list()] == ["k.txt"]


# ------------------------------------------------------------------ missing, delete


def test_missing_object(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError, match=re.escape("raw/none.jpg")) as caught:
        store.stat("raw/none.jpg")
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        store.get_bytes("raw/none.jpg")
    with pytest.raises(ObjectNotFoundError), store.open("raw/none.jpg"):
        pass
    assert not store.exists("raw/none.jpg")


def test_delete(store: ObjectStore) -> None:
    store.put_bytes("raw/B1/a.jpg", b"a")
    store.put_bytes("raw/B1/b.jpg", b"b")
    store.delete("raw/B1/a.jpg")
    assert not store.exists("raw/B1/a.jpg")
    assert [o.key for o in store.list()] == ["raw/B1/b.jpg"]
    store.delete("raw/B1/a.jpg")  # absent: not an error
    store.delete("never/was")
    store.delete("raw/B1/b.jpg")
    assert list(store.list()) == []
    assert list(store.list("raw/")) == []


# -------------------------------------------------------------------------- listing

KEYS = [
    "a",
    "a-c",
    "ab/x",
    "raw/B1/2.jpg",
    "raw/B1/10.jpg",
    "raw/B1/sub/deep.jpg",
    "raw/B10/1.jpg",
    "raw/B1-manifest.json",
    "raw/top.json",
    "巡检/桥梁.jpg",
]


@pytest.fixture
def listed(store: ObjectStore) -> ObjectStore:
    for key in reversed(KEYS):
        store.put_bytes(key, key.encode(), metadata={"k": "v"})
    return store


def keys_of(store: ObjectStore, prefix: str = "", *, recursive: bool = True) -> list[str]:
    return [info.key for info in store.list(prefix, recursive=recursive)]


def test_list_everything_sorted_without_sidecars(listed: ObjectStore) -> None:
    assert keys_of(listed) == sorted(KEYS)
    infos = list(listed.list())
    assert [i.size for i in infos] == [len(k.encode()) for k in sorted(KEYS)]
    assert all(i.etag and i.last_modified.tzinfo for i in infos)


@pytest.mark.parametrize(
    ("prefix", "recursive", "expected"),
    [
        ("raw/", True, [k for k in sorted(KEYS) if k.startswith("raw/")]),
        ("raw/B1/", True, ["raw/B1/10.jpg", "raw/B1/2.jpg", "raw/B1/sub/deep.jpg"]),
        ("raw/B1/", False, ["raw/B1/10.jpg", "raw/B1/2.jpg"]),
        ("raw/B1", True, [k for k in sorted(KEYS) if k.startswith("raw/B1")]),
        ("raw/B1", False, ["raw/B1-manifest.json"]),
        ("raw/", False, ["raw/B1-manifest.json", "raw/top.json"]),
        ("", False, ["a", "a-c"]),
        ("a", True, ["a", "a-c", "ab/x"]),
        ("巡检/", True, ["巡检/桥梁.jpg"]),
        ("raw/none/", True, []),
        ("raw/top.json/", True, []),
    ],
)
def test_list_by_prefix(
    listed: ObjectStore, prefix: str, recursive: bool, expected: list[str]
) -> None:
    assert keys_of(listed, prefix, recursive=recursive) == expected


def test_chinese_keys(store: ObjectStore, tmp_path: Path) -> None:
    key = "巡检/2024年6月/桥梁 裂缝（一）.jpg"
    store.put_bytes(key, b"crack")
    assert store.get_bytes(key) == b"crack"
    assert store.stat(key).key == key
    assert keys_of(store, "巡检/") == [key]
    store.download_file(key, tmp_path / "下载" / "裂缝.jpg")
    assert (tmp_path / "下载" / "裂缝.jpg").read_bytes() == b"crack"


# ------------------------------------------------------------------------ key safety

UNSAFE = ["../escape", "/abs", "a//b", "a/./b", "a\\b", "a\x00b", "", "x" * 1025]


@pytest.mark.parametrize("key", UNSAFE, ids=[repr(k)[:16] for k in UNSAFE])
def test_unsafe_keys_refused_everywhere(store: ObjectStore, key: str, tmp_path: Path) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.put_bytes(key, b"x"),
        lambda: store.put_stream(key, io.BytesIO(b"x")),
        lambda: store.put_file(key, tmp_path / "any"),
        lambda: store.stat(key),
        lambda: store.exists(key),
        lambda: store.get_bytes(key),
        lambda: store.delete(key),
        lambda: store.download_file(key, tmp_path / "out"),
        lambda: store.presigned_get_url(key),
        lambda: store.presigned_put_url(key),
    ]
    for call in calls:
        with pytest.raises(UnsafeKeyError):
            call()
    assert list(store.list()) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("prefix", ["../", "/", "a//"])
def test_unsafe_prefix_refused(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(UnsafeKeyError):
        list(store.list(prefix))


# ---------------------------------------------------------------------- download_file


def test_download_file(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 1)
    store.put_bytes("raw/a.bin", data)
    target = tmp_path / "out" / "a.bin"
    store.download_file("raw/a.bin", target)
    assert target.read_bytes() == data
    store.put_bytes("raw/a.bin", b"newer")
    store.download_file("raw/a.bin", target)  # replaces
    assert target.read_bytes() == b"newer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.bin"]


def test_download_file_is_atomic(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"previous")
    with pytest.raises(ObjectNotFoundError):
        store.download_file("missing.bin", target)
    assert target.read_bytes() == b"previous"

    store.put_bytes("big.bin", os.urandom(3 * MiB))
    real_open = store.open

    class Failing(io.RawIOBase):
        def __init__(self, inner: io.BufferedIOBase) -> None:
            self.inner, self.sent = inner, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.sent > MiB:
                raise StorageError("connection reset (simulated)")
            n = self.inner.readinto(buffer)
            self.sent += n
            return n

    @contextmanager
    def failing_open(key: str) -> Iterator[io.BufferedReader]:
        with real_open(key) as reader:
            yield io.BufferedReader(Failing(reader))  # type: ignore[arg-type]

    monkeypatch.setattr(store, "open", failing_open)
    with pytest.raises(StorageError, match="simulated"):
        store.download_file("big.bin", target)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


# ---------------------------------------------------------------------- presigning


def test_presigned_get_and_put(store: ObjectStore) -> None:
    key = "raw/B1/预签名 photo.jpg"
    store.put_bytes(key, b"via url")
    get_url = store.presigned_get_url(key, timedelta(minutes=5))
    put_url = store.presigned_put_url("raw/B1/uploaded.jpg", timedelta(minutes=5))
    if isinstance(store, LocalStore):
        for url, method, url_key in [
            (get_url, "GET", key),
            (put_url, "PUT", "raw/B1/uploaded.jpg"),
        ]:
            check_local_presigned(store, url, method, url_key)
        return
    assert isinstance(store, S3Store)
    with urllib.request.urlopen(get_url, timeout=10) as response:
        assert response.read() == b"via url"
    # moto (werkzeug) reads an x-www-form-urlencoded body, urllib's default, as a form:
    # send the type a real uploader sends
    request = urllib.request.Request(
        put_url, data=b"uploaded", method="PUT", headers={"Content-Type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert store.get_bytes("raw/B1/uploaded.jpg") == b"uploaded"


def check_local_presigned(store: LocalStore, url: str, method: str, key: str) -> None:
    parts = urllib.parse.urlsplit(url)
    assert parts.path.startswith("/api/v1/objects/")
    assert urllib.parse.unquote(parts.path.removeprefix("/api/v1/objects/")) == key
    query = dict(urllib.parse.parse_qsl(parts.query))
    expires, signature = query["expires"], query["signature"]
    assert 0 < int(expires) - time.time() <= 5 * 60 + 1
    assert store.verify_presigned(key, expires, signature, method)
    other = "PUT" if method == "GET" else "GET"
    tampered = ("0" if signature[0] != "0" else "1") + signature[1:]
    assert not store.verify_presigned(key, expires, tampered, method)
    assert not store.verify_presigned(key + "x", expires, signature, method)
    assert not store.verify_presigned(key, str(int(expires) + 1), signature, method)
    assert not store.verify_presigned(key, expires, signature, other)
    past = int(time.time()) - 1
    assert not store.verify_presigned(key, past, store.sign(method, key, past), method)


@pytest.mark.parametrize("expires", [timedelta(0), timedelta(days=8)])
def test_presign_expiry_bounds(store: ObjectStore, expires: timedelta) -> None:
    with pytest.raises(InputError, match="expected 1 s to 7 days"):
        store.presigned_get_url("a", expires)


# ------------------------------------------------------------------ bounded memory


def test_large_stream_in_bounded_memory(store: ObjectStore) -> None:
    size = 20 * MiB + 123
    sha256, _ = GeneratedStream.expected(size)
    tracemalloc.start()
    try:
        info = store.put_stream("raw/video.bin", GeneratedStream.of(size))
        _, put_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with store.open("raw/video.bin") as reader:
            while chunk := reader.read(MiB):
                digest.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (info.size, info.sha256) == (size, sha256)
    assert store.stat("raw/video.bin").sha256 == sha256
    assert digest.hexdigest() == sha256
    assert put_peak < size / 2, f"put held {put_peak} bytes for a {size}-byte object"
    assert read_peak < size / 4, f"read held {read_peak} bytes for a {size}-byte object"


# ------------------------------------------------------------------ S3 specifics


@pytest.mark.integration
def test_unreachable_s3_gives_a_clear_storage_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = S3Store(f"127.0.0.1:{port}", access_key="a", secret_key="b", bucket="xunjian")
    started = time.monotonic()
    with pytest.raises(StorageError, match=f"cannot reach S3 endpoint 127.0.0.1:{port}") as caught:
        store.stat("raw/a.jpg")
    assert "s3://xunjian/raw/a.jpg" in str(caught.value)
    assert not isinstance(caught.value, FileNotFoundError)
    store = S3Store(
        f"127.0.0.1:{port}", access_key="a", secret_key="b", bucket="xunjian", retries=0
    )
    for call in (
        store.ensure_bucket,
        lambda: store.put_bytes("k", b"x"),
        lambda: list(store.list()),
    ):
        with pytest.raises(StorageError, match="cannot reach"):
            call()
    # a hang guard, not a benchmark: refused connections must not wait out long timeouts
    assert time.monotonic() - started < 30


@pytest.mark.integration
def test_open_store_creates_the_s3_bucket(s3_settings: Settings) -> None:
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    assert store.bucket == s3_settings.bucket
    store.put_bytes("hello.txt", b"hi")
    assert open_store(s3_settings).get_bytes("hello.txt") == b"hi"  # exists: reused


@pytest.mark.integration
def test_s3_multipart_boundaries(s3_store: S3Store) -> None:
    for size in (MIN_PART_SIZE * 8 // 5, s3_store.part_size, s3_store.part_size + 1):
        data = os.urandom(size)
        info = s3_store.put_bytes(f"parts/{size}", data)
        assert info.sha256 == hashlib.sha256(data).hexdigest()
        assert s3_store.get_bytes(f"parts/{size}") == data
