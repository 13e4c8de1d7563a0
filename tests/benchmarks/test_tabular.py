"""benchmarks/tabular.py: its CSVs, and its smallest case as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.benchmarks import load_benchmark


def test_the_csv_has_the_rows_and_columns_asked_for(tmp_path: Path, monkeypatch) -> None:
    benchmark = load_benchmark("tabular")
    monkeypatch.setattr(benchmark, "CHUNK_ROWS", 7)  # several chunks, the last one short
    path = tmp_path / "rows.csv"
    assert benchmark.write_csv(path, 30, 4) == path.stat().st_size
    table = pd.read_csv(path)
    assert list(table.columns) == ["x0", "x1", "x2", "x3", "y"] and len(table) == 30
    assert table.notna().all().all()


@pytest.mark.slow
def test_smallest_case_runs_the_pipeline(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rows.json"
    args = ["--cases", "1e3x13", "--rounds", "1", "--no-warm-up", "--json", str(out)]
    load_benchmark("tabular").main(args)
    (row,) = json.loads(out.read_text())
    assert (row["case"], row["n"], row["d"]) == ("1e3x13", 1000, 13)
    assert row["wall_s"] > 0 and row["peak_rss_mb"] > 0
    assert "1e3x13" in capsys.readouterr().out
