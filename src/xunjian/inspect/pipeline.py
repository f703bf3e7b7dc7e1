"""The batch pipeline as one call: ingest now; detect, georef, fuse and publish as they land.

The runner around the stages is in-process by default. Every stage is idempotent on
(batch, image, model version), so re-running a batch never duplicates work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xunjian.inspect.ingest import IngestReport, ProgressCallback, ingest_batch
from xunjian.inspect.upload import ProgressCallback as UploadProgress
from xunjian.inspect.upload import UploadReport, upload_batch
from xunjian.settings import Settings
from xunjian.storage.catalog import Catalog
from xunjian.storage.objectstore import ObjectStore, open_store


@dataclass
class Services:
    """The configured components one process works with."""

    settings: Settings
    store: ObjectStore
    catalog: Catalog

    @classmethod
    def open(cls, settings: Settings) -> Services:
        return cls(settings, open_store(settings), Catalog.from_settings(settings))

    def close(self) -> None:
        self.catalog.close()


def process_batch(
    services: Services, batch_id: str, *, progress: ProgressCallback | None = None
) -> IngestReport:
    """Runs the pipeline stages over an uploaded batch."""
    settings = services.settings
    return ingest_batch(
        batch_id,
        services.store,
        services.catalog,
        max_pixels=settings.max_image_pixels,
        gps_sigma_m=settings.gps_sigma_m,
        camera_timezone=settings.camera_timezone,
        progress=progress,
    )


def run_folder(
    services: Services,
    folder: Path,
    *,
    batch_id: str | None = None,
    platform: str | None = None,
    upload_progress: UploadProgress | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[UploadReport, IngestReport]:
    """Uploads a folder as a batch, then processes it."""
    upload = upload_batch(
        folder, services.store, batch_id=batch_id, platform=platform, progress=upload_progress
    )
    return upload, process_batch(services, upload.batch_id, progress=progress)
