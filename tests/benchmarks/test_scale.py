"""A smoke test of benchmarks/scale.py --quick: every case runs and writes the promised rows."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scale.py"
KEYS = {
    "case",
    "device",
    "n",
    "d",
    "nproc",
    "seconds",
    "rows_per_s",
    "peak_rss_mb",
    "train_mse",
    "optimum_mse",
    "max_param_diff_vs_single",
}


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_run_writes_every_case(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "rows.json"
    data = tmp_path / "data"
    _load_benchmark().main(["--quick", "--json", str(out), "--data", str(data), "--timeout", "900"])

    rows = json.loads(out.read_text())
    assert all(set(row) == KEYS for row in rows)
    cases = sorted((row["case"], row["nproc"]) for row in rows)
    assert cases == [("ddp", 1), ("ddp", 2), ("memory", 1), ("stream", 1)]
    for row in rows:
        assert row["n"] == 10_000 and row["d"] == 16
        assert row["seconds"] > 0 and row["rows_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["train_mse"] >= row["optimum_mse"] * (1 - 1e-9) > 0
    ddp = {row["nproc"]: row for row in rows if row["case"] == "ddp"}
    assert ddp[1]["max_param_diff_vs_single"] is None
    assert ddp[2]["max_param_diff_vs_single"] < 1e-5
    assert not data.exists()  # the data are removed after the run
    printed = capsys.readouterr().out
    assert "streaming / in-memory throughput" in printed and "CUDA + nccl" in printed


def test_epochs_make_about_two_thousand_steps() -> None:
    benchmark = _load_benchmark()
    assert benchmark._epochs(10**8) == benchmark._epochs(10**7) == 1
    assert benchmark._epochs(10**6) == 9


def test_rates_smallest_case_in_process(tmp_path: Path) -> None:
    # what each ``--rates`` child runs, here at n = 1e4 (4 partitions), one round
    benchmark = _load_benchmark()
    folder = tmp_path / "n1e4"
    benchmark.generate(folder, 10_000)
    result = benchmark.run_rates(folder, 10_000, rounds=1, fmt="catalog")
    assert set(result["seconds"]) == set(benchmark.RATE_CASES)
    assert all(seconds > 0 for seconds in result["seconds"].values())
    assert result["share_of_arrow"]["arrow"] == 1.0
    rss = benchmark.run_rss("reader", folder, "catalog")
    assert rss["peak_rss_mb"] >= rss["imports_mb"] > 0
    printed = benchmark.report_rates([result, rss])
    assert "reader rows/s" in printed and "peak RSS reader" in printed
