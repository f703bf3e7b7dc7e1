"""Batches: create, presigned uploads, complete with the manifest, status, progress events.

Upload routes (the direct file PUT) live in :mod:`.objects`, whose router carries the larger
body limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from xunjian.errors import InputError, ObjectNotFoundError
from xunjian.inspect.footprints import frames_geojson
from xunjian.inspect.manifest import manifest_key
from xunjian.service import uploads
from xunjian.service.deps import CatalogDep, Reader, State, Store, Uploader
from xunjian.service.schemas import (
    BATCH_ID_PATTERN,
    BatchComplete,
    BatchCreate,
    BatchPublic,
    BatchQueuedPublic,
    BatchStatusPublic,
    FrameFailurePublic,
    MultipartComplete,
    MultipartTarget,
    ObjectPublic,
    PartTarget,
    ProgressPublic,
    StoreEventsPublic,
    UploadsCreate,
    UploadsPublic,
    UploadTarget,
)
from xunjian.service.state import ServiceState
from xunjian.storage.catalog import BatchInfo
from xunjian.storage.objectstore import ObjectStore

router = APIRouter(prefix="/api/v1", tags=["batches"])
BatchId = Annotated[str, Path(pattern=BATCH_ID_PATTERN, description="The batch id.")]
SSE_POLL_S = 0.25
SSE_KEEPALIVE_S = 15.0


def batch_public(state: ServiceState, info: BatchInfo) -> dict[str, Any]:
    progress = state.board.get(info.batch_id)
    return {
        "batch_id": info.batch_id,
        "platform": info.platform,
        "status": info.status,
        "created_at": info.created_at,
        "completed_at": info.completed_at,
        "frame_count": info.frame_count,
        "failed_count": info.failed_count,
        "meta": info.meta,
        "progress": ProgressPublic(**progress.public()) if progress else None,
    }


def known_batch(state: ServiceState, batch_id: str) -> BatchInfo:
    info = state.services.catalog.batch(batch_id)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such batch: {batch_id!r}")
    return info


@router.post("/batches", status_code=status.HTTP_201_CREATED, response_model=BatchPublic)
def create_batch(key: Uploader, state: State, body: BatchCreate) -> dict[str, Any]:
    """Create a batch to upload into (status ``uploading``)."""
    batch_id = body.batch_id or uploads.new_batch_id(body.platform)
    existing = state.services.catalog.batch(batch_id)
    if existing is not None and existing.status != "uploading":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"batch {batch_id!r} exists and is {existing.status}; choose another id",
        )
    meta = {**body.meta, "created_by": key.name}
    info = state.services.catalog.upsert_batch(
        batch_id, body.platform, status="uploading", meta=meta
    )
    return batch_public(state, info)


@router.get("/batches", response_model=list[BatchPublic])
def list_batches(
    key: Reader,
    state: State,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Batches, newest first."""
    batches = state.services.catalog.batches()[::-1][:limit]
    return [batch_public(state, info) for info in batches]


@router.get("/batches/{batch_id}", response_model=BatchStatusPublic)
def get_batch(key: Reader, state: State, batch_id: BatchId) -> dict[str, Any]:
    """The batch with its processing progress and every file that failed, with the reason."""
    info = known_batch(state, batch_id)
    failures = [
        FrameFailurePublic(key=f.key, reason=f.reason)
        for f in state.services.catalog.failures(batch_id)
    ]
    return {**batch_public(state, info), "failures": failures}


@router.post("/batches/{batch_id}/uploads", response_model=UploadsPublic)
def presign_uploads(
    key: Uploader, state: State, store: Store, batch_id: BatchId, body: UploadsCreate
) -> UploadsPublic:
    """Presigned PUT URLs straight to the object store, one per file (or per part)."""
    batch = known_batch(state, batch_id)
    if batch.status != "uploading":
        raise HTTPException(status.HTTP_409_CONFLICT, f"batch {batch_id!r} is {batch.status}")
    limit = state.settings.max_upload_bytes
    expires = timedelta(seconds=body.expires_s)
    expires_at = datetime.now(UTC) + expires
    targets: list[UploadTarget] = []
    for item in body.files:
        object_key = uploads.file_key(batch_id, item.name)
        if item.size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                f"{item.name}: expected at most {limit} bytes (max_upload_bytes), got {item.size}",
            )
        multipart = item.multipart
        if multipart is None:
            multipart = item.size > uploads.MULTIPART_THRESHOLD and uploads.supports_multipart(
                store
            )
        if multipart:
            started = uploads.start_multipart(store, object_key, item.size, expires)
            parts = [PartTarget(part_number=n, url=u) for n, u in enumerate(started.urls, 1)]
            target = MultipartTarget(
                upload_id=started.upload_id, part_size=started.part_size, parts=parts
            )
            targets.append(
                UploadTarget(
                    name=item.name, key=object_key, multipart=target, expires_at=expires_at
                )
            )
        else:
            url = store.presigned_put_url(object_key, expires)
            targets.append(
                UploadTarget(name=item.name, key=object_key, url=url, expires_at=expires_at)
            )
    return UploadsPublic(batch_id=batch_id, uploads=targets)


@router.post("/batches/{batch_id}/uploads/complete-multipart", response_model=ObjectPublic)
def complete_multipart(
    key: Uploader, state: State, store: Store, batch_id: BatchId, body: MultipartComplete
) -> ObjectPublic:
    """Assemble a multipart upload from its parts' ETags (S3 stores only)."""
    known_batch(state, batch_id)
    object_key = uploads.file_key(batch_id, body.name)
    parts = [(p.part_number, p.etag) for p in body.parts]
    info = uploads.complete_multipart(store, object_key, body.upload_id, parts)
    return ObjectPublic(key=info.key, size=info.size, sha256=info.sha256, etag=info.etag)


