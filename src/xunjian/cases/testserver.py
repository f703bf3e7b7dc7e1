"""A strict Open311 GeoReport v2 server on loopback, with fault injection — for tests and bench.

:class:`Open311TestServer` (stdlib ``ThreadingHTTPServer``, one thread per connection)
serves, under ``{url}``:

* ``GET services.json`` and ``GET services/{code}.json`` (definitions with attributes);
* ``POST requests.json`` — form-encoded only; ``api_key`` checked (403), ``jurisdiction_id``
  checked (404), ``service_code`` known (404), a location (``lat`` + ``long`` in range, or
  ``address_string``/``address_id``), ``description`` ≤ 4000 characters, ``media_url`` an
  http(s) URL, ``attribute[code]`` only for codes the service defines, required ones present,
  numbers parseable (400) — answered with ``service_request_id``, or a ``token`` in token mode;
* ``GET tokens/{token}.json``; ``GET requests.json`` with ``service_request_id`` (comma list,
  overrides the rest), ``service_code``, ``start_date``, ``end_date`` (90 days at most),
  ``status`` filters and a page limit; ``GET requests/{id}.json``;
* FixMyStreet's update extension: ``POST servicerequestupdates.json`` (deduplicated by
  ``update_id``) and ``GET servicerequestupdates.json?start_date&end_date``.

Errors are ``[{"code", "description"}]`` lists with 400 / 403 / 404. Tests drive the city's
side with methods on the server object (not HTTP): :meth:`set_status` closes or changes a
request, :meth:`requests` lists what arrived, ``calls`` counts calls per path.
:class:`Faults` injects, with a seeded probability, 500s, timeouts, dropped connections and
slow answers — before the request is handled, or *after* it was stored (the client sees an
error or a timeout although the case exists: the duplicate trap).

May import: the standard library only.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLOSED_WORDS = frozenset(
    {"closed", "fixed", "duplicate", "not_councils_responsibility", "no_further_action",
     "internal_referral", "rejected", "false_positive", "invalid"}
)  # fmt: skip
FAULT_KINDS = ("500", "timeout", "drop", "slow", "stored_500", "stored_timeout", "stored_drop")
ATTRIBUTES = [
    {"code": "xunjian_issue_id", "datatype": "string", "required": False},
    {"code": "confidence", "datatype": "number", "required": False},
    {"code": "category", "datatype": "string", "required": False},
    {"code": "detector_version", "datatype": "string", "required": False},
    {"code": "batch_id", "datatype": "string", "required": False},
    {"code": "replaces_case", "datatype": "string", "required": False},
]
DEFAULT_SERVICES = ("road-damage", "pothole", "illegal-dumping", "spoil-truck")


@dataclass
class Faults:
    """Inject a fault into ``rate`` of the matching calls, drawn from ``kinds`` (seeded)."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    hang_s: float = 1.0
    slow_s: float = 0.05
    methods: tuple[str, ...] = ("POST", "GET")
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"expected fault kinds among {FAULT_KINDS}, got {sorted(unknown)}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self, method: str) -> str | None:
        if method not in self.methods or self.rate <= 0:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            kind = self._rng.choice(self.kinds)
            self.counts[kind] = self.counts.get(kind, 0) + 1
            return kind


