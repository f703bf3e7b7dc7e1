"""Issues for the map and the case platform: GeoJSON with filters, one issue, evidence, feedback.

Filters: ``bbox`` (minLon,minLat,maxLon,maxLat), ``category`` (detector), ``class``,
``status``, ``since``/``until`` (last seen ≥ since, first seen ≤ until; a time without zone is
UTC), ``batch``, ``min_confidence``; ``limit``/``offset`` page through the issues most
recently seen first.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from xunjian.core.feedback import Feedback, FeedbackSource
from xunjian.core.issues import Issue, IssueStatus
from xunjian.core.taxonomy import BY_NAME, Detector, class_info, classes_of
from xunjian.errors import InputError, StorageError
from xunjian.inspect.evidence import evidence_key
from xunjian.service.deps import Issues, Reader, Reviewer, Store
from xunjian.service.routes.objects import stream_object
from xunjian.service.schemas import (
    BATCH_ID_PATTERN,
    Category,
    ClassName,
    FeedbackCreate,
    FeedbackPublic,
    IssueCollection,
    IssueEventPublic,
)
from xunjian.storage.issues import BBox, IssueStore, issue_feature
from xunjian.storage.objectstore import ObjectStore

router = APIRouter(prefix="/api/v1", tags=["issues"])
IssueId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="The issue id.")]
GEOJSON = "application/geo+json"
EVIDENCE_URL_EXPIRY = timedelta(hours=1)


def parse_bbox(text: str | None) -> BBox | None:
    """``minLon,minLat,maxLon,maxLat`` → a tuple; InputError naming what is wrong."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError(f"expected four numbers minLon,minLat,maxLon,maxLat, got {text!r}",
                         source="bbox")  # fmt: skip
    lon0, lat0, lon1, lat1 = values
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise InputError(
            f"expected -180 ≤ minLon ≤ maxLon ≤ 180 and -90 ≤ minLat ≤ maxLat ≤ 90, got {text!r}",
            source="bbox",
        )
    return (lon0, lat0, lon1, lat1)


def as_utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise InputError(
            f"expected a time within years 1–9999, got {moment!r}", source=name
        ) from None


def wanted_classes(categories: list[str] | None, classes: list[str] | None) -> list[str] | None:
    """The class names both filters allow (None: no class filter)."""
    if categories is None and classes is None:
        return None
    allowed = set(BY_NAME)
    if categories is not None:
        allowed &= {name for c in categories for name in classes_of(Detector(c))}
    if classes is not None:
        allowed &= set(classes)
    return sorted(allowed)


def evidence_url(issue_id: str) -> str:
    return f"/api/v1/issues/{issue_id}/evidence"


def feature(issue: Issue) -> dict[str, Any]:
    out = issue_feature(issue)
    out["properties"]["category"] = str(class_info(issue.class_name).detector)
    out["properties"]["evidence_url"] = evidence_url(issue.id)
    return out


@router.get(
    "/issues",
    response_class=JSONResponse,
    responses={200: {"model": IssueCollection, "content": {GEOJSON: {}}}},
)
def list_issues(
    key: Reader,
    issues: Issues,
    request: Request,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat")
    ] = None,
    category: Annotated[list[Category] | None, Query()] = None,
    class_name: Annotated[list[ClassName] | None, Query(alias="class")] = None,
    status_: Annotated[list[IssueStatus] | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="last seen at or after")] = None,
    until: Annotated[datetime | None, Query(description="first seen at or before")] = None,
    batch: Annotated[str | None, Query(pattern=BATCH_ID_PATTERN)] = None,
    min_confidence: Annotated[float | None, Query(ge=0, le=1, allow_inf_nan=False)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """Issues as a GeoJSON FeatureCollection, most recently seen first."""
    area = parse_bbox(bbox)
    names = wanted_classes(
        list(category) if category else None, list(class_name) if class_name else None
    )
    page: list[Issue] = []
    if names != []:
        filters: dict[str, Any] = {
            "bbox": area,
            "class_name": names,
            "status": [s.value for s in status_] if status_ else None,
            "batch_id": batch,
            "seen_since": as_utc(since, "since"),
            "seen_until": as_utc(until, "until"),
        }
        page = _page(issues, filters, min_confidence, limit, offset)
    more = len(page) > limit
    page = page[:limit]
    next_url = None
    if more:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "offset"]
        next_url = f"/api/v1/issues?{urlencode([*query, ('offset', str(offset + limit))])}"
    body = {
        "type": "FeatureCollection",
        "features": [feature(i) for i in page],
        "limit": limit,
        "offset": offset,
        "numberReturned": len(page),
        "next": next_url,
    }
    return JSONResponse(body, media_type=GEOJSON)


