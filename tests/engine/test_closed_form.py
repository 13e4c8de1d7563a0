"""The least-squares reference every linear run is held against, in memory and streamed."""

from __future__ import annotations

import json

import pytest
import torch

from linear_nets.engine import NormalEquations, least_squares, streamed_least_squares


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


def _noisy(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=generator) * torch.linspace(0.5, 3, d)
    y = X @ torch.randn(d, generator=generator) + 1.5 + 0.3 * torch.randn(n, generator=generator)
    return X, y


def test_streamed_normal_equations_match_lstsq_on_the_same_rows() -> None:
    X, y = _noisy(1000, 5, seed=2)
    chunks = [(X[i : i + 97], y[i : i + 97]) for i in range(0, len(y), 97)]  # uneven chunks
    equations = streamed_least_squares(chunks)
    w, b = equations.solve()
    design = torch.cat([X.double(), torch.ones(len(X), 1, dtype=torch.float64)], dim=1)
    expected = torch.linalg.lstsq(design, y.double().unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(w, expected[:-1], rtol=0, atol=1e-9)
    assert float(b) == pytest.approx(float(expected[-1]), abs=1e-9)
    assert equations.rows == 1000


def test_mse_from_the_sums_is_the_mse_of_the_residuals() -> None:
    X, y = _noisy(500, 3, seed=3)
    equations = streamed_least_squares([(X, y)])
    w_opt, b_opt = equations.solve()
    for w, b in [(w_opt, b_opt), (torch.tensor([0.5, -1.0, 2.0]), 0.25)]:
        residual = X.double() @ w.double() + float(b) - y.double()
        assert equations.mse(w, b) == pytest.approx(float((residual**2).mean()), rel=1e-9)
    assert equations.mse(w_opt, b_opt) < equations.mse(torch.zeros(3), 0.0)


def test_normal_equations_survive_a_json_round_trip() -> None:
    X, y = _noisy(300, 4, seed=4)
    equations = streamed_least_squares([(X[:100], y[:100]), (X[100:], y[100:])])
    again = NormalEquations.from_dict(json.loads(json.dumps(equations.to_dict())))
    torch.testing.assert_close(again.solve()[0], equations.solve()[0], rtol=0, atol=0)
    assert again.rows == 300 and again.yy == equations.yy


def test_collinear_features_still_solve() -> None:
    X, y = _noisy(200, 2, seed=5)
    X = torch.cat([X, X[:, :1] * 2], dim=1)  # third column = 2 x first
    equations = streamed_least_squares([(X, y)])
    w, b = equations.solve()
    assert torch.isfinite(w).all()
    assert equations.mse(w, b) == pytest.approx(
        streamed_least_squares([(X[:, :2], y)]).mse(
            *streamed_least_squares([(X[:, :2], y)]).solve()
        ),
        rel=1e-6,
    )


def test_no_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="no rows"):
        streamed_least_squares([])
