"""The ``pipeline`` benchmark: end-to-end frames/s and peak memory vs the detect stage alone.

A real test-range survey (``make_small_flight``: 1024×768 nadir frames, 70/60 % overlap, real
targets) is rendered once and *replicated* into batches of 100 and 1000 frames: copy k of the
survey is moved ``k × (survey span + 50 m)`` east — new GPS in EXIF and XMP, the same pixels
— so every batch covers distinct ground and fusion, evidence and verification do their real
work. Each batch is then run twice, each time in a fresh subprocess so that peak RSS
(``ru_maxrss``) belongs to that run alone:

* ``pipeline``: upload → ingest → detect → georef → fuse → evidence → verify → outputs
  (``run_folder`` on embedded defaults: local store, SQLite) with the shipped detectors;
* ``detect``: the detect stage alone over the same files with the same detectors and options
  (read the file, decode, tile, every detector) — the peer.

Reported per batch size: frames/s and peak RSS of both, the overhead ratio (pipeline time ÷
detect time) and the RSS ratio. Model loading is outside the timed part in both.

May import: anything in xunjian but ``service`` and ``cli``.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.datasets.flightgen import PhotoTags, encode_jpeg

SIZES_FULL = (100, 1000)
SIZES_QUICK = (20,)  # --quick: "well under a minute"
GAP_M = 50.0


def _tags(doc: dict[str, Any]) -> PhotoTags:
    d = dict(doc)
    d["captured_at"] = datetime.fromisoformat(d["captured_at"])
    if d.get("optical_center_px") is not None:
        d["optical_center_px"] = tuple(d["optical_center_px"])
    return PhotoTags(**d)


def replicate(flight_dir: Path, frames: int, out: Path) -> Path:
    """A folder of ``frames`` photos: copies of the survey in ``flight_dir``, each moved east.

    Copy k is shifted by k × (the survey's east–west span + 50 m) and taken k × (the survey's
    duration + 1 min) later, so copies neither overlap on the ground nor in time.
    """
    doc = json.loads((flight_dir / "truth" / "frames.json").read_text(encoding="utf-8"))
    shots = doc["frames"]
    if not shots:
        raise ValueError(f"{flight_dir}: expected a flight with frames, got none")
    tags = [_tags(s["tags"]) for s in shots]
    lat0, lon0 = tags[0].lat, tags[0].lon
    east = [float(latlon_to_en(t.lat, t.lon, lat0, lon0)[0]) for t in tags]
    span_m = max(east) - min(east) + GAP_M
    times = [t.captured_at for t in tags]
    duration = max(times) - min(times) + timedelta(minutes=1)
    out.mkdir(parents=True, exist_ok=True)
    pixels = [
        np.asarray(Image.open(flight_dir / s["image"]).convert("RGB"), dtype=np.uint8)
        for s in shots
    ]
    for i in range(frames):
        copy, j = divmod(i, len(shots))
        t = tags[j]
        e, n = latlon_to_en(t.lat, t.lon, lat0, lon0)
        lat, lon = en_to_latlon(float(e) + copy * span_m, float(n), lat0, lon0)
        moved = replace(
            t, lat=float(lat), lon=float(lon), captured_at=t.captured_at + copy * duration
        )
        (out / f"DJI_{i + 1:05d}.JPG").write_bytes(encode_jpeg(pixels[j], moved, quality=90))
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(mode: str, folder: Path, data_dir: Path) -> dict[str, Any]:
    """One run of ``mode`` ("pipeline" or "detect") over ``folder``; call in a fresh process."""
    from xunjian.inspect.detect import DetectOptions, detect_frame
    from xunjian.inspect.pipeline import Services, load_available_detectors, run_folder
    from xunjian.settings import Settings

    settings = Settings(data_dir=data_dir)
    detectors, _missing = load_available_detectors()
    options = DetectOptions(max_pixels=settings.max_image_pixels)
    files = sorted(folder.glob("*.JPG"))
    started = time.perf_counter()
    if mode == "pipeline":
        services = Services.open(settings)
        try:
            _, result = run_folder(
                services, folder, detectors=detectors, options=options, out_dir=data_dir / "out"
            )
        finally:
            services.close()
        counts = {
            "detections": result.detections,
            "observations": len(result.observations),
            "issues_new": len(result.fusion.new) if result.fusion else 0,
            "frames_failed": len(result.ingest.failures) + len(result.frame_errors),
            "stage_seconds": result.timings,
        }
    elif mode == "detect":
        from xunjian.inspect.metadata import extract_metadata

        found = 0
        for path in files:
            # the photo's pose sets the working scale, as in the pipeline
            frame = extract_metadata(path).to_frame(batch_id="bench", key=path.name, sha256="")
            found += len(
                detect_frame(
                    detectors,
                    path.read_bytes(),
                    frame=frame if frame.georeferenceable else None,
                    source=path.name,
                    options=options,
                ).detections
            )
        counts = {"detections": found}
    else:
        raise ValueError(f"expected mode pipeline or detect, got {mode!r}")
    wall = time.perf_counter() - started
    return {
        "frames": len(files),
        "wall_s": round(wall, 3),
        "frames_per_s": round(len(files) / wall, 3) if wall > 0 else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        **counts,
    }


def _run_in_subprocess(mode: str, folder: Path, data_dir: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "xunjian.bench.pipeline", mode, str(folder), str(data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_pipeline(
    quick: bool = False, sizes: tuple[int, ...] | None = None, seed: int = 7
) -> dict[str, Any]:
    """Frames/s and peak RSS of the whole pipeline vs detect alone, per batch size."""
    from xunjian.datasets.synth import make_small_flight

    wanted = sizes or (SIZES_QUICK if quick else SIZES_FULL)
    out: dict[str, Any] = {"batches": {}, "peer": "the detect stage alone, same frames/models"}
    with tempfile.TemporaryDirectory(prefix="xunjian-bench-pipeline-") as tmp:
        root = Path(tmp)
        base = root / "survey"
        truth = make_small_flight(base, seed=seed)
        out["survey_frames"] = len(truth.frames)
        out["image_size"] = [1024, 768]
        for n in wanted:
            folder = replicate(base, n, root / f"flight-{n}")
            pipe = _run_in_subprocess("pipeline", folder, root / f"data-{n}")
            alone = _run_in_subprocess("detect", folder, root / f"detect-{n}")
            out["batches"][str(n)] = {
                "pipeline": pipe,
                "detect_alone": alone,
                "overhead_ratio": _ratio(pipe["wall_s"], alone["wall_s"]),
                "rss_ratio": _ratio(pipe["peak_rss_mb"], alone["peak_rss_mb"]),
            }
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b and math.isfinite(a / b) else None


if __name__ == "__main__":  # the subprocess side of _run_in_subprocess
    mode_arg, folder_arg, data_arg = sys.argv[1:4]
    print(json.dumps(measure(mode_arg, Path(folder_arg), Path(data_arg))))
