"""The least-squares reference every linear run is held against."""

from __future__ import annotations

import torch

from linear_nets.engine import least_squares


def test_noiseless_data_gives_back_the_exact_parameters() -> None:
    X = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    w_true = torch.tensor([1.5, -2.0, 0.25])
    w, b = least_squares(X, X @ w_true - 0.7)
    assert w.dtype == b.dtype == torch.float64
    torch.testing.assert_close(w, w_true.double(), rtol=0, atol=1e-5)
    assert abs(float(b) + 0.7) < 1e-5


def test_solution_has_zero_mean_residual_orthogonal_to_the_features() -> None:
    generator = torch.Generator().manual_seed(1)
    X = torch.randn(40, 2, generator=generator)
    y = torch.randn(40, generator=generator)
    w, b = least_squares(X, y)
    residual = y.double() - (X.double() @ w + b)
    assert abs(float(residual.mean())) < 1e-10
    torch.testing.assert_close(X.double().T @ residual, torch.zeros(2, dtype=torch.float64))
