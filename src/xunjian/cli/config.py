"""``xunjian config show|reference``: the effective settings, and the reference of every one.

``reference`` prints the Markdown table that ``docs/configuration.md`` holds (a test keeps
the two equal, so the document cannot drift from the code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

config_app = typer.Typer(help="Settings: what is in effect, and what can be set.")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """The settings in effect (environment XUNJIAN_*, .env, defaults); secrets masked."""
    from xunjian.settings import get_settings

    values = effective(get_settings().model_dump())
    if as_json:
        typer.echo(json.dumps(values, ensure_ascii=False, indent=1, default=str))
        return
    for name, value in values.items():
        typer.echo(f"{name} = {value}")


@config_app.command("reference")
def reference(
    out: Annotated[
        Path | None, typer.Option(help="write the whole page (docs/configuration.md) here")
    ] = None,
) -> None:
    """Every setting as a Markdown table: variable, type, default, meaning."""
    if out is None:
        typer.echo(reference_markdown(), nl=False)
        return
    out.write_text(reference_page(), encoding="utf-8")
    typer.echo(f"wrote {out}")


PAGE_HEADER = """# Configuration reference

Every setting, read from the environment (`XUNJIAN_*`) or a `.env` file in the working
directory. `xunjian config show` prints the values in effect, secrets masked. This page is
generated — `xunjian config reference --out docs/configuration.md` — and a test fails when it
and the code disagree.

"""


def reference_page() -> str:
    return PAGE_HEADER + reference_markdown()


def effective(values: dict[str, Any]) -> dict[str, Any]:
    from pydantic import SecretStr

    def masked(v: Any) -> Any:
        if isinstance(v, SecretStr):
            return "***" if v.get_secret_value() else ""
        return v

    return {k: masked(v) for k, v in values.items()}


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return (
        str(annotation)
        .replace("typing.", "")
        .replace("pathlib.", "")
        .replace("pydantic.types.", "")
        .replace("<class '", "")
        .replace("'>", "")
        if text.startswith("typing") or "|" in str(annotation) or "Literal" in str(annotation)
        else text
    )


def reference_markdown() -> str:
    """The table of every ``Settings`` field (name, env variable, type, default, meaning)."""
    from pydantic import SecretStr

    from xunjian.settings import Settings

    lines = [
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        default = field.default
        if isinstance(default, SecretStr):
            shown = "(secret)" if default.get_secret_value() else "(empty)"
        elif default is None:
            shown = "—"
        else:
            shown = f"`{default}`"
        meaning = (field.description or "").replace("|", "\\|")
        type_name = _type_name(field.annotation).replace("|", "\\|")
        lines.append(f"| `XUNJIAN_{name.upper()}` | {type_name} | {shown} | {meaning} |")
    return "\n".join(lines) + "\n"
