"""CLI: ``xunjian cases sync|run|replay|list|stats|check`` — the closed loop with the case system.

``sync`` delivers every due outbox message and polls case statuses once; ``run`` repeats it
every ``--interval`` seconds until SIGINT/SIGTERM (the message in flight finishes first);
``replay`` moves dead letters back to pending; ``list`` shows outbox messages; ``stats``
prints 评价 figures; ``check`` validates the mapping against the configured case system.
``sync`` exits 1 when the case system refused or could not be reached (messages stay in the
outbox), 2 on a configuration error.
"""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from xunjian.cli.output import console, fail
from xunjian.errors import CaseSystemError, XunjianError

if TYPE_CHECKING:
    from xunjian.cases.loop import SyncReport

cases_app = typer.Typer(
    name="cases",
    help="Deliver issues to the case system exactly once; pull statuses; 评价 statistics.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.add_typer(cases_app, name="cases")


def _print_sync(report: SyncReport) -> None:
    r = report.as_dict()
    console.print(
        f"delivered {r['delivered']}, found already there {r['found_existing']}, "
        f"retrying {r['retrying']}, dead {r['dead']}; polled {r['polled']} case(s), "
        f"{r['status_changes']} status change(s); outbox now "
        + ", ".join(f"{k} {v}" for k, v in r["outbox"].items())
    )
    for error in r["errors"][-5:]:
        console.print(f"  [yellow]failed[/yellow] {error}")
    for error in r["status_errors"][-5:]:
        console.print(f"  [yellow]status[/yellow] {error}")
    if r["stopped"]:
        console.print(f"[red]stopped:[/red] {r['stopped']}")


@cases_app.command()
def sync(as_json: JsonOption = False) -> None:
    """Deliver pending messages and poll case statuses, once."""
    from xunjian.cases.loop import open_case_loop
    from xunjian.inspect.pipeline import Services
    from xunjian.settings import get_settings

    try:
        services = Services.open(get_settings())
    except XunjianError as exc:
        raise fail(exc) from None
    try:
        loop = open_case_loop(services)
        try:
            report = loop.sync()
        finally:
            loop.close()
    except CaseSystemError as exc:  # refused or unreachable: everything stays in the outbox
        raise fail(exc, code=1) from None
    except XunjianError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        _print_sync(report)
    if report.sent.stopped:
        raise typer.Exit(1)


@cases_app.command()
def run(
    interval: Annotated[
        float | None, typer.Option(help="seconds between rounds (default: case_poll_interval_s)")
    ] = None,
) -> None:
    """Deliver and poll continuously until SIGINT or SIGTERM."""
    from xunjian.cases.loop import open_case_loop
    from xunjian.inspect.pipeline import Services
    from xunjian.settings import get_settings

    settings = get_settings()
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signal.Signals(signum).name)  # no I/O here: it may interrupt an import
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        services = Services.open(settings)
    except XunjianError as exc:
        raise fail(exc) from None
    try:
        loop = open_case_loop(services)
        try:
            rounds = loop.run(
                interval if interval is not None else settings.case_poll_interval_s,
                stop,
                on_round=lambda r: _print_sync(r) if r.sent.delivered or r.sent.errors else None,
                on_error=lambda e: console.print(f"[yellow]case system:[/yellow] {e}"),
            )
        finally:
            loop.close()
    except XunjianError as exc:
        raise fail(exc) from None
    finally:
        services.close()
    if received:
        console.print(f"{received[0]}: stopping after the current message")
    console.print(f"stopped after {rounds} round(s)")


def _store() -> Any:
    from xunjian.settings import get_settings
    from xunjian.storage.issues import IssueStore

    return IssueStore(get_settings().db_url)


@cases_app.command()
def replay(
    message_id: Annotated[int | None, typer.Option("--id", help="one dead message")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="every dead message")] = False,
) -> None:
    """Move dead letters back to pending (attempts reset; the case is looked up first)."""
    from xunjian.cases.outbox import Outbox

    try:
        with _store() as store:
            moved = Outbox(store).replay(message_id=message_id, all_dead=all_dead)
    except XunjianError as exc:
        raise fail(exc) from None
    console.print(f"{moved} message(s) back to pending; `xunjian cases sync` sends them")


