"""The production object store: MinIO or any S3 server, through the ``minio`` client.

**Checksums before the write.** The SHA-256 is stored as object metadata, and S3 metadata is
fixed when an upload starts, so the digest must be known first:

- files are hashed in one bounded-memory pass, then uploaded;
- streams (length known or not) are spooled to an anonymous temporary file while hashed,
  then uploaded from it; bytes are hashed in memory.

The other way (upload, then ``copy_object`` with replaced metadata) was rejected: the object
would first be visible without a checksum, every put would fire two ObjectCreated
notifications (the pipeline starts on bucket notifications), and a single copy stops at 5 GiB.
The upload re-hashes what it sends and aborts, leaving no object, if that differs from the
digest in the metadata (a file changed while being uploaded).

**Memory.** Objects larger than ``part_size`` (8 MiB by default; grown for objects that
would need more than 10,000 parts) go up as a multipart upload, one part at a time, so at
most one part is in memory. ``Minio.put_object`` keeps the previous part alive while it
reads the next (two parts at once), so this module drives minio's own multipart calls
(``_create_multipart_upload``, ``_upload_part``, …) of the pinned minio 7.2.20 directly;
the contract tests cover them.

**Errors.** Every minio and urllib3 error becomes a StorageError naming ``s3://bucket/key``
and the reason; ``NoSuchKey`` becomes ObjectNotFoundError. The HTTP pool has short connect
timeouts and few retries, so an unreachable endpoint fails in seconds, not minutes.

May import the standard library, minio, urllib3, ``xunjian.errors`` and ``xunjian.storage``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

import certifi
import urllib3
from minio import Minio
from minio.datatypes import Part
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.response import BaseHTTPResponse

from xunjian.errors import (
    ConfigurationError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from xunjian.storage.keys import validate_key, validate_prefix
from xunjian.storage.objectstore import (
    CHUNK_SIZE,
    SHA256_KEY,
    ObjectInfo,
    ObjectStore,
    check_expiry,
    copy_hashing,
    decode_meta_value,
    encode_meta_value,
    guess_content_type,
    normalize_metadata,
)

_TRANSIENT_S3_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout"}
)
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (except the last)
MAX_PARTS = 10_000
META_PREFIX = "x-amz-meta-"


class _ResponseReader(io.RawIOBase):
    """A streaming HTTP body as a raw file whose errors are StorageErrors."""

    def __init__(self, response: BaseHTTPResponse, name: str) -> None:
        self._response = response
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            return self._response.readinto(buffer)
        except (HTTPError, OSError) as exc:
            raise StorageUnavailableError(f"read {self._name}: {exc}") from exc

    def readall(self) -> bytes:
        """One read of the rest (``get_bytes``), not RawIOBase's 8 KiB loop."""
        try:
            return self._response.read()
        except (HTTPError, OSError) as exc:
            raise StorageUnavailableError(f"read {self._name}: {exc}") from exc


