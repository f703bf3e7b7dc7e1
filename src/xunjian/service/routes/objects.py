"""Object bodies through the service: direct batch-file uploads and the local store's
presigned URLs.

The embedded local store has no server of its own, so its presigned URLs point here
(``/api/v1/objects/{key}?expires=…&signature=…``); the signature is the authorisation, no API
key is needed. With an S3 store these routes answer 404: its URLs point at the store itself.

Bodies are streamed to a spooled temporary file (memory up to 8 MiB, then disk) and then
into the store, so a large upload never sits in memory. These paths have the upload size
limit (``max_upload_bytes``) instead of the general request limit (see ``limits``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from xunjian.service import uploads
from xunjian.service.deps import State, Store, Uploader
from xunjian.service.routes.batches import BatchId, known_batch
from xunjian.service.schemas import ObjectPublic
from xunjian.storage.localstore import LocalStore
from xunjian.storage.objectstore import CHUNK_SIZE, ObjectStore

router = APIRouter(prefix="/api/v1", tags=["objects"])
SPOOL_MEMORY = 8 * 1024 * 1024
Signature = Annotated[str, Query(max_length=128, description="From a presigned URL.")]
Expires = Annotated[str, Query(max_length=20, description="From a presigned URL.")]
ObjectKey = Annotated[str, Path(description="Object key, e.g. raw/<batch>/DJI_0001.JPG")]


async def _spool(request: Request) -> IO[bytes]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115 (returned)
    try:
        async for chunk in request.stream():
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def _put(store: ObjectStore, key: str, spool: IO[bytes], content_type: str | None) -> ObjectPublic:
    with spool:
        info = store.put_stream(key, spool, content_type=content_type)  # type: ignore[arg-type]
    return ObjectPublic(key=info.key, size=info.size, sha256=info.sha256, etag=info.etag)


@router.put("/batches/{batch_id}/files/{name:path}", response_model=ObjectPublic)
async def upload_file(
    key: Uploader, state: State, store: Store, batch_id: BatchId, name: str, request: Request
) -> ObjectPublic:
    """Upload one batch file through the service (small batches; large files should use the
    presigned URLs). The body is the file's bytes."""
    batch = await run_in_threadpool(known_batch, state, batch_id)
    if batch.status != "uploading":
        raise HTTPException(status.HTTP_409_CONFLICT, f"batch {batch_id!r} is {batch.status}")
    object_key = uploads.file_key(batch_id, name)
    spool = await _spool(request)
    return await run_in_threadpool(_put, store, object_key, spool, None)


def _local(store: ObjectStore) -> LocalStore:
    if not isinstance(store, LocalStore):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "objects are served by the object store itself"
        )
    return store


def _verified(store: LocalStore, key: str, expires: str, signature: str, method: str) -> None:
    if not store.verify_presigned(key, expires, signature, method):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "presigned URL signature is invalid or has expired"
        )


@router.put("/objects/{key:path}", response_model=ObjectPublic)
async def put_object(
    store: Store, key: ObjectKey, expires: Expires, signature: Signature, request: Request
) -> ObjectPublic:
    """PUT to a presigned URL of the local store."""
    local = _local(store)
    _verified(local, key, expires, signature, "PUT")
    spool = await _spool(request)
    content_type = request.headers.get("content-type")
    return await run_in_threadpool(_put, local, key, spool, content_type)


@router.get(
    "/objects/{key:path}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the bytes"}},
)
async def get_object(
    store: Store, key: ObjectKey, expires: Expires, signature: Signature
) -> Response:
    """GET from a presigned URL of the local store."""
    local = _local(store)
    _verified(local, key, expires, signature, "GET")
    info = await run_in_threadpool(local.stat, key)
    return StreamingResponse(
        iterate_in_threadpool(stream_object(local, key)),
        media_type=info.content_type or "application/octet-stream",
        headers={"Content-Length": str(info.size), "ETag": f'"{info.etag}"'},
    )


def stream_object(store: ObjectStore, key: str) -> Iterator[bytes]:
    with store.open(key) as reader:
        while chunk := reader.read(CHUNK_SIZE):
            yield chunk
