"""Benchmark ``issue-queries``: GeoJSON issue queries through the API with 100k issues.

Bulk-inserts synthetic issues (one observation each) spread over ~20 km around Chongqing
into a scratch database — a new PostgreSQL database on the server at
``XUNJIAN_BENCH_POSTGRES_URL`` (dropped afterwards), else SQLite in a temporary folder — and
times the map's queries through the ASGI app in process (bbox, class, status, their
combination, a confidence floor, a deep page): p50/p95 ms per query. The peer is the same
filter as a raw SQL ``count(*)``: what the database alone needs to find the rows, so the gap
is what loading, serialising and HTTP add. Quick mode: 10k issues, fewer repeats.

:func:`seed_issues` is also used by tests that need many issues fast.

May import anything in xunjian; the service is imported inside the benchmark only.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.pool import NullPool

from xunjian.core.issues import IssueStatus
from xunjian.core.taxonomy import CLASSES
from xunjian.storage.db import parse_url
from xunjian.storage.issue_tables import ISSUE_OBSERVATIONS, ISSUES

CENTER = (29.5630, 106.5516)
SPREAD_DEG = 0.1  # ± this around the centre: about 20 km × 20 km
START = datetime(2026, 1, 1, tzinfo=UTC)
_CHUNK = 5000


def seed_issues(
    engine: Engine,
    n: int,
    *,
    seed: int = 0,
    center: tuple[float, float] = CENTER,
    spread_deg: float = SPREAD_DEG,
    batches: int = 50,
) -> None:
    """Inserts ``n`` synthetic issues, each with one evidence observation, in bulk."""
    rng = np.random.default_rng(seed)
    statuses = [s.value for s in IssueStatus]
    status_p = np.array([30, 25, 10, 8, 12, 8, 2, 5], float)
    status_p /= status_p.sum()
    lat = center[0] + rng.uniform(-spread_deg, spread_deg, n)
    lon = center[1] + rng.uniform(-spread_deg, spread_deg, n)
    cls = rng.integers(0, len(CLASSES), n)
    st = rng.choice(len(statuses), n, p=status_p)
    conf = rng.uniform(0.25, 0.99, n)
    first = rng.uniform(0, 300, n)  # days after START
    last = first + rng.uniform(0, 30, n)
    batch = rng.integers(0, batches, n)
    with engine.begin() as conn:
        base = int(
            conn.execute(select(func.coalesce(func.max(ISSUE_OBSERVATIONS.c.id), 0))).scalar_one()
        )
        token = secrets.token_hex(3)
        for start in range(0, n, _CHUNK):
            stop = min(n, start + _CHUNK)
            issues, observations = [], []
            for i in range(start, stop):
                info = CLASSES[int(cls[i])]
                first_seen = START + timedelta(days=float(first[i]))
                last_seen = START + timedelta(days=float(last[i]))
                batch_id = f"bench-{int(batch[i]):03d}"
                issue_id = f"iss_bench_{token}_{i:07d}"
                issues.append({
                    "id": issue_id, "class_name": info.name, "detector": info.detector.value,
                    "is_event": info.is_event, "status": statuses[int(st[i])],
                    "lat": float(lat[i]), "lon": float(lon[i]), "sigma_m": 1.5,
                    "confidence": float(conf[i]), "observation_count": 1, "not_reobserved": 0,
                    "first_seen": first_seen, "last_seen": last_seen, "batch_ids": [batch_id],
                    "evidence_observation_id": base + i + 1,
                    "created_at": first_seen, "updated_at": last_seen,
                })  # fmt: skip
                observations.append({
                    "id": base + i + 1, "issue_id": issue_id, "batch_id": batch_id,
                    "frame_key": f"raw/{batch_id}/DJI_{i:07d}.JPG", "detector": info.detector.value,
                    "model_version": "bench@1", "box_key": "10.00,10.00,50.00,50.00",
                    "class_name": info.name, "confidence": float(conf[i]),
                    "x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 50.0,
                    "lat": float(lat[i]), "lon": float(lon[i]), "sigma_m": 1.5, "range_m": 20.0,
                    "gsd_m": 0.02, "captured_at": last_seen,
                })  # fmt: skip
            conn.execute(insert(ISSUES), issues)
            conn.execute(insert(ISSUE_OBSERVATIONS), observations)
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('issue_observations', 'id'),"
                    " (SELECT max(id) FROM issue_observations))"
                )
            )


@contextmanager
def scratch_database(admin_url: str | None, folder: Path) -> Iterator[str]:
    """A new PostgreSQL database on ``admin_url``'s server (dropped after), or SQLite."""
    if not admin_url:
        yield f"sqlite:///{(folder / 'bench.db').as_posix()}"
        return
    name = f"xunjian_bench_{secrets.token_hex(4)}"
    admin = create_engine(parse_url(admin_url), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield parse_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.dispose()


def _queries() -> dict[str, tuple[dict[str, Any], str]]:
    """name → (API query parameters, SQL WHERE clause of the same filter)."""
    lat, lon = CENTER
    small = (lon - 0.01, lat - 0.01, lon + 0.01, lat + 0.01)  # ~2 km square: ~1% of issues
    city = (lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)  # a quarter of the area

    def box(b: tuple[float, ...]) -> str:
        return f"lon BETWEEN {b[0]} AND {b[2]} AND lat BETWEEN {b[1]} AND {b[3]}"

    open_states = "'candidate', 'published', 'dispatched', 'in_progress'"
    return {
        "all (newest page)": ({}, "1=1"),
        "bbox 2 km": ({"bbox": ",".join(map(str, small))}, box(small)),
        "bbox 10 km": ({"bbox": ",".join(map(str, city))}, box(city)),
        "class pothole": ({"class": "pothole"}, "class_name = 'pothole'"),
        "status dispatched": ({"status": "dispatched"}, "status = 'dispatched'"),
        "bbox 10 km + category + open": (
            {"bbox": ",".join(map(str, city)), "category": "road_damage",
             "status": ["candidate", "published", "dispatched", "in_progress"]},
            f"{box(city)} AND class_name IN ('longitudinal_crack', 'transverse_crack',"
            f" 'alligator_crack', 'pothole') AND status IN ({open_states})",
        ),
        "min_confidence 0.9": ({"min_confidence": "0.9"}, "confidence >= 0.9"),
        "page at offset 5000": ({"offset": "5000"}, "1=1"),
    }  # fmt: skip


def bench_issue_queries(quick: bool = False, data_dir: Path | None = None) -> dict[str, Any]:
    """Seeds a scratch database and times the issue queries; see the module docstring."""
    n = 10_000 if quick else 100_000
    repeats = 5 if quick else 15
    admin_url = os.environ.get("XUNJIAN_BENCH_POSTGRES_URL") or None
    with (
        tempfile.TemporaryDirectory(prefix="xunjian-bench-", dir=data_dir) as tmp,
        scratch_database(admin_url, Path(tmp)) as url,
    ):
        return _run(Path(tmp), url, n, repeats)


def _run(folder: Path, url: str, n: int, repeats: int) -> dict[str, Any]:
    from xunjian.inspect.pipeline import Services
    from xunjian.service.app import create_app
    from xunjian.service.processing import InlineRunner
    from xunjian.settings import Settings

    settings = Settings(data_dir=folder, database_url=url)
    services = Services.open(settings)
    try:
        started = time.perf_counter()
        seed_issues(services.catalog.engine, n)
        seed_s = time.perf_counter() - started
        app = create_app(
            settings, services=services, detectors=_no_detectors, runner=InlineRunner()
        )
        state = app.state.xunjian
        _, key = state.keys.create("bench-admin", "admin")
        figures = asyncio.run(_measure(app, key, services.catalog.engine, repeats))
        state.close()
    finally:
        services.close()
    return {
        "issues": n,
        "database": services.catalog.engine.dialect.name,
        "seed_s": round(seed_s, 2),
        "page_limit": 500,
        "repeats": repeats,
        "queries": figures,
        "peer": "raw SQL count(*) of the same filter",
    }


def _no_detectors() -> Any:
    from xunjian.errors import DetectorError

    raise DetectorError("the issue-queries benchmark processes no batches")


async def _measure(app: Any, key: str, engine: Engine, repeats: int) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {}
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, (params, where) in _queries().items():
            query = {"limit": "500", **params}
            api_ms: list[float] = []
            returned = 0
            for _ in range(repeats + 1):  # the first run warms caches and is not counted
                start = time.perf_counter()
                response = await client.get("/api/v1/issues", params=query, headers=headers)
                api_ms.append((time.perf_counter() - start) * 1000)
                response.raise_for_status()
                returned = len(response.json()["features"])
            sql_ms: list[float] = []
            matching = 0
            for _ in range(repeats + 1):
                start = time.perf_counter()
                with engine.connect() as conn:
                    matching = int(
                        conn.execute(
                            text(f"SELECT count(*) FROM issues WHERE {where}")
                        ).scalar_one()
                    )
                sql_ms.append((time.perf_counter() - start) * 1000)
            out[name] = {
                "api_p50_ms": _pct(api_ms[1:], 50),
                "api_p95_ms": _pct(api_ms[1:], 95),
                "returned": returned,
                "matching": matching,
                "sql_count_p50_ms": _pct(sql_ms[1:], 50),
            }
    return out


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 2)
