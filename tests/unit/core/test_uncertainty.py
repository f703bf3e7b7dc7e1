"""The σ model of specs/georef.md: each term alone, their sum in quadrature, bad input refused."""

from __future__ import annotations

import math

import pytest

from xunjian.core.uncertainty import position_sigma_m, sigma_terms

BASE = {"sigma_xy_m": 0.0, "range_m": 0.0, "height_m": 30.0, "sigma_yaw_deg": 0.0, "sigma_h_m": 0.0}


def test_gps_alone_below_the_camera() -> None:
    assert position_sigma_m(**{**BASE, "sigma_xy_m": 2.0, "sigma_yaw_deg": 1.0}) == 2.0


def test_yaw_term_is_range_times_sigma_in_radians() -> None:
    terms = sigma_terms(**{**BASE, "range_m": 100.0, "sigma_yaw_deg": 1.0})
    assert terms.yaw_m == pytest.approx(100.0 * math.pi / 180.0)
    assert terms.dominant == "yaw"


def test_height_term_is_sigma_h_times_tan_off_nadir() -> None:
    # 30 m ahead from 30 m up: 45° off nadir, tan = 1.
    assert sigma_terms(**{**BASE, "range_m": 30.0, "sigma_h_m": 0.5}).height_m == pytest.approx(0.5)
    assert sigma_terms(**{**BASE, "range_m": 60.0, "sigma_h_m": 0.5}).height_m == pytest.approx(1.0)


def test_box_term_is_uniform_over_the_box() -> None:
    terms = sigma_terms(**BASE, gsd_m=0.1, box_px=12.0)
    assert terms.box_m == pytest.approx(1.2 / math.sqrt(12.0))


def test_pitch_term_grows_with_range_squared_over_height() -> None:
    terms = sigma_terms(**{**BASE, "height_m": 1.6, "range_m": 20.0}, sigma_pitch_deg=0.3)
    assert terms.pitch_m == pytest.approx((400.0 + 1.6**2) / 1.6 * math.radians(0.3))
    assert sigma_terms(**BASE, sigma_pitch_deg=0.3).pitch_m == pytest.approx(
        30.0 * math.radians(0.3)
    )


def test_total_adds_in_quadrature() -> None:
    kw = {**BASE, "sigma_xy_m": 1.5, "range_m": 40.0, "sigma_yaw_deg": 1.0, "sigma_h_m": 0.3}
    t = sigma_terms(**kw, gsd_m=0.05, box_px=20.0, sigma_pitch_deg=0.2)
    parts = [t.gps_m, t.yaw_m, t.height_m, t.pitch_m, t.box_m]
    assert t.total == pytest.approx(math.sqrt(sum(p * p for p in parts)))
    assert position_sigma_m(**kw, gsd_m=0.05, box_px=20.0, sigma_pitch_deg=0.2) == t.total


@pytest.mark.parametrize(
    ("name", "value"),
    [("sigma_xy_m", -1.0), ("range_m", math.nan), ("height_m", 0.0), ("sigma_yaw_deg", math.inf)],
)
def test_bad_input_names_the_argument(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        sigma_terms(**{**BASE, name: value})
