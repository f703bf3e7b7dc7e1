"""Structured logs: one JSON object per line, and the request middleware that writes them.

Every request is logged once by ``xunjian.service.access`` with its request id (the
client's ``X-Request-ID`` when it is sane, else a new one, echoed in the response), method,
path, route, status, duration and the key's name; the same middleware counts it in the
metrics. :func:`configure_logging` (called by ``xunjian serve``) sends every logger of the
process to stderr as JSON lines; the app factory itself never touches global logging.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xunjian.service.metrics import ServiceMetrics

access_log = logging.getLogger("xunjian.service.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_FIELDS = ("request_id", "method", "path", "route", "status", "duration_ms", "key", "client")


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", …extra request fields, "exc"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                doc[name] = getattr(record, name)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # ours says more, once


class RequestLogMiddleware:
    """Logs and counts every HTTP request; sets ``X-Request-ID`` on the response."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._record(scope, request_id, status_code, time.perf_counter() - start)

    def _record(self, scope: Scope, request_id: str, status_code: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "<unmatched>"
        method = scope.get("method", "")
        self.metrics.http_requests.labels(method, route, str(status_code)).inc()
        self.metrics.http_seconds.labels(method, route).observe(seconds)
        key = scope.get("state", {}).get("api_key")
        client = scope.get("client")
        access_log.info(
            "%s %s %d",
            method,
            scope.get("path", ""),
            status_code,
            extra={
                "request_id": request_id,
                "method": method,
                "path": scope.get("path", ""),
                "route": route,
                "status": status_code,
                "duration_ms": round(seconds * 1000, 2),
                "key": getattr(key, "name", None),
                "client": client[0] if client else None,
            },
        )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None
