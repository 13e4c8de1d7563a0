"""y = X w + b + noise at a size that need not fit in memory, trained out of core.

The rows are made and written one Parquet partition at a time (lazily saved callables of
kedro-datasets' ``PartitionedDataset``), each from its own seed, so the same parameters give
the same bytes and generation holds one partition at a time. One streamed pass factors
[1 X y] by a tall-skinny QR (the exact least-squares optimum without forming XᵀX, memory
independent of n, and the rows of each partition); the engine then trains on the partitions
streamed in shuffled order, in this process or as a DistributedDataParallel job (or solves
exactly with ``train.optimizer: lstsq``), and the run reports its gap to the optimum.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from linear_nets.engine import (
    ModelConfig,
    PartitionSource,
    StreamedQR,
    StreamTrainConfig,
    build_model,
    factor_partitions,
    fit_parallel,
    model_from_state_dict,
)
from linear_nets.engine.config import StrictModel

TARGET = "y"
BYTES_PER_VALUE = 4  # float32 columns
MAX_PARTITION_BYTES = 512 * 2**20
"""A partition is the most generation and training hold at once; keep it well inside memory."""

Partitions = dict[str, Callable[[], Any]]


class LargeDataConfig(StrictModel):
    """``params:synthetic_large.data``: how many rows, how many features, how they are cut."""

    n: int = Field(gt=1, le=10**10, description="rows")
    d: int = Field(gt=0, le=10_000, description="features")
    partition_rows: int = Field(
        gt=0, description="rows per Parquet partition (the last may be shorter)"
    )
    noise: float = Field(ge=0, description="standard deviation of the Gaussian noise")
    true_b: float = 4.2
    seed: int = Field(0, ge=0, description="seeds the weights and, with its index, each partition")

    @model_validator(mode="after")
    def _partition_fits_in_memory(self) -> Self:
        size = self.partition_rows * (self.d + 1) * BYTES_PER_VALUE
        if size > MAX_PARTITION_BYTES:
            raise ValueError(
                f"partition_rows={self.partition_rows} with d={self.d} makes partitions of "
                f"{size / 2**20:.0f} MiB; keep them under {MAX_PARTITION_BYTES / 2**20:.0f} MiB"
            )
        return self

    @property
    def partitions(self) -> int:
        """Number of partitions."""
        return -(-self.n // self.partition_rows)

    def estimated_bytes(self) -> int:
        """About what the Parquet files take: every value is a float32."""
        return self.n * (self.d + 1) * BYTES_PER_VALUE


def true_weights(params: LargeDataConfig) -> np.ndarray:
    """The weights the data are drawn from: N(0, 1), from ``seed`` alone (float64, (d,))."""
    return np.random.default_rng(np.random.SeedSequence(params.seed)).standard_normal(params.d)


def feature_columns(d: int) -> list[str]:
    """``x1 … xd``."""
    return [f"x{i}" for i in range(1, d + 1)]


def partition_id(index: int) -> str:
    """Zero-padded, so that sorting by id keeps the generation order."""
    return f"part-{index:06d}"


def make_partition(params: LargeDataConfig, index: int) -> pd.DataFrame:
    """Partition ``index``: X ~ N(0, 1) and y = X w + b + N(0, noise²), all float32.

    Its rows come from a generator seeded by ``(seed, index)`` alone, so each partition is the
    same whatever the others are, and can be made on its own.
    """
    rows = min(params.partition_rows, params.n - index * params.partition_rows)
    generator = np.random.default_rng(np.random.SeedSequence(params.seed, spawn_key=(index,)))
    X = generator.standard_normal((rows, params.d), dtype=np.float32)
    w = true_weights(params).astype(np.float32)
    noise = generator.standard_normal(rows, dtype=np.float32) * np.float32(params.noise)
    y = X @ w + np.float32(params.true_b) + noise
    table = pd.DataFrame(X, columns=feature_columns(params.d), copy=False)
    table[TARGET] = y
    return table


def generate_large_data(params: LargeDataConfig) -> Partitions:
    """One callable per partition; the dataset calls and writes them one at a time.

    Args:
        params: rows, features, rows per partition, noise, intercept and seed.

    Returns:
        ``{partition id: callable returning that partition's DataFrame}``.
    """
    return {partition_id(i): partial(make_partition, params, i) for i in range(params.partitions)}


def solve_streamed_least_squares(partitions: Partitions) -> dict[str, Any]:
    """Factor [1 X y] by a streamed QR in float64 over one pass, then solve R θ = z.

    Args:
        partitions: the partition loaders.

    Returns:
        The triangular factor (``R``, ``rows``, ``n_features``), its solution (``w``, ``b``,
        ``mse``), the design's ``condition_number`` and the rows of each partition
        (``partition_rows``), which tells training how many batches an epoch has.
    """
    qr, partition_rows = factor_partitions(partitions, TARGET)
    w, b = qr.solve()
    return {
        **qr.to_dict(),
        "w": w.tolist(),
        "b": float(b),
        "mse": qr.rss / qr.rows,
        "condition_number": qr.conditioning().condition_number,
        "partition_rows": partition_rows,
    }


def train_large_model(
    partitions: Partitions,
    least_squares: dict[str, Any],
    model: ModelConfig,
    train: StreamTrainConfig,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Fit a linear model on the partitions as they stream, in one process or with DDP.

    Args:
        partitions: the partition loaders.
        least_squares: the streamed QR's output; its ``partition_rows`` size the epochs.
        model: ``scratch`` or ``linear``.
        train: the training settings, the shuffle buffer and ``distributed``.

    Returns:
        The trained model on the CPU (rank 0's, for a DDP job) and its per-epoch history.
    """
    source = PartitionSource(
        partitions,
        least_squares["partition_rows"],
        target=TARGET,
        batch_size=train.batch_size,
        seed=train.seed,
        shuffle_buffer=train.shuffle_buffer,
    )
    net = build_model(model.kind, int(least_squares["n_features"]), seed=train.seed)
    result = fit_parallel(net, source, train, train.distributed, name="synthetic_large.train")
    return result.model.cpu(), result.history


def evaluate_large_model(
    state_dict: dict[str, torch.Tensor],
    least_squares: dict[str, Any],
    params: LargeDataConfig,
) -> tuple[dict[str, float], dict[str, Any]]:
    """Hold the trained model against the streamed least-squares optimum and the truth.

    Args:
        state_dict: the trained parameters, as saved.
        least_squares: the streamed QR's output.
        params: the true intercept and the seed of the true weights.

    Returns:
        Metrics (``train_mse``, ``optimum_mse``, ``mse_gap_pct`` = how far above the optimum
        the train MSE is, in percent, ``lstsq_gap_w``, ``w_max_abs_error``, ``b_abs_error``,
        ``rows``) and a report of the true, learned and least-squares parameters.
    """
    equations = StreamedQR.from_dict(least_squares)
    w, b = model_from_state_dict(state_dict).coefficients()
    w64 = w.to(torch.float64)
    optimum_w = torch.tensor(least_squares["w"], dtype=torch.float64)
    true_w = torch.from_numpy(true_weights(params))
    train_mse = equations.mse(w64, float(b))
    optimum_mse = float(least_squares["mse"])
    metrics = {
        "train_mse": train_mse,
        "optimum_mse": optimum_mse,
        "mse_gap_pct": 100 * (train_mse - optimum_mse) / optimum_mse if optimum_mse else 0.0,
        "lstsq_gap_w": float((w64 - optimum_w).abs().max()),
        "w_max_abs_error": float((w64 - true_w).abs().max()),
        "b_abs_error": abs(float(b) - params.true_b),
        "rows": float(equations.rows),
    }
    report = {
        "true": {"w": true_w.tolist(), "b": params.true_b},
        "trained": {"w": w64.tolist(), "b": float(b)},
        "least_squares": {"w": least_squares["w"], "b": least_squares["b"]},
    }
    return metrics, report
