"""CLI: ``xunjian upload DIR``, ``xunjian process BATCH``, ``xunjian run DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from xunjian.cli.output import console, fail, progress_bar, progress_bars, shown
from xunjian.errors import XunjianError

PlatformOption = Annotated[
    str | None, typer.Option(help="drone or vehicle (default: vehicle if the folder has a track)")
]
BatchOption = Annotated[
    str | None, typer.Option("--batch", help="batch id (default: folder name + content hash)")
]


def register(app: typer.Typer) -> None:
    app.command()(upload)
    app.command()(process)
    app.command()(run)


def upload(
    folder: Annotated[Path, typer.Argument(help="folder of drone JPEGs or a vehicle run")],
    batch: BatchOption = None,
    platform: PlatformOption = None,
) -> None:
    """Upload a flight batch to the object store (resumable; manifest written last)."""
    from xunjian.inspect.pipeline import Services
    from xunjian.inspect.upload import upload_batch
    from xunjian.settings import get_settings

    try:
        services = Services.open(get_settings())
        with progress_bar("upload", bytes_mode=True) as update:
            report = upload_batch(
                folder, services.store, batch_id=batch, platform=platform, progress=update
            )
    except XunjianError as exc:
        raise fail(exc) from None
    _print_upload(report)
    typer.echo(report.batch_id)


def process(batch_id: Annotated[str, typer.Argument(help="an uploaded batch id")]) -> None:
    """Process an uploaded batch: ingest its frames (and later stages as they land)."""
    from xunjian.cases.loop import open_case_loop
    from xunjian.inspect.pipeline import Services, process_batch
    from xunjian.settings import get_settings

    try:
        services = Services.open(get_settings())
        case_loop = open_case_loop(services)  # its outbox listener sees the new issues
        with progress_bars("ingest", "detect") as (update, detect):
            result = process_batch(services, batch_id, progress=update, detect_progress=detect)
    except XunjianError as exc:
        raise fail(exc) from None
    _print_result(result)
    _sync_cases(case_loop)
    services.close()


def run(
    folder: Annotated[Path, typer.Argument(help="folder of drone JPEGs or a vehicle run")],
    batch: BatchOption = None,
    platform: PlatformOption = None,
) -> None:
    """Upload a folder and process it."""
    from xunjian.cases.loop import open_case_loop
    from xunjian.inspect.pipeline import Services, process_batch
    from xunjian.inspect.upload import upload_batch
    from xunjian.settings import get_settings

    try:
        services = Services.open(get_settings())
        case_loop = open_case_loop(services)  # its outbox listener sees the new issues
        with progress_bar("upload", bytes_mode=True) as update:
            uploaded = upload_batch(
                folder, services.store, batch_id=batch, platform=platform, progress=update
            )
        with progress_bars("ingest", "detect") as (update, detect):
            result = process_batch(
                services, uploaded.batch_id, progress=update, detect_progress=detect
            )
    except XunjianError as exc:
        raise fail(exc) from None
    _print_upload(uploaded)
    _print_result(result)
    _sync_cases(case_loop)
    services.close()


def _sync_cases(case_loop: object) -> None:
    """One case sync after processing; a case system that fails leaves the outbox waiting."""
    from xunjian.cases.loop import CaseLoop

    assert isinstance(case_loop, CaseLoop)
    try:
        report = case_loop.sync()
    except XunjianError as exc:
        console.print(
            f"  [yellow]cases[/yellow] not delivered now ({shown(exc)}); `xunjian cases sync`"
        )
        return
    finally:
        case_loop.close()
    sent = report.sent
    console.print(
        f"  cases: {sent.delivered + sent.found_existing} delivered, "
        f"{report.outbox.get('pending', 0)} pending, {report.outbox.get('dead', 0)} dead"
        + (f" — stopped: {sent.stopped}" if sent.stopped else "")
    )


def _print_upload(report: object) -> None:
    from xunjian.inspect.upload import UploadReport

    assert isinstance(report, UploadReport)
    console.print(
        f"batch [bold]{shown(report.batch_id)}[/bold] ({report.platform}): "
        f"{len(report.stored)} stored, {len(report.already_there)} already there, "
        f"{len(report.duplicates)} duplicates, {len(report.rejected)} left out; "
        f"manifest {'written' if report.manifest_stored else 'unchanged'}"
    )
    for item in report.rejected:
        console.print(f"  [yellow]left out[/yellow] {shown(item.name)}: {shown(item.reason)}")


def _print_result(result: object) -> None:
    from xunjian.inspect.pipeline import BatchResult, batch_summary

    assert isinstance(result, BatchResult)
    summary = batch_summary(result)
    table = Table(title=f"batch {result.batch_id}")
    for column in (
        "frames",
        "with pose",
        "failed",
        "detections",
        "placed",
        "new issues",
        "updated",
    ):
        table.add_column(column)
    table.add_row(
        *(
            str(summary[k])
            for k in (
                "frames",
                "frames_with_pose",
                "frames_failed",
                "detections",
                "observations",
                "issues_new",
                "issues_updated",
            )
        )
    )
    console.print(table)
    for key, reason in [*result.ingest.failures, *result.frame_errors]:
        console.print(f"  [red]failed[/red] {shown(key)}: {shown(reason)}")
    if result.missing_detectors:
        console.print(
            "  [yellow]no model for[/yellow] "
            + ", ".join(result.missing_detectors)
            + ": those checks did not run"
        )
    if summary["verification"]:
        console.print(f"  verification: {summary['verification']}")
    for name, path in result.outputs.items():
        console.print(f"  {name}: {path}")
