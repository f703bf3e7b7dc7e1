"""`xunjian synth …` commands run and write the documented layout."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xunjian.cli import app

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, ["synth", *args])
    assert result.exit_code == 0, result.output
    return result


def test_flight_contact_sheet_and_yolo_export(tmp_path: Path) -> None:
    out = tmp_path / "flight"
    invoke(
        "flight", "--size", "tiny", "--seed", "3", "--height", "40", "--out", str(out), "--contact"
    )
    for name in ("flight.json", "truth/world.json", "truth/targets.geojson", "truth/frames.json"):
        assert (out / name).is_file(), name
    assert (out / "contact.png").stat().st_size > 10_000
    frames = json.loads((out / "truth" / "frames.json").read_text())["frames"]
    assert len(list((out / "images").glob("*.jpg"))) == len(frames) >= 6
    sheet = tmp_path / "sheet.png"
    invoke("contact-sheet", str(out), "--out", str(sheet), "--n", "4")
    assert sheet.is_file()
    yolo = tmp_path / "yolo"
    invoke(
        "export-yolo", str(out), "--out", str(yolo), "--tile", "160", "--detector", "spoil_truck"
    )
    assert (yolo / "data.yaml").is_file()
    assert list((yolo / "labels" / "train").glob("*.txt"))


def test_world_later_day_and_vehicle(tmp_path: Path) -> None:
    world = tmp_path / "w0.json"
    invoke("world", "--seed", "8", "--out", str(world))
    assert (tmp_path / "w0.targets.geojson").is_file()
    later = tmp_path / "w1.json"
    invoke("later-day", "--world", str(world), "--out", str(later), "--seed", "2")
    doc = json.loads(later.read_text())
    assert doc["day"] == 1 and doc["changes"]["repaired"]
    run = tmp_path / "run"
    invoke("vehicle", "--size", "tiny", "--world", str(later), "--length", "20", "--every", "10",
           "--out", str(run))  # fmt: skip
    assert (run / "track.gpx").read_text().count("<trkpt") > 5
    assert len(list((run / "images").glob("*.jpg"))) == 3


def test_bad_camera_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "flight", "--size", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown camera 'nope'" in result.output


def test_bench_render_prints_times() -> None:
    result = invoke("bench-render", "--size", "tiny", "--height", "30", "--repeat", "1")
    assert "cold" in result.output and "warm" in result.output
