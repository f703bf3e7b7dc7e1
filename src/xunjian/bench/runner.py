"""The registry of benchmarks behind ``xunjian bench``: name → callable → JSON-able dict.

Own benchmarks (``detect-throughput``, ``tiled-detect``, ``backends``) take ``model``,
``quick`` and ``data_dir``. Others live in their own modules (``xunjian.bench.georef``,
``.fusion``, ``.verify``) written apart; they are found at run time by their entry point —
``bench_<name>``, else ``run_all`` (full runs), else ``run`` — and called with whichever of
``quick`` / ``model`` / ``data_dir`` their signature accepts. A module that is not there (or
has no entry point) is listed as not installed and skipped, never an error.

:func:`run_benchmarks` returns ONE document: ``{"machine": machine_info(), "benchmarks":
{name: {"status": "ok", **result, "wall_s"}}}``; a benchmark that raises is recorded as
``{"status": "error", "error", "traceback"}`` and the others still run; one not installed as
``{"status": "skipped", "reason"}``.

May import anything in xunjian but service and cli; benchmark modules are imported lazily.
"""

from __future__ import annotations

import importlib
import inspect
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xunjian.bench.machine import machine_info

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "UnknownBenchmarkError",
    "available",
    "run_benchmarks",
    "select",
]


class UnknownBenchmarkError(ValueError):
    """A benchmark name that is not in the registry."""


@dataclass(frozen=True, slots=True)
class Benchmark:
    """Where a benchmark's entry point lives and what it measures."""

    name: str
    module: str
    entry: str | None  # None: look for bench_<name> / run_all / run
    measures: str


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("detect-throughput", "xunjian.bench.detect", "bench_detect_throughput",
                  "images/s of the detect stage vs plain ultralytics predict"),
        Benchmark("tiled-detect", "xunjian.bench.tiled", "bench_tiled_detect",
                  "images/s and recall on 20 MP frames vs SAHI sliced prediction"),
        Benchmark("backends", "xunjian.bench.detect", "bench_backends",
                  "ms/img and box agreement of onnxruntime vs ultralytics"),
        Benchmark("detector-quality", "xunjian.bench.quality", "bench_detector_quality",
                  "mAP50/mAP50-95/F1 per class on the real val split vs the previous model"),
        Benchmark("georef", "xunjian.bench.georef", None,
                  "georeferencing error (m) vs truth"),
        Benchmark("fusion", "xunjian.bench.fusion", None,
                  "issue precision/recall/duplicates vs one issue per detection"),
        Benchmark("verify", "xunjian.bench.verify", None,
                  "verified_fixed / recurred calls after a world change"),
        Benchmark("case-delivery", "xunjian.bench.cases", "bench_case_delivery",
                  "issues delivered, lost, duplicated under injected faults and a killed sender"),
        Benchmark("load", "xunjian.bench.load", "bench_load",
                  "API latency percentiles and errors, idle vs while a batch is processed"),
        Benchmark("pipeline", "xunjian.bench.pipeline", "bench_pipeline",
                  "end-to-end frames/s and peak RSS (100, 1000 frames) vs detect alone"),
        Benchmark("issue-queries", "xunjian.bench.service", "bench_issue_queries",
                  "p50/p95 ms of GeoJSON issue queries through the API with 100k issues"
                  " vs raw SQL count"),
    )
}  # fmt: skip


def _entry(bench: Benchmark, quick: bool) -> Callable[..., Any] | str:
    """The callable, or why there is none (a "not installed" reason)."""
    try:
        module = importlib.import_module(bench.module)
    except ModuleNotFoundError as exc:
        if exc.name and bench.module.startswith(exc.name):
            return f"not installed ({bench.module} does not exist)"
        raise
    py_name = bench.name.replace("-", "_")
    names = [bench.entry] if bench.entry else [f"bench_{py_name}", *(
        ["run"] if quick else ["run_all", "run"])]  # fmt: skip
    for name in names:
        func = getattr(module, name, None) if name else None
        if callable(func):
            return func  # type: ignore[no-any-return]
    return f"not installed ({bench.module} has no {' / '.join(n for n in names if n)})"


def available(quick: bool = False) -> dict[str, str | None]:
    """Every registered name → None when runnable, else the reason it is skipped."""
    out: dict[str, str | None] = {}
    for name, bench in BENCHMARKS.items():
        try:
            found = _entry(bench, quick)
        except Exception as exc:  # a module that fails to import says why, not crashes
            found = f"not importable ({type(exc).__name__}: {exc})"
        out[name] = found if isinstance(found, str) else None
    return out


def select(names: Sequence[str]) -> list[str]:
    """The names to run, in registry order; all of them when ``names`` is empty.

    Raises :class:`UnknownBenchmarkError` naming the unknown ones and the known ones.
    """
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise UnknownBenchmarkError(
            f"unknown benchmark {', '.join(map(repr, unknown))}; "
            f"expected one of {', '.join(BENCHMARKS)}"
        )
    wanted = set(names) if names else set(BENCHMARKS)
    return [n for n in BENCHMARKS if n in wanted]


def _call(func: Callable[..., Any], offered: dict[str, Any]) -> Any:
    params = inspect.signature(func).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
    return func(**kwargs)


def run_benchmarks(
    names: Sequence[str] = (),
    *,
    quick: bool = False,
    model: Path | None = None,
    data_dir: Path | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Runs the selected benchmarks; see the module docstring for the document's shape.

    ``progress(name, status)`` is told "running", "done", "skipped" or "error" for each.
    """
    offered: dict[str, Any] = {"quick": quick, "model": model, "data_dir": data_dir}
    results: dict[str, Any] = {}
    for name in select(names):
        try:
            entry = _entry(BENCHMARKS[name], quick)
        except Exception as exc:
            entry = f"not importable ({type(exc).__name__}: {exc})"
        if isinstance(entry, str):
            results[name] = {"status": "skipped", "reason": entry}
            if progress:
                progress(name, "skipped")
            continue
        if progress:
            progress(name, "running")
        start = time.perf_counter()
        try:
            result = _call(entry, offered)
        except Exception as exc:  # one failing benchmark must not lose the others' figures
            results[name] = {
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5),
            }
            if progress:
                progress(name, "error")
            continue
        results[name] = {
            "status": "ok",
            **result,
            "wall_s": round(time.perf_counter() - start, 2),
        }
        if progress:
            progress(name, "done")
    return {"machine": machine_info(), "quick": quick, "benchmarks": results}
