"""Operations: liveness, readiness (database and object store), Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from xunjian.errors import XunjianError
from xunjian.service.deps import MlEngineer, State
from xunjian.storage import db

router = APIRouter(tags=["operations"])
PROBE_KEY = "healthz/probe"


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers (no dependency is checked)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "the database or the object store is not reachable"}},
)
def readyz(state: State) -> JSONResponse:
    """Ready when the database answers and the object store's bucket can be read."""
    checks: dict[str, Any] = {}
    engine = state.services.catalog.engine
    try:
        with db.database_errors(engine.url, "readiness check"), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except XunjianError as exc:
        checks["database"] = str(exc)
    try:
        state.services.store.exists(PROBE_KEY)  # a missing key is fine; no answer is not
        checks["object_store"] = "ok"
    except (XunjianError, OSError) as exc:
        checks["object_store"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks}, code)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(key: MlEngineer, state: State) -> Response:
    """Prometheus metrics: frames, detections, issues, outbox depth, stage and request times."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
