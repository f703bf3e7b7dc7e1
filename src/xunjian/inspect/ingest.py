"""Ingest: a batch's manifest and files → one catalogued Frame per image (or failure + reason).

Drone images get their pose and intrinsics from EXIF / DJI XMP. Patrol-vehicle batches carry a
GPS track: image frames take their pose from it by capture time, and videos are sampled into
frames by distance travelled. Every file ends either as a frame or as a failure with its
reason; one bad file never stops the batch. Re-running is idempotent (upserts on batch + key).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from xunjian.core.records import CameraIntrinsics, Frame, Platform
from xunjian.errors import InputError, StorageError, StorageUnavailableError
from xunjian.inspect.manifest import Manifest, ManifestEntry
from xunjian.inspect.metadata import extract_metadata
from xunjian.inspect.tracks import Track, VehicleMount, load_track
from xunjian.inspect.upload import read_manifest, sha256_file
from xunjian.storage.catalog import Catalog
from xunjian.storage.objectstore import ObjectStore

ProgressCallback = Callable[[int, int, str], None]
"""Called as ``(files_done, files_total, current_name)``."""


@dataclass(frozen=True)
class VehicleCamera:
    """A patrol vehicle's camera: where it is mounted and how wide it sees (videos have no EXIF)."""

    mount: VehicleMount = field(default_factory=VehicleMount)
    hfov_deg: float = 90.0
    every_m: float = 5.0


@dataclass
class IngestReport:
    batch_id: str
    platform: str
    frames: list[Frame] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def georeferenceable(self) -> int:
        return sum(1 for f in self.frames if f.georeferenceable)


@contextmanager
def fetched(store: ObjectStore, entry: ManifestEntry, workdir: Path) -> Iterator[Path]:
    """The entry's object in a local temporary file, checked against the manifest's sha256."""
    suffix = Path(entry.name).suffix
    digest = hashlib.sha256(entry.key.encode()).hexdigest()[:16]
    path = workdir / f"{digest}{suffix}"
    store.download_file(entry.key, path)
    try:
        actual, _ = sha256_file(path)
        if actual != entry.sha256:
            raise InputError(
                f"content changed since upload: expected sha256 {entry.sha256[:12]}…,"
                f" got {actual[:12]}…",
                source=entry.name,
            )
        try:
            yield path
        except InputError as exc:
            if exc.source != str(path):
                raise
            # name the batch's file, not the temporary download the reader was given
            raise type(exc)(exc.reason, source=entry.name) from exc
    finally:
        path.unlink(missing_ok=True)


def ingest_batch(
    batch_id: str,
    store: ObjectStore,
    catalog: Catalog,
    *,
    max_pixels: int = 120_000_000,
    gps_sigma_m: float = 2.0,
    camera_timezone: str = "Asia/Shanghai",
    vehicle: VehicleCamera | None = None,
    workers: int = 2,
    progress: ProgressCallback | None = None,
    finish: bool = True,
) -> IngestReport:
    """Catalogues every file of the batch; returns the frames and the failures.

    The batch is ``processing`` meanwhile; ``finish`` marks it ``processed`` at the end —
    the pipeline passes False and marks it itself once every stage has run, so a batch left
    ``processing`` is one a crash interrupted (the service resumes those at start).
    """
    manifest = read_manifest(store, batch_id)
    catalog.upsert_batch(
        batch_id,
        manifest.platform,
        manifest_key=f"raw/{batch_id}/manifest.json",
        status="processing",
        meta=manifest.meta,
    )
    report = IngestReport(batch_id, manifest.platform)
    camera = vehicle or VehicleCamera()
    zone = ZoneInfo(camera_timezone)
    with tempfile.TemporaryDirectory(prefix="xunjian-ingest-") as tmp:
        workdir = Path(tmp)
        track = _load_tracks(manifest, store, workdir, report)
        for entry in manifest.files:
            if entry.duplicate_of is not None:
                report.failures.append(
                    (entry.key, f"duplicate of {entry.duplicate_of}; processed once")
                )
        images = manifest.of_kind("image")
        total = len(images) + len(manifest.of_kind("video"))

        def one(entry: ManifestEntry) -> Frame | tuple[str, str]:
            try:
                with fetched(store, entry, workdir) as path:
                    meta = extract_metadata(
                        path, max_pixels=max_pixels, default_sigma_xy_m=gps_sigma_m
                    )
                platform = Platform(manifest.platform)
                frame = meta.to_frame(
                    batch_id=batch_id, key=entry.key, sha256=entry.sha256, platform=platform
                )
                frame = _zoned(frame, zone)
                if platform is Platform.VEHICLE:
                    frame = _pose_from_track(frame, track, camera.mount, gps_sigma_m)
                return frame
            except StorageUnavailableError:
                raise  # the store is down, not the frame bad: the caller waits and retries
            except (InputError, StorageError) as exc:
                return (entry.key, str(exc))

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, (entry, result) in enumerate(
                zip(images, pool.map(one, images), strict=True), start=1
            ):
                _record(catalog, report, batch_id, result)
                if progress:
                    progress(done, total, entry.name)
        for done, entry in enumerate(manifest.of_kind("video"), start=len(images) + 1):
            _ingest_video(entry, store, catalog, report, workdir, track, camera, gps_sigma_m)
            if progress:
                progress(done, total, entry.name)
    for key, reason in report.failures:
        catalog.record_failure(batch_id, key, reason)
    if finish:
        catalog.set_batch_status(batch_id, "processed")
    return report


