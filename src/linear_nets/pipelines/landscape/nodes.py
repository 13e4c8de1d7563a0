"""The loss landscape of y = w·x: MSE over a grid of w, and gradient descent walking down it.

With x = [1, 2, 3] and y = [2, 4, 6] the MSE is a parabola in w with its minimum at w = 2.
The descent runs through the shared engine (full batch, hand-written SGD, MSE) on the
engine's scratch model with its bias frozen at zero; every step it takes equals the
hand-derived gradient 2·x·(x·w − y), averaged, which the trace records beside it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Self

import pandas as pd
import torch
from pydantic import Field, model_validator

from linear_nets.engine import TensorSource, TrainConfig, build_model, fit
from linear_nets.engine.config import StrictModel
from linear_nets.reporting import plot_epoch_curves

if TYPE_CHECKING:
    from matplotlib.figure import Figure
else:  # imported inside the plotting nodes: find_pipelines imports this module on every run
    Figure = Any


MAX_GRID_POINTS = 1_000_000
"""The most values of w the grid evaluates: a step of 1e-7 over [0, 4] took 94 s."""
MAX_ABS_VALUE = 1e100
"""The largest |x| or |y|: their squares stay finite in float64."""


class LandscapeData(StrictModel):
    """``params:landscape.data``: the points y = w·x is fitted to."""

    x: tuple[float, ...] = Field(min_length=1)
    y: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _same_length(self) -> Self:
        if len(self.x) != len(self.y):
            raise ValueError(f"x has {len(self.x)} values but y has {len(self.y)}")
        if not any(self.x):
            raise ValueError("x is all zeros: the loss does not depend on w")
        return self

    @model_validator(mode="after")
    def _finite(self) -> Self:
        for name, values in (("x", self.x), ("y", self.y)):
            for index, value in enumerate(values):
                if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
                    raise ValueError(
                        f"{name}[{index}]={value} is not a finite value within ±{MAX_ABS_VALUE:g}"
                    )
        return self


class WeightGrid(StrictModel):
    """``params:landscape.grid``: the values of w to evaluate, ``start`` to ``stop`` inclusive."""

    start: float
    stop: float
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.stop < self.start:
            raise ValueError(f"stop={self.stop} is below start={self.start}")
        return self

    @model_validator(mode="after")
    def _finite_and_bounded(self) -> Self:
        for name in ("start", "stop", "step"):
            if not math.isfinite(value := getattr(self, name)):
                raise ValueError(f"{name}={value} is not finite")
        if (points := self.count()) > MAX_GRID_POINTS:
            raise ValueError(
                f"start={self.start:g}, stop={self.stop:g}, step={self.step:g} gives {points:.4g} "
                f"grid points ({points * 8 / 1e9:.3g} GB as float64, before the MSE of each); "
                f"the limit is {MAX_GRID_POINTS:,} points: raise step"
            )
        return self

    def count(self) -> int:
        """The number of grid points, endpoints included."""
        return round((self.stop - self.start) / self.step) + 1

    def values(self) -> torch.Tensor:
        """The grid in float64, endpoints included, without accumulated rounding."""
        return self.start + self.step * torch.arange(self.count(), dtype=torch.float64)


class DescentConfig(StrictModel):
    """``params:landscape.descent``: plain full-batch gradient descent on the MSE."""

    w0: float = Field(description="starting weight", allow_inf_nan=False)
    lr: float = Field(gt=0, allow_inf_nan=False)
    epochs: int = Field(gt=0)


def _tensors(data: LandscapeData) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(data.x, dtype=torch.float64),
        torch.tensor(data.y, dtype=torch.float64),
    )


def mse_at(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSE of y ≈ w·x for each value in ``w``: mean((x·w − y)²)."""
    return ((w.unsqueeze(-1) * x - y) ** 2).mean(dim=-1)


