"""Alembic migrations of the xunjian schema (``env.py``, ``versions/``); see ``storage.db``.

A package only so that installers ship the revision files; nothing imports it.
"""
