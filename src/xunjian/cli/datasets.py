"""CLI: ``xunjian datasets import|export|stats|build`` — labelled data in, training sets out.

``import`` reads any supported format, maps classes onto the taxonomy (``--mapping``) and
writes a normalised copy (YOLO detect by default) plus ``import-report.json``; ``export``
converts without mapping; ``stats`` prints per-class counts and problems (``--json`` for
machines); ``build`` writes one detector's YOLO training set with ``manifest.json``
(``--feedback DIR`` adds a feedback part to its train split). ``publish`` uploads a build as an
immutable, content-hashed version (``datasets/<name>/<version>/``), ``versions`` lists them,
``pull NAME@VERSION DIR`` downloads one; ``feedback`` turns reviewers' and the case platform's
verdicts on issues into a YOLO part (hard negatives, relabelled and confirmed boxes).
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
    from xunjian.storage.objectstore import ObjectStore

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
    feedback: Annotated[
        list[Path] | None,
        typer.Option(help="feedback part from `xunjian datasets feedback` (train only; repeat)"),
    ] = None,
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
        manifest = result.manifest
        if feedback:
            from xunjian.datasets.feedback import add_feedback_part

            for part in feedback:
                manifest = add_feedback_part(out, part)
    except XunjianError as error:
        raise fail(error) from None
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


# ---- dataset versions and feedback (the ML loop; docs/ml-loop.md) ----------------------


def _store() -> ObjectStore:
    from xunjian.settings import get_settings
    from xunjian.storage.objectstore import open_store

    return open_store(get_settings())


@datasets_app.command("publish")
def publish_command(
    folder: Annotated[Path, typer.Argument(help="a built dataset (xunjian datasets build)")],
    name: Annotated[
        str | None, typer.Option(help="dataset name (default: the build's detector)")
    ] = None,
) -> None:
    """Upload a build as an immutable, content-hashed version (a no-op if already there)."""
    from xunjian.cli.output import progress_bar
    from xunjian.datasets.versions import publish_dataset
    from xunjian.errors import XunjianError

    try:
        store = _store()
        with progress_bar("publish") as update:
            result = publish_dataset(store, folder, name=name, progress=update)
    except XunjianError as error:
        raise fail(error) from None
    if result.created:
        console.print(
            f"published {result.ref}: {result.uploaded} files uploaded, "
            f"{result.skipped} already there → {result.prefix}/"
        )
    else:
        console.print(f"{result.ref} is already published: nothing uploaded")
    typer.echo(result.ref)


@datasets_app.command("versions")
def versions_command(
    name: Annotated[str | None, typer.Argument(help="dataset name (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Published dataset versions, oldest first."""
    from rich.table import Table

    from xunjian.datasets.versions import list_versions
    from xunjian.errors import XunjianError

    try:
        versions = list_versions(_store(), name)
    except XunjianError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in versions], indent=1, ensure_ascii=False))
        return
    table = Table("version", "published", "images", "boxes per class", "sources")
    for v in versions:
        counts = ", ".join(f"{c} {n}" for c, n in v.class_counts.items())
        sources = ", ".join(str(s.get("name")) for s in v.manifest.get("sources", []))
        table.add_row(v.ref, v.published_at, str(v.images), counts, sources)
    console.print(table)


@datasets_app.command("pull")
def pull_command(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION (a unique prefix, or latest)")],
    out: Annotated[Path, typer.Argument(help="folder to download into")],
) -> None:
    """Download a dataset version (SHA-256 checked); prints its data.yaml."""
    from xunjian.cli.output import progress_bar
    from xunjian.datasets.versions import pull_dataset
    from xunjian.errors import XunjianError

    try:
        store = _store()
        with progress_bar("pull") as update:
            data_yaml = pull_dataset(store, ref, out, progress=update)
    except XunjianError as error:
        raise fail(error) from None
    typer.echo(str(data_yaml))


@datasets_app.command("feedback")
def feedback_command(
    out: Annotated[Path, typer.Option(help="folder for the YOLO feedback part")],
    since_id: Annotated[
        int | None, typer.Option(help="only feedback after this id (default: all)")
    ] = None,
    context: Annotated[float, typer.Option(help="crop side in box sizes")] = 3.0,
    max_per_issue: Annotated[int, typer.Option(help="observations per issue")] = 8,
) -> None:
    """Turn feedback on issues into labelled crops: hard negatives, relabelled, confirmed."""
    from xunjian.datasets.feedback import FeedbackOptions, build_feedback_part
    from xunjian.errors import XunjianError
    from xunjian.settings import get_settings
    from xunjian.storage.issues import IssueStore
    from xunjian.storage.objectstore import open_store

    settings = get_settings()
    options = FeedbackOptions(context=context, max_per_issue=max_per_issue)
    try:
        with IssueStore(settings.db_url) as issues:
            part = build_feedback_part(
                issues, open_store(settings), out, since_id=since_id, options=options
            )
    except XunjianError as error:
        raise fail(error) from None
    manifest = part.manifest
    kinds = ", ".join(f"{k} {n}" for k, n in manifest["feedback"].items()) or "none"
    console.print(f"feedback read: {kinds}")
    examples = ", ".join(f"{k} {n}" for k, n in manifest["examples"].items()) or "none"
    console.print(f"examples written: {examples} ({manifest['hard_negatives']} hard negatives)")
    for skipped in manifest["skipped"]:
        console.print(f"[yellow]skipped[/yellow] {skipped['issue_id']}: {skipped['reason']}")
    for note in manifest["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"next time: --since-id {manifest['last_feedback_id']} for newer feedback only")
    typer.echo(str(part.data_yaml))
