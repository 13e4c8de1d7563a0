"""benchmarks/tabular.py: its CSVs, and its smallest case as documented."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tabular.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_tabular", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_csv_has_the_rows_and_columns_asked_for(tmp_path: Path, monkeypatch) -> None:
    benchmark = _load_benchmark()
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
    _load_benchmark().main(args)
    (row,) = json.loads(out.read_text())
    assert (row["case"], row["n"], row["d"]) == ("1e3x13", 1000, 13)
    assert row["wall_s"] > 0 and row["peak_rss_mb"] > 0
    assert "1e3x13" in capsys.readouterr().out
