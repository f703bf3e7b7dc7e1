"""``xunjian keys create|list|revoke`` and ``xunjian serve``."""

from __future__ import annotations

from typer.testing import CliRunner

from xunjian.cli.app import app
from xunjian.settings import Settings
from xunjian.storage.apikeys import KEY_PATTERN, KeyStore

runner = CliRunner()


def test_keys_are_made_listed_and_revoked(settings: Settings) -> None:
    made = runner.invoke(app, ["keys", "create", "team-a", "--role", "uploader"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    assert KEY_PATTERN.match(key)
    with KeyStore(settings.db_url) as store:
        assert store.authenticate(key).role == "uploader"

    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0
    assert "team-a" in listed.stdout and "uploader" in listed.stdout
    assert key not in listed.stdout  # only the prefix is ever shown again

    again = runner.invoke(app, ["keys", "create", "team-a"])
    assert again.exit_code == 2 and "exists already" in again.output
    bad_role = runner.invoke(app, ["keys", "create", "x", "--role", "root"])
    assert bad_role.exit_code == 2 and "expected one of" in bad_role.output

    assert runner.invoke(app, ["keys", "revoke", "team-a"]).exit_code == 0
    with KeyStore(settings.db_url) as store:
        assert store.authenticate(key) is None
    gone = runner.invoke(app, ["keys", "revoke", "team-a"])
    assert gone.exit_code == 1 and "no active key" in gone.output


def test_serve_says_what_it_does() -> None:
    shown = runner.invoke(app, ["serve", "--help"])
    assert shown.exit_code == 0
    assert "--host" in shown.stdout and "--port" in shown.stdout
