"""Object keys: the one gate every key passes before it reaches a store.

A key is a ``/``-separated relative path such as ``raw/B20240601/DJI_0001.JPG``. Keys come
from users (upload manifests, file names, API paths), so they are hostile until checked:
:func:`validate_key` refuses anything that could escape a prefix or a local directory, or
that S3 and file systems disagree about. Non-ASCII text (Chinese file names) is allowed.

May import only the standard library and ``xunjian.errors``.
"""

from __future__ import annotations

from xunjian.errors import UnsafeKeyError

MAX_KEY_BYTES = 1024
"""S3's limit on a key, in bytes of UTF-8."""


def _key_problem(key: object) -> str | None:
    """The reason ``key`` is unsafe, or None when it is fine."""
    if not isinstance(key, str):  # keys also come from JSON and untyped callers
        return f"expected a str, got {type(key).__name__}"
    if not key:
        return "empty key"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates from os.fsdecode of undecodable bytes
        return "not valid Unicode text (lone surrogate)"
    if "\ufffd" in key:  # what a decoder leaves of bytes that were not UTF-8
        return "not valid Unicode text (U+FFFD: the name was not valid UTF-8)"
    if size > MAX_KEY_BYTES:
        return f"expected at most {MAX_KEY_BYTES} bytes of UTF-8, got {size}"
    for char in key:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0:
            return f"control character U+{code:04X}"
    if "\\" in key:
        return "backslash (use '/' to separate segments)"
    if key.startswith("/"):
        return "absolute key (leading '/')"
    for segment in key.split("/"):
        if segment == "":
            return "empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"{segment!r} segment"
    return None


def validate_key(key: str) -> str:
    """Returns ``key`` unchanged when it is safe; raises :class:`UnsafeKeyError` naming it.

    Refused: empty keys, a leading ``/``, ``.`` or ``..`` segments, empty segments
    (``a//b``, a trailing ``/``), backslashes, NUL and other control characters, and keys
    longer than 1024 bytes of UTF-8.
    """
    problem = _key_problem(key)
    if problem is not None:
        raise UnsafeKeyError(f"unsafe object key: {problem}", source=repr(key))
    return key


def validate_prefix(prefix: str) -> str:
    """Returns a listing prefix unchanged when it is safe: ``""``, or a key with an optional
    trailing ``/`` (``raw/B1/`` lists inside B1; ``raw/B1`` also matches ``raw/B10``)."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") and len(prefix) > 1 else prefix)
    return prefix


def is_safe_key(key: str) -> bool:
    """True when :func:`validate_key` would accept ``key``."""
    return _key_problem(key) is None