@router.post(
    "/batches/{batch_id}/complete",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchQueuedPublic,
)
def complete_batch(
    key: Uploader, state: State, store: Store, batch_id: BatchId, body: BatchComplete
) -> BatchQueuedPublic:
    """Write the batch's manifest (every file must be uploaded) and start processing."""
    batch = known_batch(state, batch_id)
    meta = {**batch.meta, **body.meta}
    manifest = uploads.build_manifest(
        batch_id,
        batch.platform,
        [f.model_dump() for f in body.files],
        [r.model_dump() for r in body.rejected],
        meta,
        max_files=state.settings.max_batch_files,
    )
    body_bytes = manifest.to_json_bytes()
    base = f"/api/v1/batches/{batch_id}"
    answer = BatchQueuedPublic(
        batch_id=batch_id,
        manifest_key=manifest_key(batch_id),
        files=len(manifest.files),
        queued=False,
        status_url=base,
        events_url=f"{base}/events",
    )
    if batch.status != "uploading":  # completed before: a retry is fine, a new manifest is not
        if batch.manifest_key and _stored(store, batch.manifest_key) == body_bytes:
            return answer
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"batch {batch_id!r} is complete ({batch.status})"
        )
    problems = uploads.check_uploaded(store, manifest, state.settings.max_upload_bytes)
    if problems:
        raise HTTPException(status.HTTP_409_CONFLICT, problems)
    store.put_bytes(manifest_key(batch_id), body_bytes, content_type="application/json")
    state.services.catalog.upsert_batch(
        batch_id, batch.platform, manifest_key=manifest_key(batch_id), status="uploaded"
    )
    answer.queued = state.enqueue(batch_id)
    return answer


def _stored(store: ObjectStore, key: str) -> bytes | None:
    try:
        return store.get_bytes(key)
    except ObjectNotFoundError:
        return None


@router.get(
    "/batches/{batch_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "progress events"}},
)
async def batch_events(key: Reader, state: State, batch_id: BatchId) -> StreamingResponse:
    """Server-sent events: ``progress`` whenever the batch moves on, then ``done``."""
    await run_in_threadpool(known_batch, state, batch_id)
    return StreamingResponse(
        _events(state, batch_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(state: ServiceState, batch_id: str) -> AsyncIterator[str]:
    seen = -1
    quiet = 0.0
    while True:
        progress = state.board.get(batch_id)
        if progress is None:  # not processed by this instance: the catalog's word is final
            info = await run_in_threadpool(state.services.catalog.batch, batch_id)
            data = {"state": info.status if info else "unknown", "batch_id": batch_id}
            yield _event("progress", data)
            yield _event("done", data)
            return
        if progress.version != seen:
            seen, quiet = progress.version, 0.0
            yield _event("progress", progress.public())
            if progress.finished:
                yield _event("done", progress.public())
                return
        await asyncio.sleep(SSE_POLL_S)
        quiet += SSE_POLL_S
        if quiet >= SSE_KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


@router.get("/batches/{batch_id}/footprints")
def batch_footprints(key: Reader, catalog: CatalogDep, batch_id: BatchId) -> JSONResponse:
    """The batch's frames as GeoJSON: each frame's ground footprint and camera pose."""
    if catalog.batch(batch_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such batch: {batch_id!r}")
    return JSONResponse(frames_geojson(catalog.frames(batch_id)), media_type="application/geo+json")


@router.post("/store-events", response_model=StoreEventsPublic)
async def store_events(key: Uploader, state: State, request: Request) -> StoreEventsPublic:
    """The object store's bucket notification (MinIO / S3 event JSON, e.g. a MinIO webhook
    target with this service's URL and an uploader key as its auth token). A batch whose
    ``raw/<batch>/manifest.json`` was created is catalogued and queued."""
    try:
        event = json.loads(await request.body())
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, 5000-digit numbers, depth
        raise InputError(f"not JSON: {exc}", source="store event") from None
    batches, ignored = uploads.manifest_batches(event, state.services.store.bucket)
    return await run_in_threadpool(_start_batches, state, batches, ignored)


def _start_batches(state: ServiceState, batches: list[str], ignored: int) -> StoreEventsPublic:
    from xunjian.inspect.upload import read_manifest

    accepted: list[str] = []
    errors: list[str] = []
    for batch_id in batches:
        progress = state.board.get(batch_id)
        if progress is not None and not progress.finished:
            accepted.append(batch_id)  # the API's own "complete" queued it already
            continue
        try:
            manifest = read_manifest(state.services.store, batch_id)
        except InputError as exc:
            errors.append(str(exc))
            continue
        info = state.services.catalog.batch(batch_id)
        if info is not None and info.status == "processed" and info.completed_at is not None:
            landed = state.services.store.stat(manifest_key(batch_id)).last_modified
            if landed <= info.completed_at:  # this manifest was processed already
                ignored += 1
                continue
        state.services.catalog.upsert_batch(
            batch_id, manifest.platform, manifest_key=manifest_key(batch_id), status="uploaded"
        )
        state.enqueue(batch_id)
        accepted.append(batch_id)
    return StoreEventsPublic(accepted=accepted, ignored=ignored, errors=errors)
