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
    "rel_diff_vs_lstsq",
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
    assert cases == [
        ("ddp", 1), ("ddp", 2), ("memory", 1), ("qr", 1), ("read", 1), ("stream", 1)
    ]  # fmt: skip
    exact = [row for row in rows if row["case"] in ("read", "qr")]
    rows = [row for row in rows if row not in exact]
    [qr] = [row for row in exact if row["case"] == "qr"]
    assert qr["rel_diff_vs_lstsq"] < 1e-10 and qr["rows_per_s"] > 0
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
    assert "streamed QR / Parquet read rate at n=1e+04" in printed


def test_the_exact_rows_report_the_share_of_the_read_rate() -> None:
    benchmark = _load_benchmark()
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
    benchmark = _load_benchmark()
    assert benchmark._epochs(10**8) == benchmark._epochs(10**7) == 1
    assert benchmark._epochs(10**6) == 9
