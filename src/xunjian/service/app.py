"""The FastAPI application factory.

:func:`create_app` opens (or takes) the services, the key store, the batch runner and the
metrics, installs the case loop's outbox on the issue store, and mounts the routes: the API
under ``/api/v1`` (OpenAPI at ``/docs`` and ``/openapi.json``), operations at ``/healthz``,
``/readyz`` and ``/metrics``, the map page at ``/``. Errors are JSON ``{"detail": …}``;
xunjian's exceptions map to statuses in :data:`ERROR_STATUS`.

Tests inject ``services`` (on a temporary database and store), ``detectors`` (a test-double
set) and a ``runner`` (:class:`~xunjian.service.processing.InlineRunner`).

This package may import every other layer; nothing imports it but the CLI.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

import xunjian
from xunjian.errors import (
    CaseSystemError,
    ConfigurationError,
    DatabaseError,
    DetectorError,
    InputError,
    IssueTransitionError,
    ObjectNotFoundError,
    StorageError,
    XunjianError,
)
from xunjian.inspect.pipeline import Services
from xunjian.models.detector import DetectorSet
from xunjian.service.limits import BodyLimitMiddleware
from xunjian.service.logs import RequestLogMiddleware
from xunjian.service.metrics import ServiceMetrics
from xunjian.service.processing import BatchProcessor, ProgressBoard, Runner, ThreadRunner
from xunjian.service.routes import batches, cases, issues, models, objects, ops, web
from xunjian.service.state import ServiceState
from xunjian.settings import Settings, get_settings
from xunjian.storage.apikeys import KeyStore
from xunjian.storage.localstore import LocalStore

if TYPE_CHECKING:
    from xunjian.cases.loop import CaseLoop

log = logging.getLogger(__name__)

ERROR_STATUS: tuple[tuple[type[XunjianError], int], ...] = (
    (ObjectNotFoundError, status.HTTP_404_NOT_FOUND),  # before StorageError, its parent
    (IssueTransitionError, status.HTTP_409_CONFLICT),
    (InputError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (StorageError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (DatabaseError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (CaseSystemError, status.HTTP_502_BAD_GATEWAY),
    (DetectorError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ConfigurationError, status.HTTP_500_INTERNAL_SERVER_ERROR),
)
"""Which status each xunjian error answers with; the first matching class wins."""


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    detectors: DetectorSet | Callable[[], DetectorSet] | None = None,
    runner: Runner | None = None,
) -> FastAPI:
    """The service. ``services`` default to :meth:`Services.open` on ``settings`` (closed with
    the app); ``detectors`` to the registry's active set, hot-reloaded; ``runner`` to a
    background thread pool of ``settings.service_workers``."""
    settings = settings or (services.settings if services else get_settings())
    owns = services is None
    opened = services or Services.open(settings)
    try:
        state = _state(settings, opened, owns, detectors, runner)
    except BaseException:
        if owns:
            opened.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.resume_unfinished()  # batches a killed service left half-done
        yield
        state.close()

    app = FastAPI(
        title="xunjian",
        summary="AI 立体巡检: batches in, issues out, on a map and into the case system.",
        version=xunjian.__version__,
        lifespan=lifespan,
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
            "operation_spans": False,
            "auto_configure": False,
        },
    )
    app.state.xunjian = state
    app.add_middleware(
        BodyLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestLogMiddleware, metrics=state.metrics)  # outermost: logs 413s too
    for module in (batches, objects, issues, cases, models, ops, web):
        app.include_router(module.router)
    app.add_exception_handler(XunjianError, _xunjian_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


def _state(
    settings: Settings,
    services: Services,
    owns: bool,
    detectors: DetectorSet | Callable[[], DetectorSet] | None,
    runner: Runner | None,
) -> ServiceState:
    from xunjian.core.areas import load_areas

    areas = load_areas(settings.areas_file) if settings.areas_file else None  # bad file: no start
    if owns and isinstance(services.store, LocalStore):
        # presigned URLs of the local store point at this service
        services.store.base_url = (
            settings.public_url or f"http://{settings.host}:{settings.port}"
        ).rstrip("/")
    keys = KeyStore(settings.db_url, migrate=False, engine=services.catalog.engine)
    metrics = ServiceMetrics(services.catalog.engine)
    board = ProgressBoard()
    if detectors is None and settings.worker_detectors:
        from xunjian.inspect.workers import load_worker_detectors

        detectors = load_worker_detectors(settings)
    if detectors is None:
        from xunjian.models.reload import ReloadingDetectorSet

        detectors = ReloadingDetectorSet.from_settings(settings, services.store).current
    processor = BatchProcessor(services, board, metrics, detectors=detectors)
    chosen = runner or ThreadRunner(settings.service_workers)
    chosen.start(processor.process)
    state = ServiceState(settings, services, keys, board, processor, chosen, metrics, owns)
    state.case_loop = _open_case_loop(services)
    state.areas = areas
    return state


def _open_case_loop(services: Services) -> CaseLoop:
    """Installs the outbox on the issue store, so issue changes made through the API enqueue
    their case messages in the same transaction (xunjian.cases.loop)."""
    from xunjian.cases.loop import open_case_loop

    return open_case_loop(services)


def _error_response(code: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


async def _xunjian_error(request: Request, exc: Exception) -> JSONResponse:
    code = next(
        (c for kind, c in ERROR_STATUS if isinstance(exc, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    if code >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return _error_response(code, str(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 as FastAPI writes it, but ASCII-escaped: an input echoed back may hold a lone
    surrogate (a hostile key), which UTF-8 cannot encode — it must not become a 500."""
    assert isinstance(exc, RequestValidationError)
    body = json.dumps({"detail": jsonable_encoder(exc.errors())}, ensure_ascii=True)
    return Response(body, status_code=422, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return _error_response(exc.status_code, exc.detail, dict(exc.headers or {}))
