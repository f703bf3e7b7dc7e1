"""`xunjian georef IMAGE --pixel U,V… [--flight DIR] [--json]`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fixtures.badinput import clean_jpeg, gps_without_altitude
from xunjian.bench.georef import render_case
from xunjian.cli import app
from xunjian.core.geo import latlon_to_en
from xunjian.datasets.synth import PoseNoise, World
from xunjian.settings import Settings


def _run(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = CliRunner().invoke(app, ["georef", *args])
    return result.exit_code, json.loads(result.stdout) if result.stdout.startswith("{") else {}


def test_json_points_and_a_refused_pixel(tmp_path: Path, settings: Settings) -> None:
    image = tmp_path / "DJI_0001.JPG"
    image.write_bytes(clean_jpeg())
    code, doc = _run(str(image), "--pixel", "10,10", "--pixel", "99999,1", "--json")
    assert code == 1
    assert doc["image"] == str(image)
    good, bad = doc["points"]
    assert good["pixel"] == [10.0, 10.0] and set(good) == {"pixel", "lat", "lon", "sigma_m"}
    assert bad["pixel"] == [99999.0, 1.0] and bad["error"].startswith("outside the image")


def test_photo_without_pose_says_why(tmp_path: Path, settings: Settings) -> None:
    image = gps_without_altitude(tmp_path)
    code, doc = _run(str(image), "--pixel", "1,1", "--json")
    assert code == 1 and "cannot georeference" in doc["error"] and "pose" in doc["error"]


def test_bad_pixel_syntax_is_a_usage_error(tmp_path: Path, settings: Settings) -> None:
    image = tmp_path / "DJI_0001.JPG"
    image.write_bytes(clean_jpeg())
    result = CliRunner().invoke(app, ["georef", str(image), "--pixel", "1;2"])
    assert result.exit_code == 2 and "expected U,V" in result.output


@pytest.mark.slow
def test_flight_refines_a_flipped_frame(tmp_path: Path, settings: Settings) -> None:
    world = World.generate(11)
    noise = PoseNoise(flip_reverse_legs=True)
    truth = render_case("nadir", tmp_path / "f", seed=11, noise=noise, world=world, quick=True)
    ft = next(f for f in truth.frames if abs(f.tags["gimbal_yaw_deg"] - f.pose["yaw_deg"]) > 90)
    target = next(t for t in ft.targets if not t["occluded"])
    image = tmp_path / "f" / ft.image
    pixel = "{},{}".format(*target["center_px"])

    def error(doc: dict) -> float:  # type: ignore[type-arg]
        p = doc["points"][0]
        return math.hypot(
            *(float(x) for x in latlon_to_en(p["lat"], p["lon"], target["lat"], target["lon"]))
        )

    code, alone = _run(str(image), "--pixel", pixel, "--json")
    assert code == 0 and "refined" not in alone
    code, refined = _run(str(image), "--pixel", pixel, "--flight", str(tmp_path / "f"), "--json")
    assert code == 0 and refined["refined"] is True
    assert [c[1] for c in refined["corrections"]] == ["yaw +180°"]
    assert error(refined) < 3 * noise.gps_sigma_m < error(alone)


def test_table_output(tmp_path: Path, settings: Settings) -> None:
    image = tmp_path / "DJI_0001.JPG"
    image.write_bytes(clean_jpeg())
    result = CliRunner().invoke(app, ["georef", str(image), "--pixel", "10,10"])
    assert result.exit_code == 0, result.output
    assert "10,10" in result.stdout and "σ m" in result.stdout
