"""The landscape pipeline's nodes on y = 2x, called directly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from pydantic import ValidationError

from linear_nets.pipelines.landscape.nodes import (
    DescentConfig,
    LandscapeData,
    WeightGrid,
    mse_at,
    mse_gradient,
    plot_descent_loss,
    plot_mse_landscape,
    run_gradient_descent,
    summarize_landscape,
    sweep_mse,
)

PARAMETERS = Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_landscape.yml"


@pytest.fixture(scope="module")
def params() -> dict:
    return yaml.safe_load(PARAMETERS.read_text())["landscape"]


@pytest.fixture(scope="module")
def data(params: dict) -> LandscapeData:
    return LandscapeData.model_validate(params["data"])


@pytest.fixture(scope="module")
def grid(data: LandscapeData, params: dict) -> pd.DataFrame:
    return sweep_mse(data, WeightGrid.model_validate(params["grid"]))


@pytest.fixture(scope="module")
def trace(data: LandscapeData, params: dict) -> pd.DataFrame:
    return run_gradient_descent(data, DescentConfig.model_validate(params["descent"]))


def test_defaults_are_the_tutorial_ones(data: LandscapeData, params: dict) -> None:
    assert (data.x, data.y) == ((1.0, 2.0, 3.0), (2.0, 4.0, 6.0))
    descent = DescentConfig.model_validate(params["descent"])
    assert descent == DescentConfig(w0=1, lr=0.01, epochs=100)


def test_grid_runs_from_0_to_4_in_steps_of_a_tenth(params: dict) -> None:
    w = WeightGrid.model_validate(params["grid"]).values()
    assert len(w) == 41
    assert float(w[0]) == 0.0 and float(w[-1]) == 4.0
    torch.testing.assert_close(w.diff(), torch.full((40,), 0.1, dtype=torch.float64))


def test_sweep_is_the_parabola_with_its_minimum_at_2(grid: pd.DataFrame) -> None:
    assert list(grid.columns) == ["w", "mse"]
    best = grid.loc[grid["mse"].idxmin()]
    assert best["w"] == pytest.approx(2.0) and best["mse"] == pytest.approx(0.0)
    # MSE(w) = (w - 2)² · mean(x²) = (w - 2)² · 14/3
    torch.testing.assert_close(
        torch.tensor(grid["mse"].to_numpy()), (torch.tensor(grid["w"].to_numpy()) - 2) ** 2 * 14 / 3
    )


def test_hand_derived_gradient_equals_autograd(data: LandscapeData) -> None:
    x, y = torch.tensor(data.x, dtype=torch.float64), torch.tensor(data.y, dtype=torch.float64)
    w = torch.tensor([-1.0, 0.5, 2.0, 3.7], dtype=torch.float64, requires_grad=True)
    mse_at(w, x, y).sum().backward()
    torch.testing.assert_close(mse_gradient(w.detach(), x, y), w.grad)


def test_descent_takes_hand_derived_gradient_steps_to_2(trace: pd.DataFrame) -> None:
    assert list(trace.columns) == ["epoch", "w", "loss", "gradient"]
    assert trace["epoch"].tolist() == list(range(101))
    assert trace["w"].iloc[0] == 1.0
    steps = trace["w"].diff().iloc[1:].to_numpy()
    expected = -0.01 * trace["gradient"].iloc[:-1].to_numpy()
    torch.testing.assert_close(torch.tensor(steps), torch.tensor(expected), rtol=0, atol=1e-12)
    assert (trace["loss"].diff().iloc[1:] < 0).all()
    assert trace["w"].iloc[-1] == pytest.approx(2.0, abs=1e-3)
    # plain GD on this parabola contracts w - 2 by 1 - lr · 2 · mean(x²) each epoch
    assert trace["w"].iloc[-1] == pytest.approx(2 - (1 - 0.01 * 28 / 3) ** 100, abs=1e-9)


def test_summary_reports_both_minima_and_the_history(
    grid: pd.DataFrame, trace: pd.DataFrame
) -> None:
    metrics, history = summarize_landscape(grid, trace)
    assert metrics["grid_best_w"] == pytest.approx(2.0)
    assert metrics["gd_final_w"] == pytest.approx(2.0, abs=1e-3)
    assert metrics["gd_final_loss"] < 1e-6
    assert len(history["gd_w"]) == len(history["gd_loss"]) == 100
    assert history["gd_w"][-1] == metrics["gd_final_w"]


def test_plots(grid: pd.DataFrame, trace: pd.DataFrame) -> None:
    (axes,) = plot_mse_landscape(grid, trace).axes
    curve, path = axes.lines
    assert len(curve.get_xdata()) == 41 and len(path.get_xdata()) == 101
    (axes,) = plot_descent_loss(trace).axes
    assert axes.get_yscale() == "log" and axes.get_xlabel() == "epoch"


@pytest.mark.parametrize(
    ("model", "raw", "message"),
    [
        (LandscapeData, {"x": [1, 2], "y": [2]}, "x has 2 values but y has 1"),
        (LandscapeData, {"x": [0, 0], "y": [1, 2]}, "all zeros"),
        (WeightGrid, {"start": 4, "stop": 0, "step": 0.1}, "below start"),
        (WeightGrid, {"start": 0, "stop": 4, "step": 0}, "step"),
        (DescentConfig, {"w0": 1, "lr": 0.01, "epochs": 0}, "epochs"),
        (DescentConfig, {"w0": 1, "lr": 0.01, "epochs": 5, "momentum": 0.9}, "momentum"),
    ],
)
def test_bad_parameters_are_refused(model: type, raw: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(raw)
