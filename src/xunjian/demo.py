"""The embedded-default main job (``xunjian demo`` / ``make demo``).

Synthesises a small survey flight over the built-in test range, runs the pipeline on embedded
defaults (local object store, SQLite), and writes what was found next to the truth it can be
checked against. It grows with the pipeline: each stage that lands adds its output here.

May import everything below the CLI (core, storage, models, inspect, datasets, settings).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xunjian.core.geo import latlon_to_en
from xunjian.core.records import Frame
from xunjian.inspect.footprints import frames_geojson
from xunjian.inspect.ingest import IngestReport, ProgressCallback
from xunjian.inspect.pipeline import Services, run_folder
from xunjian.inspect.upload import UploadReport
from xunjian.settings import Settings

if TYPE_CHECKING:
    from xunjian.datasets.synth import FlightTruth


@dataclass
class DemoResult:
    out_dir: Path
    upload: UploadReport
    ingest: IngestReport
    summary: dict[str, Any] = field(default_factory=dict)


def pose_errors(frames: list[Frame], truth_poses: dict[str, dict[str, float]]) -> dict[str, Any]:
    """How far the metadata poses are from the exact ones the frames were rendered with."""
    position, yaw, height = [], [], []
    for frame in frames:
        name = frame.key.rsplit("/", 1)[-1]
        exact = truth_poses.get(name)
        if frame.pose is None or exact is None:
            continue
        east, north = latlon_to_en(frame.pose.lat, frame.pose.lon, exact["lat"], exact["lon"])
        position.append(float((east**2 + north**2) ** 0.5))
        yaw.append(abs((frame.pose.yaw_deg - exact["yaw_deg"] + 180.0) % 360.0 - 180.0))
        height.append(abs(frame.pose.height_m - exact["height_m"]))
    if not position:
        return {"compared_frames": 0}
    return {
        "compared_frames": len(position),
        "position_error_m_median": round(statistics.median(position), 3),
        "position_error_m_max": round(max(position), 3),
        "yaw_error_deg_median": round(statistics.median(yaw), 3),
        "height_error_m_median": round(statistics.median(height), 3),
    }


def exact_poses(truth: FlightTruth) -> dict[str, dict[str, float]]:
    """The exact pose of every rendered frame, by image file name."""
    return {Path(frame.image).name: frame.pose for frame in truth.frames}


def run_demo(
    settings: Settings,
    *,
    seed: int = 7,
    out_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> DemoResult:
    """Generates a test-range flight, processes it, writes ``out_dir`` (default data_dir/demo)."""
    from xunjian.datasets.synth import make_small_flight

    out = out_dir or settings.data_dir / "demo"
    flight_dir = out / "flight"
    truth = make_small_flight(flight_dir, seed=seed)
    services = Services.open(settings)
    try:
        upload, ingest = run_folder(
            services, flight_dir / "images", batch_id=f"demo-seed{seed}", progress=progress
        )
    finally:
        services.close()

    footprints = frames_geojson(ingest.frames)
    (out / "frames.geojson").write_text(json.dumps(footprints, ensure_ascii=False, indent=1))
    summary: dict[str, Any] = {
        "batch_id": upload.batch_id,
        "frames_uploaded": len(upload.stored) + len(upload.already_there),
        "frames_ingested": len(ingest.frames),
        "frames_with_pose": ingest.georeferenceable,
        "frames_failed": [{"key": k, "reason": r} for k, r in ingest.failures],
        "truth": {"targets": len(truth.world.targets), "frames": len(truth.frames)},
        "metadata_vs_truth": pose_errors(ingest.frames, exact_poses(truth)),
        "injected_noise": truth.noise,
        "outputs": {"footprints": str(out / "frames.geojson"), "flight": str(flight_dir)},
    }
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return DemoResult(out, upload, ingest, summary)
