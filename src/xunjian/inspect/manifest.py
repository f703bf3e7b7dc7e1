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
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"not valid JSON ({exc})", source=source) from None
        if not isinstance(doc, dict):
            raise InputError(f"expected a JSON object, got {type(doc).__name__}", source=source)
        version = doc.get("version")
        if version != MANIFEST_VERSION:
            raise InputError(
                f"expected manifest version {MANIFEST_VERSION}, got {version!r}", source=source
            )
        try:
            files = tuple(ManifestEntry(**entry) for entry in doc["files"])
            rejected = tuple(Rejected(**entry) for entry in doc.get("rejected", []))
            batch_id, platform = str(doc["batch_id"]), str(doc["platform"])
        except (KeyError, TypeError) as exc:
            raise InputError(f"missing or unexpected field: {exc}", source=source) from None
        if platform not in {"drone", "vehicle"}:
            raise InputError(f"expected platform drone or vehicle, got {platform!r}", source=source)
        prefix = raw_prefix(batch_id)
        for entry in files:
            try:
                validate_key(entry.key)
            except UnsafeKeyError as exc:
                raise InputError(exc.reason, source=source) from None
            if not entry.key.startswith(prefix):
                raise InputError(f"file key {entry.key!r} is outside {prefix!r}", source=source)
        return cls(batch_id, platform, files, rejected, dict(doc.get("meta") or {}), version)
