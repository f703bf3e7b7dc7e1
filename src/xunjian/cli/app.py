"""Builds the typer application from the command modules.

Each command module has ``register(app)``; heavy imports happen inside the commands, so
``xunjian --help`` stays fast.
"""

from __future__ import annotations

import typer

from xunjian.cli import (
    bench,
    cases,
    config,
    datasets,
    demo,
    detect,
    georef,
    issues,
    keys,
    metadata,
    models,
    serve,
    synth,
    train,
    upload,
    worker,
)

app = typer.Typer(
    name="xunjian",
    help="AI 立体巡检: drone and patrol-vehicle imagery to one case per real problem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (
    bench,
    config,
    cases,
    datasets,
    demo,
    detect,
    georef,
    issues,
    keys,
    metadata,
    models,
    serve,
    synth,
    train,
    upload,
    worker,
):
    _module.register(app)


def main() -> None:
    app()
