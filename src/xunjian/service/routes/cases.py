"""The case loop on the API: the case platform's signed status callback, and 评价 statistics.

Both call into :mod:`xunjian.cases`. The callback's body
must carry an HMAC-SHA256 signature over the raw bytes in ``X-Xunjian-Signature``, made with
the shared ``webhook_secret``, in addition to a case-platform API key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from xunjian.errors import CaseSystemError
from xunjian.service.deps import CasePlatform, Issues, Reviewer, SettingsDep, State
from xunjian.service.routes.issues import as_utc, feature, parse_bbox
from xunjian.storage.issues import IssueStore

router = APIRouter(prefix="/api/v1", tags=["cases"])


@router.post(
    "/cases/callback",
    response_class=JSONResponse,
    responses={
        200: {"description": "the issue after the update, as a GeoJSON Feature"},
        403: {"description": "missing or wrong signature"},
    },
)
async def case_callback(
    key: CasePlatform, settings: SettingsDep, issues: Issues, request: Request
) -> JSONResponse:
    """A case-status update from the case platform (signed JSON webhook, specs/cases.md)."""
    from xunjian.cases.webhook import SIGNATURE_HEADER, apply_callback, verify_signature

    body = await request.body()
    secret = settings.webhook_secret.get_secret_value().encode()
    try:
        verify_signature(secret, body, request.headers.get(SIGNATURE_HEADER))
    except CaseSystemError as exc:  # SignatureError; also "no secret configured"
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    issue = await run_in_threadpool(_apply, apply_callback, issues, body)
    return JSONResponse(feature(issue), media_type="application/geo+json")


def _apply(apply: Any, issues: IssueStore, body: bytes) -> Any:
    try:
        return apply(issues, body)
    except CaseSystemError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.get("/stats", response_model=dict[str, Any])
def evaluation(
    key: Reviewer,
    issues: Issues,
    state: State,
    within_days: Annotated[int, Query(ge=1, le=3650, description="verified within N days")] = 7,
    bbox: Annotated[
        str | None, Query(max_length=200, description="minLon,minLat,maxLon,maxLat")
    ] = None,
    since: Annotated[datetime | None, Query(description="issues first seen at or after")] = None,
) -> Any:
    """评价 statistics per category and area: found, published, closed, verified fixed,
    recurred, median time to close, share verified within ``within_days``; per configured area
    too (``by_area``, when ``XUNJIAN_AREAS_FILE`` names the districts)."""
    from xunjian.cases.stats import evaluation_stats

    return evaluation_stats(
        issues,
        within_days=within_days,
        area=parse_bbox(bbox),
        since=as_utc(since, "since"),
        areas=state.areas,
    )
