"""Dataset versions in the object store: immutable, content-hashed, with a manifest.

A built dataset (``xunjian datasets build``: ``images/``, ``labels/``, ``data.yaml``,
``manifest.json``) is published under::

    datasets/<name>/<version>/images/…, labels/…, data.yaml    every file, sorted
    datasets/<name>/<version>/manifest.json                     last: the version exists once
                                                                it is there

``<version>`` is the first 16 hex digits of a SHA-256 over the sorted (path, sha256) list of
the files and the build manifest (:func:`version_id`), so the same content always gets the
same version and different content a different one. Publishing identical content again is a
no-op; an object already stored under a version with other bytes is never overwritten (a
:class:`~xunjian.errors.StorageError` says so). ``data.yaml`` is stored without its
machine-specific ``path:`` line and gets the pulled folder's path back on :func:`pull_dataset`.
Ultralytics' ``*.cache`` files and hidden files are not part of a dataset.

The stored ``manifest.json`` is the build manifest (sources, licences, splits grouped by
source image, per-class counts) plus a ``dataset`` section: name, version, publication time,
class counts, licences and every file with its SHA-256 and size. A pulled folder is again a
built dataset: ``xunjian train`` and the model card read it as they read a fresh build.

May import: the standard library, PyYAML, ``xunjian.errors``, ``xunjian.storage.objectstore``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from xunjian.errors import InputError, ObjectNotFoundError, StorageError
from xunjian.storage.objectstore import CHUNK_SIZE, ObjectStore

PREFIX = "datasets"
MANIFEST = "manifest.json"
VERSION_DIGITS = 16
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^[0-9a-f]{4,64}$")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class DatasetFile:
    """One file of a dataset version: its path inside the dataset, SHA-256 and size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """A published version, as its stored manifest describes it."""

    name: str
    version: str
    published_at: str
    images: int
    class_counts: dict[str, int]
    licences: list[str]
    manifest: dict[str, Any]

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the file list)."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "published_at": self.published_at,
            "images": self.images,
            "class_counts": self.class_counts,
            "licences": self.licences,
            "sources": [s.get("name") for s in self.manifest.get("sources", [])],
        }


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What :func:`publish_dataset` did; ``created`` is False when the version existed."""

    name: str
    version: str
    prefix: str
    created: bool
    uploaded: int
    skipped: int

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def check_name(name: str) -> str:
    """A dataset name usable as one key segment; InputError otherwise."""
    if not _NAME.match(name):
        raise InputError(
            f"dataset name: expected lower-case letters, digits, '_', '-' or '.', got {name!r}"
        )
    return name


def version_id(files: list[DatasetFile], manifest: dict[str, Any]) -> str:
    """The content hash of a dataset: sorted (path, sha256) pairs plus the build manifest."""
    body = {
        "files": sorted([f.path, f.sha256] for f in files),
        "manifest": {k: v for k, v in manifest.items() if k != "dataset"},
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_DIGITS]


def normalised_data_yaml(path: Path) -> bytes:
    """``data.yaml`` without ``path:`` (the builder's folder); restored on pull."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"cannot read dataset config: {error}", source=str(path)) from None
    if not isinstance(loaded, dict):
        raise InputError("expected a YAML mapping", source=str(path))
    loaded.pop("path", None)
    return yaml.safe_dump(loaded, sort_keys=False, allow_unicode=True).encode("utf-8")


def _dataset_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix != ".cache" and relative.as_posix() != MANIFEST:
            yield path


def read_build(folder: Path) -> tuple[dict[str, Any], list[tuple[DatasetFile, Path | bytes]]]:
    """A built dataset's manifest and files (data.yaml as normalised bytes)."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise InputError(
            "not a built dataset: no manifest.json (run `xunjian datasets build`)",
            source=str(folder),
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable manifest: {error}", source=str(manifest_path)) from None
    if not isinstance(manifest, dict):
        raise InputError("manifest: expected a JSON object", source=str(manifest_path))
    files: list[tuple[DatasetFile, Path | bytes]] = []
    for path in _dataset_files(folder):
        relative = path.relative_to(folder).as_posix()
        if relative == "data.yaml":
            data = normalised_data_yaml(path)
            entry = DatasetFile(relative, hashlib.sha256(data).hexdigest(), len(data))
            files.append((entry, data))
        else:
            files.append((DatasetFile(relative, sha256_file(path), path.stat().st_size), path))
    if not any(f.path == "data.yaml" for f, _ in files):
        raise InputError("not a built dataset: no data.yaml", source=str(folder))
    return manifest, files


def class_counts(manifest: dict[str, Any]) -> dict[str, int]:
    """Boxes per class over every split of a build manifest."""
    total: Counter[str] = Counter()
    for split in manifest.get("splits", {}).values():
        total.update({str(k): int(v) for k, v in split.get("boxes", {}).items()})
    classes = [str(c) for c in manifest.get("classes", [])] or sorted(total)
    return {c: total[c] for c in classes}


def _stored_sha(store: ObjectStore, key: str) -> str | None:
    """The stored object's SHA-256 (hashed from its bytes if the store kept none)."""
    try:
        info = store.stat(key)
    except ObjectNotFoundError:
        return None
    if info.sha256:
        return info.sha256
    digest = hashlib.sha256()
    with store.open(key) as reader:
        while chunk := reader.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def publish_dataset(
    store: ObjectStore,
    folder: Path,
    *,
    name: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    progress: Progress | None = None,
) -> PublishResult:
    """Uploads a built dataset as an immutable version; a no-op when it is already there."""
    manifest, files = read_build(Path(folder))
    name = check_name(name or str(manifest.get("detector") or Path(folder).resolve().name))
    version = version_id([f for f, _ in files], manifest)
    prefix = f"{PREFIX}/{name}/{version}"
    if store.exists(f"{prefix}/{MANIFEST}"):
        return PublishResult(name, version, prefix, False, 0, len(files))
    uploaded = skipped = 0
    for done, (entry, content) in enumerate(files, start=1):
        key = f"{prefix}/{entry.path}"
        held = _stored_sha(store, key)
        if held == entry.sha256:
            skipped += 1
        elif held is not None:
            raise StorageError(
                f"{store.bucket}/{key}: expected sha256 {entry.sha256}, the store holds {held}; "
                "published dataset content is never overwritten"
            )
        elif isinstance(content, bytes):
            store.put_bytes(key, content, content_type="application/yaml")
            uploaded += 1
        else:
            store.put_file(key, content)
            uploaded += 1
        if progress:
            progress(done, len(files), entry.path)
    stored = dict(manifest)
    stored["dataset"] = {
        "name": name,
        "version": version,
        "published_at": clock().isoformat(timespec="seconds"),
        "images": sum(1 for f, _ in files if f.path.startswith("images/")),
        "class_counts": class_counts(manifest),
        "licences": sorted({str(s.get("licence", "unknown")) for s in manifest.get("sources", [])}),
        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f, _ in files],
    }
    body = json.dumps(stored, indent=1, ensure_ascii=False).encode("utf-8")
    store.put_bytes(f"{prefix}/{MANIFEST}", body, content_type="application/json")
    return PublishResult(name, version, prefix, True, uploaded, skipped)


