"""The object store interface: one API over MinIO/S3 and a local directory.

Images, manifests, evidence crops and model files live in an object store. Production uses
MinIO (:class:`~xunjian.storage.s3store.S3Store`); the embedded default is a directory
(:class:`~xunjian.storage.localstore.LocalStore`). Both pass the same contract tests
(``tests/integration/test_objectstore_contract.py``), so code written against
:class:`ObjectStore` runs on either. Build one with :func:`open_store`.

Guarantees of every implementation:

- every put streams its input once through SHA-256 in bounded chunks and stores the digest
  as the ``sha256`` metadata entry; an object is never visible without it;
- user metadata round-trips with lower-case keys; values may be any text;
- keys pass :func:`~xunjian.storage.keys.validate_key` first;
- failures raise :class:`~xunjian.errors.StorageError` naming the bucket and key, and a
  missing object raises :class:`~xunjian.errors.ObjectNotFoundError` (a FileNotFoundError).

May import the standard library, ``xunjian.core``, ``xunjian.errors`` and the other
``xunjian.storage`` modules; the S3 client is imported only by ``s3store``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import mimetypes
import os
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from xunjian.errors import InputError, StorageError
from xunjian.storage.keys import validate_key

if TYPE_CHECKING:
    from xunjian.settings import Settings

CHUNK_SIZE = 1024 * 1024
"""Bytes read at a time when streaming (well under the 8 MiB bound)."""

SHA256_KEY = "sha256"
"""Metadata entry that holds the hex SHA-256 of the object; set by the store, not callers."""

MAX_METADATA_BYTES = 2048
"""S3's limit on user metadata (names plus values), applied to both stores alike."""

DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_PRESIGN_EXPIRY = timedelta(days=7)

