"""Uploads through the API: presigned targets, multipart, the manifest, bucket notifications.

Files go straight to the object store under ``raw/<batch>/<name>`` through presigned PUT URLs.
On S3 (MinIO), a file larger than :data:`MULTIPART_THRESHOLD` (or one the client asks to
split) gets a multipart upload: one presigned URL per part, completed by the service with the
parts' ETags. The local store has no multipart: one PUT per file, up to ``max_upload_bytes``.
A presigned S3 PUT cannot cap its size, so completing a batch checks every object's size
against the manifest and the limit.

The manifest written on completion is the same document ``xunjian upload`` writes, so
processing cannot tell how a batch arrived. The store's bucket notification (MinIO's S3 event
JSON) is parsed here too: a ``raw/<batch>/manifest.json`` that lands starts its batch.

May import ``xunjian.inspect``, ``xunjian.storage`` and ``xunjian.errors``.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from xunjian.errors import InputError, ObjectNotFoundError
from xunjian.inspect.manifest import Manifest, ManifestEntry, Rejected, kind_of, manifest_key
from xunjian.inspect.upload import check_batch_id
from xunjian.storage.keys import validate_key
from xunjian.storage.objectstore import ObjectInfo, ObjectStore

MULTIPART_THRESHOLD = 64 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part but the last
DEFAULT_PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartUpload:
    upload_id: str
    part_size: int
    urls: list[str]


def new_batch_id(platform: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{platform}-{moment}-{secrets.token_hex(3)}"


def file_key(batch_id: str, name: str) -> str:
    """``raw/<batch>/<name>`` for a batch file; InputError for a name that is not one."""
    check_batch_id(batch_id)
    if kind_of(name) is None:
        raise InputError(
            "expected an image (.jpg), video (.mp4 .mov .avi .mkv) or track (.gpx .nmea .csv)",
            source=name,
        )
    if name == "manifest.json" or name.rsplit("/", 1)[-1].startswith("."):
        raise InputError("not a batch file name", source=name)
    try:
        return validate_key(f"raw/{batch_id}/{name}")
    except InputError as exc:
        raise InputError(exc.reason, source=name) from None


def supports_multipart(store: ObjectStore) -> bool:
    from xunjian.storage.s3store import S3Store

    return isinstance(store, S3Store)


def part_size_for(size: int) -> int:
    needed = math.ceil(size / MAX_PARTS)
    return max(DEFAULT_PART_SIZE, math.ceil(needed / (1024 * 1024)) * 1024 * 1024)


def start_multipart(store: ObjectStore, key: str, size: int, expires: timedelta) -> PartUpload:
    """Starts an S3 multipart upload of ``key`` and presigns a PUT URL for each part."""
    from minio.error import MinioException
    from urllib3.exceptions import HTTPError

    from xunjian.errors import StorageError
    from xunjian.storage.s3store import S3Store

    if not isinstance(store, S3Store):
        raise InputError("this object store takes each file in one PUT (no multipart)")
    # The minio client's multipart calls are what S3Store itself uses (see s3store.py);
    # presigning the parts lets the file skip the service entirely.
    client = store._client
    part_size = part_size_for(size)
    count = max(1, math.ceil(size / part_size))
    try:
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-Type": "application/octet-stream"
        }
        upload_id = client._create_multipart_upload(store.bucket, key, headers)
        urls = [
            client.get_presigned_url(
                "PUT",
                store.bucket,
                key,
                expires=expires,
                extra_query_params={"uploadId": upload_id, "partNumber": str(number)},
            )
            for number in range(1, count + 1)
        ]
    except (MinioException, HTTPError, ValueError) as exc:
        raise StorageError(f"multipart upload of s3://{store.bucket}/{key}: {exc}") from exc
    return PartUpload(str(upload_id), part_size, urls)


def complete_multipart(
    store: ObjectStore, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
) -> ObjectInfo:
    """Completes an S3 multipart upload from the parts' (number, ETag)."""
    from minio.datatypes import Part
    from minio.error import MinioException, S3Error
    from urllib3.exceptions import HTTPError

    from xunjian.errors import StorageError
    from xunjian.storage.s3store import S3Store

    if not isinstance(store, S3Store):
        raise InputError("this object store takes each file in one PUT (no multipart)")
    ordered = sorted(parts)
    numbers = [n for n, _ in ordered]
    if numbers != list(range(1, len(numbers) + 1)):
        raise InputError(f"expected parts numbered 1…{len(numbers)}, got {numbers}")
    try:
        store._client._complete_multipart_upload(
            store.bucket, key, upload_id, [Part(n, etag.strip('"')) for n, etag in ordered]
        )
    except S3Error as exc:
        if exc.code in ("NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            raise InputError(f"{exc.code}: {exc.message}", source=key) from None
        raise StorageError(f"complete s3://{store.bucket}/{key}: {exc.code}") from exc
    except (MinioException, HTTPError) as exc:
        raise StorageError(f"complete s3://{store.bucket}/{key}: {exc}") from exc
    return store.stat(key)


def build_manifest(
    batch_id: str,
    platform: str,
    files: Sequence[dict[str, Any]],
    rejected: Sequence[dict[str, str]],
    meta: dict[str, Any],
    *,
    max_files: int,
) -> Manifest:
    """The manifest of a batch whose files were uploaded; identical bytes are stored once."""
    if len(files) > max_files:
        raise InputError(f"expected at most {max_files} files in a batch, got {len(files)}")
    entries: list[ManifestEntry] = []
    first_by_digest: dict[str, str] = {}
    seen: set[str] = set()
    for item in files:
        name = str(item["name"])
        if name in seen:
            raise InputError("listed twice in the manifest", source=name)
        seen.add(name)
        key = file_key(batch_id, name)
        kind = kind_of(name) or "image"
        digest = str(item["sha256"])
        when = item.get("captured_at")
        duplicate = first_by_digest.get(digest)
        if duplicate is None:
            first_by_digest[digest] = name
        entries.append(ManifestEntry(name, kind, int(item["size"]), digest, key, when, duplicate))
    refused = tuple(Rejected(str(r["name"]), str(r["reason"])) for r in rejected)
    return Manifest(batch_id, platform, tuple(entries), refused, dict(meta))


def check_uploaded(store: ObjectStore, manifest: Manifest, max_bytes: int) -> list[str]:
    """What is wrong with the stored objects of ``manifest`` (empty: all there)."""
    problems: list[str] = []
    for entry in manifest.files:
        if entry.duplicate_of is not None:
            continue
        try:
            info = store.stat(entry.key)
        except ObjectNotFoundError:
            problems.append(f"{entry.name}: not uploaded")
            continue
        if info.size != entry.size:
            problems.append(f"{entry.name}: expected {entry.size} bytes, found {info.size}")
        elif info.size > max_bytes:
            problems.append(f"{entry.name}: {info.size} bytes, over the {max_bytes} limit")
        elif info.sha256 is not None and info.sha256 != entry.sha256:
            problems.append(f"{entry.name}: expected sha256 {entry.sha256[:12]}…, found"
                            f" {info.sha256[:12]}…")  # fmt: skip
    return problems


def manifest_batches(event: Any, bucket: str) -> tuple[list[str], int]:
    """Batch ids whose manifest an S3/MinIO bucket notification says was created, and how
    many records were something else. InputError when ``event`` is not such a notification."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise InputError('expected an S3 event notification with a "Records" list')
    batches: list[str] = []
    ignored = 0
    for record in event["Records"]:
        try:
            name = str(record["eventName"])
            s3 = record["s3"]
            record_bucket = str(s3["bucket"]["name"])
            key = unquote_plus(str(s3["object"]["key"]))
        except (KeyError, TypeError):
            raise InputError(
                "expected records with eventName, s3.bucket.name and s3.object.key"
            ) from None
        parts = key.split("/")
        if (
            "ObjectCreated" not in name
            or record_bucket != bucket
            or len(parts) != 3
            or parts[0] != "raw"
            or key != manifest_key(parts[1])
        ):
            ignored += 1
            continue
        try:
            batches.append(check_batch_id(parts[1]))
        except InputError:
            ignored += 1
    return list(dict.fromkeys(batches)), ignored
