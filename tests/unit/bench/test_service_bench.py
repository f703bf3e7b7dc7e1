"""The issue-queries benchmark on a small SQLite database: it runs and its figures agree."""

from __future__ import annotations

from pathlib import Path

from xunjian.bench import service as bench


def test_issue_queries_benchmark_runs_and_counts_agree(tmp_path: Path) -> None:
    result = bench._run(tmp_path, f"sqlite:///{tmp_path / 'b.db'}", 400, 1)
    assert result["issues"] == 400 and result["database"] == "sqlite"
    queries = result["queries"]
    assert set(queries) == set(bench._queries())
    for name, figures in queries.items():
        assert figures["api_p50_ms"] > 0 and figures["sql_count_p50_ms"] > 0, name
        if name != "page at offset 5000":  # all of them fit one page of 500
            assert figures["returned"] == figures["matching"], name
    assert queries["page at offset 5000"]["returned"] == 0