class _RefusalError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class Open311TestServer:
    """A GeoReport v2 server on ``127.0.0.1`` (random port); a context manager."""

    def __init__(
        self,
        services: tuple[str, ...] = DEFAULT_SERVICES,
        *,
        api_key: str | None = "test-key",
        jurisdiction_id: str | None = None,
        token_mode: bool = False,
        page_limit: int = 1000,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        attributes: list[dict[str, Any]] | None = None,
    ) -> None:
        self.api_key = api_key
        self.jurisdiction_id = jurisdiction_id
        self.token_mode = token_mode
        self.page_limit = page_limit
        self.faults = faults or Faults()
        self.clock = clock
        self.services = {
            code: {
                "service_code": code,
                "service_name": code.replace("-", " "),
                "description": f"xunjian test service {code}",
                "metadata": True,
                "type": "realtime",
                "keywords": "",
                "group": "street",
            }
            for code in services
        }
        self.attributes = {code: list(attributes or ATTRIBUTES) for code in services}
        self._requests: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}
        self._updates: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._next = 1000
        self.calls: dict[str, int] = {}
        self._http = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Open311TestServer:
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Open311TestServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the city's side (not HTTP) --------------------------------------------------------

    def requests(self) -> list[dict[str, Any]]:
        """Every stored request (copies), in arrival order."""
        with self._lock:
            return [dict(r) for r in self._requests.values()]

    def updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(u) for u in self._updates.values()]

    def set_status(
        self, request_id: str, status: str, *, notes: str = "", agency: str | None = None
    ) -> None:
        """Change a request as the city would: ``status`` is open/closed or a finer word
        (investigating, in_progress, fixed, rejected…), which the update feed carries."""
        now = self.clock()
        with self._lock:
            record = self._requests[request_id]
            word = status.lower()
            record["status"] = "closed" if word in CLOSED_WORDS else "open"
            record["status_notes"] = notes
            record["updated_datetime"] = _iso(now)
            if agency is not None:
                record["agency_responsible"] = agency
            update_id = f"city-{len(self._updates) + 1}"
            self._updates[update_id] = {
                "update_id": update_id,
                "service_request_id": request_id,
                "status": word,
                "description": notes,
                "updated_datetime": _iso(now),
                "media_url": "",
            }

    # -- GeoReport v2 ----------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], form: dict[str, str]) -> Any:
        fields = form if method == "POST" else query
        if self.jurisdiction_id and fields.get("jurisdiction_id") != self.jurisdiction_id:
            raise _RefusalError(404, f"jurisdiction_id {fields.get('jurisdiction_id')!r} not found")
        route = path.removesuffix(".json")
        if method == "GET" and route == "/services":
            return list(self.services.values())
        if method == "GET" and route.startswith("/services/"):
            code = route.removeprefix("/services/")
            if code not in self.services:
                raise _RefusalError(404, f"service_code {code!r} not found")
            return {"service_code": code, "attributes": self._definition(code)}
        if method == "POST" and route in ("/requests", "/servicerequestupdates"):
            if self.api_key is not None and form.get("api_key") != self.api_key:
                raise _RefusalError(403, "api_key is missing or not valid")
            if route == "/requests":
                return self._create(form)
            return self._post_update(form)
        if method == "GET" and route.startswith("/tokens/"):
            return self._token(route.removeprefix("/tokens/"))
        if method == "GET" and route == "/requests":
            return self._search(query)
        if method == "GET" and route.startswith("/requests/"):
            with self._lock:
                found = self._requests.get(route.removeprefix("/requests/"))
            if found is None:
                raise _RefusalError(404, "service_request_id not found")
            return [_public(found)]
        if method == "GET" and route == "/servicerequestupdates":
            start, end = _window(query)
            with self._lock:
                return [
                    u
                    for u in self._updates.values()
                    if start <= _parse(u["updated_datetime"]) <= end
                ]
        raise _RefusalError(404, f"no such resource: {method} {path}")

    def _definition(self, code: str) -> list[dict[str, Any]]:
        return [
            {
                "variable": True,
                "code": a["code"],
                "datatype": a["datatype"],
                "required": a["required"],
                "datatype_description": "",
                "order": i,
                "description": a["code"].replace("_", " "),
            }
            for i, a in enumerate(self.attributes[code], start=1)
        ]

    def _create(self, form: dict[str, str]) -> list[dict[str, Any]]:
        code = form.get("service_code", "")
        if not code:
            raise _RefusalError(400, "service_code is required")
        if code not in self.services:
            raise _RefusalError(404, f"service_code {code!r} not found")
        lat, lon = form.get("lat"), form.get("long")
        if lat is not None or lon is not None:
            try:
                lat_f, lon_f = float(lat or ""), float(lon or "")
            except ValueError:
                raise _RefusalError(
                    400, f"lat/long must be numbers, got {lat!r}, {lon!r}"
                ) from None
            if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
                raise _RefusalError(400, "lat/long out of range")
        elif not form.get("address_string") and not form.get("address_id"):
            raise _RefusalError(400, "a location is required: lat and long, or address_string")
        description = form.get("description", "")
        if len(description) > 4000:
            raise _RefusalError(400, f"description has {len(description)} characters, at most 4000")
        media = form.get("media_url")
        if media is not None and not media.startswith(("http://", "https://")):
            raise _RefusalError(400, f"media_url must be an http(s) URL, got {media[:60]!r}")
        defined = {a["code"]: a for a in self.attributes[code]}
        attributes: dict[str, str] = {}
        for name, value in form.items():
            if name.startswith("attribute[") and name.endswith("]"):
                attr = name[len("attribute[") : -1]
                if attr not in defined:
                    raise _RefusalError(400, f"attribute {attr!r} is not defined for {code!r}")
                if defined[attr]["datatype"] == "number":
                    try:
                        float(value)
                    except ValueError:
                        raise _RefusalError(400, f"attribute {attr!r} must be a number") from None
                attributes[attr] = value
        for attr, spec in defined.items():
            if spec["required"] and attr not in attributes:
                raise _RefusalError(400, f"attribute {attr!r} is required for {code!r}")
        now = _iso(self.clock())
        with self._lock:
            self._next += 1
            request_id = str(self._next)
            self._requests[request_id] = {
                "service_request_id": request_id,
                "status": "open",
                "status_notes": "",
                "service_name": self.services[code]["service_name"],
                "service_code": code,
                "description": description,
                "agency_responsible": "",
                "service_notice": "",
                "requested_datetime": now,
                "updated_datetime": now,
                "expected_datetime": None,
                "address": form.get("address_string", ""),
                "address_id": form.get("address_id", ""),
                "zipcode": "",
                "lat": float(lat) if lat else None,
                "long": float(lon) if lon else None,
                "media_url": media or "",
                "attributes": attributes,
            }
            if self.token_mode:
                token = f"tok-{request_id}"
                self._tokens[token] = request_id
                return [{"token": token, "service_notice": "", "account_id": None}]
        return [{"service_request_id": request_id, "service_notice": "", "account_id": None}]

    def _token(self, token: str) -> list[dict[str, Any]]:
        with self._lock:
            if token not in self._tokens:
                raise _RefusalError(404, f"token {token!r} not found")
            return [{"service_request_id": self._tokens[token], "token": token}]

    def _search(self, query: dict[str, str]) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self._requests.values())
        if query.get("service_request_id"):
            wanted = set(query["service_request_id"].split(","))
            return [_public(r) for r in rows if r["service_request_id"] in wanted]
        start, end = _window(query)
        codes = set(query["service_code"].split(",")) if query.get("service_code") else None
        statuses = set(query["status"].lower().split(",")) if query.get("status") else None
        if statuses and not statuses <= {"open", "closed"}:
            raise _RefusalError(400, f"status must be open and/or closed, got {query['status']!r}")
        found = [
            _public(r)
            for r in rows
            if (codes is None or r["service_code"] in codes)
            and (statuses is None or r["status"] in statuses)
            and start <= _parse(r["requested_datetime"]) <= end
        ]
        return found[: self.page_limit]

    def _post_update(self, form: dict[str, str]) -> list[dict[str, Any]]:
        request_id, update_id = form.get("service_request_id", ""), form.get("update_id", "")
        if not update_id:
            raise _RefusalError(400, "update_id is required")
        if form.get("status", "").lower() not in {"open", "closed"} | CLOSED_WORDS:
            raise _RefusalError(400, f"status {form.get('status')!r} is not known")
        with self._lock:
            if request_id not in self._requests:
                raise _RefusalError(404, f"service_request_id {request_id!r} not found")
            if update_id not in self._updates:  # the client's id makes a resend harmless
                self._updates[update_id] = {
                    "update_id": update_id,
                    "service_request_id": request_id,
                    "status": form.get("status", "").lower(),
                    "description": form.get("description", ""),
                    "updated_datetime": _iso(self.clock()),
                    "media_url": form.get("media_url", ""),
                }
        return [{"update_id": update_id}]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (its timeout) is what the faults are for, not a server error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "attributes"}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(query: dict[str, str]) -> tuple[datetime, datetime]:
    try:
        end = _parse(query["end_date"]) if query.get("end_date") else datetime.now(UTC)
        start = _parse(query["start_date"]) if query.get("start_date") else end - timedelta(90)
    except ValueError:
        raise _RefusalError(400, "start_date/end_date must be ISO 8601 (w3c) date-times") from None
    if end < start or end - start > timedelta(days=90):
        raise _RefusalError(400, "the date range must be ordered and span at most 90 days")
    return start, end


