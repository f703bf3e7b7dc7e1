"""Alembic environment for xunjian's schema; run by :func:`xunjian.storage.db.migrate`.

``migrate`` passes an open connection in ``config.attributes["connection"]`` and owns the
transaction. A developer writing a new revision may instead point Alembic at a database with
the ``sqlalchemy.url`` option (``xunjian.storage.db.alembic_config()`` then
``alembic.command.revision(config, message, autogenerate=True)``).

This module may import SQLAlchemy, Alembic and ``xunjian.storage``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from xunjian.storage.db import make_engine
from xunjian.storage.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later revisions use batch operations there.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set the sqlalchemy.url option or pass a connection to migrate")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("xunjian migrates online only: call xunjian.storage.db.migrate()")
run_migrations_online()
