"""The least-squares optimum that every gradient-trained linear model is held against."""

from __future__ import annotations

import torch


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
