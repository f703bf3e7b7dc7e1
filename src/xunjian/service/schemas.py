"""Request and response bodies of the HTTP API: ``XxxCreate`` in, ``XxxPublic`` out.

The literals of class names and categories repeat the taxonomy so that the OpenAPI schema
lists them; a unit test keeps them equal to ``core.taxonomy``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xunjian.core.feedback import FeedbackKind
from xunjian.core.issues import IssueStatus

ClassName = Literal[
    "longitudinal_crack",
    "transverse_crack",
    "alligator_crack",
    "pothole",
    "garbage_pile",
    "construction_waste",
    "spoil_truck",
    "spoil_truck_uncovered",
]
Category = Literal["road_damage", "illegal_dumping", "spoil_truck"]
Platform = Literal["drone", "vehicle"]
BATCH_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
Meta = dict[str, str | int | float | bool | None]


class ErrorPublic(BaseModel):
    detail: Any = Field(description="What went wrong: a message, or a list of field errors.")


# -- batches --------------------------------------------------------------------------------


class BatchCreate(BaseModel):
    platform: Platform = "drone"
    batch_id: str | None = Field(
        default=None,
        pattern=BATCH_ID_PATTERN,
        description="Default: <platform>-<UTC time>-<random>.",
    )
    meta: Meta = Field(default_factory=dict, max_length=64, description="Pilot, route, …")


class ProgressPublic(BaseModel):
    state: str = Field(
        description="queued, ingesting, refining, detecting, fusing, processed or failed"
    )
    ingest_done: int
    ingest_total: int
    detect_done: int
    detect_total: int
    current: str
    error: str | None
    summary: dict[str, Any] | None
    queued_at: float
    finished_at: float | None


class FrameFailurePublic(BaseModel):
    key: str
    reason: str


class BatchPublic(BaseModel):
    batch_id: str
    platform: str
    status: str = Field(description="uploading, uploaded, processing, processed or failed")
    created_at: datetime
    completed_at: datetime | None
    frame_count: int
    failed_count: int
    meta: dict[str, Any]
    progress: ProgressPublic | None = None


class BatchStatusPublic(BatchPublic):
    failures: list[FrameFailurePublic] = Field(default_factory=list)


class FileToUpload(BaseModel):
    name: str = Field(min_length=1, max_length=900, description="Path inside the batch.")
    size: int = Field(ge=0, description="Bytes; checked against the upload limit.")
    multipart: bool | None = Field(
        default=None,
        description="Force (true) or refuse (false) a multipart upload; default: by size.",
    )


class UploadsCreate(BaseModel):
    files: list[FileToUpload] = Field(min_length=1, max_length=1000)
    expires_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class PartTarget(BaseModel):
    part_number: int
    url: str


class MultipartTarget(BaseModel):
    upload_id: str
    part_size: int
    parts: list[PartTarget]


class UploadTarget(BaseModel):
    name: str
    key: str
    method: Literal["PUT"] = "PUT"
    url: str | None = Field(default=None, description="Single PUT of the whole file.")
    multipart: MultipartTarget | None = Field(
        default=None, description="PUT each part to its URL, then complete with the ETags."
    )
    expires_at: datetime


class UploadsPublic(BaseModel):
    batch_id: str
    uploads: list[UploadTarget]


class PartDone(BaseModel):
    part_number: int = Field(ge=1, le=10_000)
    etag: str = Field(min_length=1, max_length=256)


class MultipartComplete(BaseModel):
    name: str = Field(min_length=1, max_length=900)
    upload_id: str = Field(min_length=1, max_length=1024)
    parts: list[PartDone] = Field(min_length=1, max_length=10_000)


class ObjectPublic(BaseModel):
    key: str
    size: int
    sha256: str | None
    etag: str


class ManifestFile(BaseModel):
    name: str = Field(min_length=1, max_length=900)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256_PATTERN)
    captured_at: str | None = Field(default=None, max_length=64)


class RejectedFile(BaseModel):
    name: str = Field(max_length=900)
    reason: str = Field(max_length=1000)


class BatchComplete(BaseModel):
    """The batch's manifest: every file uploaded, with its size and SHA-256."""

    files: list[ManifestFile] = Field(min_length=1)
    rejected: list[RejectedFile] = Field(default_factory=list)
    meta: Meta = Field(default_factory=dict, max_length=64)


class BatchQueuedPublic(BaseModel):
    batch_id: str
    manifest_key: str
    files: int
    queued: bool = Field(description="False: it was already queued or running.")
    status_url: str
    events_url: str


class StoreEventsPublic(BaseModel):
    accepted: list[str] = Field(description="Batches whose manifest arrived and were queued.")
    ignored: int = Field(description="Records that were not a batch manifest of this bucket.")
    errors: list[str] = Field(default_factory=list)


# -- issues ---------------------------------------------------------------------------------


class PointGeometry(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: list[float]


class IssueProperties(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str
    class_name: str = Field(alias="class")
    category: str
    status: IssueStatus
    confidence: float
    evidence_url: str


class IssueFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: IssueProperties


class IssueCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[IssueFeature]
    limit: int
    offset: int
    numberReturned: int  # noqa: N815 (the OGC API Features name)
    next: str | None = Field(description="The next page, when there may be one.")


class IssueEventPublic(BaseModel):
    kind: str
    at: datetime
    source: str
    from_status: str | None
    to_status: str | None
    note: str
    data: dict[str, Any]


class FeedbackCreate(BaseModel):
    kind: FeedbackKind
    note: str = Field(default="", max_length=2000)
    class_name: ClassName | None = Field(default=None, description="For wrong_class.")
    lat: float | None = Field(default=None, ge=-90, le=90, description="For wrong_place.")
    lon: float | None = Field(default=None, ge=-180, le=180, description="For wrong_place.")


class FeedbackPublic(BaseModel):
    id: int
    issue_id: str
    kind: FeedbackKind
    source: str
    author: str
    note: str
    class_name: str | None
    lat: float | None
    lon: float | None
    created_at: datetime | None
    issue_status: IssueStatus
