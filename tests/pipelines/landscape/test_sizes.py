"""Grids that cannot fit and starting points that are not numbers are refused up front."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kedro.validation.exceptions import ParameterValidationError
from pydantic import ValidationError

from linear_nets.pipelines.landscape.nodes import (
    MAX_GRID_POINTS,
    DescentConfig,
    LandscapeData,
    WeightGrid,
)
from tests.support import run_pipeline


@pytest.mark.parametrize(
    ("step", "points", "size"), [(1e-9, "4e+09", "32 GB"), (1e-7, "4e+07", "0.32 GB")]
)
def test_a_grid_with_too_many_points_is_refused_with_the_estimate_and_the_limit(
    step: float, points: str, size: str
):
    started = time.monotonic()
    with pytest.raises(ValidationError) as caught:
        WeightGrid(start=0.0, stop=4.0, step=step)

    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"gives {points} grid points ({size} as float64" in message
    assert "the limit is 1,000,000 points: raise step" in message


def test_the_largest_grid_within_the_limit_is_accepted():
    grid = WeightGrid(start=0.0, stop=MAX_GRID_POINTS - 1.0, step=1.0)
    assert grid.count() == MAX_GRID_POINTS == len(grid.values())
    with pytest.raises(ValidationError, match="the limit is"):
        WeightGrid(start=0.0, stop=float(MAX_GRID_POINTS), step=1.0)


@pytest.mark.parametrize(
    ("model", "raw", "message"),
    [
        (DescentConfig, {"w0": float("nan"), "lr": 0.01, "epochs": 3}, r"w0\n.*finite number"),
        (DescentConfig, {"w0": 1.0, "lr": float("inf"), "epochs": 3}, r"lr\n.*finite number"),
        (WeightGrid, {"start": float("-inf"), "stop": 4.0, "step": 0.1}, "start=-inf is not"),
        (WeightGrid, {"start": 0.0, "stop": 4.0, "step": float("inf")}, "step=inf is not"),
        (LandscapeData, {"x": [1.0, float("nan")], "y": [2.0, 4.0]}, r"x\[1\]=nan is not"),
        (LandscapeData, {"x": [1.0, 2.0], "y": [2.0, 1e300]}, r"y\[1\]=1e\+300 is not"),
    ],
)
def test_values_that_are_not_finite_are_refused_naming_the_field(model, raw, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate(raw)


def test_a_nan_start_stops_the_run_naming_w0_not_the_learning_rate(kedro_project: Path):
    with pytest.raises(ParameterValidationError, match=r"(?s)landscape\.descent.*w0") as caught:
        run_pipeline(kedro_project, "landscape", {"landscape": {"descent": {"w0": float("nan")}}})
    assert "learning rate" not in str(caught.value)
    assert not list((kedro_project / "data").glob("0[1-8]_*/landscape_*"))


def test_a_run_with_a_tiny_grid_step_stops_before_any_node(kedro_project: Path):
    with pytest.raises(ParameterValidationError, match=r"(?s)landscape\.grid.*4e\+09 grid points"):
        run_pipeline(kedro_project, "landscape", {"landscape": {"grid": {"step": 1e-9}}})
