"""The batch pipeline: ingest → detect → georef → fuse → evidence → verify → outputs.

The runner is in-process by default. Every stage is idempotent on (batch, image, model
version): re-running a batch stores no second observation, issue or evidence object, and the
detect stage — the expensive one — is resumable: what each detector version found in each
frame is kept in the detection ledger (``storage.detections``), so a re-run, or a run after a
crash, decodes and detects only the frames (and detectors) not yet done at the current model
versions and reads the rest back.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xunjian.core.records import CameraPose, Detection, Frame, Observation, Platform
from xunjian.core.taxonomy import Detector as DetectorName
from xunjian.core.verify import VerificationDecision, verify_batch
from xunjian.errors import (
    DetectorError,
    GeoreferenceError,
    InputError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from xunjian.inspect.detect import DetectOptions, detect_frame
from xunjian.inspect.evidence import evidence_key, store_evidence
from xunjian.inspect.footprints import frames_geojson
from xunjian.inspect.georef import georeference
from xunjian.inspect.ingest import IngestReport, ProgressCallback, ingest_batch
from xunjian.inspect.report import render_report
from xunjian.inspect.resilience import ride_out
from xunjian.inspect.upload import ProgressCallback as UploadProgress
from xunjian.inspect.upload import UploadReport, upload_batch
from xunjian.models.detector import Detector, DetectorSet
from xunjian.settings import Settings
from xunjian.storage.catalog import Catalog
from xunjian.storage.detections import DetectionLedger
from xunjian.storage.issues import BatchFusion, BBox, IssueStore
from xunjian.storage.objectstore import ObjectStore, open_store

log = logging.getLogger(__name__)


DetectRunner = Callable[["Services", str, list[Frame], DetectorSet], dict[str, Any]]
"""Fills the detection ledger of (services, batch id, frames, detectors) somewhere else."""

StageCallback = Callable[[str], None]
"""Called with a stage's name (``ingest``, ``refine``, ``detect``, …) as the stage starts."""


@dataclass
class Services:
    """The configured components one process works with."""

    settings: Settings
    store: ObjectStore
    catalog: Catalog
    issues: IssueStore
    detections: DetectionLedger

    @classmethod
    def open(cls, settings: Settings) -> Services:
        catalog = Catalog.from_settings(settings)  # migrates the whole schema once
        issues = IssueStore(settings.db_url, migrate=False, engine=catalog.engine)
        ledger = DetectionLedger(settings.db_url, migrate=False, engine=catalog.engine)
        return cls(settings, open_store(settings), catalog, issues, ledger)

    def close(self) -> None:
        self.detections.close()
        self.issues.close()
        self.catalog.close()  # owns the shared engine


@dataclass
class BatchResult:
    """What processing a batch did, stage by stage; nothing is dropped without a reason."""

    ingest: IngestReport
    detectors: dict[str, str] = field(default_factory=dict)  # name → model version
    missing_detectors: list[str] = field(default_factory=list)
    detections: int = 0
    frames_detected: int = 0  # frames decoded and run through at least one detector
    frames_reused: int = 0  # frames whose detections all came from the ledger
    observations: list[Observation] = field(default_factory=list)
    not_placed: list[tuple[str, str]] = field(default_factory=list)  # (frame key, reason)
    frame_errors: list[tuple[str, str]] = field(default_factory=list)
    refinement: list[tuple[str, str, str]] = field(default_factory=list)  # (frame, what, why)
    refinement_reused: bool = False  # the poses came from an earlier run's stored refinement
    runner: dict[str, Any] = field(default_factory=dict)  # what a detect runner reported
    timings: dict[str, float] = field(default_factory=dict)  # stage → wall seconds
    fusion: BatchFusion | None = None
    verification: list[VerificationDecision] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def batch_id(self) -> str:
        return self.ingest.batch_id


