"""benchmarks/scale.py: its smallest cases run and give the promised rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmarks import load_benchmark

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
    "rel_diff_vs_lstsq",
}




def test_the_exact_rows_report_the_share_of_the_read_rate() -> None:
    benchmark = load_benchmark("scale")
    row = dict.fromkeys(benchmark.KEYS)
    rows = [
        {**row, "case": "read", "n": 10**6, "seconds": 0.5, "rows_per_s": 2e6},
        {**row, "case": "qr", "n": 10**6, "nproc": 1, "device": "cpu", "seconds": 1.0,
         "rows_per_s": 1.5e6, "peak_rss_mb": 700.0, "train_mse": 0.25, "rel_diff_vs_lstsq": 3e-15},
        {**row, "case": "read", "n": 10**6, "seconds": 0.25, "rows_per_s": 4e6},
    ]  # fmt: skip
    text = benchmark.report_exact(rows)
    assert "streamed QR / Parquet read rate at n=1e+06: 50% (goal >= 50 %)" in text
    assert "relative difference to in-memory lstsq 3.0e-15 (goal <= 1e-10)" in text


def test_epochs_make_about_two_thousand_steps() -> None:
    benchmark = load_benchmark("scale")
    assert benchmark._epochs(10**8) == benchmark._epochs(10**7) == 1
    assert benchmark._epochs(10**6) == 9


@pytest.mark.slow
def test_smallest_cases_in_process(tmp_path: Path) -> None:
    # what the children of ``--quick --skip-ddp`` and of ``--rates`` run, here at n = 1e4
    # (4 partitions) in this process: the DDP launches run in tests/engine/test_distributed.py
    benchmark = load_benchmark("scale")
    folder = tmp_path / "n1e4"
    benchmark.generate(folder, 10_000)
    rows = [benchmark.run_case(case, folder, 10_000, 1, "cpu") for case in ("memory", "stream")]
    exact = [benchmark.run_case(case, folder, 10_000, 1, "cpu") for case in ("read", "qr")]
    assert exact[1]["rel_diff_vs_lstsq"] < 1e-10 and exact[1]["rows_per_s"] > 0
    assert "streamed QR / Parquet read rate" in benchmark.report_exact([*exact, exact[0]])
    for row in rows:
        assert set(row) == KEYS | {"params"}
        assert row["seconds"] > 0 and row["rows_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["train_mse"] >= row["optimum_mse"] * (1 - 1e-9) > 0
        row.pop("params")
    sizes = {**benchmark.QUICK, "ddp": None}
    assert "streaming / in-memory throughput" in benchmark.report(rows, sizes)

    result = benchmark.run_rates(folder, 10_000, rounds=1, fmt="catalog")
    assert set(result["seconds"]) == set(benchmark.RATE_CASES)
    assert all(seconds > 0 for seconds in result["seconds"].values())
    assert result["share_of_arrow"]["arrow"] == 1.0
    rss = benchmark.run_rss("reader", folder, "catalog")
    assert rss["peak_rss_mb"] >= rss["imports_mb"] > 0
    printed = benchmark.report_rates([result, rss])
    assert "reader rows/s" in printed and "peak RSS reader" in printed
    assert "shuffle rows/s" in printed and "sgd_epoch" in benchmark._bounds(result)
