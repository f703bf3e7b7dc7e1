"""CLI: ``xunjian synth …`` — the synthetic test range (worlds, flights, vehicle runs, truth).

Heavy imports (numpy, OpenCV) happen inside the commands so ``xunjian --help`` stays fast.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xunjian.cli.output import console, fail, progress_bar

if TYPE_CHECKING:
    from xunjian.datasets.synth.effects import Effects
    from xunjian.datasets.synth.flight import FlightTruth
    from xunjian.datasets.synth.noise import PoseNoise
    from xunjian.datasets.synth.world import World

synth_app = typer.Typer(
    name="synth",
    help="The synthetic test range: a seeded city patch with ground truth in metres.",
    no_args_is_help=True,
)

Seed = Annotated[int, typer.Option(help="seed: the same seed gives byte-identical output")]
OutDir = Annotated[Path, typer.Option("--out", help="output directory")]
WorldFile = Annotated[
    Path | None,
    typer.Option("--world", help="a world.json to fly over (default: generate from --seed)"),
]
_ERRORS = (ValueError, KeyError, OSError)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the application."""
    app.add_typer(synth_app, name="synth")


def _world(seed: int, world: Path | None) -> World:
    from xunjian.datasets.synth.world import World

    if world is None:
        return World.generate(seed)
    return World.from_json(world.read_text(encoding="utf-8"))


def _noise(on: bool) -> PoseNoise:
    from xunjian.datasets.synth.noise import EXACT, PoseNoise

    return PoseNoise() if on else EXACT


def _effects(on: bool) -> Effects:
    from xunjian.datasets.synth.effects import NO_EFFECTS, Effects

    return Effects() if on else NO_EFFECTS


