"""validate_key: the table of hostile keys, each with the reason the error must give."""

from __future__ import annotations

import pytest

from xunjian.errors import InputError, UnsafeKeyError
from xunjian.storage.keys import MAX_KEY_BYTES, is_safe_key, validate_key, validate_prefix

BAD_KEYS = [
    ("", "empty key"),
    ("/etc/passwd", "absolute key"),
    ("/", "absolute key"),
    ("..", "'..' segment"),
    ("../secret", "'..' segment"),
    ("raw/../../etc/passwd", "'..' segment"),
    ("raw/..", "'..' segment"),
    (".", "'.' segment"),
    ("raw/./a.jpg", "'.' segment"),
    ("raw//a.jpg", "empty segment"),
    ("raw/", "empty segment"),
    ("raw\\a.jpg", "backslash"),
    ("..\\..\\windows", "backslash"),
    ("raw/a\x00.jpg", "control character U+0000"),
    ("raw/a\n.jpg", "control character U+000A"),
    ("raw/a\r.jpg", "control character U+000D"),
    ("raw/a\x7f.jpg", "control character U+007F"),
    ("raw/a\x85.jpg", "control character U+0085"),
    ("a" * (MAX_KEY_BYTES + 1), "expected at most 1024 bytes of UTF-8, got 1025"),
    ("巡" * 342, "expected at most 1024 bytes of UTF-8, got 1026"),  # 3 bytes each
    ("raw/\udcff.jpg", "lone surrogate"),
]

GOOD_KEYS = [
    "a",
    "raw/B20240601/DJI_0001.JPG",
    "raw/巡检/桥梁 裂缝 2024.jpg",
    "evidence/issue-17/crop.webp",
    ".hidden",
    "raw/..a/b..",
    "a b/c~d/e+f=g@h,i;j!k'l(m)n&o$p#q%r",
    "a" * MAX_KEY_BYTES,
    "路" * (MAX_KEY_BYTES // 3),
]


@pytest.mark.parametrize(("key", "reason"), BAD_KEYS, ids=[repr(k)[:30] for k, _ in BAD_KEYS])
def test_bad_keys_are_refused_with_the_reason(key: str, reason: str) -> None:
    with pytest.raises(UnsafeKeyError) as caught:
        validate_key(key)
    assert reason in str(caught.value)
    assert repr(key)[:20] in str(caught.value)  # the message names the key
    assert isinstance(caught.value, InputError)
    assert not is_safe_key(key)


@pytest.mark.parametrize("key", GOOD_KEYS, ids=[k[:30] for k in GOOD_KEYS])
def test_good_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key
    assert is_safe_key(key)


def test_non_str_key_is_refused() -> None:
    with pytest.raises(UnsafeKeyError, match="expected a str, got bytes"):
        validate_key(b"raw/a.jpg")  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["", "raw/", "raw/B1", "raw/B1/", "巡检/"])
def test_good_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/", "/raw", "../", "raw//", "raw/../", "a\\b/"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(UnsafeKeyError):
        validate_prefix(prefix)
