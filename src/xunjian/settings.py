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

    object_store: Literal["local", "s3"] = Field(
        default="local", description="local: a directory (embedded default); s3: MinIO or S3."
    )
    local_store_dir: Path | None = Field(
        default=None, description="Root of the local object store; default: data_dir/store."
    )
    s3_endpoint: str = Field(default="127.0.0.1:9000", description="MinIO / S3 host:port.")
    s3_access_key: str = Field(default="minioadmin", description="S3 access key.")
    s3_secret_key: SecretStr = Field(default=SecretStr("minioadmin"), description="S3 secret key.")
    s3_secure: bool = Field(default=False, description="Talk https to the S3 endpoint.")
    s3_region: str = Field(default="us-east-1", description="S3 region (MinIO ignores it).")
    bucket: str = Field(default="xunjian", description="The bucket every object lives in.")

    max_image_pixels: int = Field(
        default=120_000_000,
        gt=0,
        description="Images with more pixels are refused as decompression bombs.",
    )
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, gt=0, description="Largest single uploaded file."
    )
    gps_sigma_m: float = Field(default=2.0, gt=0, description="Position σ without RTK.")
    # -- workers (Celery): the distributed detect stage (inspect/workers.py) ------------------
    runner: Literal["local", "celery"] = Field(
        default="local", description="Where `process` detects: in this process, or on workers."
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker, e.g. amqp://guest:guest@127.0.0.1:5672// or "
        "redis://127.0.0.1:6379/0.",
    )
    result_backend: str = Field(
        default="rpc://", description="Celery result backend (rpc:// with RabbitMQ; redis://…)."
    )
    worker_queue: str = Field(default="xunjian", description="The Celery queue of detect tasks.")
    worker_large_queue: str | None = Field(
        default=None, description="Queue for frames above worker_large_pixels (GPU workers)."
    )
    worker_large_pixels: int = Field(
        default=30_000_000, gt=0, description="Frames with more pixels go to worker_large_queue."
    )
    worker_chunk_frames: int = Field(default=4, ge=1, description="Frames per task.")
    worker_timeout_s: float = Field(default=3600.0, gt=0, description="Longest wait for a batch.")
    worker_stall_s: float = Field(
        default=300.0,
        gt=0,
        description="A batch on workers fails clearly when no frame is detected for this long.",
    )
    worker_visibility_timeout_s: int = Field(
        default=300, ge=1, description="Redis broker: re-deliver a task unacknowledged this long."
    )
    worker_detectors: str | None = Field(
        default=None, description='"module:function" returning the DetectorSet workers use.'
    )

    outage_max_wait_s: float = Field(
        default=600.0,
        ge=0,
        description="How long a batch waits for an unavailable object store or database.",
    )
    detect_gsd_m: float | None = Field(
        default=None,
        gt=0,
        le=10,
        description="Ground sampling (m/px) near-nadir drone frames are decoded at for detection;"
        " unset: the models' own (their cards' gsd_m). 0.001 forces full resolution. Boxes already"
        " in the detection ledger for a model version are reused whatever this was.",
    )
    refine_poses: bool = Field(
        default=True,
        description="Check and refine drone poses from the overlap of a batch's frames "
        "(fixes a gimbal yaw 180° off; costs one reduced decode per frame).",
    )
    camera_timezone: str = Field(
        default="Asia/Shanghai",
        description="Zone of capture times that carry no offset (most drone EXIF clocks).",
    )

    areas_file: Path | None = Field(
        default=None,
        description="GeoJSON FeatureCollection of named areas (districts 区, streets 街道, grid"
        " cells 网格; Polygons/MultiPolygons with a 'name'): 评价 figures are also given per area.",
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
    open311_api_key: SecretStr = Field(
        default=SecretStr(""), description="The api_key sent with every Open311 request."
    )
    open311_jurisdiction_id: str | None = Field(
        default=None, description="Open311 jurisdiction_id, when the server serves several."
    )
    open311_clock_skew_s: float = Field(
        default=600.0,
        ge=0,
        description="How far the Open311 server's clock may be from ours: the look-up of a"
        " case before a resend searches this much around the message's life.",
    )
    open311_updates: bool = Field(
        default=True,
        description="The server speaks FixMyStreet's servicerequestupdates extension: verified"
        "-fixed / recurred notes are sent and finer statuses read with it; off: neither.",
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
    case_http_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one request to the case system."
    )
    case_max_attempts: int = Field(default=8, ge=1, description="Tries before a dead letter.")
    case_backoff_base_s: float = Field(
        default=2.0, gt=0, description="First retry delay; doubles each try (with jitter)."
    )
    case_backoff_cap_s: float = Field(default=600.0, gt=0, description="Longest retry delay.")
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
