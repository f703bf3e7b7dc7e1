"""What only a real PostgreSQL server shows: driver, column types, time zones, the fixture."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
from sqlalchemy import text

from tests.fixtures.db import fresh_postgres_database
from xunjian.core.records import Frame
from xunjian.storage.catalog import Catalog
from xunjian.storage.db import make_engine, parse_url

pytestmark = pytest.mark.integration


def column_types(catalog: Catalog, table: str) -> dict[str, str]:
    query = text(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :t"
    )
    with catalog.engine.connect() as conn:
        return {str(name): str(kind) for name, kind in conn.execute(query, {"t": table})}


def test_postgresql_runs_on_psycopg_3_with_jsonb_and_timestamptz(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://")
    with Catalog(postgres_url) as catalog:
        assert catalog.engine.dialect.driver == "psycopg"
        frames = column_types(catalog, "frames")
        assert frames["problems"] == "jsonb"
        assert frames["captured_at"] == "timestamp with time zone"
        assert frames["lat"] == "double precision"
        assert column_types(catalog, "batches")["meta"] == "jsonb"


def test_times_come_back_in_utc_whatever_the_session_time_zone(postgres_url: str) -> None:
    name = parse_url(postgres_url).database
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Shanghai'")
    engine.dispose()
    taken = datetime(2025, 5, 20, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8)))
    with Catalog(postgres_url) as catalog:
        with catalog.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Shanghai"
        catalog.upsert_batch("b1", "vehicle")
        catalog.upsert_frame(Frame("b1", "k.jpg", "0" * 64, 10, 10, captured_at=taken))
        (stored,) = catalog.frames("b1")
        assert stored.captured_at == taken
        assert stored.captured_at is not None and stored.captured_at.tzinfo == UTC
        assert catalog.batch("b1").created_at.tzinfo == UTC  # type: ignore[union-attr]


def test_fresh_databases_are_dropped_even_with_open_connections(postgres_admin_url: str) -> None:
    with fresh_postgres_database(postgres_admin_url) as url:
        name = parse_url(url).database
        # A connection the test "forgot" to close; closed by hand at the end, because one
        # left to the garbage collector is finalized at an arbitrary point of the run.
        leaked = psycopg.connect(
            parse_url(url).set(drivername="postgresql").render_as_string(False)
        )
        leaked.execute("SELECT 1")
    try:
        admin = make_engine(postgres_admin_url)
        with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_database WHERE datname = :name")
            assert conn.execute(query, {"name": name}).scalar() == 0
        admin.dispose()
    finally:
        leaked.close()
