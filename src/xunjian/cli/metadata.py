"""CLI: ``xunjian metadata IMAGE… [--json]`` — what each photo says about itself.

With ``--json`` the output is JSON Lines: one object per image, in the order given, so it
pipes into ``jq`` (``jq -s`` makes an array). An image that cannot be read prints
``{"source": …, "error": …}`` and the command exits 1 after printing all the others.
Without ``--json``: a table for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from xunjian.inspect.metadata import PhotoMetadata


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.command(name="metadata")(metadata)


def metadata(
    images: Annotated[list[Path], typer.Argument(help="JPEG files to read")],
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON object per image and line (JSON Lines)")
    ] = False,
) -> None:
    """Read EXIF/XMP: size, capture time, camera, intrinsics, pose, and what is missing."""
    from xunjian.errors import InputError
    from xunjian.inspect.metadata import extract_metadata
    from xunjian.settings import get_settings

    settings = get_settings()
    results: list[tuple[Path, PhotoMetadata | str]] = []
    for path in images:
        try:
            meta = extract_metadata(
                path,
                max_pixels=settings.max_image_pixels,
                default_sigma_xy_m=settings.gps_sigma_m,
            )
        except InputError as exc:
            results.append((path, exc.reason))
        else:
            results.append((path, meta))
        if as_json:
            typer.echo(json.dumps(_json(*results[-1]), ensure_ascii=False, allow_nan=False))
    if not as_json:
        _table(results)
    if any(isinstance(result, str) for _, result in results):
        raise typer.Exit(1)


def _json(path: Path, result: PhotoMetadata | str) -> dict[str, Any]:
    if isinstance(result, str):
        return {"source": str(path), "error": result}
    return result.to_json()


def _table(results: list[tuple[Path, PhotoMetadata | str]]) -> None:
    """A summary row per image, then each image's problems (they are the long part)."""
    from rich.console import Console
    from rich.table import Table

    table = Table("image", "size", "camera", "lat, lon", "height", "yaw/pitch/roll", "f px")
    notes: list[str] = []
    for path, result in results:
        if isinstance(result, str):
            table.add_row(path.name, "[red]unreadable", *[""] * 5)
            notes.append(f"[red]{path.name}: {result}")
            continue
        pose, k, gps = result.pose, result.intrinsics, result.gps
        table.add_row(
            path.name,
            f"{result.width}×{result.height}",
            " ".join(filter(None, (result.camera_make, result.camera_model))),
            f"{gps['lat']:.6f}, {gps['lon']:.6f}" if gps else "",
            f"{pose.height_m:.1f} m" if pose else "",
            f"{pose.yaw_deg:.1f}/{pose.pitch_deg:.1f}/{pose.roll_deg:.1f}" if pose else "",
            f"{k.fx:.0f}" if k else "",
        )
        when = result.captured_at.isoformat() if result.captured_at else "unknown"
        notes.append(f"[bold]{path.name}[/bold]: captured {when}")
        notes.extend(f"  [yellow]{problem}" for problem in result.problems)
    console = Console()
    console.print(table)
    for note in notes:
        console.print(note, highlight=False)
