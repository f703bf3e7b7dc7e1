"""What the metadata says versus where the camera was: GPS, altimeter and gimbal errors.

Real GPS error wanders slowly (it is correlated over tens of seconds), so positions get a
first-order Gauss–Markov error with σ ``gps_sigma_m``; yaw, pitch and roll get white noise.
The truth keeps the exact pose; only the photo's tags carry these errors.
``flip_reverse_legs`` reproduces a fault seen in real DJI nadir surveys: on reverse legs the
XMP gimbal yaw disagrees with the image by 180°.

May import: numpy, the standard library, ``xunjian.core``, ``xunjian.datasets.flightgen`` and
sibling modules of ``synth``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

from xunjian.core.geo import en_to_latlon, latlon_to_en
from xunjian.core.records import Platform
from xunjian.datasets.flightgen import PhotoTags
from xunjian.datasets.synth.plans import ShotPlan
from xunjian.datasets.synth.world import World


@dataclass(frozen=True)
class PoseNoise:
    gps_sigma_m: float = 1.5
    gps_correlation_s: float = 60.0
    rel_alt_sigma_m: float = 0.3
    abs_alt_sigma_m: float = 3.0
    yaw_sigma_deg: float = 1.0
    pitch_sigma_deg: float = 0.2
    roll_sigma_deg: float = 0.2
    flight_yaw_sigma_deg: float = 3.0
    rtk: bool = False
    flip_reverse_legs: bool = False


EXACT = PoseNoise(0.0, 60.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
RTK = PoseNoise(gps_sigma_m=0.03, rel_alt_sigma_m=0.05, abs_alt_sigma_m=0.05, rtk=True)


def gauss_markov(
    rng: Generator, times_s: np.ndarray, sigma: float, tau_s: float, dims: int = 2
) -> np.ndarray:
    """A stationary first-order Gauss–Markov process sampled at ``times_s``: shape (N, dims)."""
    out = np.zeros((len(times_s), dims))
    if sigma <= 0 or len(times_s) == 0:
        return out
    out[0] = rng.normal(0.0, sigma, dims)
    for i in range(1, len(times_s)):
        rho = math.exp(-max(times_s[i] - times_s[i - 1], 0.0) / tau_s)
        out[i] = rho * out[i - 1] + math.sqrt(1 - rho * rho) * rng.normal(0.0, sigma, dims)
    return out


def noisy_tags(
    world: World, plans: Sequence[ShotPlan], noise: PoseNoise, rng: Generator
) -> list[PhotoTags]:
    """The tags each photo carries: the planned pose with ``noise`` added."""
    if not plans:
        return []
    t0 = plans[0].captured_at
    times = np.array([(p.captured_at - t0).total_seconds() for p in plans])
    xy = gauss_markov(rng, times, noise.gps_sigma_m, noise.gps_correlation_s)
    rel = gauss_markov(rng, times, noise.rel_alt_sigma_m, noise.gps_correlation_s, 1)[:, 0]
    absolute = gauss_markov(rng, times, noise.abs_alt_sigma_m, noise.gps_correlation_s, 1)[:, 0]
    tags = []
    for i, plan in enumerate(plans):
        p = plan.pose
        e, n = latlon_to_en(p.lat, p.lon, world.anchor_lat, world.anchor_lon)
        lat, lon = en_to_latlon(
            float(e) + xy[i, 0], float(n) + xy[i, 1], world.anchor_lat, world.anchor_lon
        )
        yaw = p.yaw_deg + rng.normal(0.0, noise.yaw_sigma_deg) if noise.yaw_sigma_deg else p.yaw_deg
        if noise.flip_reverse_legs and plan.leg % 2 == 1:
            yaw += 180.0
        pitch = p.pitch_deg + (
            rng.normal(0.0, noise.pitch_sigma_deg) if noise.pitch_sigma_deg else 0.0
        )
        roll = p.roll_deg + (rng.normal(0.0, noise.roll_sigma_deg) if noise.roll_sigma_deg else 0.0)
        course = plan.course_deg + (
            rng.normal(0.0, noise.flight_yaw_sigma_deg) if noise.flight_yaw_sigma_deg else 0.0
        )
        cam = plan.camera
        drone = plan.platform is Platform.DRONE
        k = cam.intrinsics()
        tags.append(
            PhotoTags(
                lat=round(float(lat), 9),
                lon=round(float(lon), 9),
                abs_alt_m=round(world.ground_alt_m + p.height_m + float(absolute[i]), 3),
                rel_alt_m=round(p.height_m + float(rel[i]), 3) if drone else None,
                gimbal_yaw_deg=round(_wrap(yaw), 2) if drone else None,
                gimbal_pitch_deg=round(max(-90.0, pitch), 2) if drone else None,
                gimbal_roll_deg=round(roll, 2) if drone else None,
                flight_yaw_deg=round(_wrap(course), 2) if drone else None,
                flight_pitch_deg=0.0 if drone else None,
                flight_roll_deg=0.0 if drone else None,
                captured_at=plan.captured_at,
                make=cam.make,
                model=cam.model,
                focal_length_mm=cam.focal_mm,
                focal_length_35mm=cam.focal_35mm,
                calibrated_focal_px=round(k.fx, 4) if cam.calibrated else None,
                optical_center_px=(k.cx, k.cy) if cam.calibrated else None,
                rtk_flag=50 if noise.rtk else (16 if drone else None),
                rtk_std_lat=noise.gps_sigma_m if noise.rtk else None,
                rtk_std_lon=noise.gps_sigma_m if noise.rtk else None,
                rtk_std_hgt=noise.rel_alt_sigma_m if noise.rtk else None,
            )
        )
    return tags


def _wrap(deg: float) -> float:
    return (deg + 180.0) % 360.0 - 180.0
