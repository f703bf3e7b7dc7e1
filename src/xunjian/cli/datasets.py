"""CLI: ``xunjian datasets import|export|stats|build`` — labelled data in, training sets out.

``import`` reads any supported format, maps classes onto the taxonomy (``--mapping``) and
writes a normalised copy (YOLO detect by default) plus ``import-report.json``; ``export``
converts without mapping; ``stats`` prints per-class counts and problems (``--json`` for
machines); ``build`` writes one detector's YOLO training set with ``manifest.json``.
``import`` and ``export`` exit 1 when the input had errors (files or boxes dropped), after
writing everything that could be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from xunjian.cli.output import console, fail

if TYPE_CHECKING:
    from xunjian.datasets.mapping import MappingReport
    from xunjian.datasets.records import Dataset
    from xunjian.datasets.resize import ResizeMode

datasets_app = typer.Typer(
    name="datasets",
    help="Import, convert, inspect labelled datasets; build per-detector training sets.",
    no_args_is_help=True,
)

FormatOption = Annotated[
    str, typer.Option("--format", "-f", help="auto, voc, coco, yolo or yolo-seg")
]
MappingOption = Annotated[
    str | None,
    typer.Option(help="mapping table: shipped name (rdd, uav_pdd…), YAML path, or auto"),
]


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.add_typer(datasets_app, name="datasets")


def _load(src: Path, fmt: str, mapping: str | None) -> tuple[Dataset, MappingReport | None]:
    from xunjian.datasets.formats import import_dataset
    from xunjian.datasets.mapping import apply_mapping, guess_mapping, load_mapping
    from xunjian.errors import XunjianError

    try:
        dataset = import_dataset(src, fmt)
        if mapping is None:
            return dataset, None
        table = guess_mapping(dataset) if mapping == "auto" else load_mapping(mapping)
        return apply_mapping(dataset, table)
    except XunjianError as error:
        raise fail(error) from None


@datasets_app.command("import")
def import_command(
    src: Annotated[Path, typer.Argument(help="dataset folder (or COCO JSON file)")],
    out: Annotated[Path, typer.Option(help="folder to write the normalised dataset into")],
    fmt: FormatOption = "auto",
    mapping: MappingOption = None,
    to: Annotated[str, typer.Option(help="yolo (detect), coco or voc")] = "yolo",
    link: Annotated[
        bool,
        typer.Option(
            help="hard-link unchanged images instead of copying (training may rewrite them)"
        ),
    ] = False,
) -> None:
    """Read a dataset, map its classes, validate it and write a normalised copy."""
    dataset, mapped = _load(src, fmt, mapping)
    _write(dataset, out, to, link)
    report = _report(dataset, mapped)
    (out / "import-report.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    _print_table(report, src)
    _exit_on_errors(report)


@datasets_app.command("export")
def export_command(
    src: Annotated[Path, typer.Argument(help="dataset folder (or COCO JSON file)")],
    out: Annotated[Path, typer.Option(help="folder to write into")],
    to: Annotated[str, typer.Option(help="yolo (detect), coco or voc")] = "coco",
    fmt: FormatOption = "auto",
    link: Annotated[
        bool,
        typer.Option(
            help="hard-link unchanged images instead of copying (training may rewrite them)"
        ),
    ] = False,
) -> None:
    """Convert a dataset to another format, class names unchanged."""
    dataset, _ = _load(src, fmt, None)
    _write(dataset, out, to, link)
    report = _report(dataset, None)
    _print_table(report, src)
    _exit_on_errors(report)


@datasets_app.command("stats")
def stats_command(
    src: Annotated[Path, typer.Argument(help="dataset folder (or COCO JSON file)")],
    fmt: FormatOption = "auto",
    mapping: MappingOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    show: Annotated[int, typer.Option(help="problems to list (all with --json)")] = 20,
) -> None:
    """Per-class boxes and images, images, boxes, and the problems met reading them."""
    dataset, mapped = _load(src, fmt, mapping)
    report = _report(dataset, mapped)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        _print_table(report, src, show)


@datasets_app.command("build")
def build_command(
    detector: Annotated[str, typer.Argument(help="road_damage, illegal_dumping or spoil_truck")],
    out: Annotated[Path, typer.Option(help="folder for the YOLO training set")],
    synthetic: Annotated[
        list[Path] | None,
        typer.Option(help="YOLO folder from `xunjian synth export-yolo` (train only; repeat)"),
    ] = None,
    imgsz: Annotated[int, typer.Option(help="training image size in pixels")] = 640,
    seed: Annotated[int, typer.Option(help="seed of the train/val split")] = 0,
    data_root: Annotated[
        Path,
        typer.Option(envvar="XUNJIAN_REAL_DATA_DIR", help="folder holding the real sample sets"),
    ] = Path("../shared/data"),
    resize: Annotated[str, typer.Option(help="none, fit or tile large images")] = "none",
    val_fraction: Annotated[float, typer.Option(help="val share of unsplit sources")] = 0.2,
    link: Annotated[
        bool,
        typer.Option(
            help="hard-link unchanged images instead of copying (training may rewrite them)"
        ),
    ] = False,
) -> None:
    """Write one detector's YOLO training set (val real where real data exists)."""
    from rich.table import Table

    from xunjian.core.taxonomy import Detector
    from xunjian.datasets.build import BuildOptions, build_training_set
    from xunjian.datasets.resize import RESIZE_MODES
    from xunjian.errors import XunjianError

    if detector not in {d.value for d in Detector}:
        raise fail(f"unknown detector {detector!r}; expected one of {', '.join(Detector)}")
    if resize not in RESIZE_MODES:
        raise fail(f"--resize {resize!r}; expected one of {', '.join(RESIZE_MODES)}")
    mode = cast("ResizeMode", resize)
    options = BuildOptions(
        imgsz=imgsz, seed=seed, val_fraction=val_fraction, resize=mode, link=link
    )
    try:
        result = build_training_set(
            detector, out, data_root=data_root, synthetic=synthetic or [], options=options
        )
    except XunjianError as error:
        raise fail(error) from None
    manifest = result.manifest
    splits = manifest["splits"]
    table = Table("", *splits, title=f"{detector} → {out}")
    for row in ("images", "real_images", "synthetic_images", "background_images", "groups"):
        table.add_row(row.replace("_", " "), *(str(splits[s][row]) for s in splits))
    table.add_section()
    for name in manifest["classes"]:
        table.add_row(f"{name} boxes", *(str(splits[s]["boxes"][name]) for s in splits))
    console.print(table)
    for note in manifest["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    typer.echo(str(result.data_yaml))


def _write(dataset: Dataset, out: Path, to: str, link: bool) -> None:
    from xunjian.datasets.formats import export_dataset
    from xunjian.errors import XunjianError

    try:
        export_dataset(dataset, out, to, link=link)
    except XunjianError as error:
        raise fail(error) from None


def _report(dataset: Dataset, mapped: MappingReport | None) -> dict[str, Any]:
    from xunjian.datasets.validate import report

    result = report(dataset).as_dict()
    result["sources"] = list(dataset.sources)
    result["licences"] = dataset.licences
    if mapped is not None:
        result["mapping"] = {
            "name": mapped.mapping,
            "mapped": [{"from": s, "to": t, "boxes": n} for (s, t), n in mapped.mapped.items()],
            "kept_by_name": mapped.unmapped,
            "not_in_table": mapped.unexpected,
        }
    return result


def _print_table(report: dict[str, Any], src: Path, show: int = 20) -> None:
    """The counts table, problem totals and the first ``show`` problems (paths under SRC)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out = Console()
    table = Table("class", "boxes", "images", title=report["name"])
    for name, counts in report["classes"].items():
        table.add_row(name, str(counts["boxes"]), str(counts["images"]))
    table.add_section()
    table.add_row("[bold]all", str(report["boxes"]), str(report["images"]))
    out.print(table)
    splits = ", ".join(f"{k} {v}" for k, v in report["splits"].items())
    out.print(f"images {report['images']} ({splits}); background {report['background_images']}")
    out.print(f"problems: {report['errors']} errors, {report['warnings']} warnings")
    for kind, count in report["problem_kinds"].items():
        out.print(f"  {kind}: {count}")
    for problem in report["problems"][:show]:
        colour = "red" if problem["severity"] == "error" else "yellow"
        where = escape(problem["file"].removeprefix(f"{src}/"))
        reason = escape(problem["reason"])
        out.print(f"  [{colour}]{problem['severity']}[/{colour}] {where}: {reason}")
    if len(report["problems"]) > show:
        out.print(f"  … {len(report['problems']) - show} more (--json lists all)")
    mapping = report.get("mapping")
    if mapping and mapping["not_in_table"]:
        names = ", ".join(mapping["not_in_table"])
        out.print(f"[yellow]classes kept by name, not in table {mapping['name']}:[/yellow] {names}")


def _exit_on_errors(report: dict[str, Any]) -> None:
    if report["errors"]:
        console.print(f"[red]{report['errors']} errors[/red]: see the report for files")
        raise typer.Exit(1)
