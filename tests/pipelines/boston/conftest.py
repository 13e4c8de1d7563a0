"""Small StatLib-format files for the boston tests."""

from __future__ import annotations

import numpy as np
import pytest

# the MLflow metric keys the issue names, exactly
HEADLINE_METRICS = {
    "train_mse",
    "test_mse",
    "test_rmse",
    "test_mae",
    "test_r2",
    "ols_train_mse",
    "ols_test_mse",
}

HEADER = [f" header line {i}" for i in range(1, 23)]


def statlib_text(rows: np.ndarray, newline: str = "\n") -> str:
    """Write ``rows`` (n x 14) in the StatLib layout: 22 header lines, then 11 + 3 values."""
    lines = list(HEADER)
    for row in rows:
        lines.append(" ".join(f"{v:.6g}" for v in row[:11]))
        lines.append(" ".join(f"{v:.6g}" for v in row[11:]))
    return newline.join(lines) + newline


def linear_rows(n: int, seed: int = 0, noise: float = 0.5) -> np.ndarray:
    """``n`` rows of 13 positive features and a MEDV that is linear in them plus noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.5, 10.0, size=(n, 13)).round(3)
    coef = np.linspace(-1.5, 2.0, 13)
    y = (X @ coef + 5.0 + rng.normal(0, noise, n)).round(3)
    return np.column_stack([X, y])


@pytest.fixture
def small_rows() -> np.ndarray:
    return linear_rows(60)
