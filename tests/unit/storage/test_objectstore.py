"""Helpers shared by both stores, and S3Store's configuration (no server needed)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from xunjian.errors import ConfigurationError, InputError
from xunjian.storage.objectstore import (
    ObjectInfo,
    check_expiry,
    decode_meta_value,
    encode_meta_value,
    guess_content_type,
    normalize_metadata,
)
from xunjian.storage.s3store import S3Store

MiB = 1024 * 1024


def test_object_info_is_frozen() -> None:
    info = ObjectInfo("k", 1, "e", None, "text/plain", {}, datetime.now(UTC))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 2  # type: ignore[misc]


def test_metadata_names_are_lower_cased() -> None:
    assert normalize_metadata("k", {"Batch-ID": "B1", "x_y.z": "2"}) == {
        "batch-id": "B1",
        "x_y.z": "2",
    }
    assert normalize_metadata("k", None) == {}


def test_metadata_values_must_be_text() -> None:
    with pytest.raises(InputError, match="expected str, got int"):
        normalize_metadata("raw/a.jpg", {"n": 3})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("key", "given", "expected"),
    [
        ("a.jpg", None, "image/jpeg"),
        ("a.JPG", None, "image/jpeg"),
        ("manifest.json", None, "application/json"),
        ("blob", None, "application/octet-stream"),
        ("a.jpg", "image/webp", "image/webp"),
    ],
)
def test_guess_content_type(key: str, given: str | None, expected: str) -> None:
    assert guess_content_type(key, given) == expected


def test_check_expiry() -> None:
    assert check_expiry("k", timedelta(hours=1)) == 3600
    assert check_expiry("k", timedelta(days=7)) == 7 * 86400
    with pytest.raises(InputError, match="k: expires"):
        check_expiry("k", timedelta(seconds=-5))


@pytest.mark.parametrize("value", ["plain", "B20240601", "a b c", "x=?y", "http://a/b?c=d"])
def test_plain_metadata_values_travel_as_they_are(value: str) -> None:
    assert encode_meta_value(value) == value


@pytest.mark.parametrize("value", ["桥梁", " lead", "trail ", "two  spaces", "", "=?UTF-8?B?x?="])
def test_other_values_are_encoded_as_ascii(value: str) -> None:
    encoded = encode_meta_value(value)
    assert encoded.isascii() and encoded != value
    assert decode_meta_value(encoded) == value


@hypothesis_settings(database=None)  # no .hypothesis/ folder in the checkout
@given(st.text(max_size=60))
def test_metadata_value_encoding_round_trips(value: str) -> None:
    encoded = encode_meta_value(value)
    assert encoded.isascii()
    assert "\n" not in encoded and "\r" not in encoded
    assert decode_meta_value(encoded) == value


def test_s3_part_size_grows_for_huge_objects() -> None:
    store = S3Store("127.0.0.1:9", access_key="a", secret_key="b", bucket="xunjian")
    assert store._part_size_for(1) == 8 * MiB
    assert store._part_size_for(20 * MiB) == 8 * MiB
    huge = 200 * 1024 * MiB  # 200 GiB: 8 MiB parts would need 25,600
    part = store._part_size_for(huge)
    assert part % MiB == 0 and -(-huge // part) <= 10_000


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"bucket": "B_ad"}, "invalid bucket name"),
        ({"bucket": "ab"}, "invalid bucket name"),
        ({"endpoint": "127.0.0.1:9000/path"}, "path in endpoint"),
        ({"endpoint": "127.0.0.1:port"}, "invalid port"),
        ({"endpoint": ""}, "expected host:port"),
        ({"part_size": MiB}, "part_size"),
    ],
)
def test_s3_configuration_errors(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {
        "endpoint": "127.0.0.1:9000",
        "access_key": "a",
        "secret_key": "b",
        "bucket": "xunjian",
        **kwargs,
    }
    endpoint = args.pop("endpoint")
    with pytest.raises(ConfigurationError, match=reason):
        S3Store(endpoint, **args)  # type: ignore[arg-type]
