"""CLI: ``xunjian issues list|export`` — the issues in the database, as a table or GeoJSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xunjian.cli.output import console, fail
from xunjian.errors import XunjianError

issues_app = typer.Typer(
    name="issues", help="List and export issues (one per real problem).", no_args_is_help=True
)

StatusOption = Annotated[
    list[str] | None, typer.Option("--status", help="only these statuses (repeatable)")
]
ClassOption = Annotated[
    list[str] | None, typer.Option("--class", help="only these classes (repeatable)")
]
BBoxOption = Annotated[str | None, typer.Option(help="area: min_lon,min_lat,max_lon,max_lat")]


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.add_typer(issues_app, name="issues")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``min_lon,min_lat,max_lon,max_lat`` → a tuple; ValueError saying what was expected."""
    try:
        lon0, lat0, lon1, lat1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"expected --bbox min_lon,min_lat,max_lon,max_lat, got {text!r}") from None
    return lon0, lat0, lon1, lat1


def _filters(
    status: list[str] | None, class_name: list[str] | None, bbox: str | None
) -> dict[str, object]:
    return {
        "status": status or None,
        "class_name": class_name or None,
        "bbox": parse_bbox(bbox) if bbox else None,
    }


@issues_app.command("list")
def list_issues(
    status: StatusOption = None,
    class_name: ClassOption = None,
    bbox: BBoxOption = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="GeoJSON on stdout")] = False,
) -> None:
    """List issues, most recently seen first."""
    from xunjian.settings import get_settings
    from xunjian.storage.issues import IssueStore

    try:
        filters = _filters(status, class_name, bbox)
        with IssueStore(get_settings().db_url) as store:
            if as_json:
                doc = store.issues_geojson(**filters, limit=limit)
                typer.echo(json.dumps(doc, ensure_ascii=False, indent=2))
                return
            found = store.issues(**filters, limit=limit)  # type: ignore[arg-type]
    except (XunjianError, ValueError, KeyError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{len(found)} issue(s)")
    for column in ("id", "class", "status", "confidence", "lat", "lon", "seen", "last seen"):
        table.add_column(column)
    for i in found:
        table.add_row(
            i.id,
            i.class_name,
            str(i.status),
            f"{i.confidence:.2f}",
            f"{i.lat:.6f}",
            f"{i.lon:.6f}",
            str(i.observation_count),
            i.last_seen.isoformat(timespec="seconds") if i.last_seen else "—",
        )
    console.print(table)


@issues_app.command()
def export(
    path: Annotated[Path, typer.Argument(help="GeoJSON file to write")],
    status: StatusOption = None,
    class_name: ClassOption = None,
    bbox: BBoxOption = None,
) -> None:
    """Write the issues as a GeoJSON FeatureCollection."""
    from xunjian.settings import get_settings
    from xunjian.storage.issues import IssueStore

    try:
        filters = _filters(status, class_name, bbox)
        with IssueStore(get_settings().db_url) as store:
            doc = store.issues_geojson(**filters)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    except (XunjianError, ValueError, KeyError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(f"{len(doc['features'])} issue(s) → {path}")
