"""The embedded-default object store: a directory on the local disk.

Layout under ``root``::

    objects/<key>     the object's bytes
    meta/<key>        its sidecar (JSON: sha256, content type, user metadata, size, inode, mtime)
    tmp/              writes in progress; same file system, so ``os.replace`` is atomic
    signing.key       HMAC key for presigned URLs, created once (mode 0600)

Sidecars live in a parallel tree rather than beside the object, so no listing ever has to
hide them and no key can collide with one. Temporary files live in ``tmp/`` rather than the
object's own directory for the same reason; it is the same file system, which is what makes
the rename atomic. A sidecar records the inode, size and mtime of the data file it describes;
one that does not match (a crash between the two renames, a file copied in by hand) is
ignored and the object reads as having no checksum.

A directory cannot be both a file and a folder, so unlike S3 the keys ``a`` and ``a/b``
cannot coexist here: the second put raises StorageError.

There is no server behind this store: presigned URLs point at the xunjian service
(``{base_url}/api/v1/objects/{key}?expires=…&signature=…``), which checks them with
:meth:`LocalStore.verify_presigned`.

May import the standard library, ``xunjian.errors`` and ``xunjian.storage``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from xunjian.errors import ObjectNotFoundError, StorageError, UnsafeKeyError
from xunjian.storage.keys import is_safe_key, validate_key, validate_prefix
from xunjian.storage.objectstore import (
    SHA256_KEY,
    ObjectInfo,
    ObjectStore,
    check_expiry,
    copy_hashing,
    guess_content_type,
    normalize_metadata,
)


class LocalStore(ObjectStore):
    """Objects as files under ``root``; see the module docstring for the layout."""

    def __init__(
        self,
        root: Path,
        *,
        bucket: str = "local",
        signing_key: bytes | None = None,
        base_url: str = "http://127.0.0.1:8000",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket = bucket
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self._clock = clock
        try:
            for name in ("objects", "meta", "tmp"):
                (self.root / name).mkdir(parents=True, exist_ok=True)
            self._objects = (self.root / "objects").resolve()
            self._meta = (self.root / "meta").resolve()
            self._tmp = (self.root / "tmp").resolve()
            self._signing_key = signing_key or self._load_signing_key()
        except OSError as exc:
            raise StorageError(f"local store {self.root}: cannot prepare: {exc}") from exc

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------------ writes

    def put_stream(
        self,
        key: str,
        stream: BinaryIO,
        *,
        length: int | None = None,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        target = self._object_path(key)
        meta_target = self._meta_path(key)
        user_meta = normalize_metadata(key, metadata)
        ctype = guess_content_type(key, content_type)
        data_tmp = self._tmp / f"{secrets.token_hex(8)}.data"
        meta_tmp = data_tmp.with_suffix(".meta")
        try:
            with data_tmp.open("xb") as out:
                size, sha256 = copy_hashing(stream, out, key=key, length=length)
                out.flush()
                os.fsync(out.fileno())
            st = data_tmp.stat()
            record = {
                "sha256": sha256,
                "content_type": ctype,
                "metadata": user_meta,
                "size": size,
                "inode": st.st_ino,
                "mtime_ns": st.st_mtime_ns,
            }
            meta_tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            self._install(key, meta_tmp, meta_target)
            self._install(key, data_tmp, target)
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"put {self._name(key)}: {exc}") from exc
        finally:
            data_tmp.unlink(missing_ok=True)
            meta_tmp.unlink(missing_ok=True)
        return ObjectInfo(
            key=key,
            size=size,
            etag=sha256[:32],
            sha256=sha256,
            content_type=ctype,
            metadata=dict(user_meta),
            last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
        )

    def delete(self, key: str) -> None:
        target = self._object_path(key)
        try:
            if target.is_dir():
                return  # a prefix of other objects, never an object itself
            target.unlink(missing_ok=True)
            self._meta_path(key).unlink(missing_ok=True)
            self._prune(target.parent, self._objects)
            self._prune(self._meta_path(key).parent, self._meta)
        except OSError as exc:
            raise StorageError(f"delete {self._name(key)}: {exc}") from exc

    # ------------------------------------------------------------------- reads

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        target = self._object_path(key)
        try:
            reader = target.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFoundError(f"{self._name(key)}: no such object") from None
        except OSError as exc:
            raise StorageError(f"open {self._name(key)}: {exc}") from exc
        with reader:
            yield reader

    def stat(self, key: str) -> ObjectInfo:
        target = self._object_path(key)
        try:
            st = target.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(f"{self._name(key)}: no such object") from None
        except OSError as exc:
            raise StorageError(f"stat {self._name(key)}: {exc}") from exc
        if not target.is_file():
            raise ObjectNotFoundError(f"{self._name(key)}: no such object (a prefix)")
        record = self._read_meta(key, st)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=_etag(record, st),
            sha256=record.get(SHA256_KEY),
            content_type=record.get("content_type") or guess_content_type(key, None),
            metadata=dict(record.get("metadata") or {}),
            last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
        )

    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        folder, _, start = prefix.rpartition("/")
        directory = self._objects / folder if folder else self._objects
        if not self._inside(directory, self._objects) or not directory.is_dir():
            return
        try:
            yield from self._walk(directory, folder + "/" if folder else "", start, recursive)
        except OSError as exc:
            raise StorageError(f"list {self._name(prefix)}: {exc}") from exc

    # ------------------------------------------------------------- presigning

    def presigned_get_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return self._presign("GET", key, expires)

    def presigned_put_url(self, key: str, expires: timedelta = timedelta(hours=1)) -> str:
        return self._presign("PUT", key, expires)

    def sign(self, method: str, key: str, expires: int) -> str:
        """Hex HMAC-SHA256 over method, bucket, key and expiry time (unix seconds)."""
        message = f"{method.upper()}\n{self.bucket}\n{key}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    def verify_presigned(
        self, key: str, expires: int | str, signature: str, method: str = "GET"
    ) -> bool:
        """True when ``signature`` was made by :meth:`sign` for this method, key and expiry,
        and the expiry has not passed. Compares in constant time; never raises on bad input."""
        try:
            expires_at = int(expires)
        except (TypeError, ValueError):
            return False
        if expires_at < self._clock() or not is_safe_key(key) or not isinstance(signature, str):
            return False
        expected = self.sign(method, key, expires_at)
        return hmac.compare_digest(expected, signature.lower())

    # ---------------------------------------------------------------- helpers

    def _presign(self, method: str, key: str, expires: timedelta) -> str:
        validate_key(key)
        expires_at = int(self._clock()) + check_expiry(key, expires)
        signature = self.sign(method, key, expires_at)
        quoted = quote(key, safe="/")
        return f"{self.base_url}/api/v1/objects/{quoted}?expires={expires_at}&signature={signature}"

    def _name(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    @staticmethod
    def _inside(path: Path, root: Path) -> bool:
        return path.resolve().is_relative_to(root)

    def _checked_path(self, base: Path, key: str) -> Path:
        validate_key(key)
        path = base / key
        # validate_key already refuses '..'; this also catches symlinks planted in the tree
        if not self._inside(path, base):
            raise UnsafeKeyError("resolves outside the store", source=repr(key))
        return path

    def _object_path(self, key: str) -> Path:
        return self._checked_path(self._objects, key)

    def _meta_path(self, key: str) -> Path:
        return self._checked_path(self._meta, key)

    def _install(self, key: str, source: Path, target: Path) -> None:
        """Renames ``source`` over ``target``, making parent folders; a concurrent delete may
        prune a folder between mkdir and rename, hence the retry."""
        for attempt in range(3):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise StorageError(
                        f"put {self._name(key)}: a prefix of other objects in a local store"
                    )
                source.replace(target)
                return
            except (FileExistsError, NotADirectoryError):
                raise StorageError(
                    f"put {self._name(key)}: a parent of this key is itself an object"
                ) from None
            except FileNotFoundError:
                if attempt == 2:
                    raise

    @staticmethod
    def _prune(folder: Path, root: Path) -> None:
        """Removes empty folders up to ``root``, as S3 prefixes vanish with their objects."""
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _read_meta(self, key: str, st: os.stat_result) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads(self._meta_path(key).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        fresh = (
            record.get("inode") == st.st_ino
            and record.get("size") == st.st_size
            and record.get("mtime_ns") == st.st_mtime_ns
        )
        return record if fresh else {}

    def _walk(
        self, directory: Path, key_prefix: str, start: str, recursive: bool
    ) -> Iterator[ObjectInfo]:
        # Sorting folders as "name/" makes this depth-first walk yield keys in the same
        # order as a sort of the full key strings, which is S3's order.
        entries = []
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.startswith(start):
                    is_dir = entry.is_dir(follow_symlinks=False)
                    entries.append((entry.name + "/" if is_dir else entry.name, entry))
        entries.sort(key=lambda pair: pair[0])
        for sort_name, entry in entries:
            key = key_prefix + entry.name
            if sort_name.endswith("/"):
                if recursive:
                    yield from self._walk(Path(entry.path), key + "/", "", recursive)
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                record = self._read_meta(key, st)
                yield ObjectInfo(
                    key=key,
                    size=st.st_size,
                    etag=_etag(record, st),
                    sha256=None,
                    content_type="",
                    metadata={},
                    last_modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
                )

    def _load_signing_key(self) -> bytes:
        """The store's own key, made once; written aside and hard-linked into place so a
        second process never reads a half-written key."""
        path = self.root / "signing.key"
        if not path.exists():
            tmp = self._tmp / f"{secrets.token_hex(8)}.key"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process won the race; use its key
            finally:
                tmp.unlink()
        return path.read_bytes()


def _etag(record: Mapping[str, Any], st: os.stat_result) -> str:
    """From the sidecar's checksum, else from size and mtime (a file without a sidecar)."""
    sha256 = record.get(SHA256_KEY)
    return sha256[:32] if isinstance(sha256, str) else f"{st.st_size:x}-{st.st_mtime_ns:x}"
