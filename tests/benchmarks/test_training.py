"""A smoke test of benchmarks/training.py at n = 1000: it runs, and writes the promised rows."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.benchmarks import load_benchmark

KEYS = {
    "case", "device", "n", "d", "batch_size", "epochs",
    "baseline_s", "batch_sampler_s", "randperm_s", "floor_s", "ours_s",
    "speedup", "speedup_vs_batch_sampler", "speedup_vs_randperm", "ours_vs_floor",
}  # fmt: skip




def test_benchmark_runs_at_n_1000(tmp_path: Path, capsys) -> None:
    benchmark = load_benchmark("training")
    out = tmp_path / "rows.json"
    benchmark.main(["--sizes", "1e3", "--repeat", "1", "--cpu-only", "--json", str(out)])

    (row,) = json.loads(out.read_text())
    assert set(row) == KEYS
    assert (row["device"], row["n"], row["d"]) == ("cpu", 1000, 13)
    assert all(row[key] > 0 for key in ("baseline_s", "batch_sampler_s", "randperm_s", "floor_s"))
    assert row["ours_s"] > 0
    assert row["ours_vs_floor"] == round(row["ours_s"] / row["floor_s"], 2)
    assert row["speedup"] == round(row["baseline_s"] / row["ours_s"], 1)
    assert row["speedup_vs_batch_sampler"] == round(row["batch_sampler_s"] / row["ours_s"], 1)
    assert "speedup" in capsys.readouterr().out


def test_batch_size_and_epochs_per_size() -> None:
    plan = load_benchmark("training").plan
    assert plan(10_000) == (256, 5)
    assert plan(100_000) == (1024, 2)
    assert plan(1_000_000) == (4096, 1)


def test_every_loop_learns_the_same_model() -> None:
    benchmark = load_benchmark("training")
    X, y = benchmark.synthetic_data(2000, 13)
    cpu = torch.device("cpu")
    for loop in benchmark.LOOPS.values():
        assert benchmark.mse(loop(X, y, cpu, 64, 3), X, y) < 0.01, loop.__name__
