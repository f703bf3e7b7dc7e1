"""CLI: ``xunjian keys create|revoke|list`` — the service's API keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from xunjian.cli.output import console, fail
from xunjian.errors import XunjianError

if TYPE_CHECKING:
    from xunjian.storage.apikeys import KeyStore

keys_app = typer.Typer(help="API keys of the service (stored hashed; shown once).")
ROLE_HELP = "uploader, case_platform, ml_engineer or admin"


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _store() -> KeyStore:
    from xunjian.settings import get_settings
    from xunjian.storage.apikeys import KeyStore

    return KeyStore(get_settings().db_url)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="who the key is for, e.g. team-a-drone")],
    role: Annotated[str, typer.Option(help=ROLE_HELP)] = "uploader",
) -> None:
    """Make a key and print it once (it is stored hashed and cannot be shown again)."""
    try:
        with _store() as store:
            record, key = store.create(name, role)
    except XunjianError as exc:
        raise fail(exc) from None
    console.print(f"created key {record.name!r} ({record.role}); it is shown only now:")
    typer.echo(key)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key: it stops working at once."""
    try:
        with _store() as store:
            done = store.revoke(name)
    except XunjianError as exc:
        raise fail(exc) from None
    if not done:
        raise fail(f"no active key named {name!r}", code=1)
    console.print(f"revoked key {name!r}")


@keys_app.command("list")
def list_keys() -> None:
    """Every key: name, role, prefix, when made, last used, revoked."""
    try:
        with _store() as store:
            records = store.list()
    except XunjianError as exc:
        raise fail(exc) from None
    table = Table("name", "role", "prefix", "created", "last used", "revoked")
    for r in records:
        table.add_row(
            r.name,
            r.role,
            f"xj_{r.prefix}_…",
            r.created_at.isoformat(timespec="seconds"),
            r.last_used_at.isoformat(timespec="seconds") if r.last_used_at else "-",
            r.revoked_at.isoformat(timespec="seconds") if r.revoked_at else "-",
        )
    Console().print(table)  # stdout: the listing is the command's output
