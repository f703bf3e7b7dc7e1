"""Bad batches: broken or oversized manifests, hostile file names and object keys.

Manifest writers put one ``<case>.json`` into a folder (to be stored as a batch's
``raw/<batch>/manifest.json``). Name writers put one small clean photo under a hostile or
odd file name into a batch folder. Keys are plain strings (:data:`KEYS`); their writer puts
``{"key": …}`` into ``<case>.json``, JSON being the one format that holds a NUL or a lone
surrogate faithfully. The reason each must give is in :mod:`xunjian.testing.badinput`.

May import: the standard library and ``xunjian.testing.badimages``.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from xunjian.testing.badimages import Writer, clean_jpeg, write_file

BATCH = "B20240501-bad"
_PREFIX = f"raw/{BATCH}/"


def _entry(file_name: str, **changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": file_name,
        "kind": "image",
        "size": 1024,
        "sha256": "0" * 64,
        "key": _PREFIX + file_name,
        "captured_at": None,
        "duplicate_of": None,
    }
    entry.update(changes)
    return entry


def _manifest(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": 1,
        "batch_id": BATCH,
        "platform": "drone",
        "meta": {},
        "files": [_entry("DJI_0001.JPG")],
        "rejected": [],
    }
    doc.update(changes)
    return doc


def _json_writer(case: str, doc: Any, description: str) -> Writer:
    def write(folder: Path) -> Path:
        return write_file(folder, f"{case}.json", json.dumps(doc).encode())

    write.__doc__ = description
    return write


def _bytes_writer(case: str, data: bytes, description: str) -> Writer:
    def write(folder: Path) -> Path:
        return write_file(folder, f"{case}.json", data)

    write.__doc__ = description
    return write


def manifest_deeply_nested(folder: Path) -> Path:
    """100 000 nested JSON arrays (a recursive parser overflows its stack)."""
    return write_file(folder, "manifest_deeply_nested.json", b"[" * 100_000 + b"]" * 100_000)


def manifest_100k_entries(folder: Path) -> Path:
    """A well-formed manifest listing 100 000 files (about 17 MB)."""
    files = [_entry(f"DJI_{n:06d}.JPG") for n in range(100_000)]
    data = json.dumps(_manifest(files=files), separators=(",", ":")).encode()
    return write_file(folder, "manifest_100k_entries.json", data)


def manifest_50mb(folder: Path) -> Path:
    """A well-formed manifest of one file padded to 50 MiB by a long meta value."""
    head = json.dumps(_manifest(meta={"pad": ""})).encode()
    data = head.replace(b'"pad": ""', b'"pad": "' + b"x" * (50 * 2**20 - len(head)) + b'"')
    return write_file(folder, "manifest_50mb.json", data)


_ONE = "DJI_0001.JPG"
_DOCUMENTS: dict[str, tuple[Any, str]] = {
    "manifest_top_level_array": ([_manifest()], "A JSON array holding a manifest."),
    "manifest_wrong_version": (_manifest(version=2), "Manifest version 2."),
    "manifest_files_not_a_list": (_manifest(files=_ONE), "files: a string."),
    "manifest_entry_not_an_object": (_manifest(files=[_ONE]), "files: a list of strings."),
    "manifest_entry_missing_fields": (
        _manifest(files=[{"name": _ONE}]),
        "An entry with a name and nothing else.",
    ),
    "manifest_size_not_a_number": (
        _manifest(files=[_entry(_ONE, size="big")]),
        'An entry of size "big".',
    ),
    "manifest_negative_size": (_manifest(files=[_entry(_ONE, size=-1)]), "An entry of size -1."),
    "manifest_name_not_text": (_manifest(files=[_entry(_ONE, name=5)]), "An entry named 5."),
    "manifest_meta_wrong_type": (_manifest(meta=[1, 2]), "meta: a list."),
    "manifest_platform_wrong_type": (_manifest(platform=["drone"]), 'platform: ["drone"].'),
    "manifest_batch_id_wrong_type": (_manifest(batch_id={"id": BATCH}), "batch_id: an object."),
    "manifest_key_escapes": (
        _manifest(files=[_entry(_ONE, key=_PREFIX + "../../etc/passwd")]),
        "A file key climbing out of the batch with '..'.",
    ),
    "manifest_key_outside_batch": (
        _manifest(files=[_entry(_ONE, key=f"raw/other-batch/{_ONE}")]),
        "A file key in another batch's folder.",
    ),
    "manifest_key_name_mismatch": (
        _manifest(files=[_entry("../../../etc/cron.d/x.jpg", key=_PREFIX + _ONE)]),
        "A safe key whose file name climbs out with '..'.",
    ),
}
_RAW: dict[str, tuple[bytes, str]] = {
    "manifest_not_json": (b"{nope", "Not JSON."),
    "manifest_not_utf8": (b'\xff\xfe{"version": 1}', "Bytes that are not UTF-8."),
    "manifest_empty": (b"", "Zero bytes."),
    "manifest_huge_number": (
        b'{"version": ' + b"9" * 5000 + b"}",
        "A 5000-digit number (past Python's int conversion limit).",
    ),
}
MANIFESTS: dict[str, Writer] = {
    **{name: _bytes_writer(name, data, doc) for name, (data, doc) in _RAW.items()},
    **{name: _json_writer(name, value, doc) for name, (value, doc) in _DOCUMENTS.items()},
    "manifest_deeply_nested": manifest_deeply_nested,
    "manifest_100k_entries": manifest_100k_entries,
    "manifest_50mb": manifest_50mb,
}


# ---- file names in a batch folder (one small clean photo each, distinct pixels)


def _named(name: str, seed: int) -> Writer:
    def write(folder: Path) -> Path:
        return write_file(folder, name, clean_jpeg(seed=seed))

    write.__doc__ = f"A clean photo named {name if len(name) < 60 else name[:56] + '…'!r}."
    return write


def name_symlink(folder: Path) -> Path:
    """A symbolic link named like a photo, pointing at /etc/passwd."""
    path = folder / "link_to_passwd.jpg"
    folder.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to("/etc/passwd")
    return path


def name_undecodable_bytes(folder: Path) -> Path:
    """A file name of bytes that are not UTF-8 (b"\\xff\\xfe.jpg"; a lone surrogate in Python)."""
    return write_file(folder, "\udcff\udcfe.jpg", clean_jpeg(seed=201))


def name_markup_closing_tag(folder: Path) -> Path:
    """Not a photo, at "[/bold]notes.jpg": console markup whose closing tag matches nothing.

    A folder "[" holding "bold]notes.jpg". A console that reads markup in what it prints
    chokes on the closing tag when it lists the failure.
    """
    return write_file(folder, "[/bold]notes.jpg", b"this is not a photo either\n")


_LONG_KEY_DIRS = "/".join(["d" * 200] * 5 + ["e" * 100])  # over 1024 bytes on its own

NAMES: dict[str, Writer] = {
    # refused before upload by the object-key gate or the folder scan
    "name_backslash": _named("evil\\..\\..\\windows.jpg", 202),
    "name_newline": _named("frame\nname.jpg", 203),
    "name_escape_sequence": _named("\x1b[31mred.jpg", 204),
    "name_c1_control": _named("\u0085next_line.jpg", 205),
    "name_key_too_long": _named(_LONG_KEY_DIRS + "/deep.jpg", 206),
    "name_undecodable_bytes": name_undecodable_bytes,
    "name_symlink": name_symlink,
    "name_not_a_batch_file": _named("notes.txt", 207),
    "name_markup_closing_tag": name_markup_closing_tag,
    # odd but harmless: stored and processed under exactly that name
    "name_windows_reserved": _named("CON.jpg", 208),
    "name_windows_reserved_nul": _named("nul.JPG", 209),
    "name_unicode_nfc": _named(unicodedata.normalize("NFC", "café.jpg"), 210),
    "name_unicode_nfd": _named(unicodedata.normalize("NFD", "café.jpg"), 211),
    "name_fullwidth_dots": _named("．．／escape.jpg", 212),
    "name_bidi_override": _named("photo\u202egpj.jpg", 213),
    "name_dots_inside": _named("DJI..0001..jpg", 216),
    "name_long_chinese": _named("巡检" * 40 + ".jpg", 215),
}


# ---- object keys (strings)

KEYS: dict[str, str] = {
    "key_parent_escape": "../etc/passwd",
    "key_parent_inside": _PREFIX + "../../etc/passwd",
    "key_absolute": "/etc/passwd",
    "key_backslash": "raw\\B\\DJI_0001.JPG",
    "key_nul": _PREFIX + "DJI_0001.JPG\x00.png",
    "key_newline": _PREFIX + "DJI\n0001.JPG",
    "key_delete_char": _PREFIX + "DJI\x7f.JPG",
    "key_empty": "",
    "key_double_slash": "raw//DJI_0001.JPG",
    "key_trailing_slash": _PREFIX,
    "key_dot_segment": "raw/./DJI_0001.JPG",
    "key_too_long": _PREFIX + "a" * 1100 + ".jpg",
    "key_lone_surrogate": _PREFIX + "\ud800.jpg",
    # accepted: no separator, no control character, nothing a file system reads as a step up
    "key_fullwidth_dots": _PREFIX + "．．／etc/passwd.jpg",
    "key_percent_encoded_dots": _PREFIX + "%2e%2e/%2e%2e/etc/passwd.jpg",
    "key_windows_reserved": _PREFIX + "CON.jpg",
    "key_unicode_nfd": _PREFIX + unicodedata.normalize("NFD", "café.jpg"),
}


def key_writer(case: str, key: str) -> Writer:
    """Writes ``{"key": key}`` to ``<case>.json`` (ASCII JSON: NULs and surrogates escaped)."""
    shown = key if len(key) < 60 else key[:56] + "…"
    return _json_writer(case, {"key": key}, f"The object key {shown!r}.")