def _zoned(frame: Frame, zone: ZoneInfo) -> Frame:
    """A capture time without offset is read in the configured camera zone, and says so."""
    moment = frame.captured_at
    if moment is None or moment.tzinfo is not None:
        return frame
    note = f"captured_at: EXIF time has no zone; read as {zone.key}"
    return replace(frame, captured_at=moment.replace(tzinfo=zone), problems=(*frame.problems, note))


def _record(
    catalog: Catalog, report: IngestReport, batch_id: str, result: Frame | tuple[str, str]
) -> None:
    if isinstance(result, Frame):
        catalog.upsert_frame(result)
        report.frames.append(result)
    else:
        report.failures.append(result)


def _load_tracks(
    manifest: Manifest, store: ObjectStore, workdir: Path, report: IngestReport
) -> Track | None:
    """The batch's GPS track (the first that parses); the others' problems become failures."""
    found: Track | None = None
    for entry in manifest.of_kind("track"):
        try:
            with fetched(store, entry, workdir) as path:
                track = load_track(path)
        except StorageUnavailableError:
            raise
        except (InputError, StorageError) as exc:
            report.failures.append((entry.key, str(exc)))
            continue
        if found is None:
            found = track
    return found


def _pose_from_track(
    frame: Frame, track: Track | None, mount: VehicleMount, sigma_xy_m: float
) -> Frame:
    if track is None:
        return replace(frame, pose=None, problems=(*frame.problems, "pose: batch has no track"))
    if frame.captured_at is None or frame.captured_at.tzinfo is None:
        reason = "pose: no time zone-aware capture time to look up in the track"
        return replace(frame, pose=None, problems=(*frame.problems, reason))
    try:
        pose = track.pose_at(frame.captured_at, mount, sigma_xy_m=sigma_xy_m)
    except InputError as exc:
        return replace(frame, pose=None, problems=(*frame.problems, f"pose: {exc.reason}"))
    return replace(frame, pose=pose)


def _ingest_video(
    entry: ManifestEntry,
    store: ObjectStore,
    catalog: Catalog,
    report: IngestReport,
    workdir: Path,
    track: Track | None,
    camera: VehicleCamera,
    sigma_xy_m: float,
) -> None:
    """Samples a video by distance along the track; each sample is stored and catalogued."""
    import cv2

    from xunjian.inspect.video import sample_video

    if track is None:
        report.failures.append((entry.key, f"{entry.name}: video without a GPS track"))
        return
    stem = Path(entry.name).with_suffix("").as_posix()
    try:
        with fetched(store, entry, workdir) as path:
            for index, (moment, bgr) in enumerate(
                sample_video(path, track, every_m=camera.every_m)
            ):
                ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
                if not ok:
                    raise InputError("frame could not be encoded", source=entry.name)
                key = f"frames/{report.batch_id}/{stem}/{index:06d}.jpg"
                data = jpeg.tobytes()
                store.put_bytes(key, data, content_type="image/jpeg")
                frame = _video_frame(report, key, data, bgr.shape, moment, camera)
                frame = _pose_from_track(frame, track, camera.mount, sigma_xy_m)
                _record(catalog, report, report.batch_id, frame)
    except (InputError, StorageError) as exc:
        report.failures.append((entry.key, str(exc)))


def _video_frame(
    report: IngestReport,
    key: str,
    data: bytes,
    shape: tuple[int, ...],
    moment: datetime,
    camera: VehicleCamera,
) -> Frame:
    import math

    height, width = int(shape[0]), int(shape[1])
    focal = (width / 2) / math.tan(math.radians(camera.hfov_deg) / 2)
    intrinsics = CameraIntrinsics(
        width, height, focal, focal, width / 2, height / 2, "vehicle_profile"
    )
    return Frame(
        batch_id=report.batch_id,
        key=key,
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        platform=Platform.VEHICLE,
        captured_at=moment,
        intrinsics=intrinsics,
    )
