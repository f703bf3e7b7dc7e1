"""Benchmark ``georef``: error (m) of georeferenced targets on the test range vs the truth.

Small flights are rendered — nadir and oblique (−45°) drone surveys and a patrol-vehicle run —
once with exact metadata and once with realistic noise (``PoseNoise()``: GPS σ 1.5 m, yaw σ 1°
…). Each frame's pose is read back from the JPEG as the pipeline sees it (vehicle frames: the
GPX track + mount profile; their intrinsics from the camera profile, i.e. the truth's). Each
visible flat target's truth box goes through :func:`xunjian.inspect.georef.georeference` as a
detection and lands somewhere; the error is its distance from the target's true centre. A
second figure, ``point``, georeferences the truth's ``center_px`` alone (pure geometry, no
box-to-point choice). Reported next to the GSD, the injected σ and the fraction of errors
within 2σ (is σ calibrated? ≈ 86 % for a right per-axis σ).

May import anything in xunjian except service and cli.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from xunjian.core.geo import latlon_to_en
from xunjian.core.records import CameraIntrinsics, Detection, Frame, Platform
from xunjian.datasets.synth import (
    CAMERAS,
    EXACT,
    FlightTruth,
    FrameTruth,
    PoseNoise,
    World,
    plan_survey,
    plan_vehicle_run,
    render_flight,
)
from xunjian.datasets.synth.flight import survey_area
from xunjian.inspect.georef import georeference, pixel_points
from xunjian.inspect.metadata import extract_metadata
from xunjian.inspect.tracks import VehicleMount, load_track

STANDING = ("spoil_truck", "spoil_truck_uncovered")
KINDS = ("nadir", "oblique", "vehicle")


def render_case(
    kind: str, out_dir: Path, *, seed: int, noise: PoseNoise, world: World, quick: bool = False
) -> FlightTruth:
    """Renders one small test flight of ``kind`` (nadir, oblique or vehicle)."""
    if kind == "vehicle":
        plan = plan_vehicle_run(world, every_m=8.0 if quick else 5.0, length_m=60 if quick else 160)
        return render_flight(world, plan, out_dir, seed=seed, noise=noise, kind="vehicle")
    pitch, height = (-90.0, 30.0) if kind == "nadir" else (-45.0, 30.0)
    area = survey_area(world, inset_m=25.0 if quick else 10.0)
    plan = plan_survey(
        world,
        area=area,
        cam=CAMERAS["small"],
        height_m=height,
        pitch_deg=pitch,
        forward_overlap=0.5 if quick else 0.7,
        side_overlap=0.4 if quick else 0.6,
    )
    return render_flight(world, plan, out_dir, seed=seed, noise=noise)


def pipeline_frames(truth: FlightTruth, gps_sigma_m: float = 2.0) -> list[Frame]:
    """The frames as the pipeline sees them: metadata read back from the JPEGs.

    ``gps_sigma_m`` is the position σ assumed without RTK (the setting ``gps_sigma_m``).
    """
    assert truth.out_dir is not None
    track = load_track(truth.out_dir / "track.gpx") if truth.kind == "vehicle" else None
    frames = []
    for ft in truth.frames:
        meta = extract_metadata(truth.out_dir / ft.image, default_sigma_xy_m=gps_sigma_m)
        frame = meta.to_frame(batch_id="bench", key=ft.image, sha256="")
        if track is not None:
            mount = VehicleMount(height_m=ft.pose["height_m"], pitch_deg=ft.pose["pitch_deg"])
            when = meta.captured_at or datetime.fromisoformat(ft.captured_at)
            frame = replace(
                frame,
                platform=Platform.VEHICLE,
                pose=track.pose_at(when, mount, sigma_xy_m=gps_sigma_m),
                intrinsics=CameraIntrinsics(**ft.intrinsics),
            )
        frames.append(frame)
    return frames


def _flat_targets(ft: FrameTruth) -> list[dict[str, Any]]:
    return [
        t
        for t in ft.targets
        if t["class"] not in STANDING and not t["occluded"] and t["in_image_fraction"] >= 0.99
    ]


_FIELDS = ("box", "point", "sigma", "gsd", "rejected", "target", "de", "dn")


def frame_errors(frame: Frame, ft: FrameTruth) -> dict[str, list[float]]:
    """Per flat target of one frame: box error (and its E, N parts), point error, σ, GSD."""
    out: dict[str, list[float]] = {name: [] for name in _FIELDS}
    targets = _flat_targets(ft)
    dets = [
        Detection(t["detector"], t["class"], 1.0, tuple(t["box"]), "truth", frame.key)
        for t in targets
    ]
    obs, rejected = georeference(frame, dets)
    out["rejected"] = [float(len(rejected))]
    by_box = {o.detection.bbox_xyxy: o for o in obs}
    points = pixel_points(frame, [tuple(t["center_px"]) for t in targets])
    for t, det, pt in zip(targets, dets, points, strict=True):
        o = by_box.get(det.bbox_xyxy)
        if o is None or isinstance(pt, str):
            continue
        e, n = latlon_to_en(o.lat, o.lon, t["lat"], t["lon"])
        out["box"].append(float(math.hypot(e, n)))
        out["de"].append(float(e))
        out["dn"].append(float(n))
        out["target"].append(float(t["id"].lstrip("T")))
        e, n = latlon_to_en(pt[0], pt[1], t["lat"], t["lon"])
        out["point"].append(float(math.hypot(e, n)))
        out["sigma"].append(o.sigma_m)
        out["gsd"].append(o.gsd_m)
    return out


def flight_acc(
    truth: FlightTruth, frames: list[Frame], acc: dict[str, list[float]] | None = None
) -> dict[str, list[float]]:
    """Per-target figures of one flight, appended to ``acc`` (targets of each flight distinct)."""
    acc = {name: [] for name in _FIELDS} if acc is None else acc
    offset = 100_000.0 * (max(acc["target"], default=0.0) // 100_000.0 + 1.0)
    for frame, ft in zip(frames, truth.frames, strict=True):
        for name, values in frame_errors(frame, ft).items():
            acc[name].extend([v + offset for v in values] if name == "target" else values)
    return acc


def flight_errors(truth: FlightTruth, frames: list[Frame] | None = None) -> dict[str, Any]:
    """Summary figures of one rendered flight (``frames`` default: read from its JPEGs)."""
    return summarise(flight_acc(truth, pipeline_frames(truth) if frames is None else frames))


def cross_frame_spread(acc: dict[str, list[float]]) -> list[float]:
    """Distances of each target's placements from their mean, over targets seen ≥ 2 times."""
    ids, vec = np.array(acc["target"]), np.column_stack([acc["de"], acc["dn"]])
    out: list[float] = []
    for tid in np.unique(ids):
        v = vec[ids == tid]
        if len(v) >= 2:
            out.extend(np.hypot(*(v - v.mean(axis=0)).T).tolist())
    return out


