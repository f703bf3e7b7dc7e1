"""Renders whole flights and vehicle runs to disk: JPEGs with metadata, plus the ground truth.

Layout of an output directory (docs/test-range.md)::

    DIR/images/DJI_0001.jpg …     frames; EXIF GPS + DJI XMP carry the *noisy* pose
    DIR/truth/world.json          the world (World.to_json), day and changes included
    DIR/truth/targets.geojson     every target: polygon, class, id, size
    DIR/truth/frames.json         per frame: exact pose, intrinsics, tags, visible targets
    DIR/flight.json               summary: kind, seed, camera, counts per class
    DIR/track.gpx                 vehicle runs only: the noisy GPS track

Deterministic: the same world, plan and seed give byte-identical files.

May import: numpy, the standard library, ``xunjian.core``, ``xunjian.datasets.flightgen``
and sibling modules of ``synth``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from numpy.random import PCG64, Generator

from xunjian.datasets.flightgen import PhotoTags, encode_jpeg
from xunjian.datasets.synth import effects as fx
from xunjian.datasets.synth.gpx import track_gpx
from xunjian.datasets.synth.noise import PoseNoise, noisy_tags
from xunjian.datasets.synth.plans import CAMERAS, ShotPlan, plan_survey, plan_vehicle_run
from xunjian.datasets.synth.render import Renderer
from xunjian.datasets.synth.truth import VisibleTarget, frame_truth
from xunjian.datasets.synth.world import World

FRAMES_FORMAT = "xunjian.synth.frames/1"
SMALL_HEIGHT_M = 30.0


@dataclass
class FrameTruth:
    """One rendered frame: where the camera really was, what its tags say, what it shows."""

    index: int
    image: str
    platform: str
    captured_at: str
    t_s: float
    camera: dict[str, Any]
    pose: dict[str, Any]
    intrinsics: dict[str, Any]
    tags: dict[str, Any]
    jpeg_quality: int
    targets: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FlightTruth:
    kind: str
    seed: int
    world: World
    frames: list[FrameTruth]
    noise: dict[str, Any]
    out_dir: Path | None = None

    def frames_json(self) -> str:
        doc = {
            "format": FRAMES_FORMAT,
            "kind": self.kind,
            "seed": self.seed,
            "world": {
                "file": "world.json",
                "seed": self.world.seed,
                "day": self.world.day,
                "anchor": [self.world.anchor_lat, self.world.anchor_lon],
                "ground_alt_m": self.world.ground_alt_m,
                "epoch": self.world.epoch,
            },
            "noise": self.noise,
            "frames": [asdict(f) for f in self.frames],
        }
        return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False)

    def class_counts(self) -> dict[str, int]:
        """How many distinct targets of each class at least one frame shows unoccluded."""
        seen = {(t["id"], t["class"]) for f in self.frames for t in f.targets if not t["occluded"]}
        return dict(sorted(Counter(c for _, c in seen).items()))

    @classmethod
    def load(cls, flight_dir: Path) -> FlightTruth:
        """Reads a flight directory written by :func:`render_flight`."""
        truth = Path(flight_dir) / "truth"
        try:
            doc = json.loads((truth / "frames.json").read_text(encoding="utf-8"))
            world = World.from_json((truth / "world.json").read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{flight_dir}: not a synthetic flight ({exc.filename} missing)"
            ) from None
        if doc.get("format") != FRAMES_FORMAT:
            raise ValueError(
                f"{truth / 'frames.json'}: expected format {FRAMES_FORMAT!r},"
                f" got {doc.get('format')!r}"
            )
        frames = [FrameTruth(**f) for f in doc["frames"]]
        return cls(doc["kind"], doc["seed"], world, frames, doc["noise"], Path(flight_dir))


def _tags_dict(tags: PhotoTags) -> dict[str, Any]:
    d = asdict(tags)
    d["captured_at"] = tags.captured_at.isoformat()
    if d.get("optical_center_px") is not None:
        d["optical_center_px"] = list(d["optical_center_px"])
    return d


def render_flight(
    world: World,
    plan: Sequence[ShotPlan],
    out_dir: Path,
    *,
    seed: int,
    noise: PoseNoise = PoseNoise(),
    effects: fx.Effects = fx.Effects(),
    renderer: Renderer | None = None,
    kind: str = "survey",
    progress: Any = None,
) -> FlightTruth:
    """Renders every shot of ``plan`` into ``out_dir`` (layout in the module docstring)."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    renderer = renderer if renderer is not None and renderer.world is world else Renderer(world)
    tags = noisy_tags(world, plan, noise, Generator(PCG64([seed, 1])))
    frames: list[FrameTruth] = []
    for i, shot in enumerate(plan):
        rng = Generator(PCG64([seed, 2, i]))
        k = shot.camera.intrinsics()
        t_s = world.seconds_since_epoch(shot.captured_at)
        img = renderer.render(shot.pose, k, t_s, rng=rng, effects=effects)
        quality = fx.jpeg_quality(effects, rng)
        (out / "images" / shot.name).write_bytes(encode_jpeg(img, tags[i], quality=quality))
        visible: list[VisibleTarget] = frame_truth(
            world, renderer.view(shot.pose, k), t_s, max_range_m=renderer.max_range_m
        )
        frames.append(
            FrameTruth(
                index=i,
                image=f"images/{shot.name}",
                platform=str(shot.platform),
                captured_at=shot.captured_at.isoformat(),
                t_s=round(t_s, 3),
                camera=asdict(shot.camera),
                pose=asdict(shot.pose),
                intrinsics=asdict(k),
                tags=_tags_dict(tags[i]),
                jpeg_quality=quality,
                targets=[v.to_dict() for v in visible],
            )
        )
        if progress is not None:
            progress(i + 1, len(plan), shot.name)
    truth = FlightTruth(kind, seed, world, frames, asdict(noise), out)
    (out / "truth" / "world.json").write_text(world.to_json(), encoding="utf-8")
    geo = json.dumps(world.targets_geojson(), indent=1, sort_keys=True, ensure_ascii=False)
    (out / "truth" / "targets.geojson").write_text(geo, encoding="utf-8")
    (out / "truth" / "frames.json").write_text(truth.frames_json(), encoding="utf-8")
    if kind == "vehicle":
        gpx = track_gpx(world, plan, noise, Generator(PCG64([seed, 3])))
        (out / "track.gpx").write_text(gpx, encoding="utf-8")
    summary = {
        "kind": kind,
        "seed": seed,
        "world_seed": world.seed,
        "world_day": world.day,
        "frames": len(frames),
        "camera": plan[0].camera.name if plan else None,
        "image_size": [plan[0].camera.width, plan[0].camera.height] if plan else None,
        "targets_seen": truth.class_counts(),
        "layout": {
            "images": "images/",
            "truth": "truth/",
            "gpx": "track.gpx" if kind == "vehicle" else None,
        },
    }
    (out / "flight.json").write_text(
        json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8"
    )
    return truth