def _report(truth: FlightTruth, out: Path, started: float) -> None:
    frames = truth.frames
    counts = truth.class_counts()
    console.print(
        f"[bold]{len(frames)}[/bold] frames in {time.perf_counter() - started:.1f} s → {out}"
    )
    console.print("targets seen: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@synth_app.command("world")
def world_cmd(
    seed: Seed = 0,
    out: Annotated[Path, typer.Option("--out", help="world.json to write")] = Path("world.json"),
    size_m: Annotated[float, typer.Option(help="side of the square world (m)")] = 600.0,
    per_class: Annotated[int, typer.Option(help="targets of each class in the focus area")] = 3,
) -> None:
    """Generate a world and write it as JSON (and its targets as GeoJSON next to it)."""
    from xunjian.datasets.synth.world import World

    w = World.generate(seed, size_m=size_m, per_class=per_class)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(w.to_json(), encoding="utf-8")
    geo = out.with_name(out.stem + ".targets.geojson")
    geo.write_text(json.dumps(w.targets_geojson(), indent=1, sort_keys=True), encoding="utf-8")
    console.print(
        f"world seed {seed}: {len(w.roads)} roads, {len(w.buildings)} buildings, "
        f"{len(w.targets)} targets → {out}"
    )


@synth_app.command("later-day")
def later_day_cmd(
    world: Annotated[Path, typer.Option("--world", help="the earlier world.json")],
    out: Annotated[Path, typer.Option("--out", help="the later world.json to write")],
    seed: Seed = 1,
    repair_fraction: Annotated[float, typer.Option(help="share of problems repaired")] = 0.4,
    new: Annotated[int, typer.Option(help="new problems")] = 6,
    days: Annotated[int, typer.Option(help="days later")] = 7,
) -> None:
    """Turn a world into a later day: repairs, new dumping, trucks gone or moved."""
    try:
        w = _world(0, world).later_day(
            seed, repair_fraction=repair_fraction, new_count=new, days=days
        )
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(w.to_json(), encoding="utf-8")
    c = w.changes
    assert c is not None
    console.print(
        f"day {w.day}: {len(c.repaired)} repaired, {len(c.new)} new, {len(c.gone)} trucks gone, "
        f"{len(c.moved)} moved → {out}"
    )


@synth_app.command("flight")
def flight_cmd(
    out: OutDir,
    seed: Seed = 0,
    size: Annotated[str, typer.Option(help="camera: small, tiny, M3E, FC220")] = "small",
    height: Annotated[float, typer.Option(help="flight height above ground (m)")] = 30.0,
    forward_overlap: Annotated[float, typer.Option(help="forward overlap")] = 0.7,
    side_overlap: Annotated[float, typer.Option(help="side overlap")] = 0.6,
    pitch: Annotated[float, typer.Option(help="gimbal pitch (−90 nadir)")] = -90.0,
    heading: Annotated[float, typer.Option(help="direction of the survey legs (deg)")] = 0.0,
    world: WorldFile = None,
    noise: Annotated[bool, typer.Option(help="perturb the tags like a real GPS and gimbal")] = True,
    effects: Annotated[bool, typer.Option(help="blur, exposure, noise, JPEG variation")] = True,
    contact: Annotated[bool, typer.Option(help="also write contact.png")] = False,
) -> None:
    """Fly a lawn-mower survey over the world's focus area: JPEGs with DJI metadata + truth."""
    from xunjian.datasets.synth.flight import render_flight, survey_area
    from xunjian.datasets.synth.plans import camera_preset, plan_survey

    started = time.perf_counter()
    try:
        w = _world(seed, world)
        plan = plan_survey(
            w,
            area=survey_area(w),
            cam=camera_preset(size),
            height_m=height,
            forward_overlap=forward_overlap,
            side_overlap=side_overlap,
            pitch_deg=pitch,
            heading_deg=heading,
        )
        with progress_bar("render") as update:
            truth = render_flight(
                w,
                plan,
                out,
                seed=seed,
                noise=_noise(noise),
                effects=_effects(effects),
                progress=update,
            )
        if contact:
            from xunjian.datasets.synth.contact import contact_sheet

            contact_sheet(out, out / "contact.png")
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    _report(truth, out, started)


@synth_app.command("vehicle")
def vehicle_cmd(
    out: OutDir,
    seed: Seed = 0,
    size: Annotated[str, typer.Option(help="camera: dashcam, small, tiny")] = "dashcam",
    every: Annotated[float, typer.Option(help="a frame every N metres")] = 5.0,
    length: Annotated[float, typer.Option(help="length of the run (m)")] = 160.0,
    pitch: Annotated[float, typer.Option(help="camera pitch (deg)")] = -10.0,
    road: Annotated[str | None, typer.Option(help="road id (default: a main road)")] = None,
    world: WorldFile = None,
    noise: Annotated[bool, typer.Option(help="noisy GPS in EXIF and the GPX track")] = True,
    effects: Annotated[bool, typer.Option(help="blur, exposure, noise, JPEG variation")] = True,
) -> None:
    """Drive a patrol vehicle along a road: forward-camera JPEGs, a GPX track and truth."""
    from xunjian.datasets.synth.flight import render_flight
    from xunjian.datasets.synth.plans import camera_preset, plan_vehicle_run

    started = time.perf_counter()
    try:
        w = _world(seed, world)
        plan = plan_vehicle_run(
            w,
            road_id=road,
            cam=camera_preset(size),
            every_m=every,
            length_m=length,
            pitch_deg=pitch,
        )
        with progress_bar("render") as update:
            truth = render_flight(
                w,
                plan,
                out,
                seed=seed,
                noise=_noise(noise),
                effects=_effects(effects),
                kind="vehicle",
                progress=update,
            )
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    _report(truth, out, started)


@synth_app.command("bad-inputs")
def bad_inputs_cmd(
    out: Annotated[Path, typer.Argument(help="folder to write the corpus into")],
    family: Annotated[
        list[str] | None,
        typer.Option(help="only this family (repeatable): image, metadata, pose, exif-fuzz, …"),
    ] = None,
) -> None:
    """Write the bad-input corpus (broken photos, tracks, manifests, names, keys) and
    expected.json, which says what each input must produce (docs/bad-inputs.md)."""
    from collections import Counter

    from xunjian.testing.badinput import Family, write_corpus

    known = [str(f) for f in Family]
    unknown = [f for f in family or () if f not in known]
    if unknown:
        raise fail(f"--family: expected one of {', '.join(known)}, got {', '.join(unknown)}")
    try:
        index = write_corpus(out, families=tuple(Family(f) for f in family or ()))
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    stages = Counter(entry["stage"] for entry in index)
    console.print(f"[bold]{len(index)}[/bold] bad inputs → {out} (see expected.json)")
    console.print("must end as: " + ", ".join(f"{k} {v}" for k, v in sorted(stages.items())))


@synth_app.command("contact-sheet")
def contact_cmd(
    flight_dir: Annotated[Path, typer.Argument(help="a rendered flight or vehicle run")],
    out: Annotated[
        Path | None, typer.Option("--out", help="PNG to write (default DIR/contact.png)")
    ] = None,
    n: Annotated[int, typer.Option(help="frames on the sheet")] = 9,
) -> None:
    """A PNG grid of sample frames with truth boxes, plus one close-up per class."""
    from xunjian.datasets.synth.contact import contact_sheet

    try:
        path = contact_sheet(flight_dir, out or flight_dir / "contact.png", n)
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"contact sheet → {path}")


