"""The production layout (deploy/compose.yaml) cannot run here; every piece it wires can be
checked: the commands exist with the options given, every XUNJIAN_* variable is a setting
and the whole environment validates, images are pinned, and the configuration reference in
docs/ is exactly what the code says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from xunjian.cli.app import app
from xunjian.cli.config import reference_markdown, reference_page
from xunjian.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
_VAR = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return doc


def xunjian_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if str(service.get("image", "")).startswith("xunjian:")
    }


def substitute(value: str) -> str:
    """``${VAR:-default}`` → default, ``${VAR:?message}`` → a sample value, as compose would."""
    return _VAR.sub(lambda m: m.group(3) if m.group(2) == "-" else f"sample-{m.group(1)}", value)


def test_the_layout_has_every_component() -> None:
    services = compose()["services"]
    assert {"minio", "postgres", "rabbitmq", "api", "worker", "cases"} <= set(services)
    assert set(xunjian_services()) >= {"api", "worker", "worker-gpu", "cases"}


@pytest.mark.parametrize("name", ["api", "worker", "worker-gpu", "cases"])
def test_every_command_exists_with_its_options(name: str) -> None:
    command = xunjian_services()[name]["command"]
    assert command[0] == "xunjian"
    current: Any = typer.main.get_command(app)
    words = command[1:]
    # typer carries its own click: walk groups by their ``commands`` mapping
    while getattr(current, "commands", None) and words and not words[0].startswith("-"):
        sub = current.commands.get(words[0])
        assert sub is not None, f"{name}: no command {words[0]!r} in {command}"
        current, words = sub, words[1:]
    known = {opt for p in current.params for opt in getattr(p, "opts", [])}
    for word in words:
        if word.startswith("--"):
            assert word in known, f"{name}: {word} is not an option of {command}"


def test_every_variable_is_a_setting_and_the_environment_validates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = compose()["x-xunjian-env"]
    fields = {f"XUNJIAN_{n.upper()}" for n in Settings.model_fields}
    unknown = sorted(set(env) - fields)
    assert not unknown, f"not settings: {unknown}"
    for name in list(__import__("os").environ):
        if name.startswith("XUNJIAN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, substitute(str(value)))
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.object_store == "s3" and settings.runner == "celery"
        assert settings.db_url.startswith("postgresql://xunjian:sample-POSTGRES_PASSWORD@")
    finally:
        get_settings.cache_clear()


def test_images_are_pinned_and_the_dockerfile_copies_what_exists() -> None:
    for name, service in compose()["services"].items():
        image = str(service["image"])
        tag = image.rsplit(":", 1)[-1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base is not None and ":" in base.group(1) and "latest" not in base.group(1)
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M):
        for path in line.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"


def test_the_configuration_reference_is_up_to_date() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert doc == reference_page(), "regenerate: xunjian config reference --out docs/…"
    assert "XUNJIAN_OUTAGE_MAX_WAIT_S" in reference_markdown()


def test_every_setting_says_what_it_is_for() -> None:
    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not missing, f"settings without a description: {missing}"
