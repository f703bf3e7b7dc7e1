"""Shared CLI helpers: progress bars, error exits, settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from xunjian.errors import XunjianError

console = Console(stderr=True)


@contextmanager
def progress_bar(
    label: str, *, bytes_mode: bool = False
) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar; yields a ``(done, total, name)`` callback for the library code."""
    columns = [
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%") if bytes_mode else MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.description}"),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("", total=None)

        def update(done: int, total: int, name: str) -> None:
            progress.update(task, completed=done, total=total, description=name[-40:])

        yield update


@contextmanager
def progress_bars(*labels: str) -> Iterator[list[Callable[[int, int, str], None]]]:
    """Several counted progress bars in one live display (rich allows only one at a time)."""
    columns = [
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("[dim]{task.description}"),
    ]
    with Progress(*columns, console=console, transient=False) as progress:
        callbacks: list[Callable[[int, int, str], None]] = []
        for label in labels:
            task = progress.add_task("", total=None, label=label)

            def update(done: int, total: int, name: str, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total, description=name[-40:])

            callbacks.append(update)
        yield callbacks


def fail(error: XunjianError | str, code: int = 2) -> typer.Exit:
    """Prints a clear error line and returns the exit to raise."""
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(code)


def shown(text: object) -> str:
    """``text`` safe to print: rich markup escaped, control characters as ``\\xNN`` escapes
    (a hostile file name must neither break the output nor reach the terminal as codes)."""
    from rich.markup import escape

    clean = "".join(
        c
        if c.isprintable() or c == " "
        else f"\\x{ord(c):02x}"
        if ord(c) < 256
        else f"\\u{ord(c):04x}"
        for c in str(text)
    )
    return escape(clean)