def _page(
    issues: IssueStore,
    filters: dict[str, Any],
    min_confidence: float | None,
    limit: int,
    offset: int,
) -> list[Issue]:
    """Up to ``limit + 1`` issues from ``offset`` (one more tells there is a next page);
    filters, order and page all in SQL."""
    return issues.issues(**filters, min_confidence=min_confidence, limit=limit + 1, offset=offset)


def _known(issues: IssueStore, issue_id: str) -> Issue:
    issue = issues.issue(issue_id)
    if issue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such issue: {issue_id!r}")
    return issue


@router.get(
    "/issues/{issue_id}",
    response_class=JSONResponse,
    responses={200: {"content": {GEOJSON: {}}, "description": "the issue as a Feature"}},
)
def get_issue(key: Reader, issues: Issues, store: Store, issue_id: IssueId) -> JSONResponse:
    """One issue with every observation, its history, the feedback on it and evidence URLs."""
    issue = _known(issues, issue_id)
    out = feature(issue)
    props = out["properties"]
    props["evidence_presigned_url"] = _presigned_evidence(store, issue.id)
    props["observations"] = [_observation(o) for o in issue.observations]
    props["history"] = [
        IssueEventPublic(
            kind=str(e.kind), at=e.at, source=e.source, from_status=e.from_status,
            to_status=e.to_status, note=e.note, data=e.data,
        ).model_dump(mode="json")
        for e in issues.history(issue.id)
    ]  # fmt: skip
    props["feedback"] = [
        _feedback_public(f, issue.status).model_dump(mode="json")
        for f in issues.feedback(issue_id=issue.id)
    ]
    return JSONResponse(out, media_type=GEOJSON)


def _presigned_evidence(store: ObjectStore, issue_id: str) -> str | None:
    key = evidence_key(issue_id)
    try:
        return store.presigned_get_url(key, EVIDENCE_URL_EXPIRY) if store.exists(key) else None
    except StorageError:
        return None


def _observation(o: Any) -> dict[str, Any]:
    d = o.detection
    return {
        "batch_id": o.batch_id,
        "frame_key": o.frame_key,
        "detector": d.detector,
        "model_version": d.model_version,
        "class": d.class_name,
        "confidence": round(float(d.confidence), 4),
        "bbox": [round(float(v), 2) for v in d.bbox_xyxy],
        "lat": o.lat,
        "lon": o.lon,
        "sigma_m": round(float(o.sigma_m), 3),
        "captured_at": o.captured_at.isoformat() if o.captured_at else None,
    }


@router.get(
    "/issues/{issue_id}/evidence",
    response_class=StreamingResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the evidence crop"}},
)
def get_evidence(key: Reader, issues: Issues, store: Store, issue_id: IssueId) -> Response:
    """The issue's evidence image (a JPEG crop of its best view, with the box drawn)."""
    if issues.issue(issue_id, with_observations=False) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such issue: {issue_id!r}")
    object_key = evidence_key(issue_id)
    info = store.stat(object_key)  # ObjectNotFoundError → 404
    return StreamingResponse(
        iterate_in_threadpool(stream_object(store, object_key)),
        media_type="image/jpeg",
        headers={"Content-Length": str(info.size), "Cache-Control": "private, max-age=300"},
    )


@router.post(
    "/issues/{issue_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackPublic,
)
def give_feedback(
    key: Reviewer, issues: Issues, issue_id: IssueId, body: FeedbackCreate
) -> FeedbackPublic:
    """Confirm an issue, or say it is a false positive (rejects it), of the wrong class, or in
    the wrong place (moves it). Kept as training data."""
    if issues.issue(issue_id, with_observations=False) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such issue: {issue_id!r}")
    source = (
        FeedbackSource.CASE_PLATFORM if key.role == "case_platform" else FeedbackSource.REVIEWER
    )
    stored, after = issues.add_feedback(
        Feedback(
            issue_id,
            body.kind,
            source,
            author=key.name,
            note=body.note,
            class_name=body.class_name,
            lat=body.lat,
            lon=body.lon,
        )
    )
    return _feedback_public(stored, after.status)


def _feedback_public(f: Feedback, issue_status: IssueStatus) -> FeedbackPublic:
    return FeedbackPublic(
        id=f.id or 0,
        issue_id=f.issue_id,
        kind=f.kind,
        source=str(f.source),
        author=f.author,
        note=f.note,
        class_name=f.class_name,
        lat=f.lat,
        lon=f.lon,
        created_at=f.created_at,
        issue_status=issue_status,
    )
