"""benchmarks/concurrency.py's smallest case: two boston runs at once on a fresh SQLite store."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "concurrency.py"


@pytest.mark.slow
def test_two_runs_at_once(capsys) -> None:
    spec = importlib.util.spec_from_file_location("benchmark_concurrency", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.main(["--runs", "2", "--skip-server", "--skip-sweep"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("a."))
    assert "2/2" in line and "lost  0" in line and "consistent  2" in line
