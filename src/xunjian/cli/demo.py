"""CLI: ``xunjian demo`` — the whole job on embedded defaults."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from xunjian.cli.output import console, fail, progress_bar
from xunjian.errors import XunjianError


def register(app: typer.Typer) -> None:
    app.command()(demo)


def demo(seed: Annotated[int, typer.Option(help="test-range seed")] = 7) -> None:
    """Synthesise a test-range flight and run the pipeline on it with embedded defaults."""
    from xunjian.demo import run_demo
    from xunjian.settings import get_settings

    settings = get_settings()
    console.print(
        f"[bold]xunjian demo[/bold]: store {settings.store_dir}, database {settings.db_url}"
    )
    try:
        with progress_bar("process") as update:
            result = run_demo(settings, seed=seed, progress=update)
    except XunjianError as exc:
        raise fail(exc) from None
    summary = result.summary
    table = Table(title=f"batch {summary['batch_id']}")
    for column in ("frames", "with pose", "failed", "truth targets"):
        table.add_column(column)
    table.add_row(
        str(summary["frames_ingested"]),
        str(summary["frames_with_pose"]),
        str(len(summary["frames_failed"])),
        str(summary["truth"]["targets"]),
    )
    console.print(table)
    errors = summary["metadata_vs_truth"]
    if errors.get("compared_frames"):
        console.print(
            "metadata pose vs exact pose: position error median "
            f"{errors['position_error_m_median']} m (max {errors['position_error_m_max']} m), "
            f"yaw {errors['yaw_error_deg_median']}°, height {errors['height_error_m_median']} m"
            f" (injected noise: {summary['injected_noise']})"
        )
    console.print(f"footprints: {summary['outputs']['footprints']}")
    console.print(f"summary:    {result.out_dir / 'summary.json'}")