_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_PLAIN_VALUE = re.compile(r"^(?!=\?)[!-~]+( [!-~]+)*$")  # printable ASCII, single spaces
_ENCODED_VALUE = re.compile(r"^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    Entries from :meth:`ObjectStore.list` carry what a listing returns (key, size, etag,
    last_modified); their ``sha256`` is None, ``content_type`` empty and ``metadata`` empty.
    :meth:`ObjectStore.stat` and the puts return the full record.
    """

    key: str
    size: int
    etag: str
    sha256: str | None
    content_type: str
    metadata: dict[str, str]
    last_modified: datetime


class ObjectStore(ABC):
    """A bucket of objects addressed by ``/``-separated keys.

    ``put_file``, ``put_bytes``, ``get_bytes``, ``exists`` and ``download_file`` have
    defaults built on the abstract methods; a store overrides them when it can do better.
    """

    bucket: str

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Stores the file at ``path`` under ``key``, replacing any object there."""
        validate_key(key)  # before touching the file: a bad key is the first thing to report
        normalize_metadata(key, metadata)
        try:
            with Path(path).open("rb") as source:
                return self.put_stream(key, source, content_type=content_type, metadata=metadata)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"put {self.bucket}/{key}: cannot read {path}: {exc}") from exc

    @abstractmethod
    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Stores what ``stream`` yields: exactly ``length`` bytes, or up to EOF when None."""

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        """Stores ``data`` under ``key``."""
        return self.put_stream(
            key, io.BytesIO(data), length=len(data), content_type=content_type, metadata=metadata
        )

    @abstractmethod
    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader over the object; the whole object is never read into memory."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """The full record of one object; ObjectNotFoundError when absent."""

    @abstractmethod
    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key. Not recursive: only the
        objects up to the next ``/`` after the prefix (sub-"directories" are skipped)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Removes the object; an absent key is not an error."""

    @abstractmethod
    def presigned_get_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL anyone may GET the object from until ``expires`` has passed."""

    @abstractmethod
    def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        """A URL anyone may PUT the object's bytes to until ``expires`` has passed."""

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory: for small objects (manifests, crops, JSON)."""
        with self.open(key) as reader:
            return reader.read()

    def exists(self, key: str) -> bool:
        """True when an object is stored under ``key``."""
        try:
            self.stat(key)
        except FileNotFoundError:
            return False
        return True

    def download_file(self, key: str, path: Path) -> None:
        """Writes the object to ``path`` atomically: a temporary file in the same directory,
        renamed over ``path`` once complete, so ``path`` never holds a partial object."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            with tmp.open("xb") as out, self.open(key) as reader:
                while chunk := reader.read(CHUNK_SIZE):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def guess_content_type(key: str, content_type: str | None) -> str:
    """The given content type, else one guessed from the key's extension."""
    if content_type:
        return content_type
    guessed, _ = mimetypes.guess_type(key, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def normalize_metadata(key: str, metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata with lower-case names, checked: names are HTTP tokens, ``sha256`` is
    reserved, and names plus values fit S3's 2 KiB. Raises InputError naming the key."""
    result: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        lower = str(name).lower()
        if not _METADATA_NAME.match(lower):
            raise InputError(
                f"metadata name {name!r}: expected letters, digits, '-', '_' or '.'", source=key
            )
        if lower == SHA256_KEY:
            raise InputError("metadata name 'sha256' is reserved for the store", source=key)
        if not isinstance(value, str):
            raise InputError(
                f"metadata {name!r}: expected str, got {type(value).__name__}", source=key
            )
        result[lower] = value
    size = sum(len(n) + len(encode_meta_value(v)) for n, v in result.items())
    if size > MAX_METADATA_BYTES:
        raise InputError(
            f"metadata: expected at most {MAX_METADATA_BYTES} bytes, got {size}", source=key
        )
    return result


def encode_meta_value(value: str) -> str:
    """The ASCII form a metadata value travels in (HTTP headers carry ASCII only): plain
    values as they are, others as an RFC 2047 base64 word. :func:`decode_meta_value` undoes
    it; the 2 KiB limit is measured on this form, so both stores accept the same metadata."""
    if _PLAIN_VALUE.match(value):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8")).decode("ascii") + "?="


def decode_meta_value(value: str) -> str:
    match = _ENCODED_VALUE.match(value)
    if match is None:
        return value
    try:
        return base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return value


def check_expiry(key: str, expires: timedelta) -> int:
    """Seconds of a presigned URL's life; 1 second to 7 days, as S3 allows."""
    seconds = int(expires.total_seconds())
    if not 1 <= seconds <= MAX_PRESIGN_EXPIRY.total_seconds():
        raise InputError(f"expires: expected 1 s to 7 days, got {expires}", source=key)
    return seconds


def copy_hashing(
    source: BinaryIO, target: BinaryIO | None, *, key: str, length: int | None = None
) -> tuple[int, str]:
    """Copies ``source`` to ``target`` (None: only hashes) in bounded chunks: exactly
    ``length`` bytes, or to EOF. Returns (size, hex sha256). A short stream raises
    InputError naming ``key``."""
    digest = hashlib.sha256()
    size = 0
    while length is None or size < length:
        want = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - size)
        chunk = source.read(want)
        if not chunk:
            break
        digest.update(chunk)
        if target is not None:
            target.write(chunk)
        size += len(chunk)
    if length is not None and size != length:
        raise InputError(f"stream ended after {size} bytes, expected {length}", source=key)
    return size, digest.hexdigest()


def open_store(settings: Settings) -> ObjectStore:
    """The store the settings name, with its bucket (or directory) created when missing."""
    if settings.object_store == "local":
        from xunjian.storage.localstore import LocalStore

        return LocalStore(settings.store_dir, bucket=settings.bucket)
    from xunjian.storage.s3store import S3Store

    store = S3Store(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        bucket=settings.bucket,
        secure=settings.s3_secure,
        region=settings.s3_region,
    )
    store.ensure_bucket()
    return store
