"""WGS84 ↔ ENU conversions: exact round trips and agreement with pymap3d."""

from __future__ import annotations

import numpy as np
import pymap3d
import pytest

from xunjian.core import geo

LAT0, LON0 = 29.5630, 106.5516  # Chongqing, Jiefangbei


def test_geodetic_ecef_round_trip_matches_pymap3d() -> None:
    lat = np.array([0.0, 29.563, -45.0, 89.9, -89.9, 60.0])
    lon = np.array([0.0, 106.5516, -170.0, 10.0, 100.0, 179.9])
    alt = np.array([0.0, 250.0, -30.0, 1000.0, 5.0, 8000.0])
    x, y, z = geo.geodetic_to_ecef(lat, lon, alt)
    px, py, pz = pymap3d.geodetic2ecef(lat, lon, alt)
    np.testing.assert_allclose([x, y, z], [px, py, pz], atol=1e-6)
    lat2, lon2, alt2 = geo.ecef_to_geodetic(x, y, z)
    np.testing.assert_allclose(lat2, lat, atol=1e-11)
    np.testing.assert_allclose(lon2, lon, atol=1e-11)
    np.testing.assert_allclose(alt2, alt, atol=1e-6)


def test_enu_round_trip_is_sub_millimetre_over_a_kilometre() -> None:
    rng = np.random.default_rng(7)
    e = rng.uniform(-1000, 1000, 500)
    n = rng.uniform(-1000, 1000, 500)
    u = rng.uniform(-50, 150, 500)
    lat, lon, alt = geo.enu_to_geodetic(e, n, u, LAT0, LON0, 240.0)
    e2, n2, u2 = geo.geodetic_to_enu(lat, lon, alt, LAT0, LON0, 240.0)
    assert np.max(np.abs(e2 - e)) < 1e-6
    assert np.max(np.abs(n2 - n)) < 1e-6
    assert np.max(np.abs(u2 - u)) < 1e-6


def test_enu_agrees_with_pymap3d() -> None:
    e = np.array([0.0, 1000.0, -1000.0, 300.0])
    n = np.array([0.0, 1000.0, 250.0, -800.0])
    u = np.array([0.0, 0.0, 20.0, -5.0])
    lat, lon, alt = geo.enu_to_geodetic(e, n, u, LAT0, LON0, 240.0)
    plat, plon, palt = pymap3d.enu2geodetic(e, n, u, LAT0, LON0, 240.0)
    np.testing.assert_allclose(lat, plat, atol=1e-10)
    np.testing.assert_allclose(lon, plon, atol=1e-10)
    np.testing.assert_allclose(alt, palt, atol=1e-5)


def test_latlon_en_round_trip_and_scale() -> None:
    lat, lon = geo.en_to_latlon([0.0, 1000.0, 0.0], [0.0, 0.0, 1000.0], LAT0, LON0)
    # One degree of latitude is ~110.8 km here; a degrees-per-metre constant would not be
    # exact, the ellipsoid is: check against pymap3d's geodesic-free conversion.
    assert lat[0] == pytest.approx(LAT0, abs=1e-12)
    assert (lat[2] - LAT0) * 110_800 == pytest.approx(1000.0, rel=2e-3)
    e, n = geo.latlon_to_en(lat, lon, LAT0, LON0)
    np.testing.assert_allclose(e, [0.0, 1000.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(n, [0.0, 0.0, 1000.0], atol=1e-6)


def test_scalars_broadcast() -> None:
    e, n = geo.latlon_to_en(LAT0 + 0.001, LON0, LAT0, LON0)
    assert e.shape == () and n.shape == ()
    assert float(n) == pytest.approx(110.8, rel=2e-3)


def test_en_transform_matches_exact_conversion() -> None:
    # Tangent planes 400 m apart: the affine fit reproduces the exact conversion.
    lat1, lon1 = geo.en_to_latlon(300.0, -250.0, LAT0, LON0)
    m = geo.en_transform(LAT0, LON0, float(lat1), float(lon1))
    rng = np.random.default_rng(3)
    pts = rng.uniform(-600, 600, (200, 2))
    lat, lon = geo.en_to_latlon(pts[:, 0], pts[:, 1], LAT0, LON0)
    e, n = geo.latlon_to_en(lat, lon, float(lat1), float(lon1))
    fitted = (m @ np.column_stack([pts, np.ones(len(pts))]).T).T[:, :2]
    assert np.max(np.abs(fitted - np.column_stack([e, n]))) < 1e-3
