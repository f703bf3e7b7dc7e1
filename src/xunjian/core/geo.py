"""WGS84 geodetic ↔ local East-North-Up (ENU) coordinates, vectorised over numpy arrays.

The pipeline works in metres on a local tangent plane (ENU) around a reference point — the
camera's ground point when georeferencing, the test range's anchor when synthesising — and
converts to latitude/longitude through the Earth-centred frame (ECEF) on the WGS84 ellipsoid.
No degrees-per-metre constants: the conversions are exact to well below a millimetre over the
few kilometres the pipeline cares about (the tests cross-check with pymap3d).

Angles are degrees, heights are metres above the ellipsoid. Every function accepts scalars or
arrays of any broadcastable shape and returns float64 arrays of the broadcast shape.

May import: numpy and the standard library only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

F64 = NDArray[np.float64]

WGS84_A = 6378137.0
"""Semi-major axis (m)."""
WGS84_F = 1.0 / 298.257223563
"""Flattening."""
WGS84_B = WGS84_A * (1.0 - WGS84_F)
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
"""First eccentricity squared."""

_GEODETIC_ITERATIONS = 6  # converges to < 1e-12 rad near the surface after 3


def _f64(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def geodetic_to_ecef(lat: ArrayLike, lon: ArrayLike, alt: ArrayLike = 0.0) -> tuple[F64, F64, F64]:
    """Geodetic latitude, longitude (degrees) and height (m) → ECEF x, y, z (m)."""
    phi = np.radians(_f64(lat))
    lam = np.radians(_f64(lon))
    h = _f64(alt)
    sin_phi = np.sin(phi)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_phi**2)
    x = (n + h) * np.cos(phi) * np.cos(lam)
    y = (n + h) * np.cos(phi) * np.sin(lam)
    z = (n * (1.0 - WGS84_E2) + h) * sin_phi
    return x, y, z


def ecef_to_geodetic(x: ArrayLike, y: ArrayLike, z: ArrayLike) -> tuple[F64, F64, F64]:
    """ECEF x, y, z (m) → geodetic latitude, longitude (degrees) and height (m).

    Fixed-point iteration on the latitude (Bowring's form), started from the spherical guess;
    the height uses the form that stays well conditioned near the poles.
    """
    xa, ya, za = _f64(x), _f64(y), _f64(z)
    p = np.hypot(xa, ya)
    lam = np.arctan2(ya, xa)
    phi = np.arctan2(za, p * (1.0 - WGS84_E2))
    for _ in range(_GEODETIC_ITERATIONS):
        sin_phi = np.sin(phi)
        n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * sin_phi**2)
        phi = np.arctan2(za + WGS84_E2 * n * sin_phi, p)
    sin_phi = np.sin(phi)
    h = p * np.cos(phi) + za * sin_phi - WGS84_A * np.sqrt(1.0 - WGS84_E2 * sin_phi**2)
    return np.degrees(phi), np.degrees(lam), h


def _enu_basis(lat0: float, lon0: float) -> F64:
    """Rows: the east, north and up unit vectors at (lat0, lon0), in ECEF."""
    phi, lam = np.radians(lat0), np.radians(lon0)
    sp, cp, sl, cl = np.sin(phi), np.cos(phi), np.sin(lam), np.cos(lam)
    return np.array(
        [
            [-sl, cl, 0.0],
            [-sp * cl, -sp * sl, cp],
            [cp * cl, cp * sl, sp],
        ]
    )


def geodetic_to_enu(
    lat: ArrayLike,
    lon: ArrayLike,
    alt: ArrayLike,
    lat0: float,
    lon0: float,
    alt0: float = 0.0,
) -> tuple[F64, F64, F64]:
    """Geodetic points → east, north, up (m) in the tangent frame at (lat0, lon0, alt0)."""
    x, y, z = geodetic_to_ecef(lat, lon, alt)
    x0, y0, z0 = geodetic_to_ecef(lat0, lon0, alt0)
    dx, dy, dz = x - x0, y - y0, z - z0
    b = _enu_basis(lat0, lon0)
    e = b[0, 0] * dx + b[0, 1] * dy + b[0, 2] * dz
    n = b[1, 0] * dx + b[1, 1] * dy + b[1, 2] * dz
    u = b[2, 0] * dx + b[2, 1] * dy + b[2, 2] * dz
    return e, n, u


def enu_to_geodetic(
    e: ArrayLike,
    n: ArrayLike,
    u: ArrayLike,
    lat0: float,
    lon0: float,
    alt0: float = 0.0,
) -> tuple[F64, F64, F64]:
    """East, north, up (m) in the tangent frame at (lat0, lon0, alt0) → geodetic points."""
    ea, na, ua = _f64(e), _f64(n), _f64(u)
    b = _enu_basis(lat0, lon0)
    x0, y0, z0 = geodetic_to_ecef(lat0, lon0, alt0)
    x = x0 + b[0, 0] * ea + b[1, 0] * na + b[2, 0] * ua
    y = y0 + b[0, 1] * ea + b[1, 1] * na + b[2, 1] * ua
    z = z0 + b[0, 2] * ea + b[1, 2] * na + b[2, 2] * ua
    return ecef_to_geodetic(x, y, z)


def latlon_to_en(lat: ArrayLike, lon: ArrayLike, lat0: float, lon0: float) -> tuple[F64, F64]:
    """Ground points (height 0) → east, north (m) around the ground point (lat0, lon0).

    The up component — the Earth's curvature, d²/2R, 8 mm at 300 m — is dropped: the
    pipeline treats the ground as the tangent plane at the reference point.
    """
    e, n, _ = geodetic_to_enu(lat, lon, 0.0, lat0, lon0, 0.0)
    return e, n


def en_to_latlon(e: ArrayLike, n: ArrayLike, lat0: float, lon0: float) -> tuple[F64, F64]:
    """East, north (m) on the tangent plane at (lat0, lon0) → latitude, longitude (degrees).

    The inverse of :func:`latlon_to_en` to far below a millimetre within a few kilometres.
    """
    lat, lon, _ = enu_to_geodetic(e, n, 0.0, lat0, lon0, 0.0)
    return lat, lon


def en_transform(
    lat_from: float, lon_from: float, lat_to: float, lon_to: float, extent_m: float = 1000.0
) -> F64:
    """The 3×3 affine matrix taking (E, N, 1) around one ground point to (E, N, 1) around another.

    Two tangent planes a few hundred metres apart differ by a shift and a tiny rotation (the
    meridians converge); a least-squares affine fit over ``extent_m`` reproduces the exact
    geodetic conversion to well under a millimetre there, and lets a renderer compose it into a
    single homography.
    """
    grid = np.linspace(-extent_m, extent_m, 5)
    ge, gn = np.meshgrid(grid, grid)
    src_e, src_n = ge.ravel(), gn.ravel()
    lat, lon = en_to_latlon(src_e, src_n, lat_from, lon_from)
    dst_e, dst_n = latlon_to_en(lat, lon, lat_to, lon_to)
    design = np.column_stack([src_e, src_n, np.ones_like(src_e)])
    coef, *_ = np.linalg.lstsq(design, np.column_stack([dst_e, dst_n]), rcond=None)
    m = np.eye(3)
    m[:2, :] = coef.T
    return m
