"""Prometheus metrics of one service instance, on a registry of its own (not the global one).

Counters are bumped by the batch processor and the request middleware; the issue counts by
status and the case outbox's depth are read from the database when Prometheus scrapes.

May import prometheus_client, SQLAlchemy and ``xunjian.storage``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from xunjian.storage import db
from xunjian.storage.case_tables import OUTBOX
from xunjian.storage.issue_tables import ISSUES

log = logging.getLogger(__name__)

_STAGE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _DatabaseGauges(Collector):
    """Issues by status and outbox messages by state, counted at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        issues = GaugeMetricFamily("xunjian_issues", "Issues by status.", labels=["status"])
        outbox = GaugeMetricFamily(
            "xunjian_outbox_messages", "Case-system messages by outbox state.", labels=["state"]
        )
        depth = GaugeMetricFamily(
            "xunjian_outbox_depth", "Case-system messages waiting for delivery (pending)."
        )
        try:
            doing = "counting for metrics"
            with db.database_errors(self.engine.url, doing), self.engine.connect() as conn:
                by_status = conn.execute(
                    select(ISSUES.c.status, func.count()).group_by(ISSUES.c.status)
                ).all()
                by_state = conn.execute(
                    select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state)
                ).all()
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("metrics: %s", exc)
            return
        for status, count in by_status:
            issues.add_metric([status], count)
        states: dict[str, int] = {str(s): int(n) for s, n in by_state}
        for state, count in states.items():
            outbox.add_metric([state], count)
        depth.add_metric([], states.get("pending", 0))
        yield issues
        yield outbox
        yield depth


class ServiceMetrics:
    """Every metric the service exports; see docs/service.md for their meaning."""

    def __init__(self, engine: Engine | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames_processed = Counter(
            "xunjian_frames_processed", "Frames catalogued by processing.", registry=r
        )
        self.frames_failed = Counter(
            "xunjian_frames_failed", "Files of batches that could not be used.", registry=r
        )
        self.detections = Counter("xunjian_detections", "Detections made.", registry=r)
        self.issues_created = Counter("xunjian_issues_created", "Issues opened.", registry=r)
        self.issues_updated = Counter(
            "xunjian_issues_updated", "Issues seen again by a later batch.", registry=r
        )
        self.batches = Counter(
            "xunjian_batches", "Batches finished, by outcome.", ["outcome"], registry=r
        )
        self.stage_seconds = Histogram(
            "xunjian_stage_seconds",
            "Time spent per batch in each stage (ingest, detect_fuse_publish, batch).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "xunjian_http_requests",
            "HTTP requests answered, by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "xunjian_http_request_seconds",
            "Time to answer HTTP requests, by route.",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        if engine is not None:
            r.register(_DatabaseGauges(engine))
