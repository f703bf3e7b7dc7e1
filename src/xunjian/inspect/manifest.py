"""The batch manifest: what a flight batch holds, written last to ``raw/<batch>/manifest.json``.

Its arrival means "the batch is complete". It is derived from the files' contents only (no
upload time, no store details), so the same folder uploaded to any store gives the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from xunjian.errors import InputError, UnsafeKeyError
from xunjian.storage.keys import validate_key

MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_MANIFEST_FILES = 50_000
"""Bounds on what one manifest may hold: a manifest is read whole into memory, and every
entry costs an object-store request. Far above a real batch (the service's own limit,
``max_batch_files``, is lower); a manifest beyond them is refused rather than parsed."""
_ENTRY_TEXT = ("name", "kind", "sha256", "key")
_ENTRY_OPTIONAL = ("captured_at", "duplicate_of")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv"})
TRACK_SUFFIXES = frozenset({".gpx", ".nmea", ".csv"})


def kind_of(name: str) -> str | None:
    """``image``, ``video``, ``track`` or None (not part of a batch) from a file name."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in TRACK_SUFFIXES:
        return "track"
    return None


def raw_prefix(batch_id: str) -> str:
    return f"raw/{batch_id}/"


def manifest_key(batch_id: str) -> str:
    return f"raw/{batch_id}/manifest.json"


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of the batch. ``duplicate_of`` names the entry whose bytes it repeats."""

    name: str
    kind: str
    size: int
    sha256: str
    key: str
    captured_at: str | None = None
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A file of the folder that is not in the batch, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Manifest:
    batch_id: str
    platform: str
    files: tuple[ManifestEntry, ...]
    rejected: tuple[Rejected, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    version: int = MANIFEST_VERSION

    def of_kind(self, kind: str) -> list[ManifestEntry]:
        return [f for f in self.files if f.kind == kind and f.duplicate_of is None]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files if f.duplicate_of is None)

    def to_json_bytes(self) -> bytes:
        doc = {
            "version": self.version,
            "batch_id": self.batch_id,
            "platform": self.platform,
            "meta": self.meta,
            "files": [asdict(f) for f in self.files],
            "rejected": [asdict(r) for r in self.rejected],
        }
        return (json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json_bytes(cls, data: bytes, *, source: str = "manifest.json") -> Manifest:
        """Parses and validates a manifest; InputError naming the field when it is malformed."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise InputError(
                f"expected at most {MAX_MANIFEST_BYTES} bytes, got {len(data)}", source=source
            )
        try:
            doc = json.loads(data)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5000-digit number
            raise InputError(f"not valid JSON ({exc})", source=source) from None
        except RecursionError:
            raise InputError("not valid JSON (nested too deeply)", source=source) from None
        if not isinstance(doc, dict):
            raise InputError(f"expected a JSON object, got {type(doc).__name__}", source=source)
        version = doc.get("version")
        if version != MANIFEST_VERSION:
            raise InputError(
                f"expected manifest version {MANIFEST_VERSION}, got {version!r}", source=source
            )
        listed = doc.get("files")
        if not isinstance(listed, list):
            raise InputError(f"files: expected a list, got {_type(listed)}", source=source)
        if len(listed) > MAX_MANIFEST_FILES:
            raise InputError(
                f"files: expected at most {MAX_MANIFEST_FILES} entries, got {len(listed)}",
                source=source,
            )
        meta = doc.get("meta") or {}
        if not isinstance(meta, dict):
            raise InputError(f"meta: expected an object, got {_type(meta)}", source=source)
        try:
            files = tuple(_entry(entry, n) for n, entry in enumerate(listed))
            rejected = tuple(Rejected(**entry) for entry in doc.get("rejected", []))
            batch_id, platform = doc["batch_id"], doc["platform"]
        except (KeyError, TypeError) as exc:
            raise InputError(f"missing or unexpected field: {exc}", source=source) from None
        except ValueError as exc:
            raise InputError(str(exc), source=source) from None
        if not isinstance(batch_id, str):
            raise InputError(f"batch_id: expected a string, got {_type(batch_id)}", source=source)
        if platform not in ("drone", "vehicle"):  # a tuple: a list or dict is no error here
            raise InputError(f"expected platform drone or vehicle, got {platform!r}", source=source)
        prefix = raw_prefix(batch_id)
        for entry in files:
            try:
                validate_key(entry.key)
            except UnsafeKeyError as exc:
                raise InputError(exc.reason, source=source) from None
            if not entry.key.startswith(prefix):
                raise InputError(f"file key {entry.key!r} is outside {prefix!r}", source=source)
            if entry.key != prefix + entry.name:  # names reach file suffixes and messages
                raise InputError(
                    f"file key {entry.key!r} is not {prefix!r} + its name {entry.name!r}",
                    source=source,
                )
        return cls(batch_id, platform, files, rejected, dict(meta), version)


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _entry(entry: Any, index: int) -> ManifestEntry:
    """One ``files`` item, type-checked: a wrong type here would crash ingest far later."""
    if not isinstance(entry, dict):
        raise ValueError(f"files[{index}]: expected an object, got {_type(entry)}")
    missing = [name for name in (*_ENTRY_TEXT, "size") if name not in entry]
    if missing:
        raise ValueError(f"missing or unexpected field: files[{index}] has no {', '.join(missing)}")
    for name in _ENTRY_TEXT:
        if not isinstance(entry.get(name), str):
            raise ValueError(
                f"files[{index}].{name}: expected a string, got {_type(entry.get(name))}"
            )
    for name in _ENTRY_OPTIONAL:
        if not isinstance(entry.get(name), str | None):
            raise ValueError(
                f"files[{index}].{name}: expected a string or null, got {_type(entry[name])}"
            )
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"files[{index}].size: expected a byte count, got {size!r}")
    return ManifestEntry(**entry)
