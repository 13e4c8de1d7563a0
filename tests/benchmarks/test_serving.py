"""A smoke test of benchmarks/serving.py on 1000 rows, in process (the HTTP part starts two
servers; tests/serving/test_server.py covers the server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.benchmarks import load_benchmark


@pytest.mark.slow  # saves and loads a model (several seconds)
def test_in_process_rows_at_1000_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rows.json"
    arguments = ["--rows", "1000", "--repeat", "1", "--skip-http", "--json", str(out)]
    load_benchmark("serving").main(arguments)
    rows = json.loads(out.read_text())
    assert [row["case"] for row in rows] == [
        "numpy X @ w + b",
        "predictor.predict (checks + scaler)",
        "pyfunc.load_model(...).predict",
        "JSON body → answer, vectorised parse",
        "JSON body → answer, general parse",
    ]
    assert all(row["rows"] == 1000 and row["best_s"] > 0 for row in rows)
    assert rows[0]["x_numpy"] == 1.0
    assert "× numpy" in capsys.readouterr().out
