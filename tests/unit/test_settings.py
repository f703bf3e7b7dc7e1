"""Typed settings: defaults, environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from xunjian.settings import Settings, get_settings


def test_embedded_defaults_live_under_the_data_dir(settings: Settings) -> None:
    assert settings.object_store == "local"
    assert settings.store_dir == settings.data_dir / "store"
    assert settings.db_url == f"sqlite:///{(settings.data_dir / 'xunjian.db').as_posix()}"


def test_environment_overrides_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XUNJIAN_OBJECT_STORE", "s3")
    monkeypatch.setenv("XUNJIAN_S3_ENDPOINT", "127.0.0.1:9999")
    monkeypatch.setenv("XUNJIAN_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.object_store == "s3"
        assert settings.s3_endpoint == "127.0.0.1:9999"
        assert settings.db_url == "postgresql://postgres@127.0.0.1/test"
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("s3_endpoint", "http://minio:9000", "without a scheme"),
        ("object_store", "ftp", "local"),
        ("max_image_pixels", 0, "greater than 0"),
        ("camera_timezone", "Mars/Olympus", "IANA"),
    ],
)
def test_bad_values_say_what_was_expected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_secrets_do_not_print() -> None:
    settings = Settings(s3_secret_key="hunter2")  # type: ignore[arg-type]
    assert "hunter2" not in repr(settings)
    assert settings.s3_secret_key.get_secret_value() == "hunter2"
