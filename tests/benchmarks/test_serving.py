"""A smoke test of benchmarks/serving.py on 1000 rows, in process (the HTTP part starts two
servers; tests/serving/test_server.py covers the server)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serving.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_serving", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # saves and loads a model (several seconds)
def test_in_process_rows_at_1000_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rows.json"
    _load_benchmark().main(["--rows", "1000", "--repeat", "1", "--skip-http", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [row["case"] for row in rows] == [
        "numpy X @ w + b",
        "predictor.predict (checks + scaler)",
        "pyfunc.load_model(...).predict",
    ]
    assert all(row["rows"] == 1000 and row["best_s"] > 0 for row in rows)
    assert rows[0]["x_numpy"] == 1.0
    assert "× numpy" in capsys.readouterr().out
