"""The ``fusion`` benchmark: issues made by ``core.fusion`` vs the test range's ground truth.

A survey of the synthetic test range is *simulated* without rendering pixels: the shot plan
of ``make_small_flight`` (nadir, 70 % forward / 60 % side overlap), the exact truth boxes of
``datasets.synth.frame_truth`` as detections — optionally with detector noise (dropped
boxes, jittered boxes, false positives at a rate per frame) — georeferenced with the exact
pose or with the noisy metadata the photos would carry. Georeferencing goes through
``xunjian.inspect.georef.georeference`` (the pipeline's stage); a minimal box-centre
projection stands in where that stage cannot be imported.

Metrics (each issue is attributed to the target most of its observations came from; an issue
of false positives belongs to none): issue precision (also among issues seen in at least two
frames, what a publish threshold would keep), recall of the unoccluded targets,
the share of targets that became exactly one issue, duplicate rate (found targets with more
than one issue), mean location error — for fused issues and for the naive
one-issue-per-detection baseline — and, for a second flight over the unchanged world, how
many new issues it opens for targets that already have one.

May import: anything in xunjian but ``service`` and ``cli``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator

from xunjian.core.camera import pixel_to_latlon
from xunjian.core.fusion import FusionParams, build_issue, fuse_batch
from xunjian.core.geo import latlon_to_en
from xunjian.core.issues import Issue, ObservationKey, observation_key
from xunjian.core.records import (
    CameraIntrinsics,
    CameraPose,
    Detection,
    Frame,
    Observation,
    Platform,
)
from xunjian.core.taxonomy import CLASSES
from xunjian.datasets.synth import CAMERAS, PoseNoise, World, frame_truth, plan_survey, survey_area
from xunjian.datasets.synth.noise import noisy_tags
from xunjian.datasets.synth.render import Renderer

MODEL_VERSION = "truth@bench"
STATIC_CLASSES = tuple(c.name for c in CLASSES if not c.is_event)
EVENT_CLASSES = frozenset(c.name for c in CLASSES if c.is_event)


@dataclass(frozen=True, slots=True)
class DetectorNoise:
    """How the simulated detector errs: per box, per frame."""

    drop: float = 0.0
    jitter: float = 0.0
    false_positives_per_frame: float = 0.0
    confidence: tuple[float, float] = (0.6, 0.95)


NOISY_DETECTOR = DetectorNoise(drop=0.15, jitter=0.08, false_positives_per_frame=0.2)


@dataclass
class SimFlight:
    """A simulated batch: frames with the metadata's pose, observations and their truth."""

    batch_id: str
    world: World
    frames: list[Frame]
    observations: list[Observation]
    source: dict[ObservationKey, str | None] = field(default_factory=dict)
    visible: dict[str, str] = field(default_factory=dict)
    truth_at: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    frames_seeing: dict[str, int] = field(default_factory=dict)
    exact: dict[str, tuple[CameraPose, CameraIntrinsics, float]] = field(default_factory=dict)
    """Per frame key: the exact pose, the intrinsics, seconds since the world's epoch."""


def simulate_flight(
    world: World,
    *,
    batch_id: str,
    seed: int,
    pose_noise: PoseNoise | None = PoseNoise(),
    detector: DetectorNoise = DetectorNoise(),
    size: str = "small",
    height_m: float = 30.0,
    area: tuple[float, float, float, float] | None = None,
    start_offset_s: float = 0.0,
) -> SimFlight:
    """One survey over ``world``; ``pose_noise=None`` puts the exact pose in the metadata.

    The survey starts 30 min after the world's epoch, plus ``start_offset_s``.
    """
    cam = CAMERAS[size]
    plan = plan_survey(
        world,
        start=world.epoch_time + timedelta(minutes=30, seconds=start_offset_s),
        area=area or survey_area(world),
        cam=cam,
        height_m=height_m,
        forward_overlap=0.7,
        side_overlap=0.6,
    )
    tags = noisy_tags(world, plan, pose_noise or PoseNoise(), Generator(PCG64([seed, 1])))
    renderer = Renderer(world)
    rng = Generator(PCG64([seed, 9]))
    sim = SimFlight(batch_id, world, [], [])
    seen: Counter[str] = Counter()
    for i, shot in enumerate(plan):
        k = shot.camera.intrinsics()
        pose = replace(shot.pose, sigma_xy_m=0.05, sigma_h_m=0.05, sigma_yaw_deg=0.05)
        if pose_noise is not None:
            t = tags[i]
            pose = replace(
                shot.pose,
                lat=t.lat,
                lon=t.lon,
                height_m=t.rel_alt_m or shot.pose.height_m,
                yaw_deg=t.gimbal_yaw_deg if t.gimbal_yaw_deg is not None else shot.pose.yaw_deg,
                pitch_deg=t.gimbal_pitch_deg or shot.pose.pitch_deg,
                roll_deg=t.gimbal_roll_deg or 0.0,
                sigma_xy_m=max(pose_noise.gps_sigma_m, 0.05),
                sigma_h_m=max(pose_noise.rel_alt_sigma_m, 0.05),
                sigma_yaw_deg=max(pose_noise.yaw_sigma_deg, 0.05),
            )
        frame = Frame(
            batch_id=batch_id,
            key=shot.name,
            sha256="",
            width=k.width,
            height=k.height,
            platform=Platform(shot.platform),
            captured_at=shot.captured_at,
            intrinsics=k,
            pose=pose,
        )
        sim.frames.append(frame)
        t_s = world.seconds_since_epoch(shot.captured_at)
        sim.exact[shot.name] = (shot.pose, k, t_s)
        boxes: list[tuple[tuple[float, float, float, float], str, str | None]] = []
        for v in frame_truth(world, renderer.view(shot.pose, k), t_s):
            if v.occluded:
                continue
            sim.visible[v.id] = v.cls
            sim.truth_at[(shot.name, v.id)] = (v.lat, v.lon)
            seen[v.id] += 1
            if rng.random() < detector.drop:
                continue
            boxes.append((_jitter(v.box, detector.jitter, k.width, k.height, rng), v.cls, v.id))
        for _ in range(rng.poisson(detector.false_positives_per_frame)):
            boxes.append(
                (_random_box(k.width, k.height, rng), str(rng.choice(STATIC_CLASSES)), None)
            )
        dets = []
        for box, cls, tid in boxes:
            conf = float(rng.uniform(*detector.confidence)) if tid else float(rng.uniform(0.3, 0.6))
            det = Detection(_detector_of(cls), cls, round(conf, 3), box, MODEL_VERSION, shot.name)
            dets.append((det, tid))
        for obs, tid in _georeference(frame, dets):
            sim.observations.append(obs)
            sim.source[observation_key(obs)] = tid
    sim.frames_seeing = dict(seen)
    return sim


