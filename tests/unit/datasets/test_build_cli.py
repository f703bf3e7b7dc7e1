"""`xunjian datasets build` on generated data."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.fixtures.labelled import write_real_like_root, write_synthetic
from xunjian.cli import app


def run(*args: str):
    return CliRunner().invoke(app, ["datasets", "build", *args])


def text(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_build_spoil_truck_from_synthetic_only(tmp_path: Path) -> None:
    synthetic = write_synthetic(tmp_path / "synth")
    out = tmp_path / "truck"
    result = run(
        "spoil_truck",
        "--out", str(out),
        "--synthetic", str(synthetic),
        "--data-root", str(tmp_path / "nowhere"),
        "--seed", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("data.yaml")
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["val_is_real"] is False and manifest["seed"] == 1
    assert manifest["linked"] is False
    first = out / manifest["files"][0]["file"]
    assert not first.is_symlink() and first.stat().st_nlink == 1
    assert "no real validation data" in text(result)


def test_build_road_damage_with_tiles(tmp_path: Path) -> None:
    root = write_real_like_root(tmp_path / "data")
    out = tmp_path / "road"
    result = run(
        "road_damage", "--out", str(out), "--data-root", str(root), "--imgsz", "64",
        "--resize", "tile",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "longitudinal_crack boxes" in text(result)
    assert json.loads((out / "manifest.json").read_text("utf-8"))["resize"] == "tile"


def test_bad_arguments_fail_clearly(tmp_path: Path) -> None:
    bad = run("potholes", "--out", str(tmp_path / "x"))
    assert bad.exit_code == 2 and "unknown detector 'potholes'" in text(bad)
    bad = run("road_damage", "--out", str(tmp_path / "x"), "--resize", "squash")
    assert bad.exit_code == 2 and "--resize 'squash'" in text(bad)
    empty = run("spoil_truck", "--out", str(tmp_path / "x"), "--data-root", str(tmp_path))
    assert empty.exit_code == 2 and "no training data for spoil_truck" in text(empty)
