"""Recover known weights from y = X w + b + noise: the first linear-regression tutorial.

The data are drawn from parameters we choose, so how far training lands from them (and from
the least-squares optimum on the same rows) says how well the optimizer did.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Self

import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from linear_nets.engine import ModelConfig, least_squares, train
from linear_nets.engine.config import RegressionTrainConfig, StrictModel
from linear_nets.engine.sources import table_to_tensors
from linear_nets.reporting import plot_epoch_curves, training_title

if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:  # imported inside the plotting nodes: find_pipelines imports this module on every run
    Figure = Any

TARGET = "y"
MAX_TABLE_VALUES = 100_000_000
"""The most values (rows × (features + 1)) the in-memory tutorial draws: 0.8 GB as float64."""


class SyntheticParams(StrictModel):
    """``params:synthetic``: the true parameters, the data drawn from them, and how to fit them.

    One model for the whole block keeps the tutorial's flat keys (``synthetic.true_w`` …) beside
    ``train`` and ``model``: Kedro cannot validate a key and another nested inside it separately.
    """

    true_w: tuple[float, ...] = Field(min_length=1, description="one weight per feature")
    true_b: float
    n: int = Field(gt=1, description="number of rows drawn")
    noise: float = Field(ge=0, description="standard deviation of the Gaussian noise")
    seed: int = Field(0, ge=0, description="seed of the features, the noise and the split")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of rows held out")
    model: ModelConfig = ModelConfig()
    train: RegressionTrainConfig

    @model_validator(mode="after")
    def _can_split(self) -> Self:
        n_val = _validation_rows(self.n, self.val_fraction)
        if not 0 < n_val < self.n:
            raise ValueError(
                f"val_fraction={self.val_fraction} of n={self.n} rows leaves {n_val} "
                "validation rows; both parts need at least one"
            )
        return self

    @model_validator(mode="after")
    def _finite_and_fits_in_memory(self) -> Self:
        for name, values in (("true_w", self.true_w), ("true_b", (self.true_b,))):
            for index, value in enumerate(values):
                if not math.isfinite(value):
                    where = f"{name}[{index}]" if name == "true_w" else name
                    raise ValueError(f"{where}={value} is not finite")
        if not math.isfinite(self.noise):
            raise ValueError(f"noise={self.noise} is not finite")
        values = self.n * (len(self.true_w) + 1)
        if values > MAX_TABLE_VALUES:
            raise ValueError(
                f"n={self.n} rows × {len(self.true_w) + 1} columns = {values:.3g} values need "
                f"{_gigabytes(values * 8)} as one float64 table, before any copy; the limit is "
                f"{MAX_TABLE_VALUES:.0e} values ({_gigabytes(MAX_TABLE_VALUES * 8)})"
            )
        return self


def _gigabytes(size: float) -> str:
    return f"{size / 1e9:.3g} GB"


def _validation_rows(n: int, fraction: float) -> int:
    return round(n * fraction)


def _feature_columns(d: int) -> list[str]:
    return [f"x{i}" for i in range(1, d + 1)]


def generate_synthetic_data(params: SyntheticParams) -> pd.DataFrame:
    """Draw X ~ N(0, 1) and y = X w + b + N(0, noise²), as ``d2l.SyntheticRegressionData`` does.

    Args:
        params: the true ``w`` and ``b``, the row count, the noise level and the seed.

    Returns:
        One row per example: feature columns ``x1 … xd`` and the target ``y``.
    """
    generator = torch.Generator().manual_seed(params.seed)
    w = torch.tensor(params.true_w, dtype=torch.float64)
    X = torch.randn(params.n, len(w), generator=generator, dtype=torch.float64)
    noise = torch.randn(params.n, generator=generator, dtype=torch.float64) * params.noise
    y = X @ w + params.true_b + noise
    table = pd.DataFrame(X.numpy(), columns=_feature_columns(len(w)))
    table[TARGET] = y.numpy()
    return table


def split_synthetic_data(
    data: pd.DataFrame, params: SyntheticParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a random ``val_fraction`` of the rows.

    Args:
        data: the generated rows.
        params: ``val_fraction`` and the seed of the shuffle.

    Returns:
        The training rows and the validation rows, each with a fresh index.
    """
    generator = torch.Generator().manual_seed(params.seed)
    order = torch.randperm(len(data), generator=generator).numpy()
    n_val = _validation_rows(len(data), params.val_fraction)
    val = data.iloc[order[:n_val]].reset_index(drop=True)
    train_rows = data.iloc[order[n_val:]].reset_index(drop=True)
    return train_rows, val


def train_synthetic_model(
    train_rows: pd.DataFrame, val: pd.DataFrame, params: SyntheticParams
) -> tuple[nn.Module, dict[str, list[float]], dict[str, list[float] | float]]:
    """Fit a ``scratch`` or ``linear`` model with the shared engine.

    Args:
        train_rows: rows to fit.
        val: held-out rows, scored after every epoch.
        params: ``model.kind`` and the training settings under ``train``.

    Returns:
        The trained model on the CPU, its per-epoch history (``train_loss``, ``val_loss``) and
        its coefficients as ``{"w": [...], "b": ...}``.
    """
    X, y = table_to_tensors(train_rows, TARGET)
    result = train(
        params.model.kind,
        X,
        y,
        params.train,
        val=table_to_tensors(val, TARGET),
        name="synthetic.train",
    )
    model = result.model.cpu()
    w, b = model.coefficients()
    return model, result.history, {"w": w.tolist(), "b": float(b)}