@cases_app.command("list")
def list_messages(
    state: Annotated[str | None, typer.Option(help="pending, delivered or dead")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List outbox messages (oldest first)."""
    from xunjian.cases.outbox import Outbox

    try:
        with _store() as store:
            messages = Outbox(store).messages(state=state, limit=limit)
    except XunjianError as exc:
        raise fail(exc) from None
    if as_json:
        rows = [
            {
                "id": m.id,
                "key": m.idempotency_key,
                "issue_id": m.issue_id,
                "connector": m.connector,
                "kind": m.kind,
                "state": m.state,
                "attempts": m.attempts,
                "next_attempt_at": m.next_attempt_at.isoformat(),
                "last_error": m.last_error,
                "delivered_at": m.delivered_at.isoformat() if m.delivered_at else None,
            }
            for m in messages
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table(title="outbox")
    for column in ("id", "issue", "kind", "connector", "state", "tries", "last error"):
        table.add_column(column)
    for m in messages:
        table.add_row(
            str(m.id),
            m.issue_id,
            m.kind,
            m.connector,
            m.state,
            str(m.attempts),
            (m.last_error or "")[:80],
        )
    console.print(table)


@cases_app.command()
def stats(
    days: Annotated[int, typer.Option(help="verified within this many days of closing")] = 7,
    bbox: Annotated[str | None, typer.Option(help="area: min_lon,min_lat,max_lon,max_lat")] = None,
    since: Annotated[
        str | None, typer.Option(help="issues first seen since (ISO date; UTC if no zone)")
    ] = None,
    areas: Annotated[
        Path | None,
        typer.Option(help="GeoJSON of named areas (default: XUNJIAN_AREAS_FILE): per-area rows"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """评价: found, published, closed, verified fixed, recurred, time to close — per class
    (and per area, with --areas or XUNJIAN_AREAS_FILE)."""
    from xunjian.cases.stats import evaluation_stats
    from xunjian.cli.issues import parse_bbox
    from xunjian.core.areas import load_areas
    from xunjian.settings import get_settings

    try:
        area = parse_bbox(bbox) if bbox else None
        start = datetime.fromisoformat(since) if since else None
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        areas_file = areas or get_settings().areas_file
        area_map = load_areas(areas_file) if areas_file else None
        with _store() as store:
            figures = evaluation_stats(
                store, within_days=days, area=area, since=start, areas=area_map
            )
    except ValueError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    rows = [(f"{n} {v['zh']}", v) for n, v in figures["by_class"].items()]
    title = f"评价 (verified within {days} days)"
    console.print(_evaluation_table(title, "class", [*rows, ("all", figures["overall"])], days))
    if "by_area" in figures:
        rows = list(figures["by_area"].items())
        console.print(_evaluation_table("评价 per area", "area", rows, days))


def _evaluation_table(
    title: str, first: str, rows: list[tuple[str, dict[str, Any]]], days: int
) -> Table:
    columns = ("found", "published", "closed", "verified_fixed", "recurred", "rejected")
    table = Table(title=title)
    for column in (first, *columns, "median h to close", f"verified ≤ {days} d"):
        table.add_column(column)
    for name, v in rows:
        share = v["share_verified_within_days"]
        table.add_row(
            name,
            *(str(v[c]) for c in columns),
            "—" if v["median_hours_to_close"] is None else str(v["median_hours_to_close"]),
            "—" if share is None else f"{share:.0%}",
        )
    return table


@cases_app.command()
def check() -> None:
    """Validate the mapping against the configured case system (service codes, attributes)."""
    from xunjian.cases.connectors import build_connector
    from xunjian.cases.mapping import load_mapping
    from xunjian.settings import get_settings

    settings = get_settings()
    try:
        mapping = load_mapping(settings.case_mapping)
        connector = build_connector(settings, mapping)
        try:
            notes = connector.check()
        finally:
            connector.close()
    except XunjianError as exc:
        raise fail(exc) from None
    for note in notes:
        console.print(note)
    console.print(f"[green]ok[/green]: {settings.case_system} connector ready")
