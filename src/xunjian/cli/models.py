"""CLI: ``xunjian models list|register|promote|rollback|export`` — the model registry.

``register`` takes a shipped folder (``model.onnx`` + ``card.json``), an ONNX file with its
card beside it, a bare ONNX file (evaluated on ``--data`` and given a card), or a training
run folder (``weights/best.pt``: exported, evaluated on ``--data`` and carded, as ``xunjian
train --ship`` does). ``promote`` runs the gate (cards, or ``--benchmark DATA_YAML``) and
exits 1 when it refuses; ``--force --reason`` overrides, recorded in the pointer's history.
``rollback`` restores the previous version in service. Heavy imports happen in the commands.
"""

from __future__ import annotations

import getpass
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xunjian.cli.output import console, fail

if TYPE_CHECKING:
    from xunjian.models.versions import ModelRegistry, Promotion

models_app = typer.Typer(
    name="models",
    help="Model registry: list, register, promote (gated), roll back, export ONNX.",
    no_args_is_help=True,
)

ByOption = Annotated[str | None, typer.Option("--by", help="who does it (default: login name)")]
ReasonOption = Annotated[str, typer.Option(help="why; recorded in the pointer's history")]


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.add_typer(models_app, name="models")


def _who(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _registry() -> ModelRegistry:
    from xunjian.models.versions import ModelRegistry
    from xunjian.settings import get_settings

    return ModelRegistry.from_settings(get_settings())


@models_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every detector: versions in the store, the one in service and where it comes from."""
    from rich.table import Table

    from xunjian.errors import XunjianError
    from xunjian.models.versions import list_models

    try:
        listed = list_models(_registry().store)
    except XunjianError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(listed, indent=1, ensure_ascii=False))
        return
    table = Table("detector", "version", "in service", "mAP50", "basis", "registered")
    for entry in listed:
        rows = entry["versions"] or []
        if entry["source"] != "store":
            shipped = entry["shipped"] or {}
            rows = [{**shipped, "active": True, "registered_at": "(shipped)"}, *rows]
        for row in rows or [{"version": "(none)"}]:
            metrics = row.get("metrics") or {}
            map50 = metrics.get("map50")
            table.add_row(
                entry["detector"],
                str(row.get("version")),
                "●" if row.get("active") else "",
                "–" if map50 is None else f"{map50:.3f}",
                str(metrics.get("basis") or "–"),
                str(row.get("registered_at") or ""),
            )
        table.add_section()
    console.print(table)


def _stage(path: Path, detector: str | None, data: Path | None, work: Path) -> Path:
    """A folder with model.onnx + card.json for ``path`` (see the module doc)."""
    from xunjian.errors import InputError

    if path.is_dir() and (path / "card.json").is_file():
        return path
    if path.is_file() and path.suffix == ".onnx" and (path.parent / "card.json").is_file():
        return path.parent
    if detector is None:
        raise InputError("give --detector to register a run folder or a bare ONNX file")
    if path.is_dir() and (path / "weights" / "best.pt").is_file():
        from xunjian.models.export import ship_model

        data_yaml = data or _run_data(path)
        ship_model(detector, data_yaml=data_yaml, run_dir=path, weights_dir=work)
        return work / detector
    if path.is_file() and path.suffix == ".onnx":
        if data is None:
            raise InputError(
                "a bare ONNX file needs --data DATA_YAML to measure it", source=str(path)
            )
        return _card_for_onnx(path, detector, data, work)
    raise InputError(
        "expected a folder with model.onnx + card.json, an .onnx file or a training run "
        "(weights/best.pt)",
        source=str(path),
    )


def _run_data(run_dir: Path) -> Path:
    import yaml

    from xunjian.errors import InputError

    args_file = run_dir / "args.yaml"
    args = yaml.safe_load(args_file.read_text(encoding="utf-8")) if args_file.is_file() else {}
    if not isinstance(args, dict) or not args.get("data"):
        raise InputError("no --data given and the run's args.yaml names none", source=str(run_dir))
    return Path(str(args["data"]))


def _card_for_onnx(onnx: Path, detector: str, data: Path, work: Path) -> Path:
    from xunjian.models.card import build_card, read_manifest, write_model_card
    from xunjian.models.evaluate import evaluate_model
    from xunjian.models.export import sha256_file

    folder = work / detector
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, folder / "model.onnx")
    manifest = read_manifest(data.parent / "manifest.json")
    imgsz = int(manifest.get("imgsz") or 640)
    result = evaluate_model(folder / "model.onnx", data, imgsz=imgsz)
    real = manifest.get("val_is_real")
    card = build_card(
        detector=detector,
        version=f"{detector}-{sha256_file(onnx)[:12]}",
        imgsz=imgsz,
        onnx_path=folder / "model.onnx",
        manifest=manifest,
        training={"note": f"registered from {onnx}; training settings unknown"},
        reproduce=f"(registered from {onnx})",
        real_eval=result if real else None,
        synthetic_eval=None if real else result,
        limitations=["Registered from a bare ONNX file: how it was trained is not recorded."],
    )
    write_model_card(folder, card)
    return folder


@models_app.command("register")
def register_command(
    path: Annotated[Path, typer.Argument(help="shipped folder, .onnx file or training run folder")],
    detector: Annotated[str | None, typer.Option(help="road_damage, illegal_dumping…")] = None,
    data: Annotated[
        Path | None, typer.Option(help="data.yaml to evaluate a run or bare ONNX file on")
    ] = None,
    version: Annotated[str | None, typer.Option(help="version name (default: the card's)")] = None,
    by: ByOption = None,
    gsd_m: Annotated[
        float | None,
        typer.Option(
            help="ground sampling (m/px) it was trained at (default: the card's); detection "
            "decodes near-nadir frames at it",
            min=0.001,
            max=10.0,
        ),
    ] = None,
) -> None:
    """Register a candidate model version with its card (immutable once stored)."""
    from xunjian.errors import XunjianError

    try:
        with tempfile.TemporaryDirectory(prefix="xunjian-register-") as work:
            folder = _stage(path, detector, data, Path(work))
            registry = _registry()
            name, created = registry.register(
                folder, detector=detector, version=version, by=_who(by), gsd_m=gsd_m
            )
            card = registry.card(_card_detector(folder), name)
    except XunjianError as error:
        raise fail(error) from None
    state = "registered" if created else "already registered (same weights)"
    console.print(f"{card['detector']}@{name} {state}")
    shipped = registry.shipped_card(str(card["detector"])) or {}
    if card.get("gsd_m") is None and shipped.get("gsd_m") is not None:
        console.print(
            f"[yellow]note:[/yellow] this version names no working ground sampling (gsd_m): "
            f"drone frames will be detected at full resolution; the shipped model runs at "
            f"{shipped['gsd_m']} m/px (register with --gsd-m to set it)"
        )
    typer.echo(f"{card['detector']}@{name}")


def _card_detector(folder: Path) -> str:
    card: dict[str, Any] = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    return str(card["detector"])


def _report(promotion: Promotion) -> None:
    if promotion.gate is not None:
        for line in promotion.gate.lines():
            console.print(line, highlight=False, soft_wrap=True)
    before = promotion.from_version or "shipped"
    after = promotion.version or "shipped"
    if promotion.changed:
        forced = " (FORCED)" if promotion.forced else ""
        console.print(f"{promotion.detector}: {promotion.action} {before} → {after}{forced}")
    else:
        console.print(f"{promotion.detector}: {after} stays in service")


@models_app.command("promote")
def promote_command(
    detector: Annotated[str, typer.Argument(help="road_damage, illegal_dumping or spoil_truck")],
    version: Annotated[str, typer.Argument(help="a registered version")],
    force: Annotated[bool, typer.Option(help="promote even if the gate refuses")] = False,
    reason: ReasonOption = "",
    benchmark: Annotated[
        Path | None,
        typer.Option(help="data.yaml: evaluate both models on its val split instead of cards"),
    ] = None,
    tolerance: Annotated[float, typer.Option(help="overall mAP50 it may lose")] = 0.01,
    class_tolerance: Annotated[float, typer.Option(help="per-class mAP50 it may lose")] = 0.03,
    by: ByOption = None,
) -> None:
    """Put a version in service if it is not worse than the one in service (exit 1 if not)."""
    from xunjian.errors import XunjianError

    try:
        promotion = _registry().promote(
            detector,
            version,
            by=_who(by),
            reason=reason,
            force=force,
            tolerance=tolerance,
            class_tolerance=class_tolerance,
            benchmark=benchmark,
        )
    except XunjianError as error:
        raise fail(error) from None
    _report(promotion)
    if promotion.gate is not None and not promotion.gate.passed and not promotion.changed:
        console.print("refused: improve the candidate, or --force --reason '…'")
        raise typer.Exit(1)


@models_app.command("rollback")
def rollback_command(
    detector: Annotated[str, typer.Argument(help="road_damage, illegal_dumping or spoil_truck")],
    to: Annotated[
        str | None, typer.Option(help="a registered version or 'shipped' (default: previous)")
    ] = None,
    reason: ReasonOption = "",
    by: ByOption = None,
) -> None:
    """Put the version that was in service before the current one back."""
    from xunjian.errors import XunjianError

    try:
        promotion = _registry().rollback(detector, by=_who(by), reason=reason, to=to)
    except XunjianError as error:
        raise fail(error) from None
    _report(promotion)


@models_app.command("export")
def export_command(
    source: Annotated[
        str, typer.Argument(help="a .pt checkpoint, a run folder, or DETECTOR@VERSION")
    ],
    out: Annotated[Path, typer.Option(help=".onnx file (checkpoint) or folder (registry)")],
    imgsz: Annotated[int, typer.Option(help="export image size (checkpoints)")] = 640,
) -> None:
    """Export a checkpoint to ONNX, or copy a registered version (model + cards) to a folder."""
    from xunjian.errors import XunjianError

    try:
        if "@" in source and not Path(source).exists():
            detector, _, version = source.partition("@")
            registry = _registry()
            if version == "active":
                version = registry.active_version(detector) or ""
                if not version:
                    raise fail(f"{detector} runs its shipped model: nothing registered in service")
            folder = registry.fetch(detector, version)
            out.mkdir(parents=True, exist_ok=True)
            for name in ("model.onnx", "card.json"):
                shutil.copyfile(folder / name, out / name)
            key = f"models/{detector}/{version}/MODEL_CARD.md"
            (out / "MODEL_CARD.md").write_bytes(registry.store.get_bytes(key))
            typer.echo(str(out))
            return
        from xunjian.models.export import export_onnx

        checkpoint = Path(source)
        if checkpoint.is_dir():
            checkpoint = checkpoint / "weights" / "best.pt"
        exported = export_onnx(checkpoint, out, imgsz)
    except XunjianError as error:
        raise fail(error) from None
    console.print(f"{exported.path}: {exported.size_bytes / 1e6:.1f} MB, sha256 {exported.sha256}")
    typer.echo(str(exported.path))
