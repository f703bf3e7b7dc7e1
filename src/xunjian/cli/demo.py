"""CLI: ``xunjian demo`` — the whole job on embedded defaults."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from xunjian.cli.output import console, fail, progress_bars
from xunjian.errors import XunjianError


def register(app: typer.Typer) -> None:
    app.command()(demo)


def _fmt(value: Any) -> str:
    return "—" if value is None else str(value)


def demo(seed: Annotated[int, typer.Option(help="test-range seed")] = 7) -> None:
    """Synthesise a test-range flight and run the whole pipeline on it, on embedded defaults."""
    from xunjian.demo import run_demo
    from xunjian.settings import get_settings

    settings = get_settings()
    console.print(
        f"[bold]xunjian demo[/bold]: store {settings.store_dir}, database {settings.db_url}"
    )
    try:
        with progress_bars("ingest", "detect") as (update, detect):
            result = run_demo(settings, seed=seed, progress=update, detect_progress=detect)
    except XunjianError as exc:
        raise fail(exc) from None
    summary = result.summary
    table = Table(title=f"batch {summary['batch_id']}")
    for column in ("frames", "with pose", "failed", "detections", "placed", "issues"):
        table.add_column(column)
    table.add_row(
        *(
            _fmt(summary[k])
            for k in (
                "frames",
                "frames_with_pose",
                "frames_failed",
                "detections",
                "observations",
                "issues_new",
            )
        )
    )
    console.print(table)
    if summary["detectors_missing"]:
        console.print(f"[yellow]no model for[/yellow] {', '.join(summary['detectors_missing'])}")
    vs = Table(title="against the test range's ground truth")
    for column in (
        "",
        "issues",
        "visible targets",
        "precision",
        "recall",
        "duplicates",
        "median error (m)",
    ):
        vs.add_column(column)
    for name, key in (
        ("static problems", "issues_vs_truth"),
        ("spoil-truck events", "events_vs_truth"),
    ):
        s = summary[key]
        vs.add_row(
            name,
            _fmt(s["issues"]),
            _fmt(s["targets_visible"]),
            _fmt(s["precision"]),
            _fmt(s["recall"]),
            _fmt(s["duplicate_rate"]),
            _fmt(s["median_location_error_m"]),
        )
    console.print(vs)
    errors = summary["metadata_vs_truth"]
    if errors.get("compared_frames"):
        console.print(
            "metadata pose vs exact pose: position error median "
            f"{errors['position_error_m_median']} m (max {errors['position_error_m_max']} m), "
            f"yaw {errors['yaw_error_deg_median']}°, height {errors['height_error_m_median']} m"
        )
    cases = summary["cases"]
    console.print(
        f"cases delivered to {cases['sink']}: {cases['delivered']} (outbox {cases['outbox']})"
    )
    for name, path in summary["outputs"].items():
        console.print(f"{name}: {path}")
