"""The benchmark registry and ``xunjian bench``: selection, skipping, errors, one JSON document."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.fixtures.models import TinyModel
from xunjian.bench import runner
from xunjian.bench.runner import (
    BENCHMARKS,
    Benchmark,
    UnknownBenchmarkError,
    available,
    run_benchmarks,
    select,
)
from xunjian.cli.app import app
from xunjian.settings import get_settings

OWN = ("detect-throughput", "tiled-detect", "backends")


@pytest.fixture
def fake_benchmarks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[dict[str, Any]]]:
    """Three registered benchmarks: one that runs, one that raises, one not installed."""
    calls: dict[str, list[dict[str, Any]]] = {"good": []}
    good = types.ModuleType("xunjian_fake_good")

    def run(*, quick: bool = True, seed: int = 1) -> dict[str, Any]:
        calls["good"].append({"quick": quick, "seed": seed})
        # a figure named "error" (as georef's) is not a failure
        return {"inputs": {"seed": seed}, "figures": {"x": 1.0}, "error": "metres"}

    def run_all() -> dict[str, Any]:
        calls["good"].append({"run_all": True})
        return {"figures": {"all": True}}

    good.run = run  # type: ignore[attr-defined]
    good.run_all = run_all  # type: ignore[attr-defined]
    bad = types.ModuleType("xunjian_fake_bad")

    def bench_bad(quick: bool = False) -> dict[str, Any]:
        raise RuntimeError("boom")

    bad.bench_bad = bench_bad  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xunjian_fake_good", good)
    monkeypatch.setitem(sys.modules, "xunjian_fake_bad", bad)
    registry = {
        "good": Benchmark("good", "xunjian_fake_good", None, "runs"),
        "bad": Benchmark("bad", "xunjian_fake_bad", None, "raises"),
        "ghost": Benchmark("ghost", "xunjian.bench.no_such_module", None, "absent"),
    }
    monkeypatch.setattr(runner, "BENCHMARKS", registry)
    return calls


def test_registry_names_every_spec_benchmark_this_module_owns() -> None:
    assert set(OWN) <= set(BENCHMARKS)
    assert {"georef", "fusion", "verify"} <= set(BENCHMARKS)
    status = available()
    assert all(status[name] is None for name in OWN)
    for name in ("georef", "fusion", "verify"):  # written apart: runnable or "not installed"
        reason = status[name]
        assert reason is None or reason.startswith("not ")


def test_select_keeps_registry_order_and_defaults_to_all() -> None:
    assert select([]) == list(BENCHMARKS)
    assert select(["backends", "detect-throughput"]) == ["detect-throughput", "backends"]


def test_select_names_the_unknown_and_the_known() -> None:
    with pytest.raises(UnknownBenchmarkError) as info:
        select(["backends", "warp-drive"])
    message = str(info.value)
    assert "'warp-drive'" in message and "detect-throughput" in message


def test_run_benchmarks_runs_skips_and_records_errors(
    fake_benchmarks: dict[str, list[dict[str, Any]]],
) -> None:
    seen: list[tuple[str, str]] = []
    doc = run_benchmarks(quick=True, progress=lambda n, s: seen.append((n, s)))
    assert {"when", "cpu", "cores", "versions"} <= set(doc["machine"])
    results = doc["benchmarks"]
    assert results["good"]["figures"] == {"x": 1.0} and results["good"]["wall_s"] >= 0
    assert fake_benchmarks["good"] == [{"quick": True, "seed": 1}]  # only what run accepts
    assert results["good"]["status"] == "ok"
    assert results["bad"]["status"] == "error"
    assert results["bad"]["error"] == "RuntimeError: boom"
    assert results["ghost"] == {
        "status": "skipped",
        "reason": "not installed (xunjian.bench.no_such_module does not exist)",
    }
    assert seen == [("good", "running"), ("good", "done"), ("bad", "running"),
                    ("bad", "error"), ("ghost", "skipped")]  # fmt: skip
    json.dumps(doc)  # JSON-able throughout


def test_full_runs_prefer_run_all(fake_benchmarks: dict[str, list[dict[str, Any]]]) -> None:
    doc = run_benchmarks(["good"], quick=False)
    assert doc["benchmarks"]["good"]["figures"] == {"all": True}


def test_cli_rejects_unknown_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "warp-drive", "--out", str(tmp_path / "b.json")])
    assert result.exit_code == 2
    assert "unknown benchmark 'warp-drive'" in result.output
    assert not (tmp_path / "b.json").exists()


def test_cli_list_shows_status() -> None:
    result = CliRunner().invoke(app, ["bench", "--list"])
    assert result.exit_code == 0
    assert all(name in result.output for name in OWN)


def test_cli_exit_code_is_1_when_a_benchmark_fails(
    fake_benchmarks: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    out = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["bench", "good", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["bench", "good", "bad", "--quick", "--out", str(out)])
    assert result.exit_code == 1
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc["benchmarks"]) == {"good", "bad"}


@pytest.mark.slow
def test_cli_quick_writes_one_valid_json_document(
    tiny_yolo: TinyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XUNJIAN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    out = tmp_path / "out" / "bench.json"
    try:
        result = CliRunner().invoke(
            app, ["bench", "backends", "--quick", "--model", str(tiny_yolo.onnx), "--out", str(out)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert set(doc) == {"machine", "quick", "benchmarks"} and doc["quick"] is True
    backends = doc["benchmarks"]["backends"]
    assert {"inputs", "figures", "ratios"} <= set(backends)
    assert backends["inputs"]["model"]["onnx"] == str(tiny_yolo.onnx)
    assert "backends" in result.output  # the table
