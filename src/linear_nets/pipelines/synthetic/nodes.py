"""Recover known weights from y = X w + b + noise: the first linear-regression tutorial.

The data are drawn from parameters we choose, so how far training lands from them (and from
the least-squares optimum on the same rows) says how well the optimizer did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import pandas as pd
import torch
from pydantic import Field, model_validator
from torch import nn

from linear_nets.engine import ModelConfig, TrainConfig, least_squares, train
from linear_nets.engine.config import StrictModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:  # imported inside the plotting nodes: find_pipelines imports this module on every run
    Figure = Any

TARGET = "y"
REGRESSION_LOSSES = ("mse", "mae", "huber")


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
    train: TrainConfig

    @model_validator(mode="after")
    def _regression_that_can_split(self) -> Self:
        if self.train.loss not in REGRESSION_LOSSES:
            raise ValueError(
                f"train.loss={self.train.loss!r} is not a regression loss: "
                f"expected one of {', '.join(REGRESSION_LOSSES)}"
            )
        n_val = _validation_rows(self.n, self.val_fraction)
        if not 0 < n_val < self.n:
            raise ValueError(
                f"val_fraction={self.val_fraction} of n={self.n} rows leaves {n_val} "
                "validation rows; both parts need at least one"
            )
        return self


def _validation_rows(n: int, fraction: float) -> int:
    return round(n * fraction)


def _feature_columns(d: int) -> list[str]:
    return [f"x{i}" for i in range(1, d + 1)]


def _tensors(table: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.tensor(table.drop(columns=TARGET).to_numpy(), dtype=torch.float32)
    y = torch.tensor(table[TARGET].to_numpy(), dtype=torch.float32)
    return X, y


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
    X, y = _tensors(train_rows)
    result = train(params.model.kind, X, y, params.train, val=_tensors(val), name="synthetic.train")
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
    lstsq_w, lstsq_b = least_squares(*_tensors(train_rows))
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
    """Scatter y against the first feature with the fitted and the true line through it.

    The other features are held at their mean, so the lines are what each model predicts
    along the first feature for a typical row.

    Args:
        train_rows: the training rows.
        coefficients: the learned ``{"w": [...], "b": ...}``.
        params: the true ``w`` and ``b``.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 (lazy, see the top of the module)

    X, y = _tensors(train_rows)
    means = X.to(torch.float64).mean(dim=0)
    x1 = torch.linspace(float(X[:, 0].min()), float(X[:, 0].max()), 2, dtype=torch.float64)

    def along_first(w: list[float] | tuple[float, ...], b: float) -> torch.Tensor:
        w64 = torch.tensor(w, dtype=torch.float64)
        return x1 * w64[0] + (means[1:] @ w64[1:]) + b

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(X[:, 0], y, s=4, alpha=0.4, label="training rows")
    axes.plot(
        x1,
        along_first(coefficients["w"], float(coefficients["b"])),
        color="C3",
        label=f"fitted ({params.model.kind}, {params.train.loss})",
    )
    axes.plot(x1, along_first(params.true_w, params.true_b), "k--", linewidth=1, label="true")
    axes.set(xlabel="x1", ylabel="y", title="Synthetic data and the fitted line along x1")
    axes.legend()
    return figure


def plot_loss_curve(history: dict[str, list[float]]) -> Figure:
    """Training and validation loss per epoch, on a log scale.

    Args:
        history: the per-epoch ``train_loss`` and ``val_loss``.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415 (lazy, see the top of the module)

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    for key in ("train_loss", "val_loss"):
        values = history.get(key, [])
        axes.plot(range(1, len(values) + 1), values, marker="o", label=key.replace("_", " "))
    axes.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss per epoch")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend()
    return figure