def summarise(acc: dict[str, list[float]]) -> dict[str, Any]:
    """Median / p95 errors, GSD, σ, calibration (share within 1σ and 2σ), cross-frame spread."""
    box, point = np.array(acc["box"]), np.array(acc["point"])
    sigma, gsd = np.array(acc["sigma"]), np.array(acc["gsd"])
    if len(box) == 0:
        return {"n": 0, "rejected": int(sum(acc["rejected"]))}
    spread = cross_frame_spread(acc)

    def stat(a: np.ndarray | list[float], q: float) -> float | None:
        return round(float(np.percentile(a, q)), 4) if len(a) else None

    return {
        "n": len(box),
        "rejected": int(sum(acc["rejected"])),
        "median_m": stat(box, 50),
        "p95_m": stat(box, 95),
        "point_median_m": stat(point, 50),
        "point_p95_m": stat(point, 95),
        "median_gsd_m": stat(gsd, 50),
        "median_sigma_m": stat(sigma, 50),
        "within_1sigma": round(float(np.mean(box <= sigma)), 3),
        "within_2sigma": round(float(np.mean(box <= 2.0 * sigma)), 3),
        "spread_median_m": stat(spread, 50),
    }


def refine_case(world: World, out_dir: Path, *, seed: int, quick: bool = True) -> dict[str, Any]:
    """A nadir survey whose reverse legs carry a 180° yaw flip: georef before / after refining."""
    import cv2

    from xunjian.inspect.refine import refine_flight

    noise = PoseNoise(flip_reverse_legs=True)
    truth = render_case("nadir", out_dir, seed=seed, noise=noise, world=world, quick=quick)
    frames = pipeline_frames(truth, noise.gps_sigma_m)

    def image(frame: Frame) -> np.ndarray:
        pixels = cv2.imread(str(out_dir / frame.key))
        if pixels is None:
            raise FileNotFoundError(out_dir / frame.key)
        return np.asarray(pixels)

    report = refine_flight(frames, image)
    flipped = {
        ft.image
        for ft in truth.frames
        if abs(ft.tags["gimbal_yaw_deg"] - ft.pose["yaw_deg"]) % 360 > 90
    }
    found = {key for key, what, _ in report.corrections if what.startswith("yaw +180")}
    return {
        "frames": len(frames),
        "flipped": len(flipped),
        "flips_corrected": len(found & flipped),
        "flips_false": len(found - flipped),
        "pairs_used": report.pairs_used,
        "ms_per_pair": round(1000 * report.seconds_per_pair, 1),
        "residuals_m": {k: round(v, 3) for k, v in report.residuals.items()},
        "unrefined": flight_errors(truth, frames),
        "refined": flight_errors(truth, report.frames),
    }


def run(
    *,
    seed: int = 11,
    quick: bool = True,
    noisy_flights: int | None = None,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """The benchmark: figures per camera kind, exact and noisy metadata, as a JSON-able dict.

    ``noisy_flights`` > 1 pools that many noisy flights (noise seeds ``seed``, ``seed + 1`` …):
    one flight draws one slowly wandering GPS error, so σ calibration needs several
    (default: 2 quick, 4 full; a quick run takes ≈ 30 s on 2 cores, a full one a few minutes).
    """
    noisy_flights = (2 if quick else 4) if noisy_flights is None else noisy_flights
    world = World.generate(seed)
    noise = PoseNoise()
    result: dict[str, Any] = {
        "name": "georef",
        "seed": seed,
        "quick": quick,
        "noisy_flights": noisy_flights,
        "injected": {
            "gps_sigma_m": noise.gps_sigma_m,
            "yaw_sigma_deg": noise.yaw_sigma_deg,
            "rel_alt_sigma_m": noise.rel_alt_sigma_m,
        },
        "error": "distance (m) from the georeferenced truth box to the target's true centre",
        "kinds": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)
        for kind in KINDS:
            figures = {}
            for label, nz, n in (("exact", EXACT, 1), ("noisy", noise, noisy_flights)):
                acc: dict[str, list[float]] | None = None
                for k in range(n):
                    truth = render_case(
                        kind,
                        root / f"{kind}-{label}-{k}",
                        seed=seed + k,
                        noise=nz,
                        world=world,
                        quick=quick,
                    )
                    acc = flight_acc(truth, pipeline_frames(truth, noise.gps_sigma_m), acc)
                assert acc is not None
                figures[label] = summarise(acc)
            result["kinds"][kind] = figures
        result["refine"] = refine_case(world, root / "refine", seed=seed, quick=quick)
    return result
