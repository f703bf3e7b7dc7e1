"""`xunjian metadata IMAGE… [--json]`: JSON Lines, one object per image, errors included."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.fixtures.badinput import clean_jpeg, gps_without_altitude, text_named_jpg
from xunjian.cli import app
from xunjian.settings import Settings


def _images(tmp_path: Path) -> list[Path]:
    good = tmp_path / "DJI_0001.JPG"
    good.write_bytes(clean_jpeg())
    return [good, text_named_jpg(tmp_path), gps_without_altitude(tmp_path)]


def test_json_lines_with_errors_exit_one(tmp_path: Path, settings: Settings) -> None:
    images = _images(tmp_path)
    result = CliRunner().invoke(app, ["metadata", *map(str, images), "--json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["source"] for line in lines] == [str(p) for p in images]
    good, bad, phone = lines
    assert good["pose"]["height_m"] == 80.0 and good["georeferenceable"] is True
    assert good["captured_at"] == "2024-05-01T02:00:00+00:00"
    assert bad == {"source": str(images[1]), "error": "expected a JPEG (starts FF D8), found text"}
    assert phone["pose"] is None and phone["gps"]["lat"] > 29
    assert any(p.startswith("pose: ") for p in phone["problems"])


def test_all_readable_exit_zero_and_table(tmp_path: Path, settings: Settings) -> None:
    images = [p for p in _images(tmp_path) if p.name != "notes.jpg"]
    result = CliRunner().invoke(app, ["metadata", *map(str, images)])
    assert result.exit_code == 0, result.output
    assert "DJI_0001.JPG" in result.stdout and "FC220" in result.stdout
    assert "pose: no drone-dji:RelativeAltitude" in result.stdout