def load_available_detectors(
    names: list[str] | None = None, *, threads: int | None = None
) -> tuple[DetectorSet, list[str]]:
    """The shipped models that exist, and the names of those that do not (with no model,
    that detector's checks cannot run — said, not hidden)."""
    from xunjian.models.registry import load_default_set

    loaded: list[Detector] = []
    missing: list[str] = []
    for name in names or [d.value for d in DetectorName]:
        try:
            loaded.extend(load_default_set([name], threads=threads))
        except DetectorError as exc:
            log.warning("%s", exc)
            missing.append(name)
    if not loaded:
        raise DetectorError("no detector model is available: " + ", ".join(missing))
    return DetectorSet(loaded), missing


def detect_and_place(
    services: Services,
    frames: list[Frame],
    detectors: DetectorSet,
    result: BatchResult,
    options: DetectOptions,
    progress: ProgressCallback | None,
) -> None:
    """Runs every detector over every frame once and places what they find on the ground.

    Frames (and detectors) the ledger already holds at the current model versions are read
    back instead of detected again.
    """
    versions = {d.name: d.version for d in detectors}
    ledger = services.detections.load_batch(result.batch_id, versions)
    for done, frame in enumerate(frames, start=1):
        held = ledger.get(frame.key)
        found = list(held.detections) if held else []
        todo = [d for d in detectors if held is None or d.name not in held.done]
        if todo:
            try:
                fresh = detect_frame(
                    DetectorSet(todo),
                    services.store.get_bytes(frame.key),
                    frame=frame if frame.georeferenceable else None,
                    frame_key=frame.key,
                    source=frame.key,
                    options=options,
                ).detections
            except StorageUnavailableError:
                raise  # the store is down, the frame is fine: the batch waits (ride_out)
            except (InputError, StorageError) as exc:
                result.frame_errors.append((frame.key, str(exc)))
                continue
            services.detections.save(
                result.batch_id, frame.key, {d.name: d.version for d in todo}, fresh
            )
            found.extend(fresh)
            result.frames_detected += 1
        else:
            result.frames_reused += 1
        result.detections += len(found)
        if found:
            _place(frame, found, result)
        if progress:
            progress(done, len(frames), frame.key.rsplit("/", 1)[-1])


def _place(frame: Frame, detections: list[Detection], result: BatchResult) -> None:
    try:
        observations, rejected = georeference(frame, detections)
    except GeoreferenceError as exc:
        result.not_placed.extend((frame.key, str(exc)) for _ in detections)
        return
    result.observations.extend(observations)
    result.not_placed.extend(
        (frame.key, f"{d.class_name} {tuple(round(v) for v in d.bbox_xyxy)}: {why}")
        for d, why in rejected
    )


def process_batch(
    services: Services,
    batch_id: str,
    *,
    detectors: DetectorSet | None = None,
    options: DetectOptions | None = None,
    out_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    detect_progress: ProgressCallback | None = None,
    detect_runner: DetectRunner | None = None,
    stage_progress: StageCallback | None = None,
) -> BatchResult:
    """Runs every stage over an uploaded batch and writes its outputs to ``out_dir``.

    ``stage_progress(name)`` is called as each stage starts, in order: ``ingest``, ``refine``,
    ``detect``, ``verify``, ``fuse``, ``evidence``, ``outputs`` (the names of
    ``result.timings``).

    ``detect_runner`` (e.g. ``inspect.workers.CeleryDetectRunner``) fills the detection ledger
    elsewhere first; the detect stage here then reads every frame back from the ledger.

    When the object store or the database is unavailable, the batch pauses and runs again
    (``inspect.resilience.ride_out``) for up to ``settings.outage_max_wait_s``.
    """
    return ride_out(
        lambda: _process_once(
            services,
            batch_id,
            detectors=detectors,
            options=options,
            out_dir=out_dir,
            progress=progress,
            detect_progress=detect_progress,
            detect_runner=detect_runner,
            stage_progress=stage_progress,
        ),
        what=f"batch {batch_id}",
        max_wait_s=services.settings.outage_max_wait_s,
    )


