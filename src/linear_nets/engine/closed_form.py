"""The least-squares optimum that every gradient-trained linear model is held against.

:func:`least_squares` solves it on tensors in memory; :class:`NormalEquations` accumulates
[X 1]ᵀ[X 1], [X 1]ᵀy and yᵀy in float64 one chunk at a time, so the same optimum, and the
MSE of any (w, b), come out of one streaming pass over data of any size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

_CHUNK_ROWS = 1 << 18
"""Rows converted to float64 at a time, which bounds the pass's extra memory."""


def least_squares(X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve min ||X w + b - y||^2 exactly with ``torch.linalg.lstsq`` in float64.

    Returns:
        The weights as a (d,) tensor and the intercept as a scalar tensor, both float64.
    """
    X64 = X.detach().to("cpu", torch.float64)
    design = torch.cat([X64, torch.ones(len(X64), 1, dtype=torch.float64)], dim=1)
    target = y.detach().to("cpu", torch.float64).reshape(-1, 1)
    solution = torch.linalg.lstsq(design, target).solution.squeeze(1)
    return solution[:-1], solution[-1]


@dataclass
class NormalEquations:
    """The sufficient statistics of least squares with an intercept, summed over rows.

    ``gram`` is [X 1]ᵀ[X 1] ((d+1, d+1)), ``moment`` is [X 1]ᵀy ((d+1,)), ``yy`` is yᵀy and
    ``rows`` the number of rows, all float64 on the CPU.
    """

    n_features: int
    gram: torch.Tensor = field(init=False)
    moment: torch.Tensor = field(init=False)
    yy: float = 0.0
    rows: int = 0

    def __post_init__(self) -> None:
        size = self.n_features + 1
        self.gram = torch.zeros(size, size, dtype=torch.float64)
        self.moment = torch.zeros(size, dtype=torch.float64)

    def add(self, X: torch.Tensor, y: torch.Tensor) -> None:
        """Add the rows ``(X, y)``; ``X`` is (n, d), ``y`` is (n,)."""
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(
                f"expected {self.n_features} feature columns, got shape {tuple(X.shape)}"
            )
        for start in range(0, len(y), _CHUNK_ROWS):
            X64 = X[start : start + _CHUNK_ROWS].detach().to("cpu", torch.float64)
            y64 = y[start : start + _CHUNK_ROWS].detach().to("cpu", torch.float64)
            column_sums = X64.sum(dim=0)
            d = self.n_features
            self.gram[:d, :d] += X64.T @ X64
            self.gram[:d, d] += column_sums
            self.gram[d, :d] += column_sums
            self.gram[d, d] += len(y64)
            self.moment[:d] += X64.T @ y64
            self.moment[d] += y64.sum()
            self.yy += float(y64 @ y64)
            self.rows += len(y64)

    def solve(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The least-squares weights ((d,) float64) and intercept (a float64 scalar tensor).

        Raises:
            ValueError: if no rows were added.
        """
        if self.rows == 0:
            raise ValueError("no rows: the least-squares problem is empty")
        # gelsd copes with collinear features, where a plain solve of the Gram matrix fails.
        solution = torch.linalg.lstsq(self.gram, self.moment.unsqueeze(1), driver="gelsd")
        theta = solution.solution.squeeze(1)
        return theta[:-1], theta[-1]

    def mse(self, w: torch.Tensor, b: torch.Tensor | float) -> float:
        """Mean squared error of y ≈ X w + b over the added rows, from the sums alone."""
        theta = torch.cat(
            [
                w.detach().to("cpu", torch.float64).flatten(),
                torch.tensor([float(b)], dtype=torch.float64),
            ]
        )
        total = self.yy - 2 * float(theta @ self.moment) + float(theta @ self.gram @ theta)
        return max(total, 0.0) / self.rows

    def to_dict(self) -> dict[str, object]:
        """Plain lists and numbers, for a JSON dataset."""
        return {
            "n_features": self.n_features,
            "rows": self.rows,
            "yy": self.yy,
            "gram": self.gram.tolist(),
            "moment": self.moment.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> NormalEquations:
        """The inverse of :meth:`to_dict`."""
        equations = cls(int(data["n_features"]))
        equations.gram = torch.tensor(data["gram"], dtype=torch.float64)
        equations.moment = torch.tensor(data["moment"], dtype=torch.float64)
        equations.yy = float(data["yy"])
        equations.rows = int(data["rows"])
        return equations


def streamed_least_squares(chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> NormalEquations:
    """Accumulate the normal equations over ``(X, y)`` chunks in one pass.

    Raises:
        ValueError: if there are no rows, or the chunks disagree on the number of features.
    """
    equations: NormalEquations | None = None
    for X, y in chunks:
        if equations is None:
            equations = NormalEquations(X.shape[1])
        equations.add(X, y)
    if equations is None or equations.rows == 0:
        raise ValueError("no rows: the least-squares problem is empty")
    return equations
