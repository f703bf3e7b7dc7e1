"""Database engines and schema migration: SQLite by default, PostgreSQL in production.

:func:`make_engine` turns a URL into a configured SQLAlchemy engine (SQLite: WAL, foreign
keys, busy timeout, parent directory created; PostgreSQL: the psycopg 3 driver).
:func:`migrate` brings the schema to the newest Alembic revision; it is idempotent and safe
to call at every start, also from several processes at once. :func:`database_errors` turns
driver errors into :class:`~xunjian.errors.DatabaseError` naming the database (password
masked) and the reason.

This module may import SQLAlchemy, Alembic and ``xunjian.errors``.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from xunjian.errors import DatabaseError, DatabaseUnavailableError

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30.0
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works: it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 0x78756E6A69616E  # "xunjian"
_SQLITE_BEGIN_OPTION = "xunjian_sqlite_begin"
_LEGACY_TRANSACTION_CONTROL = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", None)


def parse_url(url: str | URL) -> URL:
    """The SQLAlchemy URL for ``url`` with the driver xunjian uses for its dialect.

    ``postgresql://`` and ``postgres://`` map to ``postgresql+psycopg://`` (psycopg 3).
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (exc.ArgumentError, ValueError) as error:
        raise DatabaseError(
            f"database {_mask_text(str(url))}: not a database URL: {error}"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise DatabaseError(
            f"database {mask_url(parsed)}: expected a sqlite:// or postgresql:// URL, "
            f"got the {parsed.get_backend_name()!r} dialect"
        )
    return parsed


def mask_url(url: str | URL) -> str:
    """``url`` as text with any password replaced by ``***``."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (exc.ArgumentError, ValueError):
        return _mask_text(url)


def _mask_text(text: str) -> str:
    # For strings SQLAlchemy cannot parse: hide whatever sits between "user:" and "@".
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def make_engine(url: str | URL) -> Engine:
    """A configured engine for ``url``; nothing connects until the engine is first used.

    SQLite: the parent directory of the file is created; every connection gets WAL,
    ``foreign_keys=ON`` and a busy timeout, and SQLAlchemy (not the sqlite3 module) emits
    BEGIN so that DDL is transactional. PostgreSQL: psycopg 3 with pre-ping.
    """
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed)
        # Without a timeout a black-holed host hangs every start for minutes.
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (exc.SQLAlchemyError, ImportError) as error:
        raise DatabaseError(f"database {mask_url(parsed)}: {error}") from None


def _use_wal(cursor: Any) -> None:
    """Puts the database file in WAL mode (it stays so). SQLite answers "database is locked"
    at once, without waiting out the busy timeout, when two connections switch a new file's
    journal mode together (processes starting at the same moment): retry until the timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    if not in_memory and not url.query.get("uri"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseError(
                f"database {mask_url(url)}: cannot create the directory of the file: {error}"
            ) from None
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Leave BEGIN to SQLAlchemy (see the "begin" hook): the sqlite3 module's own legacy
        # transaction control would autocommit DDL and never begin before a SELECT.
        if _LEGACY_TRANSACTION_CONTROL is not None:  # Python 3.12+: say so, never rely on it
            dbapi_connection.autocommit = _LEGACY_TRANSACTION_CONTROL
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            if not in_memory:
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def database_errors(url: str | URL, doing: str | None = None) -> Iterator[None]:
    """Turn SQLAlchemy and driver errors raised inside into :class:`DatabaseError`.

    The message names the database (password masked), what was being done, and the reason.
    """
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        # connection refused, lost, or (SQLite) locked: the operation may succeed later
        raise DatabaseUnavailableError(_error_message(url, doing, error)) from error
    except exc.SQLAlchemyError as error:
        raise DatabaseError(_error_message(url, doing, error)) from error


def _error_message(url: str | URL, doing: str | None, error: BaseException) -> str:
    reason = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    text = " ".join(str(reason).split()) or type(reason).__name__
    try:
        password = (make_url(url) if isinstance(url, str) else url).password
    except (exc.ArgumentError, ValueError):
        password = None
    if password:
        text = text.replace(str(password), "***")
    prefix = f"database {mask_url(url)}"
    return f"{prefix}: {doing}: {text}" if doing else f"{prefix}: {text}"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for xunjian's migrations, built in code (no alembic.ini).

    With ``connection``, ``env.py`` runs the migrations on it instead of connecting itself.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine_or_url: Engine | str | URL) -> None:
    """Upgrade the database to the newest revision (``alembic upgrade head``).

    Idempotent. Concurrent callers are serialised (a PostgreSQL advisory lock, an
    ``IMMEDIATE`` SQLite transaction), so every process may call it at start.
    """
    from alembic import command
    from alembic.util import CommandError

    engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)
    try:
        with database_errors(engine.url, "migrating the schema"), engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                connection.execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"})
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"
                    )
                command.upgrade(alembic_config(connection), "head")
    except CommandError as error:
        raise DatabaseError(
            f"database {mask_url(engine.url)}: migrating the schema: {error}"
        ) from error
    finally:
        if engine is not engine_or_url:
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or None before the first migration."""
    from alembic.migration import MigrationContext

    with database_errors(engine.url, "reading the schema revision"), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision this version of xunjian knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # versions/ always holds at least the first revision
    return head


_migrate_to_head = migrate  # the constructor's ``migrate`` flag shadows the function


class Repository:
    """What every database-backed store shares: one engine, migrations at open, a clock.

    ``clock`` returns the current time (timezone-aware); tests inject a fixed one. Pass an
    existing ``engine`` to share one connection pool between stores of one process.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        clock: Callable[[], datetime] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.url = url
        self.engine: Engine = engine or make_engine(url)
        self._owns_engine = engine is None
        self._clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        if migrate:
            try:
                _migrate_to_head(self.engine)
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        """Closes pooled connections (of an engine this store created)."""
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
