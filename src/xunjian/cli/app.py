"""Builds the typer application from the command modules.

Each command module has ``register(app)``; heavy imports happen inside the commands, so
``xunjian --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

COMMAND_MODULES = (
    "bench",
    "cases",
    "config",
    "datasets",
    "demo",
    "detect",
    "georef",
    "issues",
    "keys",
    "metadata",
    "models",
    "serve",
    "synth",
    "train",
    "upload",
    "worker",
)
"""The modules of ``xunjian.cli`` that register commands, in help order."""

app = typer.Typer(
    name="xunjian",
    help="AI 立体巡检: drone and patrol-vehicle imagery to one case per real problem.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"xunjian.cli.{_name}").register(app)


def main() -> None:
    app()
