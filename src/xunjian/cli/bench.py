"""CLI: ``xunjian bench [NAME…] [--quick] [--out bench.json] [--model PATH] [--list]``.

Runs the selected benchmarks (default: every one available; see docs/benchmarks.md), writes
ONE JSON document ``{"machine", "quick", "benchmarks": {name: {status, inputs, figures,
ratios, wall_s}}}``
to ``--out`` and prints a short table of the headline figures. Unknown names stop the command
before anything runs (exit 2); a benchmark that fails is recorded with its error and the exit
code is 1 at the end. Heavy imports happen inside the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from xunjian.cli.output import console, fail


def register(app: typer.Typer) -> None:
    """Adds this module's command to the application."""
    app.command()(bench)


def bench(
    names: Annotated[
        list[str] | None, typer.Argument(help="benchmarks to run (default: all available)")
    ] = None,
    quick: Annotated[bool, typer.Option(help="small inputs: well under a minute")] = False,
    out: Annotated[Path, typer.Option("--out", help="where to write the JSON")] = Path(
        "bench.json"
    ),
    model: Annotated[
        Path | None,
        typer.Option(help="an .onnx model (a .pt next to it is used too) for the detect benches"),
    ] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="list the benchmarks and whether they can run")
    ] = False,
) -> None:
    """Run benchmarks and write their figures, with the machine, as one JSON document."""
    from rich.table import Table

    from xunjian.bench.runner import BENCHMARKS, UnknownBenchmarkError, available, select

    if list_only:
        table = Table("benchmark", "measures", "status")
        for name, reason in available(quick).items():
            table.add_row(name, BENCHMARKS[name].measures, reason or "available")
        console.print(table)
        return
    try:
        selected = select(names or [])
    except UnknownBenchmarkError as exc:
        raise fail(str(exc)) from None
    if model is not None and not model.is_file():
        raise fail(f"--model: {model}: file not found")
    from xunjian.bench.runner import run_benchmarks

    def progress(name: str, status: str) -> None:
        console.print(f"[bold]{name}[/bold]: {status}")

    document = run_benchmarks(selected, quick=quick, model=model, progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    table = Table("benchmark", "headline", title=f"xunjian bench → {out}")
    for name, result in document["benchmarks"].items():
        table.add_row(name, headline(result))
    console.print(table)
    if any(r.get("status") == "error" for r in document["benchmarks"].values()):
        raise typer.Exit(1)


def headline(result: dict[str, Any]) -> str:
    """One line per benchmark for the table: its ratios, else its status."""
    if result.get("status") == "skipped":
        return f"skipped: {result.get('reason')}"
    if result.get("status") == "error":
        return f"[red]error:[/red] {result.get('error')}"
    ratios = result.get("ratios")
    parts: list[str] = []
    if isinstance(ratios, dict):
        for key, value in ratios.items():
            if isinstance(value, dict):
                parts += [f"{key} {k}={v}" for k, v in value.items()]
            else:
                parts.append(f"{key}={value}")
    figures = result.get("figures")
    if isinstance(figures, dict):
        if "agreement" in figures:
            parts.append(f"agreement={figures['agreement']}")
        for side in ("xunjian", "sahi"):
            if isinstance(figures.get(side), dict) and "recall" in figures[side]:
                parts.append(f"{side} recall={figures[side]['recall']}")
    return "; ".join(parts) or f"done in {result.get('wall_s', '?')} s"