def _process_once(
    services: Services,
    batch_id: str,
    *,
    detectors: DetectorSet | None,
    options: DetectOptions | None,
    out_dir: Path | None,
    progress: ProgressCallback | None,
    detect_progress: ProgressCallback | None,
    detect_runner: DetectRunner | None,
    stage_progress: StageCallback | None,
) -> BatchResult:
    settings = services.settings
    timings: dict[str, float] = {}
    stage = _Stopwatch(timings, stage_progress)
    with stage("ingest"):
        ingest = ingest_batch(
            batch_id,
            services.store,
            services.catalog,
            max_pixels=settings.max_image_pixels,
            gps_sigma_m=settings.gps_sigma_m,
            camera_timezone=settings.camera_timezone,
            progress=progress,
            finish=False,
        )
    result = BatchResult(ingest, timings=timings)
    missing: list[str] = []
    if detectors is None:
        detectors, missing = load_available_detectors()
    result.detectors = {d.name: d.version for d in detectors}
    result.missing_detectors = missing
    opts = options or DetectOptions(
        max_pixels=settings.max_image_pixels, target_gsd_m=settings.detect_gsd_m
    )
    with stage("refine"):
        refined = refine_poses(services, ingest.frames, result) if settings.refine_poses else None
    frames = refined or ingest.frames
    if detect_runner is None and settings.runner == "celery":
        from xunjian.inspect.workers import CeleryDetectRunner

        detect_runner = CeleryDetectRunner.from_settings(settings)
    with stage("detect"):
        if detect_runner is not None:
            result.runner = detect_runner(services, batch_id, frames, detectors)
        detect_and_place(services, frames, detectors, result, opts, detect_progress)
    for key, reason in result.frame_errors:  # the batch's status lists them with ingest's
        services.catalog.record_failure(batch_id, key, reason)

    # Verification looks at what was known before this batch, so it runs before fusion; only
    # issues near the batch's footprints can be judged, so only those are loaded.
    with stage("verify"):
        area = batch_bbox(frames)
        nearby = services.issues.issues(bbox=area) if area else []
        earlier = [i for i in nearby if batch_id not in i.batch_ids]
        result.verification = verify_batch(earlier, batch_id, frames, result.observations)
        services.issues.record_verifications(result.verification)
    with stage("fuse"):
        result.fusion = services.issues.record_batch(batch_id, result.observations)
    with stage("evidence"):
        changed = {*result.fusion.new, *result.fusion.updated}
        touched = [i for i in services.issues.issues(batch_id=batch_id) if i.id in changed]
        result.evidence = store_evidence(
            services.store, touched, max_pixels=settings.max_image_pixels
        )
    with stage("outputs"):
        write_outputs(services, result, out_dir or settings.data_dir / "batches" / batch_id)
    services.catalog.set_batch_status(batch_id, "processed")
    return result


