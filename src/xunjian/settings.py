"""Typed settings from the environment (``XUNJIAN_*``) or a ``.env`` file.

Build them with :func:`get_settings` (cached), never at import time, so tests can set the
environment first and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="XUNJIAN_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("xunjian-data"),
        description="Where the embedded defaults keep their files (local store, SQLite, outputs).",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in data_dir."
    )

    object_store: Literal["local", "s3"] = "local"
    local_store_dir: Path | None = Field(
        default=None, description="Root of the local object store; default: data_dir/store."
    )
    s3_endpoint: str = "127.0.0.1:9000"
    s3_access_key: str = "minioadmin"
    s3_secret_key: SecretStr = SecretStr("minioadmin")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket: str = "xunjian"

    max_image_pixels: int = Field(
        default=120_000_000,
        gt=0,
        description="Images with more pixels are refused as decompression bombs.",
    )
    max_upload_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    gps_sigma_m: float = Field(default=2.0, gt=0, description="Position σ without RTK.")
    refine_poses: bool = Field(
        default=True,
        description="Check and refine drone poses from the overlap of a batch's frames "
        "(fixes a gimbal yaw 180° off; costs one reduced decode per frame).",
    )
    camera_timezone: str = Field(
        default="Asia/Shanghai",
        description="Zone of capture times that carry no offset (most drone EXIF clocks).",
    )

    # -- case system (cases/: connectors, outbox, status sync; see docs/cases.md) --
    case_system: Literal["file", "open311", "webhook"] = Field(
        default="file", description="Where issues become cases: file sink, Open311, webhook."
    )
    case_file: Path | None = Field(
        default=None, description="JSON-lines file of the file sink; default data_dir/cases.jsonl."
    )
    case_mapping: Path | None = Field(
        default=None,
        description="Class → service code / 数字城管 codes (YAML); default: the shipped example.",
    )
    open311_endpoint: str | None = Field(
        default=None, description="GeoReport v2 base URL, e.g. https://city.example/open311/v2."
    )
    open311_api_key: SecretStr = SecretStr("")
    open311_jurisdiction_id: str | None = None
    open311_send_updates: bool = Field(
        default=True,
        description="Send verified-fixed / recurred notes with the servicerequestupdates"
        " extension (FixMyStreet); off: kept in xunjian only.",
    )
    webhook_url: str | None = Field(default=None, description="Where webhook cases are POSTed.")
    webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC-SHA256 key for webhook bodies and callbacks."
    )
    public_url: str | None = Field(
        default=None,
        description="Base URL of this service as the case system sees it; evidence links then"
        " are {public_url}/api/v1/issues/{id}/evidence instead of presigned URLs.",
    )
    case_http_timeout_s: float = Field(default=10.0, gt=0)
    case_max_attempts: int = Field(default=8, ge=1, description="Tries before a dead letter.")
    case_backoff_base_s: float = Field(default=2.0, gt=0)
    case_backoff_cap_s: float = Field(default=600.0, gt=0)
    case_claim_lease_s: float = Field(
        default=120.0, gt=0, description="A sender that died holding a message frees it after."
    )
    case_poll_interval_s: float = Field(default=60.0, gt=0, description="`cases run` period.")

    # -- service (xunjian serve: HTTP API and map page) --
    host: str = Field(default="127.0.0.1", description="Address `xunjian serve` listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `xunjian serve` uses.")
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        description="Largest request body outside object uploads (those: max_upload_bytes).",
    )
    max_batch_files: int = Field(
        default=20_000, gt=0, description="Most files one batch manifest may list."
    )
    tile_url: str | None = Field(
        default=None,
        description="Raster tiles for the map page, e.g. https://tiles.example/{z}/{x}/{y}.png;"
        " none: a plain grid.",
    )
    tile_attribution: str = Field(default="", description="Credit shown under the tiles.")
    service_workers: int = Field(
        default=1, ge=1, le=16, description="Batches the service processes at once."
    )

    # -- ML loop (models/versions.py registry, models/reload.py hot reload; docs/ml-loop.md) --
    model_cache_dir: Path | None = Field(
        default=None,
        description="Where registered models are downloaded to; default data_dir/models.",
    )
    model_reload_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="How often the service and workers check the active model pointers.",
    )

    @field_validator("camera_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            message = f"expected an IANA time zone such as Asia/Shanghai, got {value!r}"
            raise ValueError(message) from None
        return value

    @field_validator("s3_endpoint")
    @classmethod
    def _endpoint_without_scheme(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(
                f"expected host:port without a scheme (set s3_secure for https), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.local_store_dir is None:
            self.local_store_dir = self.data_dir / "store"
        if self.database_url is None:
            self.database_url = f"sqlite:///{(self.data_dir / 'xunjian.db').as_posix()}"
        return self

    @property
    def store_dir(self) -> Path:
        assert self.local_store_dir is not None  # filled by the validator
        return self.local_store_dir

    @property
    def db_url(self) -> str:
        assert self.database_url is not None  # filled by the validator
        return self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
