"""Alembic revisions, one file per schema change, applied in order by ``storage.db.migrate``."""