def _version_from(manifest: dict[str, Any], key: str) -> DatasetVersion:
    section = manifest.get("dataset")
    if not isinstance(section, dict) or not isinstance(section.get("files"), list):
        raise StorageError(f"{key}: expected a published dataset manifest with a dataset section")
    return DatasetVersion(
        name=str(section.get("name")),
        version=str(section.get("version")),
        published_at=str(section.get("published_at", "")),
        images=int(section.get("images", 0)),
        class_counts=dict(section.get("class_counts", {})),
        licences=list(section.get("licences", [])),
        manifest=manifest,
    )


def read_version(store: ObjectStore, name: str, version: str) -> DatasetVersion:
    """One published version; ObjectNotFoundError when it does not exist."""
    key = f"{PREFIX}/{check_name(name)}/{version}/{MANIFEST}"
    try:
        manifest = json.loads(store.get_bytes(key))
    except ValueError as error:
        raise StorageError(f"{key}: unreadable manifest: {error}") from None
    return _version_from(manifest, key)


def list_versions(store: ObjectStore, name: str | None = None) -> list[DatasetVersion]:
    """Published versions (of ``name``, or of every dataset), oldest first per name."""
    prefix = f"{PREFIX}/{check_name(name)}/" if name else f"{PREFIX}/"
    found: list[DatasetVersion] = []
    for info in store.list(prefix):
        parts = info.key.split("/")
        if len(parts) == 4 and parts[3] == MANIFEST:
            found.append(read_version(store, parts[1], parts[2]))
    return sorted(found, key=lambda v: (v.name, v.published_at, v.version))


def resolve(store: ObjectStore, ref: str) -> DatasetVersion:
    """``NAME@VERSION`` (a unique prefix of at least 4 hex digits, or ``latest``)."""
    name, sep, wanted = ref.partition("@")
    if not sep or not wanted:
        raise InputError(f"dataset reference: expected NAME@VERSION, got {ref!r}")
    versions = list_versions(store, name)
    if wanted == "latest":
        if not versions:
            raise ObjectNotFoundError(f"{store.bucket}/{PREFIX}/{name}/: no published version")
        return versions[-1]
    if not _VERSION.match(wanted):
        raise InputError(f"dataset version: expected hex digits or 'latest', got {wanted!r}")
    matches = [v for v in versions if v.version.startswith(wanted)]
    if len(matches) != 1:
        have = ", ".join(v.version for v in versions) or "none"
        what = "no" if not matches else "more than one"
        raise ObjectNotFoundError(f"{ref}: {what} version of {name} matches (have: {have})")
    return matches[0]


def pull_dataset(
    store: ObjectStore, ref: str, out: Path, *, progress: Progress | None = None
) -> Path:
    """Downloads a version into ``out`` (resumable; every file's SHA-256 checked); returns
    its data.yaml, which points at ``out``."""
    version = resolve(store, ref)
    out = Path(out).resolve()
    prefix = f"{PREFIX}/{version.name}/{version.version}"
    entries = version.manifest["dataset"]["files"]
    for done, entry in enumerate(entries, start=1):
        relative = str(entry["path"])
        target = out / relative
        if out not in target.resolve().parents:
            raise InputError("file path escapes the dataset folder", source=relative)
        if not (target.is_file() and sha256_file(target) == entry["sha256"]):
            store.download_file(f"{prefix}/{relative}", target)
            found = sha256_file(target)
            if found != entry["sha256"]:
                target.unlink()
                raise StorageError(
                    f"{store.bucket}/{prefix}/{relative}: expected sha256 {entry['sha256']}, "
                    f"got {found}"
                )
        if progress:
            progress(done, len(entries), relative)
    data_yaml = out / "data.yaml"
    config = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
    config = {"path": str(out), **{k: v for k, v in config.items() if k != "path"}}
    data_yaml.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), "utf-8")
    (out / MANIFEST).write_text(
        json.dumps(version.manifest, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return data_yaml
