"""Upload a flight batch folder to the object store: ``raw/<batch>/…``, manifest last.

Resumable and idempotent: files are hashed first; a file whose object already exists with the
same sha256 is not sent again, and identical files inside one batch are stored once (the
manifest records the duplicate). The batch id defaults to the folder's name plus a short hash
of its content listing, so the same folder always maps to the same batch.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from xunjian.errors import InputError, ObjectNotFoundError, UnsafeKeyError
from xunjian.inspect.manifest import Manifest, ManifestEntry, Rejected, kind_of, manifest_key
from xunjian.storage.keys import validate_key
from xunjian.storage.objectstore import ObjectStore

CHUNK = 1024 * 1024
ProgressCallback = Callable[[int, int, str], None]
"""Called as ``(bytes_done, bytes_total, current_name)`` while a batch uploads."""

_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class UploadReport:
    batch_id: str
    manifest_key: str
    platform: str
    stored: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    bytes_sent: int = 0
    manifest_stored: bool = False


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def slug(text: str) -> str:
    """An ASCII batch-id fragment from a folder name (Chinese names become ``batch``)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_text).strip("-._")
    return cleaned[:80] or "batch"


def check_batch_id(batch_id: str) -> str:
    if not _BATCH_ID.match(batch_id):
        raise InputError(
            "expected a batch id of 1–128 characters from A-Z a-z 0-9 . _ - starting with a"
            f" letter or digit, got {batch_id!r}"
        )
    return batch_id


def capture_time(path: Path) -> str | None:
    """Capture time from EXIF without decoding pixels (GPS time first, then local time)."""
    from PIL import Image

    from xunjian.inspect.exif import read_exif
    from xunjian.inspect.metadata import WARNINGS_LOCK

    try:
        # Corrupt EXIF is ingest's to report (a problem naming the file); here the time is
        # optional, so Pillow's warnings about it are silenced and a failure means "none".
        # read_exif reads every tag inside the block: Pillow parses (and warns) lazily.
        with WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                exif = read_exif(image)
    except Exception:  # Pillow raises many types on files that are not images
        return None
    moment = exif.gps_time or exif.datetime_original
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.isoformat()  # naive: local time of unknown zone
    return moment.astimezone(UTC).isoformat()


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan_folder(folder: Path) -> tuple[list[tuple[str, Path]], list[Rejected]]:
    """Batch files under ``folder`` (relative posix name, path), sorted, and what is left out."""
    if not folder.is_dir():
        raise InputError("expected a folder holding a flight batch", source=str(folder))
    accepted: list[tuple[str, Path]] = []
    rejected: list[Rejected] = []
    root = folder.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            name = path.relative_to(root).as_posix()
            if filename.startswith(".") or filename == "manifest.json":
                continue
            if not name.isascii() and not _is_text(name):
                # Undecodable bytes (os.fsdecode's lone surrogates) can be no key, and would
                # break every later encode of the name: refuse it here, shown with \x escapes.
                shown = os.fsencode(name).decode("utf-8", "backslashreplace")
                rejected.append(Rejected(shown, "file name is not valid UTF-8 text"))
                continue
            if path.is_symlink():
                rejected.append(Rejected(name, "symbolic links are not followed"))
                continue
            if kind_of(filename) is None:
                rejected.append(Rejected(name, "not an image, video or GPS track"))
                continue
            accepted.append((name, path))
    accepted.sort()
    return accepted, rejected


def upload_batch(
    folder: Path,
    store: ObjectStore,
    *,
    batch_id: str | None = None,
    platform: str | None = None,
    meta: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> UploadReport:
    """Uploads ``folder`` as one batch and writes its manifest last."""
    files, rejected = scan_folder(folder)
    hashed: list[tuple[str, Path, str, int]] = []
    for name, path in files:
        try:
            digest, size = sha256_file(path)
        except OSError as exc:
            rejected.append(Rejected(name, f"cannot be read: {exc.strerror or exc}"))
            continue
        hashed.append((name, path, digest, size))
    if not hashed:
        raise InputError("no image, video or track files to upload", source=str(folder))

    listing = hashlib.sha256("".join(f"{n}\0{d}\n" for n, _, d, _ in hashed).encode())
    batch = check_batch_id(batch_id or f"{slug(folder.resolve().name)}-{listing.hexdigest()[:8]}")
    kinds = {kind_of(name) for name, *_ in hashed}
    chosen_platform = platform or ("vehicle" if kinds & {"video", "track"} else "drone")
    if chosen_platform not in {"drone", "vehicle"}:
        raise InputError(f"expected platform drone or vehicle, got {chosen_platform!r}")

    report = UploadReport(batch, manifest_key(batch), chosen_platform)
    entries: list[ManifestEntry] = []
    first_by_digest: dict[str, str] = {}
    total = sum(size for *_, size in hashed)
    done = 0
    for name, path, digest, size in hashed:
        kind = kind_of(name) or "image"
        try:
            key = validate_key(f"raw/{batch}/{name}")
        except UnsafeKeyError as exc:
            rejected.append(Rejected(name, exc.reason))
            done += size
            continue
        when = capture_time(path) if kind == "image" else None
        if digest in first_by_digest:
            entries.append(
                ManifestEntry(name, kind, size, digest, key, when, first_by_digest[digest])
            )
            report.duplicates.append(name)
        else:
            first_by_digest[digest] = name
            entries.append(ManifestEntry(name, kind, size, digest, key, when))
            if _stored_with(store, key, digest):
                report.already_there.append(name)
            else:
                store.put_file(key, path, metadata={"batch": batch})
                report.stored.append(name)
                report.bytes_sent += size
        done += size
        if progress:
            progress(done, total, name)

    report.rejected = rejected
    manifest = Manifest(batch, chosen_platform, tuple(entries), tuple(rejected), dict(meta or {}))
    body = manifest.to_json_bytes()
    if not _stored_with(store, report.manifest_key, hashlib.sha256(body).hexdigest()):
        store.put_bytes(report.manifest_key, body, content_type="application/json")
        report.manifest_stored = True
    return report


def _stored_with(store: ObjectStore, key: str, digest: str) -> bool:
    """Whether ``key`` already holds exactly these bytes (resume / idempotency check)."""
    if not store.exists(key):
        return False
    return store.stat(key).sha256 == digest


def read_manifest(store: ObjectStore, batch_id: str) -> Manifest:
    key = manifest_key(check_batch_id(batch_id))
    try:
        body = store.get_bytes(key)
    except ObjectNotFoundError:
        raise InputError(
            f"batch {batch_id!r} has no manifest at {key}: it was not uploaded, or its upload"
            " has not finished (the manifest is written last)"
        ) from None
    return Manifest.from_json_bytes(body, source=key)