def compare_recovered_parameters(
    coefficients: dict[str, list[float] | float], train_rows: pd.DataFrame, params: SyntheticParams
) -> tuple[dict[str, float], dict[str, dict[str, list[float] | float]]]:
    """Set the learned parameters beside the true ones and the least-squares optimum.

    Args:
        coefficients: the learned ``{"w": [...], "b": ...}``.
        train_rows: the rows the model was fitted on, for the least-squares solution.
        params: the true ``w`` and ``b``.

    Returns:
        Metrics (``w_max_abs_error`` and ``b_abs_error`` against the truth, and the same
        against least squares as ``lstsq_gap_w`` / ``lstsq_gap_b``), and a report of the
        three parameter sets.
    """
    true_w = torch.tensor(params.true_w, dtype=torch.float64)
    learned_w = torch.tensor(coefficients["w"], dtype=torch.float64)
    learned_b = float(coefficients["b"])
    lstsq_w, lstsq_b = least_squares(*table_to_tensors(train_rows, TARGET))
    metrics = {
        "w_max_abs_error": float((learned_w - true_w).abs().max()),
        "b_abs_error": abs(learned_b - params.true_b),
        "lstsq_gap_w": float((learned_w - lstsq_w).abs().max()),
        "lstsq_gap_b": abs(learned_b - float(lstsq_b)),
    }
    report = {
        "true": {"w": list(params.true_w), "b": params.true_b},
        "recovered": {"w": learned_w.tolist(), "b": learned_b},
        "least_squares": {"w": lstsq_w.tolist(), "b": float(lstsq_b)},
    }
    return metrics, report


def plot_synthetic_fit(
    train_rows: pd.DataFrame,
    coefficients: dict[str, list[float] | float],
    params: SyntheticParams,
) -> Figure:
    """Partial residuals of y against x1, with the fitted and the true line along x1.

    Plotted against x1 alone, y scatters by the other features' contribution too. Each point
    is therefore y minus the fitted contribution of the other features, y − Σ_{j≠1} ŵ_j x_j:
    what is left is x1's part, the intercept and the noise, so the scatter about the fitted
    line ŵ_1 x1 + b̂ is the noise alone. The true line w_1 x1 + b is drawn dashed on top.

    Args:
        train_rows: the training rows.
        coefficients: the learned ``{"w": [...], "b": ...}``.
        params: the true ``w`` and ``b`` and the noise level.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    X, y = table_to_tensors(train_rows, TARGET)
    X, y = X.double(), y.double()
    learned_w = torch.tensor(coefficients["w"], dtype=torch.float64)
    learned_b = float(coefficients["b"])
    partial = y - X[:, 1:] @ learned_w[1:]
    x1 = torch.linspace(float(X[:, 0].min()), float(X[:, 0].max()), 2, dtype=torch.float64)

    figure = Figure(figsize=(6, 4.5), layout="constrained")
    axes = figure.add_subplot()
    others = " − Σ_{j≠1} ŵ_j·x_j" if len(params.true_w) > 1 else ""
    axes.plot(
        x1,
        x1 * learned_w[0] + learned_b,
        color="C3",
        linewidth=4,
        alpha=0.6,
        label=f"fitted: {float(learned_w[0]):.4g}·x1 + {learned_b:.4g} "
        f"({params.model.kind}, {params.train.loss})",
    )
    axes.plot(
        x1,
        x1 * params.true_w[0] + params.true_b,
        color="black",
        linestyle="--",
        linewidth=1.2,
        label=f"true: {params.true_w[0]:g}·x1 + {params.true_b:g}",
    )
    axes.scatter(
        X[:, 0], partial, s=3, alpha=0.5, color="C0", zorder=3, label=f"training rows: y{others}"
    )
    removed = "\nother features' fitted part removed: rows scatter by the noise"
    axes.set(
        xlabel="x1",
        ylabel=f"y{others}",
        title=f"Synthetic data along x1 (noise σ = {params.noise:g}){removed if others else ''}",
    )
    axes.legend(fontsize="small")
    return figure


def plot_synthetic_loss_curve(history: dict[str, list[float]], params: SyntheticParams) -> Figure:
    """Training and validation loss per epoch, on a log scale, with the noise floor.

    Args:
        history: the per-epoch ``train_loss`` and ``val_loss``.
        params: the run's configuration (title) and the noise level: with the MSE loss, the
            true parameters' expected loss is the noise variance σ², the floor of both curves.

    Returns:
        The figure.
    """
    floor = None
    if params.train.loss == "mse" and params.noise > 0:
        floor = (params.noise**2, f"noise variance σ² = {params.noise**2:.3g}")
    return plot_epoch_curves(
        {
            "train loss": history.get("train_loss", []),
            "validation loss": history.get("val_loss", []),
        },
        title=f"Loss per epoch: {params.model.kind}, {training_title(params.train)}",
        ylabel=f"loss ({params.train.loss})",
        optimum=floor,
    )