def _detector_of(cls: str) -> str:
    return next(str(c.detector) for c in CLASSES if c.name == cls)


def _jitter(
    box: tuple[float, float, float, float], j: float, w: int, h: int, rng: Generator
) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    if j > 0:
        bw, bh = x1 - x0, y1 - y0
        dx0, dx1 = rng.normal(0.0, j * bw, 2)
        dy0, dy1 = rng.normal(0.0, j * bh, 2)
        x0, x1 = sorted((x0 + dx0, x1 + dx1))
        y0, y1 = sorted((y0 + dy0, y1 + dy1))
    x0, x1 = float(np.clip(x0, 0, w)), float(np.clip(x1, 0, w))
    y0, y1 = float(np.clip(y0, 0, h)), float(np.clip(y1, 0, h))
    return (x0, y0, max(x1, x0 + 1e-3), max(y1, y0 + 1e-3))


def _random_box(w: int, h: int, rng: Generator) -> tuple[float, float, float, float]:
    bw, bh = rng.uniform(10, 80, 2)
    x0, y0 = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    return (float(x0), float(y0), float(x0 + bw), float(y0 + bh))


def _georeference(
    frame: Frame, dets: Sequence[tuple[Detection, str | None]]
) -> list[tuple[Observation, str | None]]:
    try:
        from xunjian.inspect.georef import georeference
    except ImportError:  # the pipeline's stage not there: project box centres, simple σ
        return [(o, tid) for o, tid in ((_local_georef(frame, d), tid) for d, tid in dets) if o]
    by_det = {id(d): tid for d, tid in dets}
    obs, _rejected = georeference(frame, [d for d, _ in dets])
    return [(o, by_det.get(id(o.detection))) for o in obs]


def _local_georef(frame: Frame, det: Detection) -> Observation | None:
    pose, k = frame.pose, frame.intrinsics
    assert pose is not None and k is not None
    x0, y0, x1, y1 = det.bbox_xyxy
    ll, ok = pixel_to_latlon(pose, k, [(x0 + x1) / 2, (y0 + y1) / 2])
    if not bool(ok):
        return None
    e, n = latlon_to_en(ll[0], ll[1], pose.lat, pose.lon)
    rng = math.hypot(float(e), float(n))
    gsd = math.hypot(rng, pose.height_m) / k.fx
    sigma = math.sqrt(
        pose.sigma_xy_m**2
        + (rng * math.radians(pose.sigma_yaw_deg)) ** 2
        + (gsd * max(det.width, det.height)) ** 2 / 12
    )
    return Observation(
        det,
        frame.batch_id,
        frame.key,
        float(ll[0]),
        float(ll[1]),
        sigma,
        rng,
        gsd,
        frame.captured_at,
    )


# -- metrics ---------------------------------------------------------------------------------


def attribute(issue: Issue, flights: Sequence[SimFlight]) -> str | None:
    """The target most of the issue's observations came from (None: false positives)."""
    votes: Counter[str | None] = Counter()
    for o in issue.observations:
        key = observation_key(o)
        for f in flights:
            if key in f.source:
                votes[f.source[key]] += 1
    return votes.most_common(1)[0][0] if votes else None