class S3Store(ObjectStore):
    """A bucket on an S3 server (MinIO in production, moto's server in tests)."""

    def __init__(
        self,
        endpoint: str,
        *,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
        part_size: int = 8 * 1024 * 1024,
        spool_dir: Path | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        if not endpoint or "://" in endpoint:
            raise ConfigurationError(f"S3 endpoint: expected host:port, got {endpoint!r}")
        if part_size < MIN_PART_SIZE:
            raise ConfigurationError(f"part_size: expected >= {MIN_PART_SIZE}, got {part_size}")
        self.bucket = bucket
        self.endpoint = endpoint
        self.part_size = part_size
        self._spool_dir = spool_dir
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            # raise_on_status=False: once retries are spent, the last 5xx reaches minio,
            # which reports the server's own error instead of "too many 503 responses"
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.2,
                status_forcelist=[500, 502, 503, 504],
                raise_on_status=False,
            ),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        try:
            check_bucket_name(bucket, strict=True)
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http,
            )
        except ValueError as exc:
            raise ConfigurationError(f"S3 store {endpoint}/{bucket}: {exc}") from exc

    def __repr__(self) -> str:
        return f"S3Store({self.endpoint!r}, bucket={self.bucket!r})"

    def ensure_bucket(self) -> None:
        """Creates the bucket when it does not exist yet."""
        with self._errors("create bucket", None):
            try:
                if not self._client.bucket_exists(self.bucket):
                    self._client.make_bucket(self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    # ------------------------------------------------------------------ writes

    def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        user_meta = normalize_metadata(key, metadata)
        try:
            with Path(path).open("rb") as source:
                size = os.fstat(source.fileno()).st_size
                size, sha256 = copy_hashing(source, None, key=str(path), length=size)
                source.seek(0)
                return self._upload(key, source, size, sha256, content_type, user_meta)
        except StorageError:
            raise
        except OSError as exc:
            raise StorageError(f"put {self._name(key)}: cannot read {path}: {exc}") from exc

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        user_meta = normalize_metadata(key, metadata)
        try:
            spool = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise StorageError(f"put {self._name(key)}: cannot make a spool file: {exc}") from exc
        with spool:
            size, sha256 = copy_hashing(stream, spool, key=key, length=length)
            spool.seek(0)
            return self._upload(key, spool, size, sha256, content_type, user_meta)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        validate_key(key)
        user_meta = normalize_metadata(key, metadata)
        sha256 = hashlib.sha256(data).hexdigest()
        return self._upload(key, io.BytesIO(data), len(data), sha256, content_type, user_meta)

    def delete(self, key: str) -> None:
        validate_key(key)
        with self._errors("delete", key):
            self._client.remove_object(self.bucket, key)

    # ------------------------------------------------------------------- reads

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        validate_key(key)
        with self._errors("get", key):
            response = self._client.get_object(self.bucket, key)
        reader = io.BufferedReader(_ResponseReader(response, self._name(key)), CHUNK_SIZE)
        try:
            yield reader
        finally:
            reader.close()
            response.close()
            response.release_conn()

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        with self._errors("stat", key):
            obj = self._client.stat_object(self.bucket, key)
        headers = obj.metadata or {}
        user = {
            name.lower()[len(META_PREFIX) :]: decode_meta_value(str(value))
            for name, value in headers.items()
            if name.lower().startswith(META_PREFIX)
        }
        sha256 = user.pop(SHA256_KEY, None)
        return ObjectInfo(
            key=key,
            size=obj.size or 0,
            etag=obj.etag or "",
            sha256=sha256,
            content_type=obj.content_type or "",
            metadata=user,
            last_modified=obj.last_modified or datetime.fromtimestamp(0, UTC),
        )

    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._errors("list", prefix or "*"):
            for obj in self._client.list_objects(
                self.bucket, prefix=prefix or None, recursive=recursive
            ):
                if obj.is_dir or obj.object_name is None:
                    continue
                yield ObjectInfo(
                    key=obj.object_name,
                    size=obj.size or 0,
                    etag=obj.etag or "",
                    sha256=None,
                    content_type="",
                    metadata={},
                    last_modified=obj.last_modified or datetime.fromtimestamp(0, UTC),
                )

    def presigned_get_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        validate_key(key)
        check_expiry(key, expires)
        with self._errors("presign GET", key):
            return self._client.presigned_get_object(self.bucket, key, expires=expires)

    def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        validate_key(key)
        check_expiry(key, expires)
        with self._errors("presign PUT", key):
            return self._client.presigned_put_object(self.bucket, key, expires=expires)

    # ---------------------------------------------------------------- helpers

    def _name(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    @contextlib.contextmanager
    def _errors(self, action: str, key: str | None) -> Iterator[None]:
        """Turns what minio and urllib3 raise into StorageError naming bucket and key."""
        where = f"{action} {self._name(key)}"
        try:
            yield
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise ObjectNotFoundError(f"{self._name(key)}: no such object") from None
            if exc.code == "NoSuchBucket":
                raise StorageError(f"{where}: bucket {self.bucket!r} does not exist") from exc
            if exc.code in _TRANSIENT_S3_CODES:
                raise StorageUnavailableError(f"{where}: {exc.code}: {exc.message}") from exc
            raise StorageError(f"{where}: {exc.code}: {exc.message}") from exc
        except MaxRetryError as exc:
            raise StorageUnavailableError(
                f"{where}: cannot reach S3 endpoint {self.endpoint}: {exc.reason}"
            ) from exc
        except HTTPError as exc:
            raise StorageUnavailableError(f"{where}: {type(exc).__name__}: {exc}") from exc
        except MinioException as exc:
            raise StorageError(f"{where}: {type(exc).__name__}: {exc}") from exc

    def _part_size_for(self, size: int) -> int:
        needed = -(-size // MAX_PARTS)  # ceil
        return max(self.part_size, -(-needed // (1024 * 1024)) * 1024 * 1024)

    def _upload(
        self,
        key: str,
        source: BinaryIO,
        size: int,
        sha256: str,
        content_type: str | None,
        user_meta: dict[str, str],
    ) -> ObjectInfo:
        """Uploads ``size`` bytes from ``source``, holding at most one part in memory."""
        ctype = guess_content_type(key, content_type)
        headers: dict[str, str | list[str] | tuple[str]] = {"Content-Type": ctype}
        for name, value in {**user_meta, SHA256_KEY: sha256}.items():
            headers[META_PREFIX + name] = encode_meta_value(value)
        part_size = self._part_size_for(size)
        digest = hashlib.sha256()
        client = self._client
        with self._errors("put", key):
            if size <= part_size:
                data = source.read(size)
                digest.update(data)
                self._check_sent(key, digest, sha256)
                result = client._put_object(self.bucket, key, data, headers)
                etag, http_headers = result.etag or "", result.http_headers
                del data
            else:
                upload_id = client._create_multipart_upload(self.bucket, key, headers)
                try:
                    parts = []
                    for number in range(1, -(-size // part_size) + 1):
                        data = source.read(min(part_size, size - (number - 1) * part_size))
                        digest.update(data)
                        part_etag = client._upload_part(
                            self.bucket, key, data, None, upload_id, number
                        )
                        parts.append(Part(number, part_etag))
                        del data  # before the next read: one part in memory, not two
                    self._check_sent(key, digest, sha256)
                    done = client._complete_multipart_upload(self.bucket, key, upload_id, parts)
                except BaseException:
                    with contextlib.suppress(Exception):
                        client._abort_multipart_upload(self.bucket, key, upload_id)
                    raise
                etag, http_headers = done.etag or "", done.http_headers
        try:
            when = parsedate_to_datetime(http_headers.get("Date", ""))
        except (TypeError, ValueError):
            when = datetime.now(UTC)
        return ObjectInfo(
            key=key,
            size=size,
            etag=etag.strip('"'),
            sha256=sha256,
            content_type=ctype,
            metadata=dict(user_meta),
            last_modified=when,
        )

    def _check_sent(self, key: str, digest: hashlib._Hash, expected: str) -> None:
        if digest.hexdigest() != expected:
            raise StorageError(
                f"put {self._name(key)}: the source changed while it was uploaded "
                f"(sha256 {digest.hexdigest()} sent, {expected} hashed first); not stored"
            )
