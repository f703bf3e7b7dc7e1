"""The Open311 GeoReport v2 connector: service discovery, requests, tokens, status polling.

* ``check`` — ``GET services.json``: every service code of the mapping must exist (else
  :class:`~xunjian.errors.ConfigurationError` naming the missing codes and what the server
  offers); for services with ``metadata: true`` the definition (``GET services/{code}.json``)
  says which attributes exist, and a *required* attribute xunjian cannot fill is an error too.
* ``deliver`` — ``POST requests.json`` (form-encoded): ``service_code``, ``lat``/``long``,
  ``description`` (zh-CN, en, and the line ``xunjian: <issue id>``), ``media_url`` and the
  attributes the service defines among ``xunjian_issue_id``, ``confidence``, ``category``,
  ``detector_version``, ``batch_id``, ``replaces_case``. The answer names the request or
  gives a token, resolved later by ``GET tokens/{token}.json``.
* ``find_existing`` — GeoReport v2 has no idempotency key, so before resending a message
  whose earlier try may have reached the server, ``GET requests.json?service_code=…&
  start_date=…&end_date=…`` around the message's life (± the servers' clock skew, default
  10 minutes) and look for
  the description carrying the issue line. A window with as many answers as the server's
  page limit is split in halves, so a capped page never hides the case; one longer than the
  90 days servers allow is searched in parts.
* ``poll`` — ``GET requests.json?service_request_id=a,b,…`` (open/closed, notes, agency) and,
  with ``updates`` on, the FixMyStreet update feed ``GET servicerequestupdates.json`` for the
  finer words (investigating, in_progress, fixed, …; mapped by the mapping file).
* updates — ``verified_fixed`` / ``recurred`` / ``rejected`` are sent with FixMyStreet's
  ``POST servicerequestupdates.json`` extension (``update_id`` = the outbox key, which the
  server deduplicates); with ``updates`` off they are kept in xunjian only, said in the note.

HTTP 4xx → :class:`~xunjian.errors.CaseRefusedError` with the server's ``[{code,
description}]``; 5xx, timeouts and connection errors → :class:`CaseSystemError` (transient).

May import: httpx, the standard library, ``xunjian.errors`` and ``cases``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from xunjian.cases.mapping import CaseMapping
from xunjian.cases.messages import (
    CaseRef,
    Delivery,
    OutboxMessage,
    SendContext,
    StatusReport,
    case_text,
    descriptions,
    issue_in_text,
)
from xunjian.errors import CaseRefusedError, CaseSystemError, ConfigurationError

KNOWN_ATTRIBUTES = (
    "xunjian_issue_id",
    "confidence",
    "category",
    "detector_version",
    "batch_id",
    "replaces_case",
)
UPDATE_STATUS = {"verified_fixed": "CLOSED", "recurred": "CLOSED", "rejected": "CLOSED"}
_ID_CHUNK = 50
MAX_SEARCH_SPAN = timedelta(days=89)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Open311Connector:
    """A GeoReport v2 server at ``endpoint`` (the base URL before ``services.json``)."""

    name = "open311"
    polls = True

    def __init__(
        self,
        endpoint: str,
        mapping: CaseMapping,
        *,
        api_key: str = "",
        jurisdiction_id: str | None = None,
        updates: bool = True,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        lookup_margin: timedelta = timedelta(minutes=10),
        page_limit: int = 1000,
        read_tries: int = 3,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.mapping = mapping
        self.updates = updates
        self.lookup_margin = lookup_margin
        self.page_limit = page_limit
        self.read_tries = max(1, read_tries)
        self._api_key = api_key
        self._jurisdiction = jurisdiction_id
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._attributes: dict[str, set[str]] | None = None

    def __repr__(self) -> str:
        return f"Open311Connector({self.endpoint!r})"

    # -- HTTP ------------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, params: dict[str, str] | None = None, auth: bool = False
    ) -> Any:
        """One call. A GET that fails for a transient reason (5xx, timeout, dropped) is tried
        again at once, up to ``read_tries``: reads change nothing, and a look-up that needs
        several pages must not fail whenever one of them does."""
        tries = self.read_tries if method == "GET" else 1
        for attempt in range(1, tries + 1):
            try:
                return self._call(method, path, params=params, auth=auth)
            except httpx.ConnectError as exc:  # nobody listening: trying again now won't help
                url = f"{self.endpoint}/{path}"
                raise CaseSystemError(f"open311 {method} {url}: ConnectError: {exc}") from None
            except CaseRefusedError:
                raise
            except CaseSystemError:
                if attempt == tries:
                    raise
                time.sleep(0.02 * attempt)
        raise AssertionError("not reached: the last try returns or raises")

    def _call(self, method: str, path: str, *, params: dict[str, str] | None, auth: bool) -> Any:
        url = f"{self.endpoint}/{path}"
        fields = dict(params or {})
        if self._jurisdiction:
            fields["jurisdiction_id"] = self._jurisdiction
        if auth and self._api_key:
            fields["api_key"] = self._api_key
        try:
            if method == "GET":
                response = self._client.get(url, params=fields)
            else:
                response = self._client.post(url, data=fields)
        except httpx.TimeoutException as exc:
            raise CaseSystemError(f"open311 {method} {url}: timed out ({exc})") from None
        except httpx.ConnectError:
            raise
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise CaseSystemError(
                f"open311 {method} {url}: {type(exc).__name__}: {reason}"
            ) from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise CaseSystemError(
                    f"open311 {method} {url}: expected JSON, got {response.text[:200]!r}"
                ) from None
        errors = _error_list(response)
        said = "; ".join(f"[{e.get('code')}] {e.get('description')}" for e in errors)
        reason = (
            f"open311 {method} {url}: HTTP {response.status_code}: {said or response.text[:200]}"
        )
        if 400 <= response.status_code < 500:
            raise CaseRefusedError(reason, status=response.status_code, errors=errors)
        raise CaseSystemError(reason)

    # -- discovery -------------------------------------------------------------------------

    def services(self) -> list[dict[str, Any]]:
        found = self._request("GET", "services.json")
        if not isinstance(found, list):
            raise CaseSystemError(f"open311 {self.endpoint}: services.json is not a list")
        return [s for s in found if isinstance(s, dict)]

    def check(self) -> list[str]:
        services = {str(s.get("service_code")): s for s in self.services()}
        wanted = self.mapping.service_codes()
        missing = sorted(wanted - set(services))
        if missing:
            raise ConfigurationError(
                f"case mapping {self.mapping.source}: service code(s) {', '.join(missing)} do not "
                f"exist on {self.endpoint}; expected among {', '.join(sorted(services)) or 'none'}"
            )
        attributes: dict[str, set[str]] = {}
        for code in sorted(wanted):
            attributes[code] = set()
            if not services[code].get("metadata"):
                continue
            definition = self._request("GET", f"services/{code}.json")
            for attr in definition.get("attributes", []) if isinstance(definition, dict) else []:
                if not isinstance(attr, dict) or not attr.get("variable", True):
                    continue
                attributes[code].add(str(attr.get("code")))
                if attr.get("required") and attr.get("code") not in KNOWN_ATTRIBUTES:
                    raise ConfigurationError(
                        f"open311 service {code!r} on {self.endpoint} requires attribute "
                        f"{attr.get('code')!r}; xunjian can fill only {', '.join(KNOWN_ATTRIBUTES)}"
                    )
        self._attributes = attributes
        return [
            f"open311 {self.endpoint}: {len(services)} service(s); mapped codes "
            f"{', '.join(sorted(wanted))} exist",
            *(f"  {c}: attributes {', '.join(sorted(a)) or 'none'}" for c, a in attributes.items()),
        ]

    # -- sending ---------------------------------------------------------------------------

    def deliver(self, message: OutboxMessage, ctx: SendContext) -> Delivery:
        if message.kind == "update":
            return self._update(message, ctx)
        if self._attributes is None:
            self.check()
        assert self._attributes is not None
        p = message.payload
        code = self.mapping.codes(p["class"]).service_code
        texts = descriptions(message.kind, p, ctx.replaces_case_id)
        fields = {
            "service_code": code,
            "lat": f"{p['lat']:.7f}",
            "long": f"{p['lon']:.7f}",
            "description": case_text(message.issue_id, texts),
        }
        if ctx.media_url:
            fields["media_url"] = ctx.media_url
        values = {
            "xunjian_issue_id": message.issue_id,
            "confidence": f"{p['confidence']:.4f}",
            "category": p["class"],
            "detector_version": p["model_version"],
            "batch_id": (p["batch_ids"] or [""])[-1],
            "replaces_case": ctx.replaces_case_id or "",
        }
        for attr in self._attributes.get(code, set()):
            if values.get(attr):
                fields[f"attribute[{attr}]"] = values[attr]
        answer = self._request("POST", "requests.json", params=fields, auth=True)
        first = answer[0] if isinstance(answer, list) and answer else {}
        request_id, token = first.get("service_request_id"), first.get("token")
        if not request_id and not token:
            raise CaseSystemError(
                f"open311 POST {self.endpoint}/requests.json: expected service_request_id or "
                f"token, got {answer!r:.200}"
            )
        return Delivery(
            str(request_id) if request_id else None,
            str(token) if token and not request_id else None,
            external_status="open",
            note=str(first.get("service_notice") or ""),
        )

    def _update(self, message: OutboxMessage, ctx: SendContext) -> Delivery:
        if not self.updates:
            return Delivery(ctx.case_id, note="not sent: GeoReport v2 has no update call")
        p = message.payload
        texts = descriptions("update", p)
        fields = {
            "service_request_id": str(ctx.case_id),
            "update_id": message.idempotency_key,
            "updated_datetime": p.get("at") or _iso(datetime.now(UTC)),
            "status": UPDATE_STATUS.get(p["status"], "OPEN"),
            "description": f"{texts['zh-CN']}\n{texts['en']}",
            "first_name": "xunjian",
            "last_name": "AI 巡检",
        }
        self._request("POST", "servicerequestupdates.json", params=fields, auth=True)
        return Delivery(ctx.case_id)

    def find_existing(self, message: OutboxMessage) -> Delivery | None:
        if message.kind == "update":
            return None  # the server deduplicates updates by update_id
        code = self.mapping.codes(message.payload["class"]).service_code
        start = message.created_at - self.lookup_margin
        end = datetime.now(UTC) + self.lookup_margin
        for found in self._search(code, start, end):
            if issue_in_text(message.issue_id, found.get("description")):
                request_id = found.get("service_request_id")
                return Delivery(
                    str(request_id) if request_id else None,
                    external_status=str(found.get("status") or "open"),
                    found_existing=True,
                )
        return None

    def _search(self, code: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        if end - start > MAX_SEARCH_SPAN:  # GeoReport servers refuse longer ranges
            middle = start + MAX_SEARCH_SPAN
            return self._search(code, start, middle) + self._search(code, middle, end)
        params = {"service_code": code, "start_date": _iso(start), "end_date": _iso(end)}
        found = self._request("GET", "requests.json", params=params)
        rows = [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []
        if len(rows) >= self.page_limit and end - start > timedelta(seconds=2):
            middle = start + (end - start) / 2
            return self._search(code, start, middle) + self._search(code, middle, end)
        return rows

    # -- status ----------------------------------------------------------------------------

    def poll(self, cases: Sequence[CaseRef]) -> list[StatusReport]:
        ids: dict[str, CaseRef] = {}
        resolved: set[str] = set()
        for case in cases:
            case_id = case.case_id
            if case_id is None and case.token:
                answer = self._request("GET", f"tokens/{case.token}.json")
                first = answer[0] if isinstance(answer, list) and answer else {}
                if first.get("service_request_id"):
                    case_id = str(first["service_request_id"])
                    resolved.add(case_id)
            if case_id:
                ids[case_id] = case
        reports: dict[str, StatusReport] = {}
        chunk = list(ids)
        for start in range(0, len(chunk), _ID_CHUNK):
            part = ",".join(chunk[start : start + _ID_CHUNK])
            found = self._request("GET", "requests.json", params={"service_request_id": part})
            for r in found if isinstance(found, list) else []:
                case_id = str(r.get("service_request_id"))
                if case_id in ids:
                    reports[case_id] = StatusReport(
                        ids[case_id].issue_id,
                        case_id,
                        str(r.get("status") or "open").lower(),
                        str(r.get("status_notes") or ""),
                        r.get("agency_responsible"),
                        _parse_time(r.get("updated_datetime")),
                        case_id in resolved,
                    )
        if self.updates and ids:
            self._finer_words(ids, reports)
        return [
            r
            for case_id, r in reports.items()
            if r.token_resolved
            or r.status != ids[case_id].external_status
            or r.updated_at != ids[case_id].external_updated_at
        ]

    def _finer_words(self, ids: dict[str, CaseRef], reports: dict[str, StatusReport]) -> None:
        """Replace open/closed by the update feed's own word where it is newer."""
        end = datetime.now(UTC) + self.lookup_margin
        since = min(c.external_updated_at or c.created_at for c in ids.values())
        # the feed of the last 89 days at most (servers refuse more); older news was polled
        start = max(since - self.lookup_margin, end - MAX_SEARCH_SPAN)
        params = {"start_date": _iso(start), "end_date": _iso(end)}
        feed = self._request("GET", "servicerequestupdates.json", params=params)
        for u in feed if isinstance(feed, list) else []:
            case_id = str(u.get("service_request_id"))
            at, word = _parse_time(u.get("updated_datetime")), str(u.get("status") or "").lower()
            base = reports.get(case_id)
            if base is None or not word or at is None:
                continue
            if base.updated_at is None or at >= base.updated_at:
                reports[case_id] = StatusReport(
                    base.issue_id,
                    case_id,
                    word,
                    str(u.get("description") or base.notes),
                    base.agency,
                    at,
                    base.token_resolved,
                )

    def close(self) -> None:
        self._client.close()


def _error_list(response: httpx.Response) -> list[dict[str, str]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return []
    return [
        {"code": str(e.get("code")), "description": str(e.get("description"))}
        for e in body
        if isinstance(e, dict)
    ]
