"""Engines, migrations and database errors, on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from tests.fixtures.db import require_postgres
from xunjian.errors import DatabaseError
from xunjian.storage.catalog import Catalog
from xunjian.storage.db import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    mask_url,
    migrate,
    parse_url,
)
from xunjian.storage.tables import Base, UTCDateTime

TABLES = {"batches", "frames", "frame_failures", "alembic_version"}


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_migrate_is_idempotent(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        migrate(engine)
        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migration_produces_the_schema_of_the_models(db_engine: Engine) -> None:
    assert schema_diff(db_engine) == []


def test_schema_comparison_sees_drift(db_engine: Engine) -> None:
    # Guards the test above against comparing nothing with nothing.
    with db_engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_frames_lat_lon")
    diff = schema_diff(db_engine)
    assert [d[0] for d in diff if isinstance(d, tuple)] == ["add_index"]


def test_downgrade_to_base_and_upgrade_again(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(db_engine).get_table_names()) <= {"alembic_version"}
    migrate(db_engine)
    assert schema_diff(db_engine) == []


def migrate_together(url: str, starts: int) -> str | None:
    """``starts`` migrations of ``url`` at once; the revision the database ends at."""
    with ThreadPoolExecutor(max_workers=starts) as pool:
        list(pool.map(migrate, [url] * starts))
    engine = make_engine(url)
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_concurrent_migrations_all_succeed(database_url: str) -> None:
    assert migrate_together(database_url, 4) == head_revision()


def test_sqlite_engine_creates_the_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "xunjian.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert path.is_file()
    finally:
        engine.dispose()


def test_sqlite_in_memory_works() -> None:
    with Catalog("sqlite://") as catalog:
        assert catalog.upsert_batch("b1", "drone").batch_id == "b1"


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:pw@db.example/x", "postgres://u:pw@db.example/x", "postgresql+psycopg://h/x"],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    assert parse_url(url).drivername == "postgresql+psycopg"
    engine = make_engine(url)  # nothing connects yet
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://root:pw@localhost/x", "expected a sqlite:// or postgresql:// URL"),
        ("not a url", "not a database URL"),
        ("postgresql+nodriver://u:pw@h/x", "nodriver"),
    ],
)
def test_unusable_urls_raise_database_error(url: str, reason: str) -> None:
    with pytest.raises(DatabaseError, match=reason) as caught:
        make_engine(url)
    assert ":pw@" not in str(caught.value)


def test_unreachable_postgresql_raises_database_error_with_password_masked() -> None:
    url = f"postgresql://inspector:s3cret-pw@127.0.0.1:{free_port()}/xunjian"
    with pytest.raises(DatabaseError) as caught:
        Catalog(url)
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "inspector:***@127.0.0.1" in message
    assert "refused" in message.lower()
    with pytest.raises(DatabaseError, match="migrating the schema"):
        migrate(url)
    catalog = Catalog(url, migrate=False)  # connecting is lazy; the first use fails
    with pytest.raises(DatabaseError, match=r"reading batch 'b1'.*refused"):
        catalog.batch("b1")
    catalog.close()


def test_a_database_newer_than_the_code_is_refused(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(DatabaseError, match=r"migrating the schema.*9999_future"):
        migrate(db_engine)


def test_a_file_that_is_not_a_database_raises_database_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match=r"garbage\.db.*not a database"):
        Catalog(f"sqlite:///{path}")


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert "secret" not in mask_url("postgres://u:secret@h:5432/db with junk")
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"


def test_utc_datetime_refuses_naive_datetimes() -> None:
    dialect = make_engine("sqlite://").dialect
    with pytest.raises(ValueError, match="timezone-aware"):
        UTCDateTime().process_bind_param(datetime(2025, 1, 1), dialect)


def test_the_test_server_check_fails_under_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://postgres:pw@127.0.0.1:{free_port()}/test"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"postgres:\*\*\*@.*not reachable"):
        require_postgres(url)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"not reachable.*refused"):
        require_postgres(url)


def test_many_starts_at_once_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    # SQLite answers "database is locked" at once (no busy wait) when connections switch a new
    # file to WAL together; every start must still succeed (before the fix, about 1 round in 8
    # failed here).
    for round_ in range(15):
        url = f"sqlite:///{tmp_path / str(round_) / 'xunjian.db'}"
        assert migrate_together(url, 12) == head_revision()
