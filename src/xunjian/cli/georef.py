"""CLI: ``xunjian georef IMAGE --pixel U,V [--pixel U,V…] [--flight DIR] [--json]``.

Places pixels of one photo on the ground from its own metadata (specs/georef.md). ``--json``
prints one object: ``{"image", "points": [{"pixel": [u, v], "lat", "lon", "sigma_m"}]}``; a
pixel that cannot be placed gives ``{"pixel", "error"}`` in its place (exit 1 at the end), a
photo that cannot be georeferenced ``{"image", "error"}`` (exit 1). With ``--flight DIR`` the
photos of DIR (and DIR/images) are registered together first and IMAGE is georeferenced with
its refined pose; the object then also carries ``"refined": true`` and ``"corrections"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xunjian.cli.output import console, fail
from xunjian.errors import InputError, XunjianError

if TYPE_CHECKING:
    from xunjian.core.records import Frame

_SUFFIXES = {".jpg", ".jpeg"}


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.command(name="georef")(georef)


def _parse_pixel(text: str) -> tuple[float, float]:
    try:
        u, v = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected U,V (two numbers), got {text!r}") from None
    return u, v


def _frame(path: Path) -> Frame:
    from xunjian.inspect.metadata import extract_metadata
    from xunjian.settings import get_settings

    settings = get_settings()
    meta = extract_metadata(
        path, max_pixels=settings.max_image_pixels, default_sigma_xy_m=settings.gps_sigma_m
    )
    return meta.to_frame(batch_id="cli", key=str(path.resolve()), sha256="")


def _refined(image: Path, flight: Path) -> tuple[Frame, list[tuple[str, str, str]]]:
    """IMAGE's frame with the pose refined from the whole flight, and its corrections."""
    from xunjian.inspect.decode import decode_image
    from xunjian.inspect.refine import refine_flight

    folders = [flight, flight / "images"]
    paths = sorted(
        {
            p.resolve()
            for d in folders
            if d.is_dir()
            for p in d.iterdir()
            if p.suffix.lower() in _SUFFIXES
        }
    )
    target = image.resolve()
    if target not in paths:
        paths.append(target)
    frames: list[Frame] = []
    for p in paths:
        try:
            frames.append(_frame(p))
        except InputError as exc:
            if p == target:
                raise
            console.print(f"[yellow]skipped[/yellow] {p.name}: {exc.reason}")

    def pixels(frame: Frame) -> Any:
        scale = min(1.0, 1000.0 / max(frame.width, frame.height))
        return decode_image(Path(frame.key), working_scale=scale).pixels

    report = refine_flight(frames, pixels)
    mine = next(f for f in report.frames if f.key == str(target))
    return mine, [c for c in report.corrections if c[0] == str(target)]


def georef(
    image: Annotated[Path, typer.Argument(help="the photo (JPEG with EXIF / DJI XMP)")],
    pixel: Annotated[list[str], typer.Option("--pixel", help="U,V in image pixels (repeatable)")],
    flight: Annotated[
        Path | None, typer.Option(help="refine the pose from this flight's overlapping photos")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Pixel → ground: latitude, longitude and σ (metres) of each --pixel."""
    from xunjian.inspect.georef import pixel_points

    uv = [_parse_pixel(p) for p in pixel]
    doc: dict[str, Any] = {"image": str(image)}
    try:
        if flight is not None:
            frame, corrections = _refined(image, flight)
            doc.update(refined=True, corrections=[list(c) for c in corrections])
        else:
            frame = _frame(image)
        results = pixel_points(frame, uv)
    except InputError as exc:
        _emit({"image": str(image), "error": exc.reason}, as_json)
        raise typer.Exit(1) from None
    except XunjianError as exc:
        if not as_json:
            raise fail(exc, 1) from None
        _emit({"image": str(image), "error": str(exc)}, as_json)
        raise typer.Exit(1) from None
    points: list[dict[str, Any]] = []
    for (u, v), result in zip(uv, results, strict=True):
        if isinstance(result, str):
            points.append({"pixel": [u, v], "error": result})
        else:
            lat, lon, sigma = result
            points.append(
                {
                    "pixel": [u, v],
                    "lat": round(lat, 8),
                    "lon": round(lon, 8),
                    "sigma_m": round(sigma, 3),
                }
            )
    doc["points"] = points
    _emit(doc, as_json)
    if any("error" in p for p in points):
        raise typer.Exit(1)


def _emit(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(doc, ensure_ascii=False, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if "error" in doc:
        out.print(f"[red]{doc['image']}: {doc['error']}", highlight=False)
        return
    table = Table("pixel", "lat", "lon", "σ m", title=doc["image"])
    for p in doc["points"]:
        u, v = p["pixel"]
        if "error" in p:
            table.add_row(f"{u:g},{v:g}", f"[red]{p['error']}", "", "")
        else:
            table.add_row(
                f"{u:g},{v:g}", f"{p['lat']:.7f}", f"{p['lon']:.7f}", f"{p['sigma_m']:.2f}"
            )
    out.print(table)
    for key, what, why in doc.get("corrections", []):
        out.print(f"[yellow]corrected[/yellow] {Path(key).name}: {what} — {why}", highlight=False)