@synth_app.command("export-yolo")
def export_cmd(
    flight_dir: Annotated[Path, typer.Argument(help="a rendered flight or vehicle run")],
    out: OutDir,
    tile: Annotated[int, typer.Option(help="tile size (px)")] = 640,
    overlap: Annotated[float, typer.Option(help="tile overlap (fraction)")] = 0.2,
    detector: Annotated[
        str | None, typer.Option(help="road_damage, illegal_dumping or spoil_truck")
    ] = None,
) -> None:
    """Export frames and truth boxes as a tiled YOLO dataset (data.yaml in taxonomy order)."""
    from xunjian.datasets.synth.export_yolo import export_yolo

    try:
        result = export_yolo(flight_dir, out, tile=tile, overlap=overlap, detector=detector)
    except _ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"{result.images['train']} train + {result.images['val']} val tiles → {out}")
    console.print("boxes: " + ", ".join(f"{k} {v}" for k, v in result.labels.items()))


@synth_app.command("bench-render")
def bench_cmd(
    size: Annotated[str, typer.Option(help="camera preset")] = "M3E",
    height: Annotated[float, typer.Option(help="flight height (m)")] = 100.0,
    pitch: Annotated[float, typer.Option(help="gimbal pitch")] = -90.0,
    repeat: Annotated[int, typer.Option(help="warm renders to time")] = 3,
    yaw: Annotated[float, typer.Option(help="gimbal yaw (°)")] = 30.0,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="keep ground tiles on disk here; a second run starts warm"),
    ] = None,
    seed: Seed = 0,
) -> None:
    """Time the rendering of one frame: cold (tiles built) and warm (tiles cached)."""
    import cv2
    import numpy as np

    from xunjian.core.records import CameraPose
    from xunjian.datasets.synth.effects import Effects
    from xunjian.datasets.synth.plans import camera_preset
    from xunjian.datasets.synth.render import Renderer
    from xunjian.datasets.synth.world import World

    w = World.generate(seed)
    cam = camera_preset(size)
    k = cam.intrinsics()
    renderer = Renderer(w, cache_dir=cache_dir)
    pose = CameraPose(w.anchor_lat, w.anchor_lon, height, yaw, pitch)
    t0 = time.perf_counter()
    renderer.render(pose, k, rng=np.random.default_rng(0), effects=Effects())
    cold = time.perf_counter() - t0
    warm = []
    stages: dict[str, list[float]] = {}
    for i in range(max(1, repeat)):
        t0 = time.perf_counter()
        renderer.render(pose, k, rng=np.random.default_rng(i), effects=Effects())
        warm.append(time.perf_counter() - t0)
        for name, secs in renderer.timings.items():
            stages.setdefault(name, []).append(secs)
    shifted = CameraPose(w.anchor_lat + 0.00012, w.anchor_lon, height, yaw, pitch)
    t0 = time.perf_counter()
    renderer.render(shifted, k, rng=np.random.default_rng(9), effects=Effects())
    step = time.perf_counter() - t0
    typer.echo(f"{cam.name} {k.width}×{k.height}, height {height:g} m, pitch {pitch:g}°")
    typer.echo(
        f"cold (ground tiles {'built' if cache_dir is None else 'from ' + str(cache_dir)}): "
        f"{cold:.3f} s"
    )
    typer.echo(
        f"warm (tiles cached): best {min(warm):.3f} s, median {float(np.median(warm)):.3f} s"
    )
    typer.echo("warm stages (best): " + ", ".join(f"{n} {min(v):.3f} s" for n, v in stages.items()))
    typer.echo(f"next frame 13 m on (some new tiles): {step:.3f} s")
    typer.echo(f"CPU threads used by OpenCV: {cv2.getNumThreads()}; machine load matters")
