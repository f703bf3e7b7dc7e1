"""CLI: ``xunjian detect IMAGE… [--json]`` — every detector over each image.

``--json`` prints JSON Lines, one object per image:
``{"image", "width", "height", "detections": [{"detector", "class", "confidence",
"bbox_xyxy"}]}`` in original image pixels; an image that cannot be read gives
``{"image", "error"}`` instead, the others go on, and the exit code is 1 at the end.
A photo's own metadata (DJI pose and camera), when it has it, lets the stage skip tiles above
the horizon and pick the working scale from ``--gsd``.
A model that cannot be loaded stops the command before any image (exit 2).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, cast

import typer

from xunjian.cli.output import console, fail
from xunjian.errors import DetectorError, InputError, XunjianError

if TYPE_CHECKING:
    from xunjian.core.records import Frame
    from xunjian.models.detector import DetectorSet
    from xunjian.models.registry import BackendName


def register(app: typer.Typer) -> None:
    app.command()(detect)


def detect(
    images: Annotated[list[Path], typer.Argument(help="image files (JPEG, PNG, …)")],
    json_lines: Annotated[
        bool, typer.Option("--json", help="one JSON object per image on stdout")
    ] = False,
    model: Annotated[
        Path | None, typer.Option(help="run this model instead of the shipped default set")
    ] = None,
    detector: Annotated[
        str | None, typer.Option(help="detector name for --model (default: from the path)")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="class names for --model, comma-separated, index order")
    ] = None,
    backend: Annotated[str, typer.Option(help="onnxruntime or ultralytics")] = "onnxruntime",
    conf: Annotated[float, typer.Option(min=0.0, max=1.0, help="confidence threshold")] = 0.25,
    iou: Annotated[float, typer.Option(min=0.0, max=1.0, help="NMS IoU threshold")] = 0.7,
    tile: Annotated[
        int | None,
        typer.Option(min=32, help="tile size in px [default: the model input, 640 shipped]"),
    ] = None,
    overlap: Annotated[float, typer.Option(min=0.0, max=0.9, help="tile overlap")] = 0.2,
    mode: Annotated[str, typer.Option(help="auto, tiles or full (no tiling)")] = "auto",
    scale: Annotated[
        float | None,
        typer.Option(min=0.01, max=1.0, help="working scale: decode reduced (wins over --gsd)"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="tiles per model call")] = 8,
    threads: Annotated[int | None, typer.Option(min=1, help="onnxruntime threads")] = None,
    pose: Annotated[
        bool, typer.Option(help="read the photo's pose (DJI metadata) to skip sky tiles")
    ] = True,
    gsd: Annotated[
        float | None,
        typer.Option(
            min=0.0001,
            help="working ground sample distance, m/px, for near-nadir photos with a pose "
            "(default: XUNJIAN_DETECT_GSD_M, else the models' own from their cards)",
        ),
    ] = None,
) -> None:
    """Run the detectors on images and print what they find."""
    from xunjian.inspect.detect import DetectOptions, detect_frame
    from xunjian.models.backends import PredictParams
    from xunjian.models.tiling import TileConfig
    from xunjian.settings import get_settings

    if backend not in ("onnxruntime", "ultralytics"):
        raise fail(f"--backend: expected onnxruntime or ultralytics, got {backend!r}")
    if mode not in ("auto", "tiles", "full"):
        raise fail(f"--mode: expected auto, tiles or full, got {mode!r}")
    try:
        options = DetectOptions(
            params=PredictParams(conf=conf, iou=iou),
            tiling=TileConfig(
                tile=tile,
                overlap=overlap,
                batch_size=batch,
                mode=cast(Literal["auto", "tiles", "full"], mode),
            ),
            working_scale=scale,
            target_gsd_m=gsd if gsd is not None else get_settings().detect_gsd_m,
            max_pixels=get_settings().max_image_pixels,
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        detectors = _load(model, detector, classes, cast("BackendName", backend), threads)
    except XunjianError as exc:
        raise fail(exc) from None
    failed = 0
    for path in images:
        try:
            frame = _frame_of(path, options.max_pixels) if pose else None
            result = detect_frame(detectors, path, frame=frame, source=str(path), options=options)
        except (InputError, DetectorError) as exc:
            failed += 1
            if json_lines:
                typer.echo(json.dumps({"image": str(path), "error": str(exc)}, ensure_ascii=False))
            else:
                console.print(f"[red]error:[/red] {exc}")
            continue
        if json_lines:
            typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
        else:
            _print_human(result.to_json())
    if failed:
        console.print(f"{failed} of {len(images)} images failed")
        raise typer.Exit(1)


def _load(
    model: Path | None,
    detector: str | None,
    classes: str | None,
    backend: BackendName,
    threads: int | None,
) -> DetectorSet:
    from xunjian.models.detector import DetectorSet
    from xunjian.models.registry import load_default_set, load_detector

    if model is None:
        if detector or classes:
            raise DetectorError("--detector and --classes need --model")
        return load_default_set(backend=backend, threads=threads)
    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    name = detector or _detector_from_path(model)
    loaded = load_detector(model, detector=name, classes=names, backend=backend, threads=threads)
    return DetectorSet([loaded])


def _frame_of(path: Path, max_pixels: int) -> Frame | None:
    """The photo's pose and camera when its metadata gives them; None otherwise."""
    from xunjian.inspect.metadata import extract_metadata

    try:
        meta = extract_metadata(path, max_pixels=max_pixels)
    except XunjianError:
        return None  # not a JPEG or no usable metadata: detect without it
    return meta.to_frame(batch_id="cli", key=str(path), sha256="")


def _detector_from_path(model: Path) -> str:
    from xunjian.core.taxonomy import Detector

    known = {d.value for d in Detector}
    for part in (model.parent.name, model.stem):
        if part in known:
            return part
    return model.stem or "custom"


def _print_human(result: dict[str, object]) -> None:
    detections = result["detections"]
    assert isinstance(detections, list)
    typer.echo(f"{result['image']}  {result['width']}×{result['height']}  {len(detections)} found")
    for d in detections:
        box = ", ".join(f"{v:.0f}" for v in d["bbox_xyxy"])
        typer.echo(f"  {d['detector']:<16} {d['class']:<22} {d['confidence']:.2f}  [{box}]")