def survey_area(world: World, inset_m: float = 10.0) -> tuple[float, float, float, float]:
    """Where the photo centres of the default survey lie: the focus area, inset so that the
    photos' footprints (tens of metres wide) cover the focus without flying far beyond it."""
    e0, n0, e1, n1 = world.focus
    return e0 + inset_m, n0 + inset_m, e1 - inset_m, n1 - inset_m


def make_small_flight(
    out_dir: Path,
    seed: int = 0,
    *,
    world: World | None = None,
    size: str = "small",
    height_m: float = SMALL_HEIGHT_M,
    noise: PoseNoise = PoseNoise(),
    effects: fx.Effects = fx.Effects(),
) -> FlightTruth:
    """The demo's flight: a nadir survey of the focus area (≥ 20 frames, 70/60 % overlap)."""
    world = world if world is not None else World.generate(seed)
    plan = plan_survey(
        world,
        area=survey_area(world),
        cam=CAMERAS[size],
        height_m=height_m,
        forward_overlap=0.7,
        side_overlap=0.6,
    )
    return render_flight(world, plan, out_dir, seed=seed, noise=noise, effects=effects)


def make_vehicle_run(
    out_dir: Path,
    seed: int = 0,
    *,
    world: World | None = None,
    size: str = "dashcam",
    every_m: float = 5.0,
    length_m: float = 160.0,
    noise: PoseNoise = PoseNoise(),
    effects: fx.Effects = fx.Effects(),
) -> FlightTruth:
    """A patrol-vehicle run along the main road through the focus area, with a GPX track."""
    world = world if world is not None else World.generate(seed)
    plan = plan_vehicle_run(world, cam=CAMERAS[size], every_m=every_m, length_m=length_m)
    return render_flight(
        world, plan, out_dir, seed=seed, noise=noise, effects=effects, kind="vehicle"
    )
