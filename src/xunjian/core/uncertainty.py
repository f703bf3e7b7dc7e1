"""How sure the place of a geolocated detection is: the σ model of specs/georef.md, in metres.

One standard deviation of the horizontal error *per axis* (the injected GPS noise of the test
range is per-axis too, so about 86 % of 2-D errors lie within 2σ when the model is right)::

    σ² = σ_gps²                                  position of the camera (GPS / RTK)
       + (range · σ_yaw)²                        heading error swings the point sideways
       + (σ_h · tan(off-nadir))²                 a wrong height slides it along the ray
       + ((range² + h²)/h · σ_pitch)²            a wrong pitch slides it along the ray
       + (GSD · box size)² / 12                  where in the box the object really is

σ_yaw and σ_pitch are in radians inside the formula (the arguments are degrees). The pitch
term is not in the spec's formula but matters: d(range)/d(pitch) = (range² + h²)/h, so for a
vehicle camera 1.6 m above the road a 0.3° pitch error moves a point 20 m ahead by 1.3 m
(more than its GPS error), and a drone at 30 m with −45° pitch and 0.2° gimbal noise by 0.2 m.
Pass ``sigma_pitch_deg=0`` for the spec's formula exactly.

Pure: numpy-free arithmetic on floats. May import: the standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SigmaTerms", "position_sigma_m", "sigma_terms"]


@dataclass(frozen=True, slots=True)
class SigmaTerms:
    """The independent parts of a geolocation σ (metres each); ``total`` adds them in quadrature."""

    gps_m: float
    yaw_m: float
    height_m: float
    pitch_m: float
    box_m: float

    @property
    def total(self) -> float:
        return math.sqrt(
            self.gps_m**2 + self.yaw_m**2 + self.height_m**2 + self.pitch_m**2 + self.box_m**2
        )

    @property
    def dominant(self) -> str:
        """Which term is largest: ``gps``, ``yaw``, ``height``, ``pitch`` or ``box``."""
        terms = {
            "gps": self.gps_m,
            "yaw": self.yaw_m,
            "height": self.height_m,
            "pitch": self.pitch_m,
            "box": self.box_m,
        }
        return max(terms, key=lambda name: terms[name])


def _check(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f"{name}: expected a finite number ≥ 0, got {value!r}")


def sigma_terms(
    *,
    sigma_xy_m: float,
    range_m: float,
    height_m: float,
    sigma_yaw_deg: float,
    sigma_h_m: float,
    gsd_m: float = 0.0,
    box_px: float = 0.0,
    sigma_pitch_deg: float = 0.0,
) -> SigmaTerms:
    """Each term of the σ model for a point ``range_m`` (horizontal) from the camera's ground point.

    ``height_m`` is the camera's height above the ground (> 0); the off-nadir angle of the ray
    is ``atan(range / height)``. ``gsd_m`` is the ground size of one pixel at the point and
    ``box_px`` the box size in pixels along which the object's true point is uncertain.
    """
    for name, value in (
        ("sigma_xy_m", sigma_xy_m),
        ("range_m", range_m),
        ("sigma_yaw_deg", sigma_yaw_deg),
        ("sigma_h_m", sigma_h_m),
        ("gsd_m", gsd_m),
        ("box_px", box_px),
        ("sigma_pitch_deg", sigma_pitch_deg),
    ):
        _check(name, value)
    if not math.isfinite(height_m) or height_m <= 0.0:
        raise ValueError(f"height_m: expected a finite number > 0, got {height_m!r}")
    tan_off_nadir = range_m / height_m
    return SigmaTerms(
        gps_m=sigma_xy_m,
        yaw_m=range_m * math.radians(sigma_yaw_deg),
        height_m=sigma_h_m * tan_off_nadir,
        pitch_m=(range_m**2 + height_m**2) / height_m * math.radians(sigma_pitch_deg),
        box_m=gsd_m * box_px / math.sqrt(12.0),
    )


def position_sigma_m(
    *,
    sigma_xy_m: float,
    range_m: float,
    height_m: float,
    sigma_yaw_deg: float,
    sigma_h_m: float,
    gsd_m: float = 0.0,
    box_px: float = 0.0,
    sigma_pitch_deg: float = 0.0,
) -> float:
    """The total σ (metres, per axis) of :func:`sigma_terms`."""
    return sigma_terms(
        sigma_xy_m=sigma_xy_m,
        range_m=range_m,
        height_m=height_m,
        sigma_yaw_deg=sigma_yaw_deg,
        sigma_h_m=sigma_h_m,
        gsd_m=gsd_m,
        box_px=box_px,
        sigma_pitch_deg=sigma_pitch_deg,
    ).total