def score_issues(
    issues: Sequence[Issue], flights: Sequence[SimFlight], *, events: bool = False
) -> dict[str, Any]:
    """Precision, recall, exactly-one share, duplicate rate, location error of ``issues``.

    Static classes by default; ``events=True`` scores the spoil-truck events instead (a truck
    seen on two legs minutes apart is two events by design, so it is reported apart).
    """
    issues = [i for i in issues if i.is_event == events]
    visible: dict[str, str] = {}
    for f in flights:
        visible.update({t: c for t, c in f.visible.items() if (c in EVENT_CLASSES) == events})
    per_target: Counter[str] = Counter()
    errors = []
    real = 0
    for issue in issues:
        tid = attribute(issue, flights)
        if tid is None or tid not in visible:
            continue
        real += 1
        per_target[tid] += 1
        truth = next(
            (
                f.truth_at[(issue.evidence.frame_key, tid)]
                for f in flights
                if f.batch_id == issue.evidence.batch_id
                and (issue.evidence.frame_key, tid) in f.truth_at
            ),
            None,
        )
        if truth is not None:
            e, n = latlon_to_en(issue.lat, issue.lon, truth[0], truth[1])
            errors.append(math.hypot(float(e), float(n)))
    found = len(per_target)
    multi = [i for i in issues if len({(o.batch_id, o.frame_key) for o in i.observations}) > 1]
    multi_real = sum(1 for i in multi if attribute(i, flights) in visible)
    n_vis = max(len(visible), 1)
    return {
        "issues": len(issues),
        "targets_visible": len(visible),
        "precision": round(real / max(len(issues), 1), 4),
        "recall": round(found / n_vis, 4),
        "precision_seen_twice": round(multi_real / max(len(multi), 1), 4),
        "exactly_one": round(sum(1 for c in per_target.values() if c == 1) / n_vis, 4),
        "duplicate_rate": round(sum(1 for c in per_target.values() if c > 1) / max(found, 1), 4),
        "mean_location_error_m": round(float(np.mean(errors)), 3) if errors else None,
    }


def naive_issues(observations: Sequence[Observation]) -> list[Issue]:
    """The baseline: one issue per detection."""
    return [build_issue([o]) for o in observations]


def run(
    seed: int = 7,
    *,
    pose_noise: PoseNoise | None = PoseNoise(),
    detector: DetectorNoise = DetectorNoise(),
    params: FusionParams = FusionParams(),
) -> dict[str, Any]:
    """One scenario: fused vs naive on flight 1, then flight 2 over the unchanged world."""
    world = World.generate(seed)
    f1 = simulate_flight(
        world, batch_id="flight-1", seed=seed, pose_noise=pose_noise, detector=detector
    )
    issues = list(fuse_batch(f1.observations, (), params).new)
    f2 = simulate_flight(
        world,
        batch_id="flight-2",
        seed=seed + 1000,
        pose_noise=pose_noise,
        detector=detector,
        start_offset_s=3600.0,
    )
    second = fuse_batch(f2.observations, issues, params)
    naive = naive_issues(f1.observations)
    known = {attribute(i, [f1]) for i in issues if not i.is_event} - {None}
    new_known = [i for i in second.new if attribute(i, [f2]) in known]
    return {
        "seed": seed,
        "frames": len(f1.frames),
        "observations": len(f1.observations),
        "pose_noise": "exact" if pose_noise is None else "metadata",
        "detector_noise": {
            "drop": detector.drop,
            "jitter": detector.jitter,
            "false_positives_per_frame": detector.false_positives_per_frame,
        },
        "fused": score_issues(issues, [f1]),
        "naive": score_issues(naive, [f1]),
        "events_fused": score_issues(issues, [f1], events=True),
        "events_naive": score_issues(naive, [f1], events=True),
        "second_flight": {
            "observations": len(f2.observations),
            "updated_issues": len(second.updated),
            "new_issues": len(second.new),
            "new_static_issues": sum(1 for i in second.new if not i.is_event),
            "new_issues_for_known_targets": len(new_known),
            "new_issues_for_real_targets": sum(1 for i in second.new if attribute(i, [f2])),
        },
    }


def run_all(seeds: Sequence[int] = (7, 11)) -> dict[str, Any]:
    """Every scenario (exact / noisy metadata × clean / noisy detector) for ``seeds``."""
    scenarios = {
        "exact_clean": {"pose_noise": None, "detector": DetectorNoise()},
        "metadata_clean": {"pose_noise": PoseNoise(), "detector": DetectorNoise()},
        "metadata_noisy_detector": {"pose_noise": PoseNoise(), "detector": NOISY_DETECTOR},
    }
    return {
        "benchmark": "fusion",
        "scenarios": {
            name: [run(s, **kw) for s in seeds]  # type: ignore[arg-type]
            for name, kw in scenarios.items()
        },
    }


def bench_fusion(quick: bool = False) -> dict[str, Any]:
    """Entry point of ``xunjian bench fusion``: one seed when ``quick``, four otherwise."""
    return run_all((7,) if quick else (7, 11, 23, 31))
