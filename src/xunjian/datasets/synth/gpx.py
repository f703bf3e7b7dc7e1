"""A patrol vehicle's GPS track as a GPX 1.1 file, with realistic noise.

The vehicle drives the run's path at constant speed; the receiver logs a fix every
``interval_s`` seconds with a slowly wandering error (Gauss–Markov, σ ``gps_sigma_m``) and a
noisy ellipsoidal height. A small hand-written XML writer: the format needs nothing more.

May import: numpy, the standard library, ``xunjian.core`` and sibling modules of ``synth``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from xml.sax.saxutils import escape

import numpy as np
from numpy.random import Generator

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.datasets.synth.noise import PoseNoise, gauss_markov
from xunjian.datasets.synth.plans import ShotPlan
from xunjian.datasets.synth.world import World


def track_gpx(
    world: World,
    plans: Sequence[ShotPlan],
    noise: PoseNoise,
    rng: Generator,
    *,
    interval_s: float = 1.0,
    name: str = "xunjian synthetic patrol",
) -> str:
    """GPX text of the track the vehicle drove while taking ``plans`` (padded 5 s each end)."""
    if not plans:
        raise ValueError("track_gpx: expected at least one shot, got none")
    t0, t1 = (
        plans[0].captured_at - timedelta(seconds=5),
        plans[-1].captured_at + timedelta(seconds=5),
    )
    shot_t = np.array([(p.captured_at - t0).total_seconds() for p in plans])
    shot_en = np.array(
        [latlon_to_en(p.pose.lat, p.pose.lon, world.anchor_lat, world.anchor_lon) for p in plans],
        float,
    ).reshape(-1, 2)
    times = np.arange(0.0, (t1 - t0).total_seconds() + 1e-9, interval_s)
    # Constant speed between shots; beyond the ends, extrapolate along the first/last step.
    if len(plans) > 1:
        v0 = (shot_en[1] - shot_en[0]) / max(shot_t[1] - shot_t[0], 1e-9)
        v1 = (shot_en[-1] - shot_en[-2]) / max(shot_t[-1] - shot_t[-2], 1e-9)
    else:
        v0 = v1 = np.zeros(2)
    e = np.interp(times, shot_t, shot_en[:, 0])
    n = np.interp(times, shot_t, shot_en[:, 1])
    before, after = times < shot_t[0], times > shot_t[-1]
    e[before] += (times[before] - shot_t[0]) * v0[0]
    n[before] += (times[before] - shot_t[0]) * v0[1]
    e[after] += (times[after] - shot_t[-1]) * v1[0]
    n[after] += (times[after] - shot_t[-1]) * v1[1]
    err = gauss_markov(rng, times, noise.gps_sigma_m, noise.gps_correlation_s)
    lat, lon = en_to_latlon(e + err[:, 0], n + err[:, 1], world.anchor_lat, world.anchor_lon)
    height = plans[0].pose.height_m
    ele = (
        world.ground_alt_m + height + gauss_markov(rng, times, noise.abs_alt_sigma_m, 30.0, 1)[:, 0]
    )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="xunjian synth" xmlns="http://www.topografix.com/GPX/1/1">',
        f"  <trk><name>{escape(name)}</name><trkseg>",
    ]
    for i, t in enumerate(times):
        moment = (t0 + timedelta(seconds=float(t))).astimezone(UTC)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        lines.append(
            f'    <trkpt lat="{lat[i]:.8f}" lon="{lon[i]:.8f}"><ele>{ele[i]:.2f}</ele>'
            f"<time>{stamp}</time></trkpt>"
        )
    lines += ["  </trkseg></trk>", "</gpx>", ""]
    return "\n".join(lines)
