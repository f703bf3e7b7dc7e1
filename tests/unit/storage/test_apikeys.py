"""API keys: made once, stored hashed, revoked for good; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from xunjian.errors import InputError
from xunjian.storage.access_tables import API_KEYS
from xunjian.storage.apikeys import KEY_PATTERN, KeyStore, hash_key


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_key_is_shown_once_stored_hashed_and_authenticates(database_url: str) -> None:
    clock = Clock()
    with KeyStore(database_url, clock=clock) as store:
        record, key = store.create("team-a", "uploader")
        assert KEY_PATTERN.match(key)
        assert key.startswith(f"xj_{record.prefix}_")
        with store.engine.connect() as conn:
            row = conn.execute(select(API_KEYS)).one()
        assert row.key_hash == hash_key(key)
        assert key not in repr(tuple(row))  # the secret itself is nowhere in the row

        found = store.authenticate(key)
        assert found is not None and found.name == "team-a" and found.role == "uploader"
        assert found.last_used_at is None  # the record read before the stamp
        assert store.get("team-a").last_used_at == clock.now
        clock.now += timedelta(seconds=10)
        store.authenticate(key)
        assert store.get("team-a").last_used_at == clock.now - timedelta(seconds=10)

        for wrong in (
            None,
            "",
            key[:-1] + ("A" if key[-1] != "A" else "B"),
            "xj_1234_abc",
            key + " ",
        ):
            assert store.authenticate(wrong) is None


def test_revoked_keys_stop_working_and_names_stay_taken(database_url: str) -> None:
    with KeyStore(database_url) as store:
        _, key = store.create("case-platform", "case_platform")
        store.create("ml", "ml_engineer")
        assert store.revoke("case-platform") is True
        assert store.revoke("case-platform") is False
        assert store.authenticate(key) is None
        with pytest.raises(InputError, match="exists already"):
            store.create("case-platform", "admin")
        listed = {k.name: k for k in store.list()}
        assert set(listed) == {"case-platform", "ml"}
        assert not listed["case-platform"].active and listed["ml"].active


def test_bad_names_and_roles_are_refused(tmp_path) -> None:
    with KeyStore(f"sqlite:///{tmp_path / 'k.db'}") as store:
        with pytest.raises(InputError, match="expected one of uploader"):
            store.create("x", "root")
        for name in ("", " lead", "a/b", "x" * 200):
            with pytest.raises(InputError, match="key name"):
                store.create(name, "admin")