def _handler(server: Open311TestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read the server's state instead

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with server._lock:
                key = f"{method} {parts.path}"
                server.calls[key] = server.calls.get(key, 0) + 1
            fault = server.faults.draw(method)
            if fault == "500":
                return self._send(500, [{"code": 500, "description": "injected failure"}])
            if fault == "drop":
                return self._drop()
            if fault == "timeout":
                time.sleep(server.faults.hang_s)
                return self._drop()
            if fault == "slow":
                time.sleep(server.faults.slow_s)
            try:
                form: dict[str, str] = {}
                if method == "POST":
                    kind = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                    if kind != "application/x-www-form-urlencoded":
                        raise _RefusalError(400, f"expected a form-encoded body, got {kind!r}")
                    parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                    form = {k: v[-1] for k, v in parsed.items()}
                answer = server.handle(method, parts.path, query, form)
            except _RefusalError as refusal:
                return self._send(
                    refusal.status, [{"code": refusal.status, "description": refusal.description}]
                )
            if fault == "stored_500":
                return self._send(500, [{"code": 500, "description": "injected after storing"}])
            if fault == "stored_drop":
                return self._drop()
            if fault == "stored_timeout":
                time.sleep(server.faults.hang_s)
                return self._drop()
            return self._send(200, answer)

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
