"""synthetic_large's nodes: chunked, seeded generation and the streamed optimum."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import pytest
import torch
from kedro.io.core import DatasetError
from pydantic import ValidationError

from linear_nets.engine import least_squares
from linear_nets.pipelines.synthetic_large.nodes import (
    LargeDataConfig,
    evaluate_large_model,
    generate_large_data,
    make_partition,
    solve_streamed_least_squares,
    true_weights,
)
from tests.support import parquet_partitions

SMALL = {"n": 10_000, "d": 4, "partition_rows": 2_500, "noise": 0.5, "seed": 3}


def _write(folder: Path, **change) -> dict:
    params = LargeDataConfig(**{**SMALL, **change})
    parquet_partitions(folder).save(generate_large_data(params))
    return parquet_partitions(folder).load()


def test_the_same_parameters_give_the_same_bytes(tmp_path: Path) -> None:
    _write(tmp_path / "one")
    _write(tmp_path / "two")
    _write(tmp_path / "other", seed=4)
    one = sorted((tmp_path / "one").glob("*.parquet"))
    assert [path.name for path in one] == [f"part-{i:06d}.parquet" for i in range(4)]
    for path in one:
        assert path.read_bytes() == (tmp_path / "two" / path.name).read_bytes()
        assert path.read_bytes() != (tmp_path / "other" / path.name).read_bytes()


def test_a_partition_depends_on_its_index_and_seed_alone() -> None:
    small, large = LargeDataConfig(**SMALL), LargeDataConfig(**{**SMALL, "n": 50_000})
    assert make_partition(small, 2).equals(make_partition(large, 2))
    assert not make_partition(small, 2).equals(make_partition(small, 1))


def test_rows_follow_y_equals_xw_plus_b_with_the_last_partition_shorter() -> None:
    params = LargeDataConfig(**{**SMALL, "n": 6_000, "noise": 0.0})
    partitions = generate_large_data(params)
    assert len(partitions) == 3
    last = partitions["part-000002"]()
    assert len(last) == 1_000 and list(last.columns) == ["x1", "x2", "x3", "x4", "y"]
    X = torch.tensor(last.drop(columns="y").to_numpy())
    expected = X.double() @ torch.from_numpy(true_weights(params)) + params.true_b
    torch.testing.assert_close(
        torch.tensor(last["y"].to_numpy()).double(), expected, atol=1e-5, rtol=0
    )


def test_generation_holds_one_partition_at_a_time(tmp_path: Path) -> None:
    params = LargeDataConfig(n=400_000, d=8, partition_rows=50_000, noise=0.1)
    partition_bytes = 50_000 * 9 * 4
    partitions = generate_large_data(params)  # callables: nothing made yet
    tracemalloc.start()
    try:
        parquet_partitions(tmp_path / "parts").save(partitions)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(list((tmp_path / "parts").glob("*.parquet"))) == 8
    assert peak < 4 * partition_bytes, f"peak {peak} B for partitions of {partition_bytes} B"


def test_a_write_the_disk_cannot_hold_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage._replace(free=100_000))
    with pytest.raises(DatasetError, match=r"4 partitions .* need about 0\.00 GB .* only 0\.00 GB"):
        _write(tmp_path / "parts")
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_partition_too_large_for_memory_is_refused() -> None:
    with pytest.raises(ValidationError, match="partition_rows=100000000"):
        LargeDataConfig(n=10**9, d=16, partition_rows=10**8, noise=1.0)


def test_streamed_optimum_equals_lstsq_on_all_rows(tmp_path: Path) -> None:
    partitions = _write(tmp_path / "parts")
    solved = solve_streamed_least_squares(partitions)
    frames = [load() for load in partitions.values()]
    X = torch.cat([torch.tensor(f.drop(columns="y").to_numpy()) for f in frames])
    y = torch.cat([torch.tensor(f["y"].to_numpy()) for f in frames])
    w, b = least_squares(X, y)
    torch.testing.assert_close(torch.tensor(solved["w"], dtype=torch.float64), w, atol=1e-9, rtol=0)
    assert solved["b"] == pytest.approx(float(b), abs=1e-9)
    assert solved["partition_rows"] == {f"part-{i:06d}": 2_500 for i in range(4)}
    residual = X.double() @ w + b - y.double()
    assert solved["mse"] == pytest.approx(float((residual**2).mean()), rel=1e-9)


def test_evaluation_measures_the_gap_to_the_optimum(tmp_path: Path) -> None:
    solved = solve_streamed_least_squares(_write(tmp_path / "parts"))
    params = LargeDataConfig(**SMALL)
    at_optimum = {"w": torch.tensor(solved["w"]).reshape(-1, 1), "b": torch.tensor([solved["b"]])}
    metrics, report = evaluate_large_model(at_optimum, solved, params)
    assert abs(metrics["mse_gap_pct"]) < 1e-4 and metrics["rows"] == 10_000
    assert metrics["w_max_abs_error"] < 0.05  # 10,000 rows with noise 0.5
    off = {"w": at_optimum["w"] + 0.1, "b": at_optimum["b"]}
    assert evaluate_large_model(off, solved, params)[0]["mse_gap_pct"] > 1
    assert report["true"]["w"] == pytest.approx(true_weights(params).tolist())


def test_lstsq_trains_by_streamed_qr_to_the_optimum(tmp_path: Path) -> None:
    from linear_nets.engine import ModelConfig, StreamTrainConfig
    from linear_nets.pipelines.synthetic_large.nodes import train_large_model

    partitions = _write(tmp_path / "parts")
    solved = solve_streamed_least_squares(partitions)
    config = StreamTrainConfig(device="cpu", optimizer="lstsq", lr=1, epochs=1)
    model, history = train_large_model(partitions, solved, ModelConfig(), config)
    assert list(history) == ["train_loss"] and len(history["train_loss"]) == 1  # no epochs
    metrics, _ = evaluate_large_model(model.state_dict(), solved, LargeDataConfig(**SMALL))
    assert metrics["lstsq_gap_w"] < 1e-12 and abs(metrics["mse_gap_pct"]) < 1e-9
    assert history["train_loss"][0] == pytest.approx(solved["mse"], rel=1e-12)
    assert solved["condition_number"] < 2  # X ~ N(0, 1): well conditioned


def test_solvers_refuse_data_parallel_training() -> None:
    from linear_nets.engine import StreamTrainConfig

    with pytest.raises(ValidationError, match="lstsq reads every partition in one process"):
        StreamTrainConfig(optimizer="lstsq", lr=1, epochs=1, distributed={"enabled": True})
