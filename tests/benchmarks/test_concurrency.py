"""benchmarks/concurrency.py's smallest case: two boston runs at once on a fresh SQLite store."""

from __future__ import annotations

import pytest

from tests.benchmarks import load_benchmark


@pytest.mark.slow
def test_two_runs_at_once(capsys) -> None:
    module = load_benchmark("concurrency")
    module.main(["--runs", "2", "--skip-server", "--skip-sweep"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("a."))
    assert "2/2" in line and "lost  0" in line and "consistent  2" in line