def mse_gradient(w: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d MSE / dw derived by hand: mean(2·x·(x·w − y)), for each value in ``w``."""
    return (2 * x * (w.unsqueeze(-1) * x - y)).mean(dim=-1)


def sweep_mse(data: LandscapeData, grid: WeightGrid) -> pd.DataFrame:
    """Evaluate the MSE at every w of the grid.

    Args:
        data: the points x and y.
        grid: start, stop and step of w.

    Returns:
        One row per grid value: ``w`` and ``mse``.
    """
    x, y = _tensors(data)
    w = grid.values()
    return pd.DataFrame({"w": w.numpy(), "mse": mse_at(w, x, y).numpy()})


def run_gradient_descent(data: LandscapeData, descent: DescentConfig) -> pd.DataFrame:
    """Descend from ``w0`` by full-batch gradient descent with the engine.

    Args:
        data: the points x and y.
        descent: the starting weight, learning rate and number of epochs.

    Returns:
        One row per epoch, 0 (the start) to ``epochs``: ``epoch``, ``w`` after that epoch,
        ``loss`` (the MSE at that w) and ``gradient`` (the hand-derived gradient there).
    """
    x, y = _tensors(data)
    X = x.unsqueeze(1)
    model = build_model("scratch", n_features=1).to(torch.float64)
    with torch.no_grad():
        model.w.fill_(descent.w0)
    model.b.requires_grad_(False)  # y = w·x has no intercept
    config = TrainConfig(
        device="cpu", optimizer="manual_sgd", lr=descent.lr, epochs=descent.epochs, loss="mse"
    )
    path = [descent.w0]  # the w each epoch's step reached, read after every epoch
    fit(
        model,
        TensorSource(X, y),
        config,
        name="landscape.descent",
        on_epoch=lambda _epoch, trained, _values: path.append(float(trained.w.detach())),
    )
    w = torch.tensor(path, dtype=torch.float64)
    return pd.DataFrame(
        {
            "epoch": range(descent.epochs + 1),
            "w": w.numpy(),
            "loss": mse_at(w, x, y).numpy(),
            "gradient": mse_gradient(w, x, y).numpy(),
        }
    )


def summarize_landscape(
    grid: pd.DataFrame, trace: pd.DataFrame
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The grid's best w, where the descent ended, and the descent as a per-epoch history.

    Args:
        grid: ``w`` and ``mse`` over the grid.
        trace: the descent, one row per epoch from the start.

    Returns:
        Metrics (``grid_best_w``, ``grid_best_mse``, ``gd_final_w``, ``gd_final_loss``) and
        the history ``{"gd_w": [...], "gd_loss": [...]}`` for epochs 1 to the last.
    """
    best = grid.loc[grid["mse"].idxmin()]
    final = trace.iloc[-1]
    metrics = {
        "grid_best_w": float(best["w"]),
        "grid_best_mse": float(best["mse"]),
        "gd_final_w": float(final["w"]),
        "gd_final_loss": float(final["loss"]),
    }
    steps = trace[trace["epoch"] > 0]
    history = {"gd_w": steps["w"].tolist(), "gd_loss": steps["loss"].tolist()}
    return metrics, history


def plot_mse_landscape(grid: pd.DataFrame, trace: pd.DataFrame) -> Figure:
    """MSE against w over the grid, with the gradient-descent path marked on the curve.

    Args:
        grid: ``w`` and ``mse`` over the grid.
        trace: the descent, one row per epoch from the start.

    Returns:
        The figure.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(grid["w"], grid["mse"], color="C0", label="MSE(w)")
    axes.plot(
        trace["w"],
        trace["loss"],
        "o-",
        color="C3",
        markersize=3,
        linewidth=0.8,
        label=f"gradient descent ({len(trace) - 1} epochs)",
    )
    axes.annotate(
        "start",
        (trace["w"].iloc[0], trace["loss"].iloc[0]),
        textcoords="offset points",
        xytext=(6, 6),
    )
    axes.set(xlabel="w", ylabel="MSE", title="Loss landscape of y = w·x")
    axes.legend()
    return figure


def plot_descent_loss(trace: pd.DataFrame) -> Figure:
    """The MSE after each epoch of gradient descent, on a log scale.

    Args:
        trace: the descent, one row per epoch from the start.

    Returns:
        The figure.
    """
    return plot_epoch_curves(
        {"MSE at the w reached (epoch 0: the start)": trace["loss"].tolist()},
        title="Gradient descent on y = w·x",
        ylabel="MSE",
        first_epoch=int(trace["epoch"].iloc[0]),
    )
