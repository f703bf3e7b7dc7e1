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

from xunjian.cases.loop import open_case_loop
from xunjian.core.geo import latlon_to_en
from xunjian.core.records import Frame
from xunjian.inspect.ingest import ProgressCallback
from xunjian.inspect.pipeline import BatchResult, Services, batch_summary, run_folder
from xunjian.inspect.upload import UploadReport
from xunjian.models.detector import DetectorSet
from xunjian.settings import Settings

if TYPE_CHECKING:
    from xunjian.datasets.synth import FlightTruth


@dataclass
class DemoResult:
    out_dir: Path
    upload: UploadReport
    batch: BatchResult
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
    detectors: DetectorSet | None = None,
    progress: ProgressCallback | None = None,
    detect_progress: ProgressCallback | None = None,
) -> DemoResult:
    """Generates a test-range flight, processes it, writes ``out_dir`` (default data_dir/demo)."""
    from xunjian.bench.truth import score_against_truth, visible_targets
    from xunjian.datasets.synth import make_small_flight

    out = out_dir or settings.data_dir / "demo"
    flight_dir = out / "flight"
    truth = make_small_flight(flight_dir, seed=seed)
    services = Services.open(settings)
    case_loop = open_case_loop(services, case_system="file")  # a demo never files real cases
    try:
        upload, batch = run_folder(
            services,
            flight_dir / "images",
            batch_id=f"demo-seed{seed}",
            detectors=detectors,
            out_dir=out,
            progress=progress,
            detect_progress=detect_progress,
        )
        issues = services.issues.issues(batch_id=batch.batch_id)
        cases = case_loop.sync()
    finally:
        case_loop.close()
        services.close()
    targets = visible_targets(truth.frames)
    summary = {
        **batch_summary(batch),
        "truth": {"targets_visible": len(targets), "frames": len(truth.frames)},
        "issues_vs_truth": score_against_truth(issues, targets),
        "events_vs_truth": score_against_truth(issues, targets, events=True),
        "metadata_vs_truth": pose_errors(batch.ingest.frames, exact_poses(truth)),
        "injected_noise": truth.noise,
        "cases": {
            "sink": str(settings.case_file or settings.data_dir / "cases.jsonl"),
            "delivered": cases.sent.delivered + cases.sent.found_existing,
            "outbox": cases.outbox,
        },
        "outputs": {**batch.outputs, "flight": str(flight_dir)},
    }
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    return DemoResult(out, upload, batch, summary)
