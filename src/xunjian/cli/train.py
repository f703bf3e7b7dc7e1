"""CLI: ``xunjian train`` and ``xunjian evaluate`` — retrain a detector, measure it, ship it.

``train DETECTOR --data DATA_YAML --out RUN_DIR`` trains from scratch on CPU (resumable with
``--resume``); ``--ship`` then evaluates ``best.pt`` on the dataset's val split, exports ONNX
and writes ``model.onnx`` + ``card.json`` + ``MODEL_CARD.md`` into the shipped weights folder.
``evaluate MODEL --data DATA_YAML`` prints per-class figures (``--json`` for machines).
Heavy imports (torch, ultralytics) happen inside the commands.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xunjian.cli.output import console, fail

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)


def train_command(
    detector: Annotated[str, typer.Argument(help="road_damage, illegal_dumping or spoil_truck")],
    data: Annotated[Path, typer.Option(help="data.yaml of `xunjian datasets build`")],
    out: Annotated[Path, typer.Option(help="run folder (checkpoints in OUT/weights)")],
    epochs: Annotated[int, typer.Option(help="epochs to train")] = 30,
    imgsz: Annotated[int, typer.Option(help="training image size in pixels")] = 320,
    batch: Annotated[int, typer.Option(help="images per batch")] = 16,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for torch")] = 2,
    patience: Annotated[int, typer.Option(help="stop after N epochs without improvement")] = 100,
    model_cfg: Annotated[str, typer.Option(help="ultralytics model config")] = "yolo11n.yaml",
    resume: Annotated[bool, typer.Option(help="continue from OUT/weights/last.pt")] = False,
    ship: Annotated[
        bool, typer.Option(help="evaluate, export ONNX and write the card into the weights folder")
    ] = False,
    ship_only: Annotated[
        bool, typer.Option(help="skip training: ship OUT/weights/best.pt as it is")
    ] = False,
    version: Annotated[str | None, typer.Option(help="model version (default: date-based)")] = None,
    synthetic_val: Annotated[
        Path | None,
        typer.Option(help="data.yaml of synthetic val tiles, for classes without real val"),
    ] = None,
    weights_dir: Annotated[Path, typer.Option(help="where shipped models live")] = WEIGHTS_DIR,
    reproduce: Annotated[
        str | None, typer.Option(help="command recorded in the card (default: this train command)")
    ] = None,
    gsd_m: Annotated[
        float | None,
        typer.Option(
            help="ground sampling (m/px) the model saw its aerial training tiles at; the card "
            "records it and detection decodes near-nadir frames at it",
            min=0.001,
            max=10.0,
        ),
    ] = None,
    limitation: Annotated[
        list[str] | None,
        typer.Option(help="a known limitation to state in the card (repeatable)"),
    ] = None,
) -> None:
    """Train one detector from scratch (CPU, offline); optionally ship it as ONNX + card."""
    from xunjian.errors import XunjianError
    from xunjian.models.train import train_detector

    try:
        if not ship_only:
            result = train_detector(
                data,
                out,
                detector=detector,
                epochs=epochs,
                imgsz=imgsz,
                batch=batch,
                model_cfg=model_cfg,
                seed=seed,
                resume=resume,
                threads=threads,
                patience=patience,
                progress=lambda p: console.print(p.line(), highlight=False, soft_wrap=True),
            )
            console.print(f"trained {result.epochs_done} epochs → {result.best_pt}")
        if ship or ship_only:
            _ship(detector, data, out, imgsz, version, synthetic_val, weights_dir, reproduce, gsd_m,
                  limitation or [])  # fmt: skip
    except XunjianError as error:
        raise fail(error) from None


def _ship(
    detector: str,
    data: Path,
    out: Path,
    imgsz: int,
    version: str | None,
    synthetic_val: Path | None,
    weights_dir: Path,
    reproduce: str | None,
    gsd_m: float | None,
    limitations: list[str],
) -> None:
    from xunjian.models.export import ship_model

    argv = ["xunjian", *sys.argv[1:]] if "train" in sys.argv[1:2] else []
    card = ship_model(
        detector,
        data_yaml=data,
        run_dir=out,
        imgsz=imgsz,
        weights_dir=weights_dir,
        version=version,
        synthetic_val=synthetic_val,
        reproduce=reproduce or (shlex.join(argv) if argv else None),
        gsd_m=gsd_m,
        limitations=limitations,
    )
    console.print(
        f"shipped {card['detector']} {card['version']} → {weights_dir / card['detector']}"
    )


def evaluate_command(
    model: Annotated[Path, typer.Argument(help="a .pt checkpoint or an .onnx export")],
    data: Annotated[Path, typer.Option(help="data.yaml of the dataset")],
    imgsz: Annotated[int, typer.Option(help="image size in pixels")] = 320,
    split: Annotated[str, typer.Option(help="val, test or train")] = "val",
    conf: Annotated[float, typer.Option(help="lowest confidence kept")] = 0.001,
    iou: Annotated[float, typer.Option(help="NMS IoU")] = 0.6,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Per-class mAP50, mAP50-95, precision, recall and F1 of a model on a dataset split."""
    from xunjian.errors import XunjianError
    from xunjian.models.evaluate import evaluate_model

    try:
        result = evaluate_model(model, data, imgsz=imgsz, split=split, conf=conf, iou=iou)
    except XunjianError as error:
        raise fail(error) from None
    if as_json:
        payload: dict[str, Any] = result.to_dict()
        typer.echo(json.dumps(payload, indent=1, ensure_ascii=False))
    else:
        typer.echo(result.table())
