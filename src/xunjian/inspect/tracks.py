"""Patrol-vehicle GPS tracks: load GPX / NMEA 0183 / CSV, then position, course and camera pose
at any time.

Positions are interpolated with a shape-preserving cubic (PCHIP, per axis in a local
east-north frame): centimetres on curves sampled at 1 Hz, and no overshoot when the vehicle
stops. The course is the direction of the track over a few metres around the point, so it
holds while the vehicle stands still. Distance ignores GPS jitter below ``stationary_m``, so a
parked vehicle does not "drive" and a video sampled by distance yields no repeated frames.

May import: numpy, pymap3d, defusedxml, ``xunjian.core``, ``xunjian.errors``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np
import pymap3d

from xunjian.core.records import CameraPose
from xunjian.errors import InputError
from xunjian.inspect.trackformats import Fix, parse_track_file

__all__ = ["Fix", "Track", "VehicleMount", "load_track"]


@dataclass(frozen=True)
class VehicleMount:
    """Where the camera sits on the vehicle: height above the road, pitch, yaw from the
    direction of travel (0 = looking forward, 90 = right), roll."""

    height_m: float = 1.6
    pitch_deg: float = -10.0
    yaw_offset_deg: float = 0.0
    roll_deg: float = 0.0


def _pchip_slopes(t: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fritsch–Carlson slopes: zero at local extrema and at stops, so no overshoot."""
    h = np.diff(t)
    delta = np.diff(y) / h
    slopes = np.zeros_like(y)
    if len(y) == 2:
        slopes[:] = delta[0]
        return slopes
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    same_sign = delta[:-1] * delta[1:] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / delta[:-1] + w2 / delta[1:])
    slopes[1:-1] = np.where(same_sign, harmonic, 0.0)
    slopes[0] = _end_slope(h[0], h[1], delta[0], delta[1])
    slopes[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
    return slopes


def _end_slope(h0: float, h1: float, d0: float, d1: float) -> float:
    """Three-point end slope, kept shape-preserving (as SciPy's PchipInterpolator does)."""
    slope = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
    if np.sign(slope) != np.sign(d0):
        return 0.0
    if np.sign(d0) != np.sign(d1) and abs(slope) > abs(3 * d0):
        return 3 * d0
    return float(slope)


class Track:
    """GPS fixes sorted by time (tz-aware), with interpolation and course.

    ``max_gap_s``: no position inside a gap between fixes longer than this (tunnels, lost
    fix). ``tolerance_s``: how far before the first / after the last fix a time may lie.
    """

    def __init__(
        self,
        fixes: Sequence[Fix],
        *,
        source: str = "track",
        max_gap_s: float = 5.0,
        tolerance_s: float = 0.5,
        course_window_m: float = 6.0,
        stationary_m: float = 2.0,
        skipped: int = 0,
        problems: Sequence[str] = (),
    ) -> None:
        self.source = source
        self.skipped, self.problems = skipped, tuple(problems)
        self.max_gap_s, self.tolerance_s = max_gap_s, tolerance_s
        self.course_window_m = course_window_m
        for fix in fixes:
            if fix.time.tzinfo is None or fix.time.utcoffset() is None:
                raise InputError(f"fix at {fix.time} has no time zone", source=source)
        unique: dict[datetime, Fix] = {}
        for fix in sorted(fixes, key=lambda f: f.time):
            unique.setdefault(fix.time, fix)
        self.fixes = tuple(unique.values())
        if len(self.fixes) < 2:
            raise InputError(f"expected at least 2 fixes, got {len(self.fixes)}", source=source)
        first = self.fixes[0]
        self.start, self.end = first.time, self.fixes[-1].time
        self._origin = (first.lat, first.lon)
        self._t = np.array([(f.time - self.start).total_seconds() for f in self.fixes])
        lat = np.array([f.lat for f in self.fixes])
        lon = np.array([f.lon for f in self.fixes])
        east, north, _ = pymap3d.geodetic2enu(lat, lon, 0.0, first.lat, first.lon, 0.0)
        self._en = np.column_stack([east, north])
        self._slopes = np.column_stack(
            [_pchip_slopes(self._t, self._en[:, 0]), _pchip_slopes(self._t, self._en[:, 1])]
        )
        self._cum = self._distances(stationary_m)
        self.length_m = float(self._cum[-1])

    def _distances(self, stationary_m: float) -> np.ndarray:
        """Cumulative metres; moves within ``stationary_m`` of the last anchor are jitter."""
        cum = np.zeros(len(self._en))
        anchor, total = self._en[0], 0.0
        for i in range(1, len(self._en)):
            step = float(np.hypot(*(self._en[i] - anchor)))
            if step >= stationary_m:
                total += step
                anchor = self._en[i]
            cum[i] = total
        return cum

    def __repr__(self) -> str:
        return f"Track({self.source!r}, {len(self.fixes)} fixes, {self.length_m:.0f} m)"

    # ---- time → local frame

    def _seconds(self, t: datetime, *, check_gap: bool = True) -> float:
        if t.tzinfo is None or t.utcoffset() is None:
            raise InputError(f"time {t} has no time zone; the track is in absolute time")
        s = (t - self.start).total_seconds()
        if s < -self.tolerance_s or s > self._t[-1] + self.tolerance_s:
            raise InputError(
                f"time {t.isoformat()} is outside the track {self.start.isoformat()} – "
                f"{self.end.isoformat()} ({self.source})"
            )
        if check_gap:
            i = self._segment(s)
            gap = float(self._t[i + 1] - self._t[i])
            if gap > self.max_gap_s and not (s == self._t[i] or s == self._t[i + 1]):
                raise InputError(
                    f"time {t.isoformat()} falls in a {gap:.0f} s gap of the track "
                    f"(longest allowed {self.max_gap_s:g} s; {self.source})"
                )
        return s

    def _segment(self, s: float) -> int:
        return min(max(bisect.bisect_right(self._t.tolist(), s) - 1, 0), len(self._t) - 2)

    def _en_at(self, s: float) -> np.ndarray:
        i = self._segment(s)
        t0, t1 = self._t[i], self._t[i + 1]
        h = t1 - t0
        u = (s - t0) / h
        if u < 0 or u > 1:  # within the tolerance beyond an end: extrapolate linearly
            edge = 0 if u < 0 else i + 1
            out: np.ndarray = self._en[edge] + self._slopes[edge] * (s - self._t[edge])
            return out
        h00, h10 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u
        h01, h11 = -2 * u**3 + 3 * u**2, u**3 - u**2
        p0, p1, m0, m1 = self._en[i], self._en[i + 1], self._slopes[i], self._slopes[i + 1]
        result: np.ndarray = h00 * p0 + h10 * h * m0 + h01 * p1 + h11 * h * m1
        return result

    def _to_geodetic(self, en: np.ndarray) -> tuple[float, float]:
        lat, lon, _ = pymap3d.enu2geodetic(en[0], en[1], 0.0, *self._origin, 0.0)
        return float(lat), float(lon)

    def _distance_s(self, s: float) -> float:
        return float(np.interp(s, self._t, self._cum))

    def _time_at_distance(self, d: float) -> float:
        """Seconds when the vehicle first reached ``d`` metres along the track."""
        i = int(np.searchsorted(self._cum, d, side="left"))
        if i <= 0:
            return float(self._t[0])
        if i >= len(self._cum):
            return float(self._t[-1])
        d0, d1 = self._cum[i - 1], self._cum[i]
        return float(self._t[i - 1] + (self._t[i] - self._t[i - 1]) * (d - d0) / (d1 - d0))

    # ---- public

    def position_at(self, t: datetime) -> tuple[float, float]:
        """(lat, lon) at ``t``; InputError outside the track or in a gap."""
        return self._to_geodetic(self._en_at(self._seconds(t)))

    def distance_at(self, t: datetime) -> float:
        """Metres travelled along the track from its start to ``t`` (jitter ignored)."""
        return self._distance_s(self._seconds(t, check_gap=False))

    def course_at(self, t: datetime) -> float:
        """Direction of travel at ``t`` in degrees clockwise from north, in [0, 360).

        The chord over ``course_window_m`` centred on the point's distance along the track;
        a stationary vehicle keeps the course it arrived with.
        """
        d = self._distance_s(self._seconds(t, check_gap=False))
        half = self.course_window_m / 2
        if self.length_m < self.course_window_m / 4:
            raise InputError(f"course unknown: the vehicle hardly moved ({self.source})")
        lo, hi = max(0.0, d - half), min(self.length_m, d + half)
        if hi - lo < self.course_window_m:  # near an end: keep the full window inside
            lo, hi = (
                (0.0, min(self.length_m, 2 * half)) if lo == 0 else (max(0.0, hi - 2 * half), hi)
            )
        a = self._en_at(self._time_at_distance(lo))
        b = self._en_at(self._time_at_distance(hi))
        east, north = b - a
        return math.degrees(math.atan2(east, north)) % 360.0

    def elevation_at(self, t: datetime) -> float | None:
        """Interpolated fix height, or None when the fixes carry none."""
        if any(f.ele is None for f in self.fixes):
            return None
        s = self._seconds(t, check_gap=False)
        return float(np.interp(s, self._t, [f.ele or 0.0 for f in self.fixes]))

    def pose_at(self, t: datetime, mount: VehicleMount, *, sigma_xy_m: float = 2.0) -> CameraPose:
        """The vehicle camera's pose at ``t``: track position, course + mount yaw offset."""
        lat, lon = self._to_geodetic(self._en_at(self._seconds(t)))
        yaw = (self.course_at(t) + mount.yaw_offset_deg + 180.0) % 360.0 - 180.0
        ele = self.elevation_at(t)
        return CameraPose(
            lat=lat,
            lon=lon,
            height_m=mount.height_m,
            yaw_deg=yaw,
            pitch_deg=mount.pitch_deg,
            roll_deg=mount.roll_deg,
            abs_alt_m=None if ele is None else ele + mount.height_m,
            sigma_xy_m=sigma_xy_m,
            sigma_h_m=0.2,
            sigma_yaw_deg=2.0,
            source="track",
        )

    def times(self) -> tuple[datetime, datetime]:
        return self.start, self.end

    def duration(self) -> timedelta:
        return self.end - self.start


def load_track(
    path: Path,
    *,
    naive_tz: tzinfo | None = None,
    max_gap_s: float = 5.0,
    tolerance_s: float = 0.5,
    stationary_m: float = 2.0,
    course_window_m: float = 6.0,
) -> Track:
    """Reads a GPX 1.0/1.1, NMEA 0183 or CSV track (by extension, else by content).

    Raises InputError naming the file, the line and the reason for malformed input. Times
    without a zone are refused unless ``naive_tz`` says which zone they are in.
    """
    fixes, skipped, problems = parse_track_file(path, naive_tz)
    return Track(
        fixes,
        source=str(path),
        max_gap_s=max_gap_s,
        tolerance_s=tolerance_s,
        stationary_m=stationary_m,
        course_window_m=course_window_m,
        skipped=skipped,
        problems=problems,
    )