class _Stopwatch:
    """``with stage("name"):`` adds the block's wall time to ``timings["name_s"]`` and tells
    ``on_start(name)`` first."""

    def __init__(self, timings: dict[str, float], on_start: StageCallback | None = None) -> None:
        self.timings = timings
        self.on_start = on_start

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.on_start is not None:
            self.on_start(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            key = f"{name}_s"
            elapsed = time.perf_counter() - started
            self.timings[key] = round(self.timings.get(key, 0.0) + elapsed, 3)


REFINE_WORK_PX = 1000
REFINE_FORMAT = 1  # bump when refine_flight's answers change: stored refinements then expire


def refinement_key(batch_id: str) -> str:
    """Where a batch's refined poses are kept, so a re-run (after a crash, or with a new model)
    does not decode and match every frame again."""
    return f"refined/{batch_id}/poses.json"


def _refine_input(drone: list[Frame]) -> str:
    """A digest of everything refinement reads: the frames' bytes, poses and intrinsics."""
    import hashlib
    from dataclasses import asdict

    digest = hashlib.sha256(f"refine/{REFINE_FORMAT}/{REFINE_WORK_PX}".encode())
    for f in drone:
        seen = (f.key, f.sha256, asdict(f.pose) if f.pose else None,
                asdict(f.intrinsics) if f.intrinsics else None)  # fmt: skip
        digest.update(json.dumps(seen, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _stored_refinement(
    services: Services, batch_id: str, digest: str
) -> tuple[dict[str, CameraPose], list[tuple[str, str, str]]] | None:
    try:
        raw = json.loads(services.store.get_bytes(refinement_key(batch_id)))
        if raw.get("input") != digest:
            return None
        poses = {key: CameraPose(**pose) for key, pose in raw["poses"].items()}
        corrections = [(str(k), str(w), str(y)) for k, w, y in raw["corrections"]]
    except ObjectNotFoundError:
        return None
    except (ValueError, TypeError, KeyError, AttributeError) as error:  # written by someone else
        log.warning("%s: ignoring an unreadable stored refinement: %s", batch_id, error)
        return None
    return poses, corrections


def refine_poses(services: Services, frames: list[Frame], result: BatchResult) -> list[Frame]:
    """The batch's frames with drone poses checked against their overlap (``inspect.refine``).

    Only drone frames take part (vehicle frames barely overlap on the ground); each is decoded
    once at ≤ 1000 px for it. Corrections go to ``result.refinement``; a frame that cannot be
    read is left as it is (the detect stage reports it). The refined poses are stored
    (:func:`refinement_key`) with a digest of their inputs; a re-run over the same frames reads
    them back instead (``result.refinement_reused``).
    """
    from dataclasses import asdict, replace

    from xunjian.inspect.decode import decode_image
    from xunjian.inspect.refine import refine_flight

    drone = [f for f in frames if f.platform is Platform.DRONE and f.georeferenceable]
    if len(drone) < 2:
        return frames
    batch_id = drone[0].batch_id
    digest = _refine_input(drone)
    stored = _stored_refinement(services, batch_id, digest)
    if stored is not None:
        poses, result.refinement = stored
        result.refinement_reused = True
        return [replace(f, pose=poses[f.key]) if f.key in poses else f for f in frames]
    max_pixels = services.settings.max_image_pixels
    unreadable: list[str] = []

    def pixels(frame: Frame) -> Any:
        scale = min(1.0, REFINE_WORK_PX / max(frame.width, frame.height, 1))
        try:
            data = services.store.get_bytes(frame.key)
            return decode_image(
                data, source=frame.key, working_scale=scale, max_pixels=max_pixels
            ).pixels
        except (InputError, StorageError):
            import numpy as np

            unreadable.append(frame.key)
            return np.zeros((8, 8), dtype=np.uint8)  # no features: the frame stays unchecked

    report = refine_flight(drone, pixels, work_px=REFINE_WORK_PX)
    result.refinement = [c for c in report.corrections if c[1] != "unchecked"]
    refined = {f.key: f for f in report.frames}
    if not unreadable:  # a frame that could not be read this time may be readable next time
        body = {
            "format": REFINE_FORMAT,
            "input": digest,
            "poses": {k: asdict(f.pose) for k, f in refined.items() if f.pose is not None},
            "corrections": [list(c) for c in result.refinement],
        }
        try:
            services.store.put_bytes(
                refinement_key(batch_id),
                json.dumps(body, ensure_ascii=False).encode("utf-8"),
                content_type="application/json",
            )
        except StorageUnavailableError:
            raise  # the store is down: the batch waits (ride_out)
        except StorageError as error:  # only a saving for next time: the batch goes on
            log.warning("%s: refined poses not stored: %s", batch_id, error)
    return [refined.get(f.key, f) for f in frames]


def batch_bbox(frames: list[Frame], margin_deg: float = 0.0005) -> BBox | None:
    """(min lon, min lat, max lon, max lat) around every frame's footprint, plus ~50 m."""
    lats: list[float] = []
    lons: list[float] = []
    for feature in frames_geojson(frames)["features"]:
        geometry = feature["geometry"]
        if geometry is None:
            continue
        ring = (
            geometry["coordinates"][0]
            if geometry["type"] == "Polygon"
            else [geometry["coordinates"]]
        )
        lons.extend(float(p[0]) for p in ring)
        lats.extend(float(p[1]) for p in ring)
    if not lats:
        return None
    return (
        min(lons) - margin_deg,
        min(lats) - margin_deg,
        max(lons) + margin_deg,
        max(lats) + margin_deg,
    )


def write_outputs(services: Services, result: BatchResult, out_dir: Path) -> None:
    """``issues.geojson``, ``frames.geojson``, ``report.html`` and ``summary.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    issues = services.issues.issues(batch_id=result.batch_id)
    footprints = frames_geojson(result.ingest.frames)
    (out_dir / "issues.geojson").write_text(
        json.dumps(services.issues.issues_geojson(batch_id=result.batch_id), ensure_ascii=False)
    )
    (out_dir / "frames.geojson").write_text(json.dumps(footprints, ensure_ascii=False))
    evidence: dict[str, bytes] = {}
    for issue in issues:
        key = evidence_key(issue.id)
        if services.store.exists(key):
            evidence[issue.id] = services.store.get_bytes(key)
    summary = batch_summary(result)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    page = render_report(f"xunjian 巡检 · {result.batch_id}", footprints, issues, evidence, summary)
    (out_dir / "report.html").write_text(page, encoding="utf-8")
    result.outputs = {
        name: str(out_dir / name)
        for name in ("issues.geojson", "frames.geojson", "report.html", "summary.json")
    }


def batch_summary(result: BatchResult) -> dict[str, Any]:
    fusion = result.fusion
    outcomes: dict[str, int] = {}
    for decision in result.verification:
        outcomes[str(decision.outcome)] = outcomes.get(str(decision.outcome), 0) + 1
    return {
        "batch_id": result.batch_id,
        "platform": result.ingest.platform,
        "frames": len(result.ingest.frames),
        "frames_with_pose": result.ingest.georeferenceable,
        "frames_failed": len(result.ingest.failures) + len(result.frame_errors),
        "detectors": result.detectors,
        "detectors_missing": result.missing_detectors,
        "detections": result.detections,
        "frames_detected": result.frames_detected,
        "frames_reused": result.frames_reused,
        "observations": len(result.observations),
        "detections_not_placed": len(result.not_placed),
        "stage_seconds": result.timings,
        "poses_corrected": [{"frame": k, "what": w, "why": y} for k, w, y in result.refinement],
        "poses_reused": result.refinement_reused,
        "issues_new": len(fusion.new) if fusion else 0,
        "issues_updated": len(fusion.updated) if fusion else 0,
        "verification": outcomes,
    }


def run_folder(
    services: Services,
    folder: Path,
    *,
    batch_id: str | None = None,
    platform: str | None = None,
    detectors: DetectorSet | None = None,
    options: DetectOptions | None = None,
    out_dir: Path | None = None,
    upload_progress: UploadProgress | None = None,
    progress: ProgressCallback | None = None,
    detect_progress: ProgressCallback | None = None,
) -> tuple[UploadReport, BatchResult]:
    """Uploads a folder as a batch, then processes it."""
    upload = upload_batch(
        folder, services.store, batch_id=batch_id, platform=platform, progress=upload_progress
    )
    result = process_batch(
        services,
        upload.batch_id,
        detectors=detectors,
        options=options,
        out_dir=out_dir,
        progress=progress,
        detect_progress=detect_progress,
    )
    return upload, result
